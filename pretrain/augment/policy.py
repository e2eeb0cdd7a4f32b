"""The Policy protocol: what every augmentation policy is, does and declares.

A policy turns a raw uint8 batch into :class:`~pretrain.views.Views`. Before the first batch the
trainer calls ``bind`` (policies that read per-dataset state, e.g. a saliency cache or the data
mean / std, use it; the others do nothing), and reads ``produces`` to check the policy against the
method (a method that takes no extra negatives cannot train on a policy that makes hard
negatives) and to size the backbone's input.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

from ..views import RawBatch, Views
from .input_transforms import InputTransform


@dataclass(frozen=True)
class Produces:
    """What a policy's Views hold, known before the first batch.

    views: number of views; out_size: side of the global views (None: the input's own size);
    masks: whether ``Views.masks`` is set; negatives: hard negatives per image in
    ``Views.negatives`` (0: none); input_transform: the transform every view has been through
    (e.g. the masking paper's high-pass filter), which the checkpoint records so that every
    evaluation applies it too (None: views of plain images).
    """

    views: int
    out_size: int | None = None
    masks: bool = False
    negatives: int = 0
    input_transform: InputTransform | None = None


@runtime_checkable
class Policy(Protocol):
    """Maps a raw uint8 batch to augmented float views; ``config`` is its settings dataclass."""

    config: Any

    @property
    def produces(self) -> Produces: ...

    def bind(self, data_path: str | Path, mean: Tensor, std: Tensor) -> None: ...

    def __call__(self, batch: RawBatch, gen: torch.Generator) -> Views: ...
