"""What an evaluation task reads: one checkpoint, its metadata, a dataset and cached features.

A :class:`Context` is built once per (checkpoint, dataset) by the suite; every task of the
registry (:mod:`measure.tasks`) receives it, so frozen features are extracted once and shared by
the linear probe, kNN, clustering, pose and the dense tasks.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fsio import file_sha256
from imagedata.formats import open_source
from pretrain.checkpoint import CheckpointMeta

from . import features as F
from .results import ResultsStore
from .tasks import SkipTask


@dataclass
class Context:
    """The checkpoint, its typed metadata, the dataset path, the suite's settings and the store.

    ``cfg`` is the suite's settings object (``evaluate.context.SuiteConfig``): splits
    (``train_split`` / ``test_split``), image limits (``train_limit`` / ``test_limit``, 0 = all),
    ``seeds``, ``image_size``, ``cache_dir``, ``device`` and one section or field per task.
    """

    ckpt: Path
    meta: CheckpointMeta
    data: Path
    cfg: Any
    store: ResultsStore | None = None
    _features: dict[tuple[str, str, int], F.FeatureSet] = field(default_factory=dict)

    @property
    def run_id(self) -> str:
        return self.meta.run_id or self.ckpt.parent.name

    @property
    def sha(self) -> str:
        """The checkpoint file's SHA-256: its identity in the results store."""
        return file_sha256(self.ckpt)

    def features(self, split: str, layer: str = "pool", limit: int | None = None) -> F.FeatureSet:
        """Cached features of ``split`` (``limit`` images; default: the suite's limit for the split)."""
        if limit is None:
            limit = self.cfg.train_limit if split == self.cfg.train_split else self.cfg.test_limit
        key = (split, layer, limit)
        if key not in self._features:
            self._features[key] = F.extract(self.ckpt, self.data, split, layer=layer, limit=limit or None,
                                            cache_dir=self.cfg.cache_dir, device=self.cfg.device,
                                            image_size=self.image_size,
                                            skip_unreadable=getattr(self.cfg, "skip_unreadable", False))
        return self._features[key]

    @property
    def image_size(self) -> int:
        """The side every image is read at, synthetic or files: ``--image-size``, else the size of
        the views the checkpoint trained on (``CheckpointMeta.view_size``)."""
        return int(self.cfg.image_size or self.meta.view_size)

    def source(self, split: str) -> Any:
        return open_source(self.data, image_size=self.image_size, split=split,
                           skip_unreadable=getattr(self.cfg, "skip_unreadable", False))

    def dense(self, split: str, limit: int) -> tuple[list[torch.Tensor], np.ndarray]:
        """The frozen stage pyramid [(N, C_i, h_i, w_i), ...] of ``limit`` images of ``split``
        (class-stratified, seed 0) and their positions in the split (N,)."""
        fs = self.features(split, "dense", limit)
        return F.dense_maps(fs), fs.indices

    def synthetic(self, split: str) -> Any:
        """The split's synthetic source (masks, depth, labels.csv); SkipTask for other datasets."""
        source = self.source(split)
        if not hasattr(source, "dataset"):
            raise SkipTask(f"{self.data}: not a synthetic dataset (no masks, depth or pose labels)")
        return source
