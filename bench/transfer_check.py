"""SSL vs random initialisation through the CPU transfer protocols (Detectron2 ``scenes-r18-fpn``,
mmseg ``scenes-r18-fcn``) on synthetic scenes: the measurement behind bench/RESULTS.md "Transfer on
synthetic scenes" and the slow test tests/evaluate/test_slow_transfer.py.

    .venv/bin/python bench/transfer_check.py data/scenes random=runs/<random>/ckpt.pt \
        simclr=runs/<simclr>/ckpt.pt [--d2-iters 300] [--mmseg-iters 600] [--json bench/out/transfer.json]
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evaluate.transfer import detectron2, mmseg  # noqa: E402


def compare(ckpts: dict[str, Path], data: Path, work: Path, *, d2_iters: int, mmseg_iters: int, batch: int = 8,
            frameworks: tuple[str, ...] = ("mmseg", "detectron2"), mmseg_lr: float | None = None,
            d2_lr: float | None = None) -> list[dict[str, Any]]:
    """One row per (framework, checkpoint): its metrics and wall time."""
    rows = []
    for fw in frameworks:
        for name, ckpt in ckpts.items():
            start = time.perf_counter()
            out = work / fw / name
            if fw == "detectron2":
                metrics = detectron2.run(ckpt, "scenes-r18-fpn", data, out, iters=d2_iters, ims_per_batch=batch,
                                         lr=d2_lr)
            else:
                metrics = mmseg.run(ckpt, "scenes-r18-fcn", data, out, iters=mmseg_iters, batch=batch, lr=mmseg_lr)
            rows.append({"framework": fw, "init": name, "ckpt": str(ckpt), "iters": d2_iters if fw == "detectron2"
                         else mmseg_iters, "batch": batch, "seconds": round(time.perf_counter() - start, 1), **metrics})
            print(rows[-1], flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", type=Path)
    ap.add_argument("ckpts", nargs="+", help="NAME=PATH")
    ap.add_argument("--d2-iters", type=int, default=300)
    ap.add_argument("--mmseg-iters", type=int, default=600)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--frameworks", default="mmseg,detectron2")
    ap.add_argument("--mmseg-lr", type=float)
    ap.add_argument("--d2-lr", type=float)
    ap.add_argument("--work", type=Path, default=Path("runs/transfer-check"))
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", datefmt="%H:%M:%S")
    ckpts = dict(c.split("=", 1) for c in a.ckpts)
    rows = compare({k: Path(v) for k, v in ckpts.items()}, a.data, a.work, d2_iters=a.d2_iters,
                   mmseg_iters=a.mmseg_iters, batch=a.batch, frameworks=tuple(a.frameworks.split(",")),
                   mmseg_lr=a.mmseg_lr, d2_lr=a.d2_lr)
    if a.json:
        from results_json import write_results
        write_results(a.json, {"data": str(a.data)}, rows)


if __name__ == "__main__":
    main()
