"""Throughput of the batched `default` augmentation policy vs a per-image torchvision pipeline.

    python bench/bench_augment.py                        # 256-image batches at 32 and 64 px, CPU
    python bench/bench_augment.py --sizes 32 64 96 --repeats 5 --json bench/out/augment.json
    python bench/bench_augment.py --device cuda          # batched policy on the GPU (baseline stays on the CPU)

Both sides make the two views of SimCLR / MoCo v2 (crop scale (0.2, 1), flip, colour jitter
0.4 / 0.4 / 0.4 / 0.1 with p 0.8, grayscale 0.2, blur p 0.5 only above 64 px) from uint8
images; images/s counts source images (2 views each). The baseline applies
``torchvision.transforms.v2`` to one (3, H, W) tensor at a time in a Python loop, as a
per-sample Dataset transform does. Median of --repeats timed batches after one warm-up.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pretrain.augment.ops import blur_kernel_size  # noqa: E402
from pretrain.augment import build_policy  # noqa: E402
from pretrain.augment.standard import auto_blur  # noqa: E402
from pretrain.views import RawBatch  # noqa: E402
from results_json import write_results  # noqa: E402


def torchvision_pipeline(size: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """The `default` policy's view as torchvision v2 transforms on one uint8 (3, H, W) tensor."""
    from torchvision.transforms import v2

    ops: list[Any] = [v2.ToDtype(torch.float32, scale=True),
                      v2.RandomResizedCrop(size, scale=(0.2, 1.0), antialias=True),
                      v2.RandomHorizontalFlip(),
                      v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
                      v2.RandomGrayscale(p=0.2)]
    blur_p = auto_blur(None, size, 0.5)
    if blur_p > 0:
        ops.append(v2.RandomApply([v2.GaussianBlur(blur_kernel_size(size), sigma=(0.1, 2.0))], p=blur_p))
    return v2.Compose(ops)


def timed(fn: Callable[[], Any], repeats: int, sync: Callable[[], None]) -> float:
    """Median seconds of fn() over ``repeats`` runs after one warm-up run."""
    fn()
    sync()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench_size(size: int, batch_size: int, repeats: int, device: torch.device) -> list[dict[str, Any]]:
    """Rows for one image size: the batched policy and the per-image torchvision loop."""
    images = torch.randint(0, 256, (batch_size, 3, size, size), dtype=torch.uint8)
    batch = RawBatch(images=images, targets=torch.zeros(batch_size, dtype=torch.long),
                     indices=torch.arange(batch_size)).to(device)
    policy, gen = build_policy("default"), torch.Generator().manual_seed(0)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    batched = timed(lambda: policy(batch, gen), repeats, sync)
    tv = torchvision_pipeline(size)
    loop = timed(lambda: [(tv(img), tv(img)) for img in images], max(1, repeats // 2), lambda: None)
    common = {"size": size, "batch_size": batch_size, "views": 2}
    return [common | {"pipeline": f"pretrain.augment default (batched, {device.type})", "seconds": batched,
                      "images_per_s": batch_size / batched},
            common | {"pipeline": "torchvision v2 per image (cpu)", "seconds": loop, "images_per_s": batch_size / loop}]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[32, 64])
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--repeats", type=int, default=5, help="timed batches per measurement (median)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: as a DataLoader worker; more threads "
                   "on a busy machine can be far slower)")
    p.add_argument("--device", default="cpu", help="device of the batched policy (cpu | cuda)")
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    rows: list[dict[str, Any]] = []
    print(f"{'size':>5} {'pipeline':<42} {'ms/batch':>9} {'images/s':>10}")
    for size in args.sizes:
        pair = bench_size(size, args.batch_size, args.repeats, device)
        for r in pair:
            print(f"{size:>5} {r['pipeline']:<42} {r['seconds'] * 1000:>9.1f} {r['images_per_s']:>10.0f}")
        ratio = pair[0]["images_per_s"] / pair[1]["images_per_s"]
        print(f"{size:>5} {'speed-up (batched / per image)':<42} {ratio:>20.1f}x")
        rows += [pair[0] | {"speedup": ratio}, pair[1]]
    if args.json:
        env = {"torch": torch.__version__, "threads": args.threads, "device": str(device),
               "gpu": torch.cuda.get_device_name() if device.type == "cuda" else None}
        write_results(args.json, env, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
