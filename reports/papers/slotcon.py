"""Wen et al., Self-supervised visual representation learning with semantic grouping (SlotCon,
NeurIPS 2022, arXiv 2205.15288): claims and reproduction plans.

Claims: pretrained on scene-centric data, SlotCon transfers better than image-level methods
(detection AP, segmentation mIoU). The published rows are the paper's COCO transfer table.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..compare import OBJECT_CENTRIC, SCENE_CENTRIC, Filter, Pair, PaperSpec, Trend
from ..reproduce import (
    Layout,
    Step,
    data_step,
    pretrain_steps,
    report_steps,
    seeds,
    suite_step,
    transfer_steps,
)

# --------------------------------------------------------------------------------------- claims

# the image-level methods SlotCon is compared with
IMAGE_LEVEL = ("simclr", "mocov2", "byol", "simsiam", "swav", "pirl")
SLOTCON_METRIC = {"APb": {"task": "detection", "metric": "AP"}, "APm": {"task": "detection", "metric": "segm_AP"}}


def _match_slotcon(row: Mapping[str, Any]) -> Filter | str:
    """SlotCon's COCO transfer -> our SlotCon detection AP / mask AP, pretrained on scene-centric
    data (their COCO / COCO+) or on object-centric data (their ImageNet-1K; epochs not matched)."""
    data = SCENE_CENTRIC if row["pretrain_data"].startswith("COCO") else OBJECT_CENTRIC
    return {"method": "slotcon", "pretrain_data": data, **SLOTCON_METRIC[row["metric"]]}


def _scene(**f: Any) -> Filter:
    return {"pretrain_data": SCENE_CENTRIC, **f}


SPEC = PaperSpec(
    name="slotcon",
    title="Wen et al., Self-supervised visual representation learning with semantic grouping "
          "(SlotCon, NeurIPS 2022, arXiv 2205.15288)",
    tables=("slotcon_coco.csv",),
    columns=("pretrain_data", "epochs", "eval", "metric"),
    match=_match_slotcon,
    trends=(
        Trend("SlotCon transfers better than image-level methods from scene-centric data (detection AP)",
              tuple(Pair(_scene(method="slotcon", task="detection", metric="AP"),
                         _scene(method=m, task="detection", metric="AP")) for m in IMAGE_LEVEL)),
        Trend("SlotCon transfers better than image-level methods from scene-centric data (segmentation mIoU)",
              tuple(Pair(_scene(method="slotcon", task="segmentation_transfer", metric="miou"),
                         _scene(method=m, task="segmentation_transfer", metric="miou")) for m in IMAGE_LEVEL)),
    ),
)


# ----------------------------------------------------------------------------------------- plan

# SlotCon's plan: 10 epochs on 2000 scenes left every method at random init's transfer (box AP50
# 7.2 vs 7.8); 50 epochs of MoCo v2 gave 11.3 (bench/RESULTS.md "SlotCon at cpu scale").
SCENE_EPOCHS = 50


def plan(lay: Layout, scale: str) -> list[Step]:
    """SlotCon on scene-centric data: detection, segmentation, unsupervised segmentation, against
    image-level methods pretrained on the same scenes.

    cpu: three pretraining seeds on ``scenes``, 2000 128-px images (seed 0: 1646 train, 180 test
    with 739 objects). The evaluations are dense or per object -- segmentation, unsupervised
    segmentation and depth over the test pixels (~2.9 M), detection AP over the test objects -- so
    the set is not grown to a classification set's 2500 test images: every image more costs the
    50-epoch pretrainings and Detectron2."""
    steps = []
    if scale == "cpu":
        step, scenes = data_step(lay, "scenes", 2000)
        steps.append(step)
    else:
        scenes = Path("data/coco/annotations/instances_train2017.json")
    for seed in seeds(scale):
        # cpu: the seed-0 SlotCon, MoCo v2 and random runs go on to the (Detectron2) transfer, as an
        # extra arm at torchvision's standard stem (pretrain_steps); every seed keeps the preset's backbone.
        for m in ("slotcon", "mocov2", "byol", "random"):
            steps += pretrain_steps(lay, scale, m, None, scenes, seed=seed, cpu_epochs=SCENE_EPOCHS,
                                    chosen=seed == 0 and m != "byol")
    if scale == "cpu":
        steps.append(suite_step(lay, scenes, "segmentation,unsup_seg,depth"))
    steps += transfer_steps(lay, scale, "transfer", tasks="detection" if scale == "cpu" else "")
    return steps + report_steps(lay, SPEC.name)
