"""Saliency-based augmentation: salient-object segmentation (global-contrast saliency, Cheng et
al. 2015) as an augmentation for contrastive learning (the ``sgd`` / ``sgd-only`` policies):
claims and reproduction plans.

Claims: ``sgd`` improves linear and kNN top-1, frozen-feature segmentation mIoU and k-means
clustering (NMI) over the default augmentations, per method. No published table is stored: the
comparison shows our rows of the paper's kind.
"""
from __future__ import annotations

from pathlib import Path

from ..compare import LINEAR, PER_METHOD, Pair, PaperSpec, Trend
from ..reproduce import (
    CPU_OBJECTS,
    IMAGENET_SPLITS,
    VOC2012,
    Layout,
    Step,
    data_step,
    examples_step,
    pretrain_step,
    report_steps,
    saliency_steps,
    seeds,
    suite_step,
)

# --------------------------------------------------------------------------------------- claims

_KNN = {"task": "knn", "metric": "top1@k20", "in_domain": True}
_SEG = {"task": "segmentation", "metric": "miou", "in_domain": True}
_CLUSTER = {"task": "clustering", "metric": "nmi", "in_domain": True}
SPEC = PaperSpec(
    name="saliency-aug",
    title="saliency-based augmentation: salient-object segmentation (global-contrast saliency, Cheng et al. "
          "2015) as an augmentation for contrastive learning (policies sgd / sgd-only)",
    trends=(
        Trend("salient-object segmentation (sgd) improves linear top-1 over the default augmentations",
              (Pair({"aug": "sgd", **LINEAR}, {"aug": "default", **LINEAR}, PER_METHOD),)),
        Trend("salient-object segmentation (sgd) improves kNN top-1 (k 20) over the default augmentations",
              (Pair({"aug": "sgd", **_KNN}, {"aug": "default", **_KNN}, PER_METHOD),)),
        Trend("salient-object segmentation (sgd) improves frozen-feature segmentation (mIoU) over the default "
              "augmentations", (Pair({"aug": "sgd", **_SEG}, {"aug": "default", **_SEG}, PER_METHOD),)),
        Trend("salient-object segmentation (sgd) improves k-means clustering of the features (NMI) over the "
              "default augmentations", (Pair({"aug": "sgd", **_CLUSTER}, {"aug": "default", **_CLUSTER}, PER_METHOD),)),
    ),
    ours_rows={"aug": ("default", "sgd", "sgd-only"), "task": ("linear", "knn", "segmentation", "clustering"),
               "metric": ("top1", "top1@k20", "miou", "nmi"),
               "in_domain": True},
    ours_by=("method", "aug", "task", "metric", "dataset"),
)


# ----------------------------------------------------------------------------------------- plan

# cpu: the arms each claim needs, three seeds each, in <= 90 minutes on 2 cores: SimCLR with HC and
# RC masks, BYOL with RC masks (the paper's better map), each against its default pipeline
SGD_ALGOS = {("cpu", "simclr"): ("hc", "rc"), ("cpu", "byol"): ("rc",)}

# full scale: the datasets the plan reads (imagedata.layouts), checked before any step runs
FULL_DATASETS = ("imagenet", "voc")


def plan(lay: Layout, scale: str) -> list[Step]:
    """Saliency (HC / RC) segmentation as an SSL augmentation: SGD with HC and RC maps (and, at
    full scale, SGD-only) vs the default pipeline, for SimCLR and BYOL; linear, kNN, clustering,
    segmentation.

    cpu: ``shapes64-clutter-heldout``, ``CPU_OBJECTS`` (12 500) images: held-out meshes, 2544 test
    images (seed 0); three pretraining seeds of every arm a claim reads (``SGD_ALGOS``: SimCLR
    default / HC / RC, BYOL default / RC; 15 runs of 10 epochs; ``--seeds 0,1`` are the seeded
    evaluations' own seeds, averaged inside each run). SGD-only and the 64-px views are full-scale
    / by-hand arms (no claim reads them; the 90 minutes do not hold them). The object's mask:
    sgd's default rule, SaliencyCut of the map (the best IoU with the objects on these sets:
    bench/RESULTS.md "Salient-object masks against the objects"), cached before the runs. full:
    ImageNet (the probes score on its val split), every arm of both methods, segmentation probed on
    VOC 2012's masks (ImageNet has none)."""
    steps, data = [], lay.datasets / "imagenet"
    if scale == "cpu":
        step, data = data_step(lay, "shapes64-clutter-heldout", CPU_OBJECTS)
        steps.append(step)
    steps += saliency_steps(data, ("hc-cut", "rc-cut"), scale)     # sgd's default rule: the SaliencyCut masks
    for seed in seeds(scale):
        for method in ("simclr", "byol"):
            steps.append(pretrain_step(lay, scale, method, "default", data, seed=seed))
            for algo in SGD_ALGOS.get((scale, method), ("hc", "rc")):
                steps.append(pretrain_step(lay, scale, method, "sgd", data, f"--aug_cfg.algo={algo}", seed=seed))
            if scale == "full":
                steps.append(pretrain_step(lay, scale, method, "sgd-only", data, seed=seed))
    if scale == "cpu":
        steps.append(suite_step(lay, data, "linear,knn,clustering,segmentation", "--seeds", "0,1"))
    else:       # ImageNet has no masks: the segmentation probe on VOC 2012's (train / val)
        steps.append(suite_step(lay, data, "linear,knn,clustering", "--seeds", "0,1", *IMAGENET_SPLITS))
        steps.append(suite_step(lay, lay.datasets / VOC2012, "segmentation", "--seeds", "0,1",
                                "--train-split", "train", "--test-split", "val"))
    step, examples = examples_step(lay, data, scale)
    return steps + [step] + report_steps(lay, SPEC.name, examples)
