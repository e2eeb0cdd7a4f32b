"""Throughput of imagedata.loader.BatchLoader (batches/s of the loader alone, no model).

    python bench/bench_loader.py                    # generates a 20000-image shapes64 dataset in a temp dir
    python bench/bench_loader.py data/shapes-20k    # or any folder open_source reads (--image-size for files)
    python bench/bench_loader.py --json bench/out/loader.json

Rows: the dataset's own source (synthetic: memory-mapped), then an ImageFolder of PNGs written from
its first --png-images images, timed on the first epoch (decoding) and a later one (cache hits);
last, the training steps/s of a ResNet-18 at the same batch size and image size, for comparison.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from imagedata.formats import open_source  # noqa: E402
from imagedata.imagefolder import ImageFolderSource  # noqa: E402
from imagedata.loader import BatchLoader  # noqa: E402
from imagedata.source import ImageSource  # noqa: E402
from results_json import write_results  # noqa: E402
from synthetic.generate import generate  # noqa: E402


def resnet18_step_rate(batch_size: int, size: int, steps: int = 3) -> float:
    """Training steps/s of a torchvision ResNet-18 (forward + backward + SGD) on the CPU."""
    import torch
    import torchvision

    model = torchvision.models.resnet18(num_classes=10)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.rand(batch_size, 3, size, size), torch.randint(0, 10, (batch_size,))

    def step() -> None:
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    step()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    return steps / (time.perf_counter() - t)


def write_png_folder(source: ImageSource, root: Path, count: int, batch: int = 250) -> Path:
    """Write the first ``count`` images of ``source`` as ``root/<class>/<i>.png``."""
    count = min(count, len(source))
    for s in range(0, count, batch):
        idx = np.arange(s, min(count, s + batch))
        images = source.read(idx).permute(0, 2, 3, 1).numpy()
        for i, img in zip(idx, images):
            folder = root / f"class{max(int(source.targets[i]), 0)}"
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(folder / f"{i:06d}.png")
    return root


def time_epoch(loader: BatchLoader, epoch: int) -> dict[str, float]:
    """Iterate one epoch of ``loader``; return batches, images, seconds and rates."""
    loader.set_epoch(epoch)
    batches = images = 0
    start = time.perf_counter()
    for x, _, _ in loader:
        batches += 1
        images += x.shape[0]
    seconds = time.perf_counter() - start
    return {"batches": batches, "images": images, "seconds": seconds,
            "batches_per_s": batches / seconds, "images_per_s": images / seconds}


def bench_source(name: str, source: ImageSource, batch_size: int, epochs: list[str],
                 drop_last: bool, prefetch: int) -> list[dict[str, Any]]:
    """One row per epoch label in ``epochs`` (timed in that order on one loader)."""
    loader = BatchLoader(source, batch_size, shuffle=True, seed=0, drop_last=drop_last, prefetch=prefetch)
    rows = []
    for e, label in enumerate(epochs):
        row = {"source": name, "epoch": label, "n": len(source), "image_size": source.image_size,
               "batch_size": batch_size}
        row.update(time_epoch(loader, e))
        rows.append(row)
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    head = (f"{'source':<28} {'epoch':<12} {'images':>7} {'px':>4} {'batches':>7} {'s':>7} "
            f"{'batches/s':>10} {'images/s':>10}")
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['source']:<28} {r['epoch']:<12} {r['n']:>7} {r['image_size'] or '-':>4} {r['batches']:>7} "
              f"{r['seconds']:>7.3f} {r['batches_per_s']:>10.1f} {r['images_per_s']:>10.0f}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("dataset", nargs="?", type=Path, help="dataset path (default: generate shapes64)")
    p.add_argument("--image-size", type=int, default=None, help="for file formats")
    p.add_argument("--split", default=None)
    p.add_argument("--n", type=int, default=20000, help="images of the generated dataset")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--png-images", type=int, default=2000, help="images in the PNG ImageFolder (0: skip)")
    p.add_argument("--epochs", type=int, default=3, help="timed epochs of the dataset's own source")
    p.add_argument("--prefetch", type=int, default=2)
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = p.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-loader-") as tmp:
        tmp = Path(tmp)
        path = args.dataset
        if path is None:
            t = time.perf_counter()
            path = generate("shapes64", args.n, 0, tmp / "shapes64", progress=False)
            print(f"generated {args.n} shapes64 images in {time.perf_counter() - t:.1f}s at {path}")
        source = open_source(path, args.image_size, args.split)
        kind = type(source).__name__
        rows = bench_source(kind, source, args.batch_size, [str(e + 1) for e in range(args.epochs)],
                            drop_last=True, prefetch=args.prefetch)
        if args.png_images:
            folder = write_png_folder(source, tmp / "png", args.png_images)
            files = ImageFolderSource(folder, source.image_size or args.image_size)
            rows += bench_source("ImageFolderSource (png)", files, args.batch_size,
                                 ["1 (decode)", "2 (cached)"], drop_last=False, prefetch=args.prefetch)
    print_table(rows)
    size = source.image_size or args.image_size
    step_rate = resnet18_step_rate(args.batch_size, size)
    print(f"ResNet-18 training step, batch {args.batch_size} at {size} px: {step_rate:.2f} steps/s "
          f"(the loader is {rows[-1 - 2 * bool(args.png_images)]['batches_per_s'] / step_rate:.0f}x faster)")
    if args.json:
        env = {"dataset": str(args.dataset or f"shapes64 n={args.n}"), "prefetch": args.prefetch,
               "resnet18_steps_per_s": step_rate}
        write_results(args.json, env, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
