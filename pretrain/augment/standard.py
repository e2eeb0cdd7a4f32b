"""The standard augmentation policies: RawBatch (uint8) -> Views.

A policy is a callable ``policy(batch, gen) -> Views`` with a ``config`` dataclass (the
:class:`~pretrain.augment.policy.Policy` protocol); build one by name with
``pretrain.augment.build_policy(name, **overrides)``. All policies share the same plumbing
(``PipelinePolicy``):

* the uint8 images are converted to float [0, 1] once;
* video pairs: when ``batch.pair`` is set, even-numbered views (0, 2, ...) come from
  ``batch.images`` and odd-numbered ones (1, 3, ...) from ``batch.pair`` -- so view 0 is the
  first frame and view 1 the second;
* region mode: when ``batch.boxes`` is set, each view's random resized crop is drawn inside the
  tracked box of its source frame (``batch.pair_boxes`` for the pair, falling back to
  ``batch.boxes``), crop fractions relative to the box, and resampled once from the frame;
* ``Views.boxes[i]`` is view i's crop box (B, 4) in pixels of its source frame,
  ``Views.flipped[i]`` (B,) bool whether it was mirrored after cropping and
  ``Views.sources[i]`` 0 (images) or 1 (pair); targets / indices are passed through.

Policies here: ``default`` (SimCLR / MoCo v2, also ``mild`` / ``aggressive``), ``byol``,
``multicrop`` (SwAV), ``none``; the saliency policies are in :mod:`pretrain.augment.saliency`,
the names in :mod:`pretrain.augment.registry`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..views import RawBatch, Views
from .ops import PipelineConfig, augment_view, clamp_boxes, crop_boxes, full_boxes
from .policy import Produces

SMALL_IMAGE_PX = 64   # at or below this side, the "auto" blur setting turns blur off


def to_float(images: Tensor) -> Tensor:
    """uint8 (B, 3, H, W) -> float32 in [0, 1]; float input is taken as already in [0, 1]."""
    return images.float().div_(255.0) if images.dtype == torch.uint8 else images.float()


def auto_blur(blur_p: float | None, side: int, p_large: float) -> float:
    """``blur_p`` if set, else ``p_large`` for images larger than SMALL_IMAGE_PX and 0 for small ones
    (SimCLR, appendix B.9: no blur for CIFAR-10's 32 px images)."""
    if blur_p is not None:
        return float(blur_p)
    return p_large if side > SMALL_IMAGE_PX else 0.0


# --------------------------------------------------------------------------------------------
# configs


@dataclass
class DefaultConfig:
    """SimCLR (Chen et al., 2020) with MoCo v2's settings (Chen et al., 2020, arXiv:2003.04297).

    Crop scale (0.2, 1), flip 0.5, colour jitter 0.4 / 0.4 / 0.4 / 0.1 (strength s = 0.5) with
    p 0.8, grayscale 0.2, Gaussian blur sigma (0.1, 2) with p 0.5, kernel 10% of the side.
    blur_p None = auto: 0.5 above 64 px, off at <= 64 px as in SimCLR's CIFAR setting; set it
    to force. out_size None = the input's size. brightness / contrast / saturation / hue None =
    0.8 s / 0.8 s / 0.8 s / 0.2 s.
    """

    n_views: int = 2
    out_size: int | None = None
    crop_scale: tuple[float, float] = (0.2, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_p: float = 0.5
    jitter: float = 0.5
    brightness: float | None = None
    contrast: float | None = None
    saturation: float | None = None
    hue: float | None = None
    jitter_p: float = 0.8
    jitter_random_order: bool = True
    grayscale_p: float = 0.2
    blur_p: float | None = None
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    blur_kernel_frac: float = 0.1
    solarize_p: float = 0.0


@dataclass
class ByolConfig:
    """BYOL's asymmetric pair (Grill et al., 2020, table 6).

    Both views: crop scale (0.08, 1), flip 0.5, jitter 0.4 / 0.4 / 0.2 / 0.1 with p 0.8,
    grayscale 0.2; view 1 blur p 1.0, solarize 0; view 2 blur p 0.1, solarize p 0.2. The paper's
    blur is kept at every size (kernel 10% of the side, at least 3); set blur_p=(0, 0) for
    SimCLR's CIFAR convention.
    """

    out_size: int | None = None
    crop_scale: tuple[float, float] = (0.08, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_p: float = 0.5
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.2
    hue: float = 0.1
    jitter_p: float = 0.8
    jitter_random_order: bool = True
    grayscale_p: float = 0.2
    blur_p: tuple[float, float] = (1.0, 0.1)
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    blur_kernel_frac: float = 0.1
    solarize_p: tuple[float, float] = (0.0, 0.2)


@dataclass
class MulticropConfig:
    """SwAV's multi-crop (Caron et al., 2020): n_global crops of scale (0.14, 1) at the global size
    and n_local crops of scale (0.05, 0.14) at round(local_size_frac * global size) (96 / 224).

    Colour distortion of SimCLR with s = 1 (0.8 / 0.8 / 0.8 / 0.2, p 0.8), grayscale 0.2, blur
    p 0.5 (blur_p None = auto: off at <= 64 px).
    """

    n_global: int = 2
    n_local: int = 4
    out_size: int | None = None
    local_size_frac: float = 0.43
    global_scale: tuple[float, float] = (0.14, 1.0)
    local_scale: tuple[float, float] = (0.05, 0.14)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_p: float = 0.5
    jitter: float = 1.0
    jitter_p: float = 0.8
    jitter_random_order: bool = True
    grayscale_p: float = 0.2
    blur_p: float | None = None
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    blur_kernel_frac: float = 0.1


@dataclass
class NoneConfig:
    """No augmentation: n_views identical copies of the image (resized to out_size if set; the
    tracked box in region mode), for baselines that need no pair (rotation, VAE, supervised)."""

    n_views: int = 2
    out_size: int | None = None


# --------------------------------------------------------------------------------------------
# policies


class PipelinePolicy:
    """Shared plumbing: one ``PipelineConfig`` per view, pair / region handling, Views assembly.

    Subclasses implement ``pipelines(height, width) -> list[PipelineConfig]``.
    """

    def __init__(self, config: Any) -> None:
        self.config = config

    @property
    def produces(self) -> Produces:
        return Produces(views=self.config.n_views, out_size=self.config.out_size)

    def bind(self, data_path: str | Path, mean: Tensor, std: Tensor) -> None:
        """Nothing to bind: the standard policies depend on the images alone."""

    def pipelines(self, height: int, width: int) -> list[PipelineConfig]:
        raise NotImplementedError

    def __call__(self, batch: RawBatch, gen: torch.Generator) -> Views:
        sources = view_sources(batch)
        height, width = batch.images.shape[-2:]
        views, boxes, flipped, src_ids = [], [], [], []
        for i, cfg in enumerate(self.pipelines(int(height), int(width))):
            sid = i % len(sources)
            x, region = sources[sid]
            av = augment_view(x, cfg, gen, region=region)
            views.append(av.image)
            boxes.append(av.box)
            flipped.append(av.flipped)
            src_ids.append(sid)
        return Views(views=views, targets=batch.targets, indices=batch.indices, boxes=boxes, flipped=flipped,
                     sources=src_ids)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config})"


def view_sources(batch: RawBatch) -> list[tuple[Tensor, Tensor | None]]:
    """[(float images, region boxes or None)] for the frame(s) of the batch: images, then pair."""
    first = (to_float(batch.images), batch.boxes)
    if batch.pair is None:
        return [first]
    pair_boxes = batch.pair_boxes if batch.pair_boxes is not None else batch.boxes
    return [first, (to_float(batch.pair), pair_boxes)]


def _common(cfg: Any) -> dict[str, Any]:
    """The PipelineConfig fields that a policy config shares by name."""
    names = {f.name for f in dataclasses.fields(PipelineConfig)}
    return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg) if f.name in names}


