"""The hand-made floor of a synthetic dataset: a linear probe on silhouette features of the object masks.

    .venv/bin/python -m evaluate.floor data/shapes64-heldout [--train 5000] [--test 2000]

What a learnt representation must beat to have learnt more than the outline of the object: four
features of each image's foreground mask (the pixels of any object, never their class), fitted by
the suite's linear probe (``evaluate.linear``) on the train split and scored on the test split.

- area: foreground pixels / image pixels;
- box aspect: width / height of the foreground's bounding box;
- perimeter: foreground pixels with a background 4-neighbour (or on the border), / image side;
- compactness: 4 pi area / perimeter^2 in pixels (1 for a disc, smaller for elongated or ragged shapes).
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

from imagedata.subsets import stratified_subset
from synthetic.dataset import DatasetError, open_dataset

from .linear import linear_probe

FEATURES = ("area", "box_aspect", "perimeter", "compactness")


def silhouette_features(masks: np.ndarray) -> np.ndarray:
    """bool (N, H, W) foreground masks -> float32 (N, 4) features (``FEATURES``; zeros for an empty mask)."""
    masks = np.asarray(masks, dtype=bool)
    n, h, w = masks.shape
    area = masks.sum((1, 2)).astype(np.float64)
    padded = np.pad(masks, ((0, 0), (1, 1), (1, 1)))
    inner = padded[:, 1:-1, 1:-1] & padded[:, :-2, 1:-1] & padded[:, 2:, 1:-1] & padded[:, 1:-1, :-2] & padded[:, 1:-1, 2:]
    perimeter = (masks & ~inner).sum((1, 2)).astype(np.float64)
    rows, cols = masks.any(2), masks.any(1)
    height = np.where(rows.any(1), h - rows[:, ::-1].argmax(1) - rows.argmax(1), 0)
    width = np.where(cols.any(1), w - cols[:, ::-1].argmax(1) - cols.argmax(1), 0)
    aspect = np.divide(width, height, out=np.zeros(n), where=height > 0)
    compact = np.divide(4 * math.pi * area, perimeter ** 2, out=np.zeros(n), where=perimeter > 0)
    return np.stack([area / (h * w), aspect, perimeter / max(h, w), compact], 1).astype(np.float32)


def _strata(classes: np.ndarray) -> np.ndarray:
    """Class labels as integer strata (-1 where a row has none)."""
    return np.nan_to_num(np.asarray(classes, dtype=np.float64), nan=-1).astype(np.int64)


def silhouette_floor(data: Path | str, n_train: int = 5000, n_test: int = 2000, *, train_split: str = "train",
                     test_split: str = "test") -> dict[str, float]:
    """Top-1 (%) of the linear probe on the silhouette features of ``n_train`` / ``n_test`` images
    (0: all) of ``data``'s ``train_split`` / ``test_split``, drawn class-stratified with seed 0 as the
    suite's features are (``measure.features``), so that the floor sees the same images."""
    ds = open_dataset(data)
    labels = ds.labels
    if "class" not in labels or labels["class"].isna().all():
        raise DatasetError(f"{data}: no class labels to probe")
    split = labels["split"].to_numpy()
    rows = {}
    for name, s, n in (("train", train_split, n_train), ("test", test_split, n_test)):
        found = np.flatnonzero(split == s)
        rows[name] = found[stratified_subset(_strata(labels["class"].to_numpy()[found]), n, seed=0)]
        if not len(rows[name]):
            raise DatasetError(f"{data}: the floor needs a {s!r} split (splits: {', '.join(sorted(set(split)))})")
    x = {s: silhouette_features(np.asarray(ds.semantic[r]) > 0) for s, r in rows.items()}
    y = {s: labels["class"].to_numpy()[r] for s, r in rows.items()}
    out = linear_probe(x["train"], y["train"], x["test"], y["test"])
    return {"floor_top1": float(out["top1"]), "n_train": float(len(rows["train"])), "n_test": float(len(rows["test"]))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m evaluate.floor", description=__doc__.split("\n")[0])
    ap.add_argument("data", type=Path)
    ap.add_argument("--train", type=int, default=5000)
    ap.add_argument("--test", type=int, default=2000)
    ap.add_argument("--train-split", default="train")
    ap.add_argument("--test-split", default="test")
    a = ap.parse_args(argv)
    try:
        out = silhouette_floor(a.data, a.train, a.test, train_split=a.train_split, test_split=a.test_split)
    except (DatasetError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{a.data}: silhouette floor top-1 {out['floor_top1']:.2f} "
          f"({int(out['n_train'])} train / {int(out['n_test'])} test images; {', '.join(FEATURES)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
