"""Grid masking of views: random and saliency-guided cell selection, and the fills against
parasitic edges (Chen et al., "Masking Improves Contrastive Self-Supervised Learning for
ConvNets, and Saliency Tells You Where", WACV 2024), plus salient-object segmentation fills
(saliency as an SSL augmentation). Pure tensor functions, batched over the images.

Conventions: views are float (B, 3, h, w); cell masks are bool (B, G, G) on a G x G grid;
pixel masks are bool (B, 1, h, w) (True = masked / foreground).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .ops import blur_with_sigma

MASK_FILLS = ("highpass", "blur", "mean")
SEGMENT_FILLS = ("black", "grey", "mean", "noise", "swap")
HIGH_PASS_KERNEL, HIGH_PASS_SIGMA = 11, 5.0       # the paper's HighPassFilter(kernel_size=11, sigma=5.0)


def default_grid(side: int) -> int:
    """The paper's 7 x 7 grid at 224 px, i.e. one cell per 32 px, at least 4 cells a side."""
    return max(4, round(side / 32))


def _uniform(gen: torch.Generator, n: int, lo: float, hi: float) -> Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=gen)


def pick_cells(candidates: Tensor, counts: Tensor, gen: torch.Generator) -> Tensor:
    """Choose ``counts[b]`` cells uniformly at random among ``candidates[b]``.

    candidates: bool (B, N); counts: int (B,) (clipped to the number of candidates). Returns bool
    (B, N): a random ranking of each row's candidates, the lowest ``counts`` ranks kept.
    """
    scores = torch.rand(candidates.shape, generator=gen).to(candidates.device)
    scores = scores.masked_fill(~candidates, 2.0)
    rank = scores.argsort(1).argsort(1)
    counts = torch.minimum(counts.to(candidates.device), candidates.sum(1))
    return (rank < counts[:, None]) & candidates


def random_cells(batch: int, grid: int, ratio: tuple[float, float], gen: torch.Generator) -> Tensor:
    """Random patch masking: r ~ U[ratio], int(r G^2) cells of the G x G grid. (B, G, G) bool."""
    r = _uniform(gen, batch, *ratio)
    counts = (r * grid * grid).long()
    return pick_cells(torch.ones(batch, grid * grid, dtype=torch.bool), counts, gen).view(batch, grid, grid)


def saliency_guided_cells(foreground: Tensor, ratio: tuple[float, float], gen: torch.Generator) -> Tensor:
    """Saliency-guided masking (Chen et al. 2024, sec. 3.2): r ~ U[ratio]; of the int(r G^2)
    masked cells, round(r * fg_ratio * G^2) are foreground cells and the rest background cells,
    so that masked cells split between foreground and background in proportion to saliency.

    foreground: bool (B, G, G) salient cells. Returns bool (B, G, G) masked cells.
    """
    b, g, _ = foreground.shape
    fg = foreground.reshape(b, g * g).cpu()
    r = _uniform(gen, b, *ratio)
    total = (r * g * g).long()
    n_fg = torch.round(r * fg.sum(1).float()).long()            # r * (fg / G^2) * G^2
    n_fg = torch.minimum(n_fg, total)
    chosen = pick_cells(fg, n_fg, gen) | pick_cells(~fg, total - n_fg, gen)
    return chosen.view(b, g, g).to(foreground.device)


def hard_negative_cells(foreground: Tensor, ratio: tuple[float, float], gen: torch.Generator) -> Tensor:
    """Hard negatives (Chen et al. 2024, sec. 3.3): r ~ U[ratio] (0.4, 0.7) of the *foreground*
    cells masked, round(r * #fg). foreground: bool (B, G, G) -> bool (B, G, G)."""
    b, g, _ = foreground.shape
    fg = foreground.reshape(b, g * g).cpu()
    r = _uniform(gen, b, *ratio)
    counts = torch.round(r * fg.sum(1).float()).long()
    return pick_cells(fg, counts, gen).view(b, g, g).to(foreground.device)


def cells_to_pixels(cells: Tensor, height: int, width: int) -> Tensor:
    """(B, G, G) bool cells -> (B, 1, h, w) bool pixels (nearest: each pixel takes its cell)."""
    return F.interpolate(cells[:, None].float(), size=(height, width), mode="nearest") > 0.5


