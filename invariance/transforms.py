"""Invariance of a frozen encoder to synthetic image transforms (Mahalanobis-whitened cosine).

Ericsson, Gouk & Hospedales, "Why Do Self-Supervised Models Transfer? Investigating the Impact of
Invariance on Downstream Tasks" (2021; code github.com/linusericsson/ssl-invariances,
``eval_synthetic_invariance.py``). For N clean images x_i and their transformed copies t(x_i):

    f_i = encode(x_i), g_i = encode(t(x_i))                        (N, D) each
    mu = mean_i f_i,  Sigma = cov(f) + ridge                        (D,), (D, D)
    W = Sigma^{-1/2}                                                (D, D), symmetric
    invariance = mean_i cos((f_i - mu) W, (g_i - mu) W)            a float in [-1, 1]

As in the original code: the mean and covariance come from CLEAN features only (theirs from the
clean images of the whole evaluation split, of which the evaluated images are a sample; here the
evaluated images themselves are that reference set, so pass many, ideally N >> D); both feature
sets are centred by the clean mean before whitening (their ``mean_feature - feature``, the same
cosine up to a shared sign); the per-image cosines are averaged over images (and, in their code,
then over the k parameter values of a transform, which here is one strength at a time). They
whiten with the Cholesky factor L of Sigma^{-1}; any W with W W^T = Sigma^{-1} gives the same
cosine (u W . v W = u Sigma^{-1} v), so the symmetric Sigma^{-1/2} used here changes nothing.

Stability: the covariance (unbiased, N - 1) gets a relative ridge, Sigma + eps * mean(diag Sigma) * I
(scale-free, so the result does not depend on the scale of the features; the original adds
1e-10 * I only for random models). With N <= D the covariance is rank-deficient and the ridge sets
the scale of the missing directions: a warning is issued, and the result then depends on eps.

Transforms (``TRANSFORMS[name](images, strength, generator)``): images (B, 3, H, W) float in
[0, 1] -> the same shape and dtype, in [0, 1], batched on tensors (torchvision v2 functional ops or
affine_grid / grid_sample with per-image matrices, zero fill outside the image). Strength s in
[0, 1]; s = 0 is the identity for every transform. Random choices (a sign, a position, a
displacement field, whether an image is flipped) come from ``generator``. Strength -> magnitude
(theirs: the parameter range their code sweeps, at 224-px crops of 256-px images):

    transform      magnitude at strength s (random per image)       theirs
    rotation       angle +-180 s deg (random sign)                  0..360 deg
    translation    shift +-(16/224) s of the side, each axis        +-16 px at 224 (resize 256)
                   (random signs)
    scale          zoom 1 - 0.75 s (out) or 1 + s (in), random      0.25..2
    shear          x and y shear angles +-45 s deg (random signs)   -160..160 deg each axis (passes
                                                                    through the degenerate 90 deg;
                                                                    capped at 45 here)
    resized_crop   square crop of side (1 - 0.75 s) of the image,   crops 0.75..0.25 of the side at
                   uniform random position, resized back            offsets 0..0.25
    hflip, vflip   flipped with probability s                       off / on, averaged
    elastic        smooth random displacement (uniform on a 5x5     albumentations ElasticTransform,
                   grid, bicubic), up to ~(s / 10) of the side      sigma 10..50
    grayscale      grayscale (3 channels) with probability s        off / on
    brightness     factor 1 - 0.75 s or 1 + 4 s (random)            0.25..5
    contrast       factor 1 - 0.75 s or 1 + 4 s (random)            0.25..5
    saturation     factor 1 - 0.75 s or 1 + 4 s (random)            0.25..5
    hue            shift +-0.5 s (random sign)                      -0.5..0.5
    blur           Gaussian sigma 20 s * side / 224, kernel          sigma 1e-5..20, kernel 23 at 224
                   2 * max(1, side // 20) + 1
    sharpness      factor 1 + 29 s                                  1..30
    invert         inverted with probability s                      off / on
    equalise       histogram-equalised with probability s           off / on
                   (torchvision: via uint8)
    posterise      8 - round(7 s) bits (8 bits = unchanged)         1..7 bits

Binary transforms use strength as a per-image probability: their score is then about
(1 - s) + s * (score of the transform itself); their code averages the on and off values, which is
strength 0.5 in expectation.
"""
from __future__ import annotations

