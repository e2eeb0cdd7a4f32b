"""Batched image augmentations: whole float batches (B, 3, H, W) in [0, 1], per-sample parameters.

Every random function draws its per-sample parameters from a CPU ``torch.Generator`` (always the
same number of draws for a given batch size, whatever is applied, so a seed fixes every view) and
moves them to the batch's device; the pixels are processed batch-wide, never in a per-image loop.

The operations follow torchvision's semantics (``torchvision.transforms.v2``) so that the
pipelines reproduce the published recipes: SimCLR (Chen et al., 2020, "A Simple Framework for
Contrastive Learning of Visual Representations", appendix A), MoCo v2 (Chen et al., 2020,
"Improved Baselines with Momentum Contrastive Learning"), BYOL (Grill et al., 2020, "Bootstrap
Your Own Latent", table 6) and SwAV multi-crop (Caron et al., 2020, "Unsupervised Learning of
Visual Features by Contrasting Cluster Assignments").

Per-op functions with explicit factors (``adjust_brightness`` ... ``adjust_hue``,
``blur_with_sigma``) take a float or a per-sample tensor (B,) and are checked against
``torchvision.transforms.v2.functional`` in the tests.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.ops import roi_align

Factor = float | Tensor
Size = int | tuple[int, int]

# ITU-R 601-2 luma weights, as torchvision's rgb_to_grayscale.
_LUMA = (0.2989, 0.587, 0.114)


# --------------------------------------------------------------------------------------------
# helpers


def _rand(gen: torch.Generator, *shape: int) -> Tensor:
    """Uniform [0, 1) on the CPU from ``gen`` (float64 for torchvision-like sampling precision)."""
    return torch.rand(*shape, generator=gen, dtype=torch.float64)


def _uniform(gen: torch.Generator, n: int, lo: float, hi: float) -> Tensor:
    """(n,) uniform in [lo, hi) on the CPU."""
    return lo + (hi - lo) * _rand(gen, n)


def _bernoulli(gen: torch.Generator, n: int, p: float) -> Tensor:
    """(n,) bool, True with probability p (one draw per sample even when p is 0 or 1)."""
    return _rand(gen, n) < p


def _per_sample(v: Factor, x: Tensor) -> Tensor:
    """A float or a (B,) tensor -> (B, 1, 1, 1) (or scalar) on x's device and dtype."""
    if isinstance(v, Tensor):
        return v.to(device=x.device, dtype=x.dtype).reshape(-1, 1, 1, 1)
    return torch.tensor(float(v), device=x.device, dtype=x.dtype)


def _on_subset(x: Tensor, mask: Tensor, fn: Callable[..., Tensor], *params: Tensor,
               inplace: bool = False) -> Tensor:
    """Apply ``fn(x[mask], *(p[mask] ...))`` to the masked samples only (one batched call).

    x: (B, 3, H, W); mask: (B,) bool on the CPU; params: per-sample (B, ...) tensors on the CPU.
    Every probabilistic op goes through here, so p = 0.1 costs a tenth of p = 1 and p = 0 nothing.
    inplace: write the result rows into x itself (the caller owns x) instead of a copy.
    """
    if not bool(mask.any()):
        return x
    if bool(mask.all()):
        return fn(x, *params)
    idx = mask.nonzero().squeeze(1)
    dev_idx = idx.to(x.device)
    out = x if inplace else x.clone()
    out[dev_idx] = fn(x[dev_idx], *(p[idx] for p in params))
    return out


def _size2(size: Size) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


# --------------------------------------------------------------------------------------------
# geometry


def full_boxes(batch: int, height: int, width: int) -> Tensor:
    """(B, 4) float64 boxes x0 y0 x1 y1 covering the whole (height, width) image."""
    return torch.tensor([0.0, 0.0, float(width), float(height)], dtype=torch.float64).repeat(batch, 1)


