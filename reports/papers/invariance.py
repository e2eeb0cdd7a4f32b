"""Purushwalkam & Gupta, Demystifying contrastive self-supervised learning: invariances,
augmentations and dataset biases (NeurIPS 2020, arXiv 2007.13916): claims and reproduction plans.

Claims: aggressive cropping buys occlusion invariance; MoCo v2 and PIRL are more
occlusion-invariant and less viewpoint- and instance-invariant than a supervised network;
temporal contrast on video beats MoCo v2 on the same frames in viewpoint invariance; MoCo v2
gains from object-centric pretraining data. No published table is stored.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..compare import OBJECT_CENTRIC, PER_METHOD, SCENE_CENTRIC, WITHIN, Filter, Pair, PaperSpec, Trend, Where
from ..reproduce import (
    COCO_TRAIN,
    CPU_OBJECTS,
    FULL_IMAGE_SIZE,
    IMAGENET_SPLITS,
    Layout,
    Step,
    data_step,
    pretrain_step,
    report_steps,
    seeds,
    suite_step,
)

# --------------------------------------------------------------------------------------- claims

def _endswith(suffix: str) -> Where:
    """The rows whose column ends with ``suffix`` (printed ``*suffix``)."""
    return Where(f"*{suffix}", lambda s: s.astype("string").str.endswith(suffix))


_TOP25 = {"task": "invariance", "metric": "top25"}
_SAME_AUG = ("aug", *WITHIN)


def _top25(dataset: Where | str, **more: Any) -> Filter:
    """Our invariance top-25 rows on the probe sets ``dataset`` names, with ``more`` filters."""
    return {**_TOP25, "dataset": dataset, **more}


OCCLUSION, INSTANCE = _endswith("occlusion"), _endswith("instance")
VIEWPOINT = Where("*viewpoint (not *instance-viewpoint)", lambda s: s.astype("string").str.endswith("viewpoint")
                  & ~s.astype("string").str.endswith("instance-viewpoint"))
SPEC = PaperSpec(
    name="invariance",
    title="Purushwalkam & Gupta, Demystifying contrastive self-supervised learning: invariances, "
          "augmentations and dataset biases (NeurIPS 2020, arXiv 2007.13916)",
    trends=(
        Trend("aggressive cropping > mild cropping on occlusion invariance top-25",
              (Pair(_top25(OCCLUSION, aug="aggressive"), _top25(OCCLUSION, aug="mild"), PER_METHOD),)),
        Trend("MoCo v2 and PIRL are more occlusion-invariant (top-25) than a supervised network",
              tuple(Pair(_top25(OCCLUSION, method=m), _top25(OCCLUSION, method="supervised"), _SAME_AUG)
                    for m in ("mocov2", "pirl"))),
        Trend("a supervised network is more viewpoint-invariant (top-25) than MoCo v2 and PIRL",
              tuple(Pair(_top25(VIEWPOINT, method="supervised"), _top25(VIEWPOINT, method=m), _SAME_AUG)
                    for m in ("mocov2", "pirl"))),
        Trend("a supervised network is more instance-invariant (top-25) than MoCo v2 and PIRL",
              tuple(Pair(_top25(INSTANCE, method="supervised"), _top25(INSTANCE, method=m), _SAME_AUG)
                    for m in ("mocov2", "pirl"))),
        Trend("temporal contrast on video beats MoCo v2 on the same data in viewpoint invariance (top-25)",
              (Pair(_top25(VIEWPOINT, method="temporal"), _top25(VIEWPOINT, method="mocov2")),)),
        Trend("MoCo v2 gains from object-centric pretraining data over scene-centric (linear top-1, same "
              "evaluation set)",
              (Pair({"method": "mocov2", "pretrain_data": OBJECT_CENTRIC, "task": "linear", "metric": "top1"},
                    {"method": "mocov2", "pretrain_data": SCENE_CENTRIC, "task": "linear", "metric": "top1"},
                    ("backbone", "dataset")),)),
    ),
    ours_rows=_TOP25,
    ours_by=("method", "aug", "dataset"),
)


# ----------------------------------------------------------------------------------------- plan

# cpu: every run takes the same number of updates, 10 epochs of the object set at batch 128 (8673
# training images: 67 steps an epoch), whatever its data (scenes: 1646 images, video: 3312 frames),
# so that the object- vs scene-centric and the video comparisons are at equal training
INVARIANCE_STEPS = 680
# MoCo v2 as its authors' code and the paper ran it (moco/builder.py: one direction, the key encoder
# never trained on the query's view); one encoder pass with gradient a step
MOCO_ARGS = ("--method_cfg.symmetric=false",)


# full scale: the invariance benchmarks of the paper (imagedata.benchmarks) and their folders under
# the datasets root (imagedata.layouts)
FULL_BENCHMARKS = (("got10k-occlusion", "got10k"), ("aloi-viewpoint", "aloi"), ("aloi-illum-color", "aloi"),
                   ("aloi-illum-dir", "aloi"), ("pascal3d-viewpoint", "pascal3d"))
# full scale: the datasets a plan reads (imagedata.layouts), checked before any step runs
FULL_DATASETS = ("imagenet", "coco", "trackingnet", "got10k", "aloi", "pascal3d")


def plan(lay: Layout, scale: str) -> list[Step]:
    """Invariance and dataset bias of contrastive SSL: MoCo v2 / PIRL / supervised / temporal
    (video frame pairs and tracked regions, against MoCo v2 on the same frames); occlusion,
    viewpoint, illumination, instance invariance; object-centric (shapes64) vs scene-centric
    (scenes) pretraining; aggressive vs mild cropping.

    cpu: three pretraining seeds of every arm a claim reads, each ``INVARIANCE_STEPS`` updates:
    MoCo v2 (asymmetric, ``MOCO_ARGS``), supervised and random init on the objects, MoCo v2 on the
    scenes and on the video frames, temporal contrast on the frames, SimCLR with aggressive and
    mild crops (24 runs). PIRL (~3x MoCo v2's step cost) and temporal contrast on tracked regions
    are full-scale arms: the claims naming PIRL read MoCo v2 only at cpu scale ("not measured" for
    PIRL). ``shapes64-heldout``, ``CPU_OBJECTS`` (12 500) images, held-out meshes: pretraining and
    the linear probe of every run (2544 test images, seed 0). ``scenes`` (2000 128-px images:
    1646 train) and ``video`` (500 clips of 8 frames: 3312 train frames) are pretraining data
    only: no step reads their test splits (the linear probe reads the objects, the probe sets are
    their own), so they stay small."""
    steps = []
    if scale == "cpu":
        s1, objects = data_step(lay, "shapes64-heldout", CPU_OBJECTS)
        s2, scenes = data_step(lay, "scenes", 2000)
        s3, video = data_step(lay, "video", 500)
        steps += [s1, s2, s3]
    else:
        objects, scenes, video = (lay.datasets / "imagenet", lay.datasets / COCO_TRAIN,
                                  lay.datasets / "trackingnet")
    for seed in seeds(scale):

        def run(method: str, aug: str | None, data: Path, *extra: str) -> Step:
            if scale == "cpu" and method != "random":
                extra = (*extra, f"--train.steps={INVARIANCE_STEPS}")
            if method == "mocov2":
                extra = (*MOCO_ARGS, *extra)
            return pretrain_step(lay, scale, method, aug, data, *extra, seed=seed)
        methods = ("mocov2", "supervised", "random") if scale == "cpu" else ("mocov2", "pirl", "supervised")
        steps += [run(m, None, objects) for m in methods]
        steps += [run("mocov2", None, scenes)]
        steps += [run("simclr", aug, objects) for aug in ("aggressive", "mild")]
        steps += [run("mocov2", None, video), run("temporal", None, video)]     # image-level on the same frames
        if scale == "full":
            steps.append(run("temporal", None, video, "--method_cfg.mode=regions"))
    # cpu: the probe sets only. The transform measure (Ericsson et al.'s, not this paper's) reads 2000
    # test images (``--images``) at ~4 minutes a checkpoint (bench/RESULTS.md), some 90 minutes for
    # the plan's 24 runs.
    quick = ("--transforms", "none") if scale == "cpu" else ()
    if scale == "full":       # the paper's real probe sets (sec. 3): GOT-10k, ALOI, PASCAL3D+
        quick = tuple(a for name, folder in FULL_BENCHMARKS
                      for a in ("--benchmark", f"{name}={lay.datasets / folder}"))
        quick += ("--image-size", str(FULL_IMAGE_SIZE), "--transform-split", "val")   # ImageNet files: val
    steps.append(Step("invariance", "invariance", (str(lay.runs), "--store", str(lay.store), "--data", str(objects),
                                                   "--probe-dir", str(lay.data / "probes"), *quick)))
    steps.append(suite_step(lay, objects, "linear", *(IMAGENET_SPLITS if scale == "full" else ())))
    return steps + report_steps(lay, SPEC.name)