def _odd_kernel(k: int, side: int) -> int:
    """``k`` limited so that reflect padding fits a side of ``side`` pixels (odd, >= 1)."""
    return max(1, min(k, 2 * ((side - 1) // 2) + 1))


def gaussian_blur_fixed(x: Tensor, kernel: int, sigma: float) -> Tensor:
    """GaussianBlur(kernel, sigma) of x (B, C, h, w), reflect borders; kernel capped by the side."""
    k = _odd_kernel(kernel, min(x.shape[-2:]))
    return x if k == 1 else blur_with_sigma(x, sigma, k)


def high_pass_normalised(z: Tensor, kernel: int = HIGH_PASS_KERNEL, sigma: float = HIGH_PASS_SIGMA) -> Tensor:
    """The masking paper's high-pass filter on normalised images: z - GaussianBlur(z, 11, 5).

    z: (B, 3, h, w), already normalised with the data mean / std -> (B, 3, h, w), still in
    normalised units (reflect borders; the kernel is capped by the side, see ``gaussian_blur_fixed``).
    """
    return z - gaussian_blur_fixed(z, kernel, sigma)


def high_pass(x: Tensor, mean: Tensor, std: Tensor, kernel: int = HIGH_PASS_KERNEL,
              sigma: float = HIGH_PASS_SIGMA) -> Tensor:
    """High-pass view of the masking paper: z - GaussianBlur(z, 11, 5) with z the normalised image.

    x: (B, 3, h, w) in [0, 1]; mean / std: (3,). Returned *un-normalised* (z_hp * std + mean), so
    that ``Method.encode``'s normalisation gives exactly z_hp. (The result leaves [0, 1].)
    """
    m, s = mean.view(1, -1, 1, 1).to(x), std.view(1, -1, 1, 1).to(x)
    return high_pass_normalised((x - m) / s, kernel, sigma) * s + m


def fill_masked(x: Tensor, pixels: Tensor, fill: str, gen: torch.Generator, mean: Tensor, std: Tensor,
                noise_std: float = 0.18) -> Tensor:
    """Fill the masked pixels of x (B, 3, h, w) (pixels: (B, 1, h, w) bool).

    highpass: Gaussian noise N(0, noise_std^2) in normalised space, replacing the pixels (x is
    then a high-pass view; the authors' std: 0.18 in masked queries, 0.14 in hard negatives,
    main_moco.py L295-296 / Dataset/random_mask_hp.py L8-17, L78);
    blur: from a GaussianBlur(31, 10) copy of x; mean: the per-image, per-channel mean of x.
    """
    if fill == "highpass":
        m, s = mean.view(1, -1, 1, 1).to(x), std.view(1, -1, 1, 1).to(x)
        noise = torch.randn(x.shape, generator=gen).to(x) * (noise_std * s) + m
        return torch.where(pixels, noise, x)
    if fill == "blur":
        return torch.where(pixels, gaussian_blur_fixed(x, 31, 10.0), x)
    if fill == "mean":
        return torch.where(pixels, x.mean((2, 3), keepdim=True).expand_as(x), x)
    raise ValueError(f"unknown mask fill {fill!r}; valid fills: {', '.join(MASK_FILLS)}")


def segment(x: Tensor, foreground: Tensor, fill: str, gen: torch.Generator) -> Tensor:
    """Salient-object segmentation as an augmentation: keep the object, remove or replace the
    background. x: (B, 3, H, W) in [0, 1]; foreground: (B, 1, H, W) bool.

    fill: black (0), grey (0.5), mean (the image's per-channel mean), noise (uniform noise),
    swap (the background of the next image of the batch).
    """
    if fill == "black":
        back = torch.zeros_like(x)
    elif fill == "grey":
        back = torch.full_like(x, 0.5)
    elif fill == "mean":
        back = x.mean((2, 3), keepdim=True).expand_as(x)
    elif fill == "noise":
        back = torch.rand(x.shape, generator=gen).to(x)
    elif fill == "swap":
        back = x.roll(1, 0)
    else:
        raise ValueError(f"unknown segmentation fill {fill!r}; valid fills: {', '.join(SEGMENT_FILLS)}")
    return torch.where(foreground, x, back)


def grid_foreground(saliency: Tensor, grid: int) -> Tensor:
    """Salient cells of a map: (B, 1, h, w) in [0, 1] -> (B, G, G) bool, the cells whose mean
    saliency is above the map's mean cell value (the SCDA rule applied to a saliency map)."""
    cells = F.adaptive_avg_pool2d(saliency.float(), grid)[:, 0]
    return cells > cells.mean((1, 2), keepdim=True)


def otsu_foreground(saliency: Tensor) -> Tensor:
    """Otsu's threshold per map, on maps (B, 1, H, W) in [0, 1] quantised to 256 levels (as
    ``pretrain.saliency.masks.saliency_mask(..., "otsu")`` with OpenCV): the level t that maximises
    the between-class variance, foreground ``level > t``; a constant map gives no foreground.
    (B, 1, H, W) bool."""
    q = (saliency * 255).round().clamp(0, 255).long().flatten(1)                     # (B, HW)
    hist = torch.zeros(q.shape[0], 256, device=q.device).scatter_add_(1, q, torch.ones_like(q, dtype=torch.float32))
    p = hist / q.shape[1]
    omega, mu = p.cumsum(1), (p * torch.arange(256, device=q.device)).cumsum(1)
    between = (mu[:, -1:] * omega - mu) ** 2 / (omega * (1 - omega)).clamp_min(1e-12)
    t = between.argmax(1).view(-1, 1)
    constant = q.amax(1, keepdim=True) == q.amin(1, keepdim=True)
    return ((q > t) & ~constant).view_as(saliency)


def adaptive_foreground(saliency: Tensor, threshold: float | str = "adaptive") -> Tensor:
    """Salient-object mask of maps (B, 1, H, W): above 2 x the mean saliency ("adaptive",
    Achanta et al. 2009 / Cheng et al. 2015), above Otsu's threshold ("otsu",
    :func:`otsu_foreground`) or above a fixed value. (B, 1, H, W) bool."""
    if threshold == "adaptive":
        return saliency > 2 * saliency.mean((2, 3), keepdim=True)
    if threshold == "otsu":
        return otsu_foreground(saliency)
    if isinstance(threshold, str):
        raise ValueError(f"saliency threshold must be 'adaptive', 'otsu' or a number in [0, 1], got {threshold!r}")
    return saliency > float(threshold)