import math
import warnings
import zlib
from collections.abc import Callable, Sequence
from functools import partial

import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF
from torch import Tensor
from tqdm import tqdm

Transform = Callable[[Tensor, float, torch.Generator], Tensor]
Encoder = Callable[[Tensor], Tensor]

EPS = 1e-4                                      # relative ridge on the clean covariance
MAX_SHIFT = 16 / 224                            # translation, fraction of the side
MAX_SHEAR = 45.0                                # degrees
MIN_CROP = 0.25                                 # resized_crop, side fraction at strength 1
ELASTIC_GRID, ELASTIC_MAX = 5, 0.1              # control points per axis, displacement / side
FACTOR_DOWN, FACTOR_UP = 0.25, 5.0              # brightness / contrast / saturation at strength 1


# ----------------------------------------------------------------------------- random draws

def _uniform(gen: torch.Generator, n: int, like: Tensor) -> Tensor:
    return torch.rand(n, generator=gen, device=gen.device).to(like.device, like.dtype)


def _sign(gen: torch.Generator, n: int, like: Tensor) -> Tensor:
    """(n,) of +-1, each with probability 1/2."""
    return torch.where(_uniform(gen, n, like) < 0.5, -1.0, 1.0).to(like.dtype)


def _chosen(gen: torch.Generator, n: int, p: float, like: Tensor) -> Tensor:
    """(n, 1, 1, 1) bool mask: each image chosen with probability p."""
    return (_uniform(gen, n, like) < p).view(n, 1, 1, 1)


def _either(x: Tensor, pick: Tensor, a: Callable[[Tensor], Tensor], b: Callable[[Tensor], Tensor]) -> Tensor:
    """a(x) where pick (B,) is True, b(x) elsewhere (both computed on the whole batch)."""
    return torch.where(pick.view(-1, 1, 1, 1), a(x), b(x))


# ----------------------------------------------------------------------------- geometry

def _warp(x: Tensor, matrix: Tensor, offset: Tensor) -> Tensor:
    """Sample x at in = matrix @ out + offset, in centred pixel units (y down); zero fill.

    matrix (B, 2, 2), offset (B, 2) in pixels. Converted to affine_grid's normalised coordinates
    (align_corners=False) so that non-square images are handled correctly.
    """
    h, w = x.shape[-2:]
    d = torch.tensor([w / 2, h / 2], dtype=x.dtype, device=x.device)
    theta = torch.cat([matrix * d.view(1, 1, 2) / d.view(1, 2, 1), (offset / d).unsqueeze(-1)], dim=-1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False).clamp(0, 1)


def _eye(n: int, like: Tensor) -> Tensor:
    return torch.eye(2, dtype=like.dtype, device=like.device).expand(n, 2, 2).clone()


def rotation(x: Tensor, s: float, gen: torch.Generator) -> Tensor:
    a = _sign(gen, len(x), x) * math.radians(180.0 * s)
    c, n = torch.cos(a), torch.sin(a)
    matrix = torch.stack([torch.stack([c, -n], -1), torch.stack([n, c], -1)], -2)
    return _warp(x, matrix, torch.zeros(len(x), 2, dtype=x.dtype, device=x.device))


def translation(x: Tensor, s: float, gen: torch.Generator) -> Tensor:
    h, w = x.shape[-2:]
    size = torch.tensor([w, h], dtype=x.dtype, device=x.device)
    signs = torch.stack([_sign(gen, len(x), x), _sign(gen, len(x), x)], -1)
    return _warp(x, _eye(len(x), x), -signs * MAX_SHIFT * s * size)