def sample_crop_boxes(region: Tensor, scale: tuple[float, float], ratio: tuple[float, float],
                      gen: torch.Generator, attempts: int = 10, discrete: bool = True) -> Tensor:
    """torchvision's ``RandomResizedCrop.get_params``, vectorised over the batch.

    region: (B, 4) x0 y0 x1 y1 the area to crop from (the whole image, or a tracked box).
    Per sample: ``attempts`` tries of area ~ U(scale) * region area and log aspect ratio ~
    U(log ratio); the first try that fits is kept, else the centre crop clamped to ``ratio``.
    discrete: round width / height / offset to whole pixels as torchvision does (whole-image
    crops); False keeps them continuous (region crops inside float boxes).
    Returns (B, 4) float64 boxes x0 y0 x1 y1 in source pixels (CPU). Draws 2 * B * attempts + 2 * B.
    """
    region = region.detach().to("cpu", torch.float64)
    n = region.shape[0]
    rw, rh = region[:, 2] - region[:, 0], region[:, 3] - region[:, 1]
    u = _rand(gen, n, attempts, 2)
    lr0, lr1 = math.log(ratio[0]), math.log(ratio[1])
    target = (rw * rh)[:, None] * (scale[0] + (scale[1] - scale[0]) * u[..., 0])
    aspect = torch.exp(lr0 + (lr1 - lr0) * u[..., 1])
    w, h = torch.sqrt(target * aspect), torch.sqrt(target / aspect)
    if discrete:
        w, h = torch.round(w), torch.round(h)
    ok = (w > 0) & (w <= rw[:, None]) & (h > 0) & (h <= rh[:, None])
    first = ok.to(torch.uint8).argmax(1, keepdim=True)           # first fitting attempt
    w, h, found = w.gather(1, first)[:, 0], h.gather(1, first)[:, 0], ok.any(1)
    fw, fh = _fallback_size(rw, rh, ratio, discrete)
    w, h = torch.where(found, w, fw), torch.where(found, h, fh)
    pos = _rand(gen, n, 2)
    if discrete:
        ox = torch.where(found, torch.floor(pos[:, 0] * (rw - w + 1)), torch.div(rw - w, 2, rounding_mode="floor"))
        oy = torch.where(found, torch.floor(pos[:, 1] * (rh - h + 1)), torch.div(rh - h, 2, rounding_mode="floor"))
    else:
        ox = torch.where(found, pos[:, 0] * (rw - w), (rw - w) / 2)
        oy = torch.where(found, pos[:, 1] * (rh - h), (rh - h) / 2)
    x0, y0 = region[:, 0] + ox, region[:, 1] + oy
    return torch.stack([x0, y0, x0 + w, y0 + h], 1)


def _fallback_size(rw: Tensor, rh: Tensor, ratio: tuple[float, float], discrete: bool) -> tuple[Tensor, Tensor]:
    """torchvision's fallback: the largest centred crop with aspect ratio clamped to ``ratio``."""
    rnd = torch.round if discrete else (lambda t: t)
    in_ratio = rw / rh
    narrow, wide = in_ratio < min(ratio), in_ratio > max(ratio)
    w = torch.where(wide, rnd(rh * max(ratio)), rw)
    h = torch.where(narrow, rnd(rw / min(ratio)), rh)
    return w, h


