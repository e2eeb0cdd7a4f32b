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
    COCO_TRAIN,
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


def _over_image_level(claim: str, task: str) -> Trend:
    """SlotCon's mIoU on the suite's ``task`` above each image-level method's, all pretrained on scenes."""
    return Trend(claim, tuple(Pair(_scene(method="slotcon", task=task, metric="miou"),
                                   _scene(method=m, task=task, metric="miou")) for m in IMAGE_LEVEL))


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
        _over_image_level("SlotCon's slots group scene pixels by semantics better than image-level methods' "
                          "features (unsupervised semantic segmentation mIoU: k-means of the frozen dense "
                          "features, Hungarian-matched; the paper's COCO-Stuff-27 study)", "unsup_seg"),
        _over_image_level("SlotCon's frozen dense features segment scenes better than image-level methods' "
                          "(linear segmentation mIoU, pretrained on the same scenes: the cpu-scale stand-in for "
                          "the paper's semantic-segmentation transfer)", "segmentation"),
    ),
)


# ----------------------------------------------------------------------------------------- plan

# SlotCon's plan: 10 epochs on 2000 scenes left every method at random init's transfer (box AP50
# 7.2 vs 7.8); 50 epochs of MoCo v2 gave 11.3 (bench/RESULTS.md "SlotCon at cpu scale"). At the
# cpu preset's batch of 128 the 1646 training scenes make 12 steps an epoch: 600 steps in all.
SCENE_EPOCHS = 50

# full scale: the datasets the plan reads (imagedata.layouts), checked before any step runs
FULL_DATASETS = ("coco", "voc")


def plan(lay: Layout, scale: str) -> list[Step]:
    """SlotCon on scene-centric data: detection, segmentation, unsupervised segmentation, against
    image-level methods pretrained on the same scenes.

    cpu: three pretraining seeds of SlotCon, MoCo v2 and BYOL (and random init) on ``scenes``,
    2000 128-px images (seed 0: 1646 train, 180 test with 739 objects), at the cpu preset's
    backbone (its small stem leaves a 4x4 last stage on the 32-px views: SlotCon's slots group
    that map). The claims judged at cpu scale read the frozen dense features: unsupervised
    semantic segmentation and linear segmentation (mIoU over the ~180 x 32 x 32 test pixels), and
    depth. The transfer claims need Detectron2 / mmseg (~20 minutes a checkpoint on 2 cores:
    three seeds a side do not fit the plan's 90 minutes): with ``--transfer`` the seed-0 SlotCon,
    MoCo v2 and random runs also train an arm at torchvision's standard stem that goes on to
    Detectron2 (one seed: those claims read inconclusive); the full plan judges them."""
    steps = []
    if scale == "cpu":
        step, scenes = data_step(lay, "scenes", 2000)
        steps.append(step)
    else:
        scenes = lay.datasets / COCO_TRAIN
    for seed in seeds(scale):
        for m in ("slotcon", "mocov2", "byol", "random"):
            steps += pretrain_steps(lay, scale, m, None, scenes, seed=seed, cpu_epochs=SCENE_EPOCHS,
                                    chosen=seed == 0 and m != "byol")
    if scale == "cpu":
        steps.append(suite_step(lay, scenes, "segmentation,unsup_seg,depth"))
    steps += transfer_steps(lay, scale, "transfer", tasks="detection" if scale == "cpu" else "")
    return steps + report_steps(lay, SPEC.name)
