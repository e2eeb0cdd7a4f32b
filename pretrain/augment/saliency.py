"""Saliency augmentation policies (registered in :mod:`pretrain.augment.registry`).

* ``sgd`` / ``sgd-only``: salient-object segmentation as an augmentation (global-contrast HC / RC
  saliency, Cheng et al. 2015): with probability ``seg_p`` per view the object is kept and the
  background removed or replaced (``fill``), before the default pipeline (``sgd``) or as the only
  augmentation (``sgd-only``).
* ``random-mask``: random patch masking on a G x G grid (the masking paper's baseline).
* ``sal-mask``: saliency-guided masking (Chen et al., WACV 2024), masked cells split between
  foreground and background in proportion to saliency; ``sal-mask-hn`` adds hard negatives.

Saliency comes from the offline hashed cache (``python -m pretrain.saliency precompute``; missing
entries are computed on first use and stored) for HC / RC, or from SCDA on a frozen sslbench
checkpoint. Maps read once are kept in memory by dataset index for the rest of the run.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..saliency.algos import ALGORITHMS
from ..saliency.cache import SaliencyCache, default_cache_dir
from ..views import RawBatch, Views
from . import masking as M
from .input_transforms import InputTransform
from .ops import augment_view, crop_boxes
from .policy import Produces
from .standard import DefaultConfig, DefaultPolicy, view_sources

CACHED_ALGOS = ("hc", "rc")
BRANCHES = ("query", "key", "both")
# sgd's rules for the object's mask: SaliencyCut (the cached ``<algo>-cut`` masks), 2 x mean, Otsu
SGD_THRESHOLDS = ("cut", "adaptive", "otsu")


class SaliencyMaps:
    """Per-image saliency maps (B, 1, H, W) in [0, 1] of raw batches, from the hashed cache.

    algo / params: the cached algorithm (a name of ``pretrain.saliency.algos.ALGORITHMS``: HC / RC
    maps, or the SaliencyCut masks ``hc-cut`` / ``rc-cut``); cache: cache folder (None: ``<data>/.saliency``, set by
    ``bind``); size: side at which saliency is computed (None: the images' own resolution; the
    map is resized back to the image). Maps are memoised by dataset index.
    """

    def __init__(self, algo: str, params: dict | None, cache: str | None, size: int | None) -> None:
        if algo not in ALGORITHMS:
            raise ValueError(f"unknown saliency algorithm {algo!r}; valid: {', '.join(ALGORITHMS)}")
        self.algo, self.params, self.cache_dir, self.size = algo, dict(params or {}), cache, size
        self._cache: Any = None
        self._memo: dict[int, Tensor] = {}

    def bind(self, data_path: str | Path) -> None:
        root = Path(self.cache_dir) if self.cache_dir else default_cache_dir(data_path)
        self._cache = SaliencyCache(root, self.algo, self.params)

    def __call__(self, images: Tensor, indices: Tensor | None) -> Tensor:
        """uint8 (B, 3, H, W) -> float (B, 1, H, W)."""
        if self._cache is None:
            self.bind(".")
        keys = indices.tolist() if indices is not None else [None] * images.shape[0]
        missing = [i for i, k in enumerate(keys) if k is None or k not in self._memo]
        if missing:
            maps = self._compute(images[missing])
            for j, i in enumerate(missing):
                if keys[i] is not None:
                    self._memo[keys[i]] = maps[j].half()
        out = torch.empty(images.shape[0], 1, *images.shape[-2:])
        for i, k in enumerate(keys):
            out[i, 0] = self._memo[k].float() if k in self._memo else maps[missing.index(i)]
        return out.to(images.device)

    def _compute(self, images: Tensor) -> Tensor:
        h, w = images.shape[-2:]
        x = images
        if self.size and self.size != max(h, w):
            x = F.interpolate(images.float(), scale_factor=self.size / max(h, w), mode="bilinear",
                              antialias=True, align_corners=False).round().clamp(0, 255).byte()
        rgb = np.ascontiguousarray(x.permute(0, 2, 3, 1).cpu().numpy())
        maps = torch.from_numpy(self._cache.get_many(rgb))
        if maps.shape[-2:] != (h, w):
            maps = F.interpolate(maps[:, None], size=(h, w), mode="bilinear", align_corners=False)[:, 0]
        return maps.clamp(0, 1)


def view_saliency(maps: Tensor, box: Tensor, flipped: Tensor, out: tuple[int, int]) -> Tensor:
    """A source map (B, 1, H, W) warped like a view: cropped to its box, resized, mirrored."""
    v = crop_boxes(maps, box, out)
    return torch.where(flipped.to(v.device).view(-1, 1, 1, 1), v.flip(-1), v)


# --------------------------------------------------------------------------------------------
# salient segmentation as an augmentation


@dataclass
class SgdConfig(DefaultConfig):
    """The default pipeline plus salient-object segmentation of the source image.

    seg_p: probability, per view and image, that the object is kept and the background filled;
    fill: black | grey | mean | noise | swap (the next image's background); algo: hc | rc;
    threshold: how the map becomes the object's mask -- 'cut' (SaliencyCut, Cheng et al. 2015
    sec. 4: GrabCut from the map, iterated; the ``<algo>-cut`` masks of the cache), 'adaptive'
    (2 x mean saliency), 'otsu' or a number in [0, 1]. 'cut' by IoU with the objects' masks:
    87.9 / 81.4 (HC / RC) on shapes64-clutter-heldout and 91.9 / 88.3 on shapes64-heldout against
    75.9 / 79.4 and 88.7 / 86.7 for the next best rule, Otsu (bench/RESULTS.md "Salient-object masks
    against the objects"); on the scenes 2 x mean is best (68.9 RC against 54.6 for cut);
    params: the parameters of the cached algorithm (with 'cut': SaliencyCut's ``iterations``);
    cache: the saliency cache folder (None: ``<data>/.saliency``); saliency_size: side at which
    saliency is computed (None: the training resolution) -- with ``out_size`` and
    ``data.image_size`` the low- vs high-resolution settings; distinct_pairs: exactly one of the
    first two views is segmented (where the image has a salient region), so that with the
    pipeline off (``sgd-only``, where it is on by default) no pair is two copies of one image --
    drawn independently, about half of them were (both views kept or both segmented).
    """

    seg_p: float = 0.5
    fill: str = "black"
    algo: str = "rc"
    params: dict | None = None
    threshold: Any = "cut"
    cache: str | None = None
    saliency_size: int | None = None
    distinct_pairs: bool = False


class SgdPolicy(DefaultPolicy):
    """``sgd`` (and ``sgd-only`` with the pipeline switched off): per view, the segmented image
    replaces the source with probability ``seg_p``; images without a salient region stay as is.
    ``Views.masks[i]``: the view's foreground (float (B, 1, h, w)) as warped by its crop."""

    Config = SgdConfig

    @property
    def produces(self) -> Produces:
        return Produces(views=self.config.n_views, out_size=self.config.out_size, masks=True)

    def __init__(self, config: SgdConfig) -> None:
        super().__init__(config)
        if config.fill not in M.SEGMENT_FILLS:
            raise ValueError(f"unknown segmentation fill {config.fill!r}; valid fills: {', '.join(M.SEGMENT_FILLS)}")
        if config.algo not in CACHED_ALGOS:
            raise ValueError(f"unknown saliency algorithm {config.algo!r}; valid: {', '.join(CACHED_ALGOS)}")
        if isinstance(config.threshold, str) and config.threshold not in SGD_THRESHOLDS:
            raise ValueError(f"unknown sgd threshold {config.threshold!r}; valid: {', '.join(SGD_THRESHOLDS)} "
                             "or a number in [0, 1]")
        self.cut = config.threshold == "cut"
        if not self.cut:
            M.adaptive_foreground(torch.zeros(1, 1, 1, 1), config.threshold)  # validates a number
        algo = f"{config.algo}-cut" if self.cut else config.algo
        self.maps = SaliencyMaps(algo, config.params, config.cache, config.saliency_size)

    def bind(self, data_path: str | Path, mean: Tensor, std: Tensor) -> None:
        self.maps.bind(data_path)

    def __call__(self, batch: RawBatch, gen: torch.Generator) -> Views:
        if batch.pair is not None or batch.boxes is not None:
            raise ValueError("saliency policies take single images, not video pairs or tracked regions")
        x = view_sources(batch)[0][0]
        sal = self.maps(batch.images, batch.indices)
        fg = sal > 0.5 if self.cut else M.adaptive_foreground(sal, self.config.threshold)
        has_fg = fg.flatten(1).any(1)
        views, boxes, flipped, masks, picks = [], [], [], [], []
        for k, cfg in enumerate(self.pipelines(*x.shape[-2:])):
            pick = (torch.rand(x.shape[0], generator=gen) < self.config.seg_p).to(x.device) & has_fg
            if k == 1 and self.config.distinct_pairs:       # the other view of the pair is segmented
                pick = ~picks[0] & has_fg
            picks.append(pick)
            src = torch.where(pick.view(-1, 1, 1, 1), M.segment(x, fg, self.config.fill, gen), x)
            av = augment_view(src, cfg, gen)
            views.append(av.image)
            boxes.append(av.box)
            flipped.append(av.flipped)
            masks.append(view_saliency(fg.float(), av.box, av.flipped, tuple(av.image.shape[-2:])))
        return Views(views=views, masks=masks, targets=batch.targets, indices=batch.indices, boxes=boxes,
                     flipped=flipped, sources=[0] * len(views))


# --------------------------------------------------------------------------------------------
# masking


@dataclass
class MaskConfig(DefaultConfig):
    """Grid masking after the default pipeline (Chen et al., WACV 2024).

    grid: G (None: one cell per 32 px, at least 4; 7 at 224 px); ratio: r ~ U[ratio];
    fill: highpass (both views high-passed, masked cells Gaussian noise N(0, noise_std^2) in the
    normalised high-pass space) | blur | mean; noise_std / hard_noise_std: the noise's std in the
    masked views / the hard negatives (the authors' 0.18 / 0.14: main_moco.py L295-296);
    branch: which view is masked -- query (views[0], the paper's choice), key (views[1]) or both
    (``masked_views``; MoCo v2 keeps a view masked on one side on that side only);
    saliency: none (random masking) | scda | hc | rc; scda_checkpoint: the frozen sslbench
    checkpoint SCDA uses (required for scda); scda_largest_component: keep only the largest
    connected salient region (the paper) or every cell above the mean; algo params / cache /
    saliency_size: as in ``sgd``; hard_negatives: K masked copies of the key view per image (0 = off), with
    r ~ U[hard_ratio] of its foreground cells masked, returned as ``Views.negatives``.
    """

    grid: int | None = None
    ratio: tuple[float, float] = (0.05, 0.25)
    fill: str = "highpass"
    branch: str = "query"
    saliency: str = "none"
    scda_checkpoint: str | None = None
    scda_largest_component: bool = True
    params: dict | None = None
    cache: str | None = None
    saliency_size: int | None = None
    hard_negatives: int = 0
    hard_ratio: tuple[float, float] = (0.4, 0.7)
    noise_std: float = 0.18
    hard_noise_std: float = 0.14

    @property
    def masked_views(self) -> tuple[int, ...]:
        """Indices of the masked views (``Views.masked``): query (0,), key (1,), both (0, 1)."""
        return {"query": (0,), "key": (1,), "both": (0, 1)}.get(self.branch, ())


class MaskPolicy(DefaultPolicy):
    """``random-mask`` / ``sal-mask`` / ``sal-mask-hn``: the default views, then masking.

    Views.masks[i]: float (B, 1, h, w), 1 on masked pixels (None for an unmasked view);
    Views.negatives: (B, K, 3, h, w) hard negatives or None; with the highpass fill every view
    and negative is a high-pass image (un-normalised so that ``Method.encode`` yields the paper's
    normalised high-pass input; values leave [0, 1]). The highpass fill declares that filter as
    ``Produces.input_transform`` (``highpass``, kernel 11, sigma 5): the checkpoint records it and
    every evaluation high-passes its images too, as the paper's linear evaluation does.
    """

    Config = MaskConfig

    @property
    def produces(self) -> Produces:
        c = self.config
        return Produces(views=c.n_views, out_size=c.out_size, masks=True, negatives=c.hard_negatives,
                        input_transform=self.input_transform)

    def __init__(self, config: MaskConfig) -> None:
        super().__init__(config)
        c = config
        if c.fill not in M.MASK_FILLS:
            raise ValueError(f"unknown mask fill {c.fill!r}; valid fills: {', '.join(M.MASK_FILLS)}")
        if c.branch not in BRANCHES:
            raise ValueError(f"unknown masked branch {c.branch!r}; valid: {', '.join(BRANCHES)}")
        if c.saliency not in ("none", "scda") + CACHED_ALGOS:
            raise ValueError(f"unknown saliency {c.saliency!r}; valid: none, scda, {', '.join(CACHED_ALGOS)}")
        if c.hard_negatives and c.saliency == "none":
            raise ValueError("hard negatives mask foreground cells: they need saliency (scda, hc or rc), not 'none'")
        if c.n_views < 2:
            raise ValueError("masking policies need a query and a key view (n_views >= 2)")
        self.scda: Any = None
        if c.saliency == "scda":
            if not c.scda_checkpoint:
                raise ValueError("saliency 'scda' needs a frozen checkpoint: --aug_cfg.scda_checkpoint=PATH/ckpt.pt")
            from ..saliency.scda import SCDA

            self.scda = SCDA(c.scda_checkpoint, largest_component=c.scda_largest_component)
        self.maps = SaliencyMaps(c.saliency, c.params, c.cache, c.saliency_size) if c.saliency in CACHED_ALGOS \
            else None
        self.mean = torch.full((3,), 0.5)
        self.std = torch.full((3,), 0.25)
        # every view is high-passed with the highpass fill: evaluations must see high-passed images too
        self.input_transform = InputTransform("highpass", {"kernel": M.HIGH_PASS_KERNEL, "sigma": M.HIGH_PASS_SIGMA}) \
            if c.fill == "highpass" else None

    def bind(self, data_path: str | Path, mean: Tensor, std: Tensor) -> None:
        self.mean, self.std = torch.as_tensor(mean).float(), torch.as_tensor(std).float()
        if self.maps is not None:
            self.maps.bind(data_path)

    def _high_pass(self, v: Tensor) -> Tensor:
        """A view (B, 3, h, w) through the declared high-pass filter (un-normalised, see
        ``masking.high_pass``); the view itself without one."""
        t = self.input_transform
        return v if t is None else M.high_pass(v, self.mean, self.std, **t.params)

    def _masked(self, i: int) -> bool:
        return i in self.config.masked_views

    def _foreground(self, view: Tensor, sal: Tensor | None, box: Tensor, flipped: Tensor, grid: int) -> Tensor:
        """Salient cells (B, G, G) of one augmented view."""
        if self.scda is not None:
            return self.scda.masks_at((view.clamp(0, 1) * 255).round().byte(), grid).to(view.device)
        assert sal is not None
        return M.grid_foreground(view_saliency(sal, box, flipped, tuple(view.shape[-2:])), grid)

    def __call__(self, batch: RawBatch, gen: torch.Generator) -> Views:
        c = self.config
        out = super().__call__(batch, gen)
        sal = self.maps(batch.images, batch.indices) if self.maps is not None else None
        views, masks = list(out.views), []
        negatives = None
        for i, v in enumerate(views):
            h, w = v.shape[-2:]
            grid = c.grid or M.default_grid(min(h, w))
            fg = None if c.saliency == "none" else self._foreground(v, sal, out.boxes[i], out.flipped[i],
                                                                     grid)
            if i == 1 and c.hard_negatives:
                negatives = self._hard_negatives(v, fg, gen)
            base = self._high_pass(v)
            if not self._masked(i):
                views[i] = base
                masks.append(None)
                continue
            cells = M.random_cells(v.shape[0], grid, c.ratio, gen) if fg is None else \
                M.saliency_guided_cells(fg, c.ratio, gen)
            pixels = M.cells_to_pixels(cells, h, w).to(v.device)
            views[i] = M.fill_masked(base, pixels, c.fill, gen, self.mean, self.std, c.noise_std)
            masks.append(pixels.float())
        out.views, out.masks, out.negatives, out.masked = views, masks, negatives, c.masked_views
        return out

    def _hard_negatives(self, key: Tensor, fg: Tensor, gen: torch.Generator) -> Tensor:
        """K copies of the key view with r ~ U[hard_ratio] of their foreground cells masked. (B, K, 3, h, w)."""
        c = self.config
        h, w = key.shape[-2:]
        base = self._high_pass(key)
        negs = []
        for _ in range(c.hard_negatives):
            pixels = M.cells_to_pixels(M.hard_negative_cells(fg, c.hard_ratio, gen), h, w).to(key.device)
            negs.append(M.fill_masked(base, pixels, c.fill, gen, self.mean, self.std, c.hard_noise_std))
        return torch.stack(negs, 1)


def sgd_only_pipeline() -> dict[str, Any]:
    """The settings that switch the default pipeline off (the whole image, no flip / colour / blur),
    with one view of each pair segmented and the other not (``distinct_pairs``)."""
    return {"crop_scale": (1.0, 1.0), "crop_ratio": (1.0, 1.0), "flip_p": 0.0, "jitter_p": 0.0, "grayscale_p": 0.0,
            "blur_p": 0.0, "distinct_pairs": True}