def random_resized_crop(x: Tensor, out_size: Size, scale: tuple[float, float] = (0.08, 1.0),
                        ratio: tuple[float, float] = (3 / 4, 4 / 3), gen: torch.Generator | None = None,
                        region: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Random resized crops of a batch (torchvision's sampling rule, bilinear resampling).

    x: (B, 3, H, W) float; region: optional (B, 4) boxes to crop inside (tracked objects).
    Returns crops (B, 3, out, out) and boxes (B, 4) float32 x0 y0 x1 y1 in source pixels.
    """
    gen = gen if gen is not None else torch.default_generator
    b, _, hgt, wid = x.shape
    discrete = region is None
    region = full_boxes(b, hgt, wid) if region is None else clamp_boxes(region, hgt, wid)
    boxes = sample_crop_boxes(region, scale, ratio, gen, discrete=discrete)
    return crop_boxes(x, boxes, out_size), boxes.float().to(x.device)


def clamp_boxes(boxes: Tensor, height: int, width: int, min_size: float = 1.0) -> Tensor:
    """(B, 4) boxes clipped to the image, at least ``min_size`` pixels wide and high (CPU float64)."""
    b = boxes.detach().to("cpu", torch.float64)
    x0 = b[:, 0].clamp(0, width - min_size)
    y0 = b[:, 1].clamp(0, height - min_size)
    x1 = torch.maximum(b[:, 2].clamp(max=width), x0 + min_size)
    y1 = torch.maximum(b[:, 3].clamp(max=height), y0 + min_size)
    return torch.stack([x0, y0, x1, y1], 1)


def crop_boxes(x: Tensor, boxes: Tensor, out_size: Size) -> Tensor:
    """Resample per-sample boxes of a batch to a fixed size.

    x: (B, C, H, W) float; boxes: (B, 4) x0 y0 x1 y1 in pixels (pixel i covers [i, i + 1)).
    ``torchvision.ops.roi_align`` with aligned=True: bilinear samples at the output pixel centres,
    averaged over ceil(box / out) samples per bin when shrinking (a box filter, i.e. antialiased).
    Returns (B, C, out_h, out_w).
    """
    oh, ow = _size2(out_size)
    idx = torch.arange(x.shape[0], dtype=x.dtype, device=x.device)[:, None]
    rois = torch.cat([idx, boxes.to(device=x.device, dtype=x.dtype)], 1)
    return roi_align(x, rois, (oh, ow), spatial_scale=1.0, sampling_ratio=-1, aligned=True)


def hflip(x: Tensor, p: float = 0.5, gen: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Flip each sample left-right with probability p. Returns (x', flags (B,) bool on the CPU)."""
    gen = gen if gen is not None else torch.default_generator
    flags = _bernoulli(gen, x.shape[0], p)
    return _on_subset(x, flags, lambda t: t.flip(-1)), flags


def hflip_boxes(boxes: Tensor, flags: Tensor, width: float) -> Tensor:
    """Mirror (B, 4) x0 y0 x1 y1 boxes in an image of ``width`` where flags (B,) is set."""
    flipped = torch.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], 1)
    return torch.where(flags.to(boxes.device)[:, None], flipped, boxes)


# --------------------------------------------------------------------------------------------
# colour: per-op functions with explicit factors (torchvision semantics)


def rgb_to_grayscale(x: Tensor) -> Tensor:
    """(B, 3, H, W) -> (B, 1, H, W) luma 0.2989 R + 0.587 G + 0.114 B (torchvision's weights)."""
    r, g, b = x.unbind(-3)
    return r.mul(_LUMA[0]).add_(g, alpha=_LUMA[1]).add_(b, alpha=_LUMA[2]).unsqueeze(-3)


def _blend(a: Tensor, b: Tensor, ratio: Tensor) -> Tensor:
    return (a * ratio + b * (1.0 - ratio)).clamp_(0.0, 1.0)


def adjust_brightness(x: Tensor, factor: Factor) -> Tensor:
    """x * factor, clamped to [0, 1]. factor: float or (B,)."""
    return (x * _per_sample(factor, x)).clamp_(0.0, 1.0)


def adjust_contrast(x: Tensor, factor: Factor) -> Tensor:
    """Blend with the per-image mean grey level: factor * x + (1 - factor) * mean(gray(x))."""
    mean = rgb_to_grayscale(x).mean(dim=(-3, -2, -1), keepdim=True)
    return _blend(x, mean, _per_sample(factor, x))


def adjust_saturation(x: Tensor, factor: Factor) -> Tensor:
    """Blend with the image's own grayscale: factor * x + (1 - factor) * gray(x)."""
    return _blend(x, rgb_to_grayscale(x), _per_sample(factor, x))


