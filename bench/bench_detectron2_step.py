"""Seconds per training step of the CPU Detectron2 protocol (``scenes-r18-fpn``, batch 8) with its
RoI sampling (128 RoIs / image, 256 proposals) vs Detectron2's defaults (512, 1000).

    .venv/bin/python bench/bench_detectron2_step.py data/scenes CKPT [--steps 3] [--json bench/out/d2_step.json]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DEFAULTS = {"MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE": 512, "MODEL.RPN.PRE_NMS_TOPK_TRAIN": 2000,
            "MODEL.RPN.POST_NMS_TOPK_TRAIN": 1000}


def step_seconds(data: Path, ckpt: Path, steps: int, overrides: dict) -> float:
    """Median wall time of ``steps`` forward + backward passes (after one warm-up step)."""
    import tempfile

    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.data import build_detection_train_loader
    from detectron2.modeling import build_model
    from detectron2.utils.events import EventStorage

    from evaluate.transfer import detectron2 as TD
    from evaluate.transfer.convert import convert, pixel_stats
    from pretrain.checkpoint import read_meta

    out = Path(tempfile.mkdtemp())
    train, test, classes = TD.register_scenes(data)
    mean, std = pixel_stats(read_meta(ckpt))
    cfg = TD.build_cfg("scenes-r18-fpn", 18, str(convert(ckpt, "detectron2", out / "b.pkl")), out, train_set=train,
                       test_set=test, num_classes=classes, mean=mean, std=std, ims_per_batch=8)
    for k, v in overrides.items():
        cfg.merge_from_list([k, v])
    model = build_model(cfg)
    DetectionCheckpointer(model).load(cfg.MODEL.WEIGHTS)
    model.train()
    batches, times = iter(build_detection_train_loader(cfg)), []
    with EventStorage(0):
        for i in range(steps + 1):
            batch = next(batches)
            start = time.perf_counter()
            sum(model(batch).values()).backward()
            if i:
                times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", type=Path)
    ap.add_argument("ckpt", type=Path)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    rows = []
    for name, over in (("protocol (128 RoIs, 256 proposals)", {}), ("Detectron2 defaults (512, 1000)", DEFAULTS)):
        rows.append({"sampling": name, "seconds_per_step": round(step_seconds(a.data, a.ckpt, a.steps, over), 2)})
        print(rows[-1], flush=True)
    if a.json:
        from results_json import write_results
        write_results(a.json, {"data": str(a.data), "batch": 8}, rows)


if __name__ == "__main__":
    main()