def scale(x: Tensor, s: float, gen: torch.Generator) -> Tensor:
    zoom = torch.where(_sign(gen, len(x), x) > 0, 1 + s, 1 - (1 - FACTOR_DOWN) * s)
    return _warp(x, _eye(len(x), x) / zoom.view(-1, 1, 1), torch.zeros(len(x), 2, dtype=x.dtype, device=x.device))


def shear(x: Tensor, s: float, gen: torch.Generator) -> Tensor:
    """Shear along x then y (determinant 1); the sampling matrix is the inverse of Shx @ Shy."""
    t = math.tan(math.radians(MAX_SHEAR * s))
    tx, ty = _sign(gen, len(x), x) * t, _sign(gen, len(x), x) * t
    one = torch.ones_like(tx)
    matrix = torch.stack([torch.stack([one, -tx], -1), torch.stack([-ty, 1 + tx * ty], -1)], -2)
    return _warp(x, matrix, torch.zeros(len(x), 2, dtype=x.dtype, device=x.device))


def resized_crop(x: Tensor, s: float, gen: torch.Generator) -> Tensor:
    h, w = x.shape[-2:]
    f = 1 - (1 - MIN_CROP) * s
    free = torch.tensor([w, h], dtype=x.dtype, device=x.device) * (1 - f) / 2
    centre = torch.stack([_uniform(gen, len(x), x), _uniform(gen, len(x), x)], -1) * 2 - 1
    return _warp(x, _eye(len(x), x) * f, centre * free)


def elastic(x: Tensor, s: float, gen: torch.Generator) -> Tensor:
    b, _, h, w = x.shape
    coarse = torch.rand(b, 2, ELASTIC_GRID, ELASTIC_GRID, generator=gen, device=gen.device)
    field = F.interpolate(coarse.to(x.device, x.dtype) * 2 - 1, size=(h, w), mode="bicubic", align_corners=True)
    ident = torch.eye(2, 3, dtype=x.dtype, device=x.device).expand(b, 2, 3)
    grid = F.affine_grid(ident, list(x.shape), align_corners=False)
    grid = grid + field.permute(0, 2, 3, 1) * (2 * ELASTIC_MAX * s)     # normalised units: 2 = one side
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False).clamp(0, 1)


def hflip(x: Tensor, s: float, gen: torch.Generator) -> Tensor:
    return torch.where(_chosen(gen, len(x), s, x), x.flip(-1), x)


def vflip(x: Tensor, s: float, gen: torch.Generator) -> Tensor:
    return torch.where(_chosen(gen, len(x), s, x), x.flip(-2), x)


# ----------------------------------------------------------------------------- photometric

def grayscale(x: Tensor, s: float, gen: torch.Generator) -> Tensor:
    return torch.where(_chosen(gen, len(x), s, x), TF.rgb_to_grayscale(x, num_output_channels=3), x)


def _factor(op: Callable[[Tensor, float], Tensor]) -> Transform:
    """Multiplicative colour factor 1 - 0.75 s or 1 + 4 s, the direction drawn per image."""
    def apply(x: Tensor, s: float, gen: torch.Generator) -> Tensor:
        down, up = 1 - (1 - FACTOR_DOWN) * s, 1 + (FACTOR_UP - 1) * s
        return _either(x, _sign(gen, len(x), x) > 0, lambda y: op(y, up), lambda y: op(y, down)).clamp(0, 1)
    return apply


brightness = _factor(TF.adjust_brightness)
contrast = _factor(TF.adjust_contrast)
saturation = _factor(TF.adjust_saturation)


def hue(x: Tensor, s: float, gen: torch.Generator) -> Tensor:
    shift = 0.5 * s
    out = _either(x, _sign(gen, len(x), x) > 0, lambda y: TF.adjust_hue(y, shift), lambda y: TF.adjust_hue(y, -shift))
    return out.clamp(0, 1)