def adjust_hue(x: Tensor, factor: Factor) -> Tensor:
    """Rotate the hue by ``factor`` turns (in [-0.5, 0.5]) in HSV space, batched; factor: float or (B,).

    Fused form of rgb -> hsv -> (h + factor) -> rgb: a hue rotation keeps V = max and V S = max - min,
    so per channel n = 5, 3, 1 (R, G, B): k = (n + 6 h') mod 6, c = max - (max - min) clamp(min(k, 4 - k), 0, 1)
    (equal to torchvision's ``adjust_hue`` up to float rounding). Written with float arithmetic
    only (no boolean masks), which is several times faster on the CPU.
    """
    r, g, b = x.split(1, dim=-3)
    maxc = torch.maximum(torch.maximum(r, g), b)
    d = maxc - torch.minimum(torch.minimum(r, g), b)                        # (B, 1, H, W)
    h6 = _hue6(r, g, b, maxc, d) + 6.0 * _per_sample(factor, x)
    return (maxc - d * _hue_weights(h6)).clamp_(0.0, 1.0)


def _hue6(r: Tensor, g: Tensor, b: Tensor, maxc: Tensor, d: Tensor) -> Tensor:
    """Hue in sextants (B, 1, H, W), Pillow's cases: max = r: (g - b) / d; else max = g:
    2 + (b - r) / d; else 4 + (r - g) / d; 0 for grey pixels (d = 0)."""
    is_r = torch.sign(r - maxc).add_(1.0)                                  # 1 where r is the max, else 0
    is_g = torch.sign(g - maxc).add_(1.0).mul_(1.0 - is_r)
    is_b = 1.0 - is_r - is_g
    num = is_r * (g - b) + is_g * (b - r + 2.0 * d) + is_b * (r - g + 4.0 * d)
    return num / d.clamp_min(1e-12)


def _hue_weights(h6: Tensor) -> Tensor:
    """(B, 1, H, W) hue in sextants -> (B, 3, H, W) clamp(min(k, 4 - k), 0, 1), k = (n + h6) mod 6."""
    n = torch.tensor([5.0, 3.0, 1.0], dtype=h6.dtype, device=h6.device).view(1, 3, 1, 1)
    k = n + h6
    k = k.sub_(torch.floor(k * (1.0 / 6.0)).mul_(6.0))
    return torch.minimum(k, 4.0 - k).clamp_(0.0, 1.0)


def rgb_to_hsv(x: Tensor) -> Tensor:
    """(B, 3, H, W) RGB in [0, 1] -> HSV, hue in [0, 1) (torchvision's / Pillow's formulas;
    grey pixels get hue 0 and saturation 0)."""
    r, g, b = x.unbind(-3)
    minc, maxc = torch.aminmax(x, dim=-3)
    d = maxc - minc
    grey = d == 0
    s = d / torch.where(grey, 1.0, maxc)
    d = torch.where(grey, 1.0, d)
    h = torch.where(maxc == r, (g - b) / d, torch.where(maxc == g, (b - r) / d + 2.0, (r - g) / d + 4.0))
    h = torch.where(grey, 0.0, (h / 6.0 + 1.0).fmod_(1.0))
    return torch.stack([h, s, maxc], -3)


def hsv_to_rgb(x: Tensor) -> Tensor:
    """(B, 3, H, W) HSV -> RGB (inverse of ``rgb_to_hsv``), closed form c = v - v s w_n(h)."""
    h, s, v = x.split(1, dim=-3)
    return (v - (v * s) * _hue_weights(h * 6.0)).clamp_(0.0, 1.0)


_JITTER_OPS = (adjust_brightness, adjust_contrast, adjust_saturation, adjust_hue)


