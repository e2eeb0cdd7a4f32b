"""The Views contract: what an augmentation policy returns for a batch and a method consumes.

A method's loss reads Views; it never knows which policy made them, so saliency-based policies
plug in without touching any method.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class RawBatch:
    """One batch from the data layer, before augmentation.

    images: uint8 (B, 3, H, W); targets: int64 (B,) class (-1 unknown); indices: int64 (B,)
    dataset indices; pair: uint8 (B, 3, H, W) a second frame of the same video (temporal
    methods), else None; boxes / pair_boxes: float (B, 4) x0 y0 x1 y1 pixel boxes of one tracked
    object in ``images`` / ``pair`` (region-level temporal learning), else None.
    """

    images: torch.Tensor
    targets: torch.Tensor
    indices: torch.Tensor
    pair: torch.Tensor | None = None
    boxes: torch.Tensor | None = None
    pair_boxes: torch.Tensor | None = None

    def to(self, device: torch.device | str) -> "RawBatch":
        move = lambda t: None if t is None else t.to(device, non_blocking=True)  # noqa: E731
        return RawBatch(*(move(getattr(self, f)) for f in ("images", "targets", "indices", "pair", "boxes",
                                                           "pair_boxes")))


@dataclass
class Views:
    """Augmented views of a batch.

    views: list of float tensors (B, 3, h_i, w_i) in [0, 1] (NOT normalised: ``Method.encode``
    normalises with the data mean / std), views[0] and views[1] being the two "global" views;
    masks: per view a float (B, 1, h_i, w_i) mask in [0, 1] or None (e.g. saliency masks);
    negatives: extra negatives, float (B, K, 3, h, w) in [0, 1], or None (hard negatives);
    targets / indices: from the RawBatch (the supervised baseline and memory banks use them);
    boxes: per view, float (B, 4) the view's crop box in source-image pixels (x0, y0, x1, y1), for
    dense methods that must align views; flipped: per view, bool (B,) whether it was mirrored after
    cropping; sources: per view, the frame it was cropped from (0: ``RawBatch.images``, 1: ``pair``);
    masked: indices of the views whose content a masking policy replaced in places (``(0,)``: only
    the query view, ``(1,)``: only the key view, ``(0, 1)``: both; ``()``: none -- the saliency
    ``masks`` of a segmentation policy mark no masking). A method with a query and a key branch
    keeps a view masked on one side only on that side (the masking paper's asymmetric MoCo v2).
    """

    views: list[torch.Tensor]
    masks: list[torch.Tensor | None] | None = None
    negatives: torch.Tensor | None = None
    targets: torch.Tensor | None = None
    indices: torch.Tensor | None = None
    boxes: list[torch.Tensor] | None = None
    flipped: list[torch.Tensor] | None = None
    sources: list[int] | None = None
    masked: tuple[int, ...] = ()

    @property
    def batch_size(self) -> int:
        return int(self.views[0].shape[0])
