"""Small datasets in the sslbench synthetic layout, made without the renderer (for format tests)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from synthetic import dataset

CLASSES = ["box", "disc", "bar"]


def write_fake_dataset(root: Path, n: int = 12, size: int = 32, objects_per_image: int = 2,
                       seed: int = 0) -> Path:
    """Write ``n`` images with axis-aligned rectangles as objects (masks, depth, boxes consistent)."""
    rng = np.random.default_rng(seed)
    staged = dataset.stage(root)
    arr = staged.create_arrays(n, size)
    arr["images"][:] = rng.integers(0, 60, size=arr["images"].shape, dtype=np.uint8)
    arr["semantic"][:] = 0
    arr["instance"][:] = 0
    arr["depth"][:] = np.inf
    rows, objs = [], []
    for i in range(n):
        for k in range(1, objects_per_image + 1):
            c = int(rng.integers(len(CLASSES)))
            x0, y0 = (int(v) for v in rng.integers(0, size // 2, 2))
            w, h = (int(v) for v in rng.integers(3, size // 2, 2))
            x1, y1 = x0 + w, y0 + h
            arr["images"][i, y0:y1, x0:x1] = (80 * (c + 1), 200 - 60 * c, 40 * k)
            arr["semantic"][i, y0:y1, x0:x1] = c + 1
            arr["instance"][i, y0:y1, x0:x1] = k
            arr["depth"][i, y0:y1, x0:x1] = 2.0 + k
            objs.append(dict(image=i, object=k, **{"class": c}, instance=0))
        inst = np.asarray(arr["instance"][i])
        for o in objs[-objects_per_image:]:
            ys, xs = np.nonzero(inst == o["object"])
            if xs.size:
                o.update(x0=xs.min(), y0=ys.min(), x1=xs.max() + 1, y1=ys.max() + 1, area=xs.size)
            else:  # fully covered by a later object
                o.update(x0=-1, y0=-1, x1=-1, y1=-1, area=0)
        first = objs[-objects_per_image]
        rows.append(dict(index=i, split=("train", "val", "test")[i % 3], **{"class": first["class"]},
                         instance=0, clip=i // 4, frame=i % 4))
    meta = dict(format=dataset.FORMAT, format_version=dataset.FORMAT_VERSION, generator_version="fake",
                preset="fake", seed=seed, n=n, unit="image", num_images=n, image_size=size,
                classes=CLASSES, factors={}, args={"n": n}, args_hash="0" * 16, splits={})
    for a in arr.values():
        a.flush()
    del arr
    return staged.commit(meta, pd.DataFrame(rows), pd.DataFrame(objs))