def color_jitter(x: Tensor, brightness: float = 0.4, contrast: float = 0.4, saturation: float = 0.4,
                 hue: float = 0.1, p: float = 0.8, gen: torch.Generator | None = None,
                 random_order: bool = True) -> Tensor:
    """torchvision's ``RandomApply([ColorJitter(b, c, s, h)], p)`` per sample.

    Factors: brightness / contrast / saturation ~ U(max(0, 1 - v), 1 + v), hue ~ U(-h, h); each
    applied sample runs the four ops in its own random order (as ``ColorJitter``), done as four
    stages of (at most) four batched ops on the samples whose k-th op it is; random_order=False
    uses the fixed order brightness, contrast, saturation, hue. Ops of strength 0 are skipped,
    so all strengths 0 is the identity. x: (B, 3, H, W) -> same.
    """
    gen = gen if gen is not None else torch.default_generator
    n = x.shape[0]
    applied = _bernoulli(gen, n, p)
    strengths = (brightness, contrast, saturation, hue)
    factors = [_uniform(gen, n, max(0.0, 1.0 - v), 1.0 + v) for v in strengths[:3]]
    factors.append(_uniform(gen, n, -hue, hue))
    order = torch.argsort(_rand(gen, n, 4), 1) if random_order else torch.arange(4).expand(n, 4)
    if not bool(applied.any()) or not any(v > 0 for v in strengths):
        return x
    out = x.clone()                                    # then updated in place, one op's rows at a time
    for stage in range(4):
        for op, fn in enumerate(_JITTER_OPS):
            if strengths[op] > 0:
                out = _on_subset(out, applied & (order[:, stage] == op), fn, factors[op], inplace=True)
    return out


def random_grayscale(x: Tensor, p: float = 0.2, gen: torch.Generator | None = None) -> Tensor:
    """Replace each sample by its grayscale (3 equal channels) with probability p."""
    gen = gen if gen is not None else torch.default_generator
    flags = _bernoulli(gen, x.shape[0], p)
    return _on_subset(x, flags, lambda t: rgb_to_grayscale(t).expand_as(t).contiguous())


# --------------------------------------------------------------------------------------------
# blur, solarize