def blur(x: Tensor, s: float, gen: torch.Generator) -> Tensor:
    side = min(x.shape[-2:])
    kernel = 2 * max(1, side // 20) + 1
    sigma = max(20.0 * s * side / 224, 1e-5)                 # 1e-5: a delta kernel, as theirs
    return TF.gaussian_blur(x, [kernel, kernel], [sigma, sigma]).clamp(0, 1)


def sharpness(x: Tensor, s: float, gen: torch.Generator) -> Tensor:
    return TF.adjust_sharpness(x, 1 + 29 * s).clamp(0, 1)


def invert(x: Tensor, s: float, gen: torch.Generator) -> Tensor:
    return torch.where(_chosen(gen, len(x), s, x), 1 - x, x)


def equalise(x: Tensor, s: float, gen: torch.Generator) -> Tensor:
    return torch.where(_chosen(gen, len(x), s, x), TF.equalize(x), x)


def posterise(x: Tensor, s: float, gen: torch.Generator) -> Tensor:
    bits = 8 - math.floor(7 * s + 0.5)
    return x.clone() if bits >= 8 else TF.posterize(x, bits)


TRANSFORMS: dict[str, Transform] = {
    "rotation": rotation, "translation": translation, "scale": scale, "shear": shear,
    "resized_crop": resized_crop, "hflip": hflip, "vflip": vflip, "elastic": elastic,
    "grayscale": grayscale, "brightness": brightness, "contrast": contrast, "saturation": saturation,
    "hue": hue, "blur": blur, "sharpness": sharpness, "invert": invert, "equalise": equalise,
    "posterise": posterise,
}


# ----------------------------------------------------------------------------- whitening

def _features(x: Tensor, name: str) -> Tensor:
    if not isinstance(x, Tensor) or x.ndim != 2:
        raise ValueError(f"invariance: {name} features must be an (N, D) tensor, got "
                         f"{tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"invariance: {name} features contain NaN or infinite values")
    return x.detach().to("cpu", torch.float64)


def whiten_stats(clean: Tensor, eps: float = EPS) -> tuple[Tensor, Tensor]:
    """Mean (D,) and whitening matrix W = (Sigma + eps * mean(diag Sigma) * I)^{-1/2} (D, D), float64.

    Sigma is the unbiased covariance of the clean features (N, D); needs N >= 2 and non-constant
    features. Warns when N <= D (rank-deficient covariance: the ridge sets the missing directions).
    """
    f = _features(clean, "clean")
    n, d = f.shape
    if n < 2:
        raise ValueError(f"invariance: a covariance needs at least 2 clean feature rows, got {n}")
    if eps <= 0:
        raise ValueError(f"invariance: eps must be positive, got {eps}")
    if n <= d:
        warnings.warn(f"invariance: {n} images for {d}-dim features; the covariance is rank-deficient "
                      f"and the result depends on eps={eps} (use N >> D)", stacklevel=2)
    mean = f.mean(0)
    centred = f - mean
    cov = centred.T @ centred / (n - 1)
    scale_ = cov.diagonal().mean()
    if not scale_ > 0:
        raise ValueError("invariance: the clean features are constant (zero variance); nothing to whiten")
    evals, evecs = torch.linalg.eigh(cov + eps * scale_ * torch.eye(d, dtype=f.dtype))
    w = (evecs * evals.clamp_min(eps * scale_).rsqrt()) @ evecs.T
    return mean, w


def _similarity(white_clean: Tensor, trans: Tensor, mean: Tensor, w: Tensor) -> float:
    return float(F.cosine_similarity(white_clean, (trans - mean) @ w, dim=-1).mean())


def invariance(clean_feats: Tensor, trans_feats: Tensor, eps: float = EPS) -> float:
    """Mean over images of cos((f - mu) W, (g - mu) W), mu and W from the clean features (N, D)."""
    f, g = _features(clean_feats, "clean"), _features(trans_feats, "transformed")
    if f.shape != g.shape:
        raise ValueError(f"invariance: clean and transformed features differ in shape "
                         f"({tuple(f.shape)} vs {tuple(g.shape)})")
    mean, w = whiten_stats(f, eps)
    return _similarity((f - mean) @ w, g, mean, w)


# ----------------------------------------------------------------------------- driver

def _check_images(images: Tensor) -> None:
    if not isinstance(images, Tensor) or images.ndim != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise ValueError(f"transform_invariance: images must be a (N, 3, H, W) tensor, got {shape}")
    if not images.is_floating_point():
        raise ValueError(f"transform_invariance: images must be float in [0, 1], got {images.dtype}")
    if len(images) < 2:
        raise ValueError(f"transform_invariance: a covariance needs at least 2 images, got {len(images)}")
    if not bool(torch.isfinite(images).all()) or images.min() < 0 or images.max() > 1:
        raise ValueError("transform_invariance: images must be finite and in [0, 1]")


def _encode_all(encode: Encoder, images: Tensor, batch_size: int, what: str,
                transform: Callable[[Tensor], Tensor] | None = None) -> Tensor:
    out = []
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            batch = images[start:start + batch_size]
            feats = encode(batch if transform is None else transform(batch))
            if not isinstance(feats, Tensor) or feats.ndim != 2 or len(feats) != len(batch):
                shape = tuple(feats.shape) if isinstance(feats, Tensor) else type(feats).__name__
                raise ValueError(f"transform_invariance: encode must return (B, D) features for a batch "
                                 f"of {len(batch)}, got {shape} ({what})")
            if not bool(torch.isfinite(feats).all()):
                raise ValueError(f"transform_invariance: the encoder returned NaN or infinite features ({what})")
            out.append(feats.detach().to("cpu", torch.float64))
    return torch.cat(out)


def _apply(fn: Transform, strength: float, gen: torch.Generator, x: Tensor) -> Tensor:
    return fn(x, strength, gen)


def _seed(seed: int, name: str, strength: float) -> int:
    """A stable per-(transform, strength) seed, independent of which others are requested."""
    return zlib.crc32(f"{seed}:{name}:{float(strength)!r}".encode())


def transform_invariance(encode: Encoder, images: Tensor, transforms: Sequence[str] = tuple(TRANSFORMS),
                         strengths: Sequence[float] = (0.25, 0.5, 0.75, 1.0), seed: int = 0,
                         batch_size: int = 256, progress: bool = False,
                         eps: float = EPS) -> dict[str, dict[float, float]]:
    """{transform: {strength: invariance}} of ``encode`` on ``images`` (N, 3, H, W) float in [0, 1].

    ``encode`` maps a (B, 3, H, W) batch in [0, 1] to (B, D) features (normalisation and device are
    its business; put a model in eval mode first). Clean features are computed once and their mean
    and whitening reused for every transform and strength. Each (transform, strength) draws its
    random parameters from its own generator seeded from (seed, name, strength), batch by batch, so
    results are deterministic for a given seed and batch_size.
    """
    unknown = [t for t in transforms if t not in TRANSFORMS]
    if unknown:
        raise ValueError(f"transform_invariance: unknown transform(s) {unknown}; valid: {sorted(TRANSFORMS)}")
    bad = [s for s in strengths if not 0.0 <= float(s) <= 1.0]
    if bad:
        raise ValueError(f"transform_invariance: strengths must lie in [0, 1], got {bad}")
    if batch_size < 1:
        raise ValueError(f"transform_invariance: batch_size must be positive, got {batch_size}")
    _check_images(images)
    clean = _encode_all(encode, images, batch_size, "clean images")
    mean, w = whiten_stats(clean, eps)
    white_clean = (clean - mean) @ w
    results: dict[str, dict[float, float]] = {}
    with tqdm(total=len(transforms) * len(strengths), desc="invariance", disable=not progress) as bar:
        for name in transforms:
            results[name] = {}
            for s in strengths:
                gen = torch.Generator().manual_seed(_seed(seed, name, s))
                apply = partial(_apply, TRANSFORMS[name], float(s), gen)
                trans = _encode_all(encode, images, batch_size, f"{name} at strength {s}", apply)
                results[name][float(s)] = _similarity(white_clean, trans, mean, w)
                bar.update()
    return results
