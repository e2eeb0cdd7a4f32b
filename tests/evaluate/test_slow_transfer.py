"""Transfer from an SSL checkpoint of the pretraining engine beats random initialisation through
both real frameworks on synthetic scenes (`make test-slow`; about an hour on 2 cores): SimCLR with
the cpu preset at torchvision's standard stem on shapes64 vs the `random` baseline, then
Detectron2 `scenes-r18-fpn` (Mask R-CNN R18-FPN, 150 iterations at batch 8: AP50) and mmseg
`scenes-r18-fcn` (FCN, 600 iterations at batch 8: mIoU), as `bench/transfer_check.py` measures
them (numbers and their reading in bench/RESULTS.md, "Transfer on synthetic scenes")."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pretrain import config as C
from pretrain import trainer as T
from synthetic.generate import generate

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from transfer_check import compare  # noqa: E402

pytestmark = pytest.mark.slow


def test_ssl_initialisation_beats_random_in_detectron2_and_mmseg(tmp_path_factory: pytest.TempPathFactory) -> None:
    root = tmp_path_factory.mktemp("transfer")
    shapes = generate("shapes64", 20000, 0, root / "shapes64", progress=False)
    scenes = generate("scenes", 2000, 0, root / "scenes", progress=False)
    ckpts = {}
    for method in ("random", "simclr"):
        # torchvision's standard stem at width 64, whatever the cpu preset's backbone: the frameworks'
        # converters take no other (as the plans' transfer arms, reports/reproduce.py CPU_TRANSFER_BACKBONE)
        cfg = C.build_config(method, None, "cpu", {"data.path": str(shapes), "train.out": str(root / "runs"),
                                                   "train.tensorboard": False, "backbone.kwargs": {}})
        ckpts[method] = T.train(cfg, progress=False) / "ckpt.pt"
    rows = compare(ckpts, scenes, root / "work", d2_iters=150, mmseg_iters=600)
    got = {(r["framework"], r["init"]): r for r in rows}
    print({k: {m: round(v, 2) for m, v in r.items() if m in ("AP50", "AP", "miou", "macc")} for k, r in got.items()})
    assert got["mmseg", "simclr"]["miou"] > got["mmseg", "random"]["miou"]
    assert got["detectron2", "simclr"]["AP50"] > got["detectron2", "random"]["AP50"]