def blur_kernel_size(size: int, kernel_frac: float = 0.1) -> int:
    """SimCLR's kernel size: radius = int(kernel_frac * size) // 2, size 2 * radius + 1 (>= 3)."""
    return 2 * max(1, int(kernel_frac * size) // 2) + 1


def gaussian_kernels(sigma: Tensor, kernel_size: int) -> Tensor:
    """(B,) sigmas -> (B, k) normalised 1-D Gaussians at integer offsets (torchvision's kernel)."""
    r = kernel_size // 2
    offs = torch.arange(-r, r + 1, dtype=sigma.dtype, device=sigma.device)
    return torch.softmax(-(offs[None] ** 2) / (2 * sigma[:, None] ** 2), 1)


def blur_with_sigma(x: Tensor, sigma: Factor, kernel_size: int) -> Tensor:
    """Separable Gaussian blur with per-sample sigma, reflect padding (torchvision's ``gaussian_blur``).

    x: (B, C, H, W); sigma: float or (B,); kernel_size odd. Two grouped convolutions (one kernel
    per sample and channel) over the batch folded into channels.
    """
    b, c, hgt, wid = x.shape
    sig = sigma.to(x.device, x.dtype) if isinstance(sigma, Tensor) else torch.full((b,), float(sigma), device=x.device,
                                                                                   dtype=x.dtype)
    k1 = gaussian_kernels(sig, kernel_size).repeat_interleave(c, 0)          # (B * C, k)
    r = kernel_size // 2
    y = x.reshape(1, b * c, hgt, wid)
    y = F.conv2d(F.pad(y, (r, r, 0, 0), mode="reflect"), k1[:, None, None, :], groups=b * c)
    y = F.conv2d(F.pad(y, (0, 0, r, r), mode="reflect"), k1[:, None, :, None], groups=b * c)
    return y.reshape(b, c, hgt, wid)


def gaussian_blur(x: Tensor, sigma: tuple[float, float] = (0.1, 2.0), p: float = 0.5,
                  gen: torch.Generator | None = None, kernel_frac: float = 0.1,
                  kernel_size: int | None = None) -> Tensor:
    """SimCLR's random Gaussian blur: with probability p, sigma ~ U(sigma), kernel 10% of the side.

    x: (B, 3, H, W) -> same. Only the blurred samples are convolved.
    """
    gen = gen if gen is not None else torch.default_generator
    n = x.shape[0]
    applied = _bernoulli(gen, n, p)
    sig = _uniform(gen, n, sigma[0], sigma[1])
    k = kernel_size or blur_kernel_size(min(x.shape[-2:]), kernel_frac)
    k = min(k, 2 * ((min(x.shape[-2:]) - 1) // 2) + 1)                       # reflect pad needs r < side
    if k < 3:
        return x
    return _on_subset(x, applied, lambda t, s: blur_with_sigma(t, s, k), sig)


def solarize(x: Tensor, p: float = 0.2, gen: torch.Generator | None = None, threshold: float = 0.5) -> Tensor:
    """With probability p per sample, invert pixels >= threshold (x -> 1 - x), as torchvision."""
    gen = gen if gen is not None else torch.default_generator
    flags = _bernoulli(gen, x.shape[0], p)
    return _on_subset(x, flags, lambda t: torch.where(t >= threshold, 1.0 - t, t))


# --------------------------------------------------------------------------------------------
# pipeline


@dataclass
class PipelineConfig:
    """One view's augmentation: crop -> flip -> colour jitter -> grayscale -> blur -> solarize.

    The order of SimCLR / BYOL. out_size: output side (None = the input's size); crop_scale:
    area fraction range of the random resized crop (aggressive (0.08, 1) vs mild (0.5, 1));
    jitter: strength s of SimCLR's colour distortion, brightness / contrast / saturation 0.8 s and
    hue 0.2 s unless set explicitly (MoCo v2: s = 0.5 -> 0.4 / 0.4 / 0.4 / 0.1).
    """

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
    blur_p: float = 0.0
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    blur_kernel_frac: float = 0.1
    solarize_p: float = 0.0
    solarize_threshold: float = 0.5

    def jitter_strengths(self) -> tuple[float, float, float, float]:
        """(brightness, contrast, saturation, hue) after applying the defaults from s."""
        s = self.jitter
        pick = lambda v, d: d if v is None else v  # noqa: E731
        return (pick(self.brightness, 0.8 * s), pick(self.contrast, 0.8 * s), pick(self.saturation, 0.8 * s),
                pick(self.hue, 0.2 * s))


@dataclass
class AugmentedView:
    """One augmented view: image (B, 3, h, w) in [0, 1], box (B, 4) crop in source pixels,
    flipped (B,) bool (CPU) whether the view was mirrored after cropping."""

    image: Tensor
    box: Tensor
    flipped: Tensor


def augment_view(x: Tensor, cfg: PipelineConfig, gen: torch.Generator,
                 region: Tensor | None = None) -> AugmentedView:
    """Run the pipeline of ``cfg`` on a float batch x (B, 3, H, W) in [0, 1].

    region: optional (B, 4) boxes; the random resized crop is then drawn inside each box
    (area fractions relative to the box) and resampled once from the source image.
    """
    out = cfg.out_size or (x.shape[-2], x.shape[-1])
    v, box = random_resized_crop(x, out, cfg.crop_scale, cfg.crop_ratio, gen, region=region)
    v, flipped = hflip(v, cfg.flip_p, gen)
    b, c, s, h = cfg.jitter_strengths()
    v = color_jitter(v, b, c, s, h, cfg.jitter_p, gen, random_order=cfg.jitter_random_order)
    v = random_grayscale(v, cfg.grayscale_p, gen)
    v = gaussian_blur(v, cfg.blur_sigma, cfg.blur_p, gen, kernel_frac=cfg.blur_kernel_frac)
    v = solarize(v, cfg.solarize_p, gen, cfg.solarize_threshold)
    return AugmentedView(v.clamp_(0.0, 1.0), box, flipped)


def apply_pipeline(x: Tensor, cfg: PipelineConfig, gen: torch.Generator,
                   region: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """One view of a float batch: returns (view (B, 3, out, out) in [0, 1], boxes (B, 4))."""
    av = augment_view(x, cfg, gen, region)
    return av.image, av.box
