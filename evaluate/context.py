"""The suite's settings: what ``python -m evaluate.suite`` runs and how (one dataclass, defaults in it).

The tasks (``evaluate.tasks``, ``invariance.tasks``) read them from the
:class:`measure.context.Context` they receive; each task's record names the settings its numbers
depend on, and only those are stored as its eval config.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from measure import features as F

from .dense import DenseConfig
from .finetune import FinetuneConfig
from .fewshot import FewShotConfig
from .lowshot import LowShotConfig

DEFAULT_STORE = Path("results/results.sqlite")


@dataclass
class TransferConfig:
    """The framework transfer tasks (``detection``: Detectron2, ``segmentation_transfer``: mmseg):
    protocol names, training iterations and batch size (``evaluate.transfer``)."""

    detectron2_protocol: str = "scenes-r18-fpn"
    mmseg_protocol: str = "scenes-r18-fcn"
    iters: int | None = 300                # None: the protocol's own (the paper protocols)
    batch: int | None = 8
    num_gpus: int = 1
    input_size: int | None = None          # the frameworks' input side (shorter side / crop); None: the protocol's


@dataclass
class SuiteConfig:
    """What the suite runs: ``data`` (default: the checkpoint's own dataset), splits, image limits
    (0 = all), seeds of the stochastic tasks, and per-task settings."""

    data: str | None = None
    train_split: str = "train"
    test_split: str = "test"
    train_limit: int = 0
    test_limit: int = 0
    seeds: tuple[int, ...] = (0,)
    lowshot: LowShotConfig = field(default_factory=LowShotConfig)
    fewshot: FewShotConfig = field(default_factory=FewShotConfig)
    knn_k: tuple[int, ...] = (20, 200)
    knn_t: float = 0.07
    embedding: str = "tsne"
    embedding_points: int = 2000
    image_size: int | None = None
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    dense: DenseConfig = field(default_factory=DenseConfig)
    transfer: TransferConfig = field(default_factory=TransferConfig)
    invariance_sets: int = 100            # sets per synthetic probe (invariance)
    probe_dir: str = "data/probes"        # where the probe sets are generated
    transform_images: int = 2000          # test images of transform_invariance
    skip_unreadable: bool = False         # leave out images that do not decode (counted per split)
    cache_dir: str = str(F.DEFAULT_CACHE)
    device: str = "cpu"