class DefaultPolicy(PipelinePolicy):
    """SimCLR / MoCo v2: ``n_views`` views from the same pipeline (also ``mild`` / ``aggressive``)."""

    Config = DefaultConfig

    def pipelines(self, height: int, width: int) -> list[PipelineConfig]:
        c = self.config
        kw = _common(c) | {"blur_p": auto_blur(c.blur_p, min(height, width), 0.5)}
        return [PipelineConfig(**kw) for _ in range(c.n_views)]


class ByolPolicy(PipelinePolicy):
    """BYOL: two views with different blur / solarize probabilities."""

    Config = ByolConfig

    @property
    def produces(self) -> Produces:
        return Produces(views=2, out_size=self.config.out_size)

    def pipelines(self, height: int, width: int) -> list[PipelineConfig]:
        c = self.config
        base = _common(c)
        return [PipelineConfig(**(base | {"blur_p": c.blur_p[i], "solarize_p": c.solarize_p[i]})) for i in range(2)]


class MulticropPolicy(PipelinePolicy):
    """SwAV multi-crop: views[:n_global] global crops, then n_local small crops."""

    Config = MulticropConfig

    @property
    def produces(self) -> Produces:
        return Produces(views=self.config.n_global + self.config.n_local, out_size=self.config.out_size)

    def pipelines(self, height: int, width: int) -> list[PipelineConfig]:
        c = self.config
        size = c.out_size or min(height, width)
        local = max(1, round(c.local_size_frac * size))
        base = _common(c) | {"blur_p": auto_blur(c.blur_p, min(height, width), 0.5)}
        glob = [PipelineConfig(**(base | {"out_size": size, "crop_scale": c.global_scale}))] * c.n_global
        loc = [PipelineConfig(**(base | {"out_size": local, "crop_scale": c.local_scale}))] * c.n_local
        return glob + loc


class NonePolicy(PipelinePolicy):
    """No augmentation: the (resized) images themselves; view 1 is the pair frame if there is one."""

    Config = NoneConfig

    def __call__(self, batch: RawBatch, gen: torch.Generator) -> Views:
        sources = view_sources(batch)
        views, boxes, src_ids = [], [], []
        for i in range(self.config.n_views):
            sid = i % len(sources)
            x, region = sources[sid]
            b, _, h, w = x.shape
            box = full_boxes(b, h, w) if region is None else clamp_boxes(region, h, w)
            out = (self.config.out_size,) * 2 if self.config.out_size else (h, w)
            same = region is None and out == (h, w)
            views.append(x.clone() if same else crop_boxes(x, box, out).clamp_(0.0, 1.0))
            boxes.append(box.float().to(x.device))
            src_ids.append(sid)
        flipped = [torch.zeros(batch.images.shape[0], dtype=torch.bool) for _ in views]
        return Views(views=views, targets=batch.targets, indices=batch.indices, boxes=boxes, flipped=flipped,
                     sources=src_ids)
