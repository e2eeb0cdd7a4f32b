"""Salient-object masks from a saliency map.

* :func:`saliency_mask`: a fixed binarisation. ``"adaptive"`` is the image-dependent threshold of
  Achanta et al. ("Frequency-tuned Salient Region Detection", CVPR 2009, sec. 4.2), twice the mean
  saliency, used by Cheng et al. (TPAMI 2015, sec. 5.1) for their fixed-threshold comparison;
  ``"otsu"`` is Otsu's threshold of the map quantised to 256 levels.
* :func:`saliency_cut`: SaliencyCut (Cheng et al., TPAMI 2015, sec. 4 "Salient object segmentation"):
  GrabCut initialised from the thresholded map instead of a rectangle (low saliency: background,
  high: foreground, the rest unknown), then re-run a few times from a trimap made by dilating
  (outside: background) and eroding (inside: foreground) the largest connected component of the
  previous result, until it stops changing. GrabCut is OpenCV's ``cv2.grabCut``.

All functions return (H, W) bool masks; a map with nothing salient gives an all-False mask.
:func:`hc_cut` / :func:`rc_cut` are SaliencyCut of the HC / RC map as cacheable "saliency" maps
({0, 1} float32), registered as ``hc-cut`` / ``rc-cut`` in :mod:`pretrain.saliency.algos`: the
``sgd`` policy's ``threshold=cut`` reads them from the hashed cache, so GrabCut runs once per image.
"""
from __future__ import annotations

import cv2
import numpy as np

from .global_contrast import hc, rc, to_rgb_uint8

__all__ = ["hc_cut", "largest_component", "rc_cut", "saliency_cut", "saliency_mask"]

_METHODS = ("adaptive", "otsu")
_MIN_SAMPLES = 5          # GrabCut fits 5-component GMMs by k-means


def _check_map(sal: np.ndarray, shape: tuple[int, int] | None = None) -> np.ndarray:
    """A saliency map as (H, W) float32; ValueError for other shapes, a shape mismatch or NaN/inf."""
    s = np.asarray(sal)
    if s.ndim != 2:
        raise ValueError(f"expected an (H, W) saliency map, got shape {s.shape}")
    if shape is not None and s.shape != shape:
        raise ValueError(f"saliency map shape {s.shape} does not match the image {shape}")
    s = s.astype(np.float32, copy=False)
    if not np.isfinite(s).all():
        raise ValueError("saliency map contains NaN or inf")
    return s


def saliency_mask(sal: np.ndarray, method: str = "adaptive", *, factor: float = 2.0) -> np.ndarray:
    """Binarise an (H, W) saliency map into an (H, W) bool mask.

    ``method="adaptive"``: ``sal > factor * mean(sal)`` (Achanta et al. 2009 with ``factor=2``);
    ``method="otsu"``: ``sal > t`` with Otsu's t on ``round(255 * sal)`` (the map is expected in
    [0, 1]). A constant map gives all False.
    """
    s = _check_map(sal)
    if method not in _METHODS:
        raise ValueError(f"unknown method {method!r}; valid methods: {', '.join(_METHODS)}")
    if s.size == 0 or float(s.max()) <= float(s.min()):
        return np.zeros(s.shape, bool)
    if method == "adaptive":
        return s > factor * float(s.mean())
    s8 = np.clip(np.rint(s * 255.0), 0, 255).astype(np.uint8)
    t, _ = cv2.threshold(s8, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    return s8 > t


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 4-connected component of an (H, W) bool mask (all False when empty)."""
    m = np.ascontiguousarray(mask, dtype=np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=4)
    if n <= 1:
        return np.zeros(mask.shape, bool)
    return labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))


def _border(shape: tuple[int, int], ratio: float) -> np.ndarray:
    """(H, W) bool: the ``cvRound(ratio * side)`` px wide frame of the image."""
    h, w = shape
    bh, bw = round(h * ratio), round(w * ratio)
    out = np.zeros(shape, bool)
    out[:bh], out[h - bh:], out[:, :bw], out[:, w - bw:] = True, True, True, True
    return out


def _grabcut(bgr: np.ndarray, trimap: np.ndarray, iterations: int) -> np.ndarray | None:
    """cv2.grabCut from a GC_* trimap; (H, W) bool foreground, or None when the trimap has fewer
    foreground or background pixels than GrabCut's 5-component colour models need."""
    fg = (trimap == cv2.GC_FGD) | (trimap == cv2.GC_PR_FGD)
    n_fg = int(fg.sum())
    if min(n_fg, fg.size - n_fg) < _MIN_SAMPLES:
        return None
    mask = trimap.astype(np.uint8, copy=True)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.grabCut(bgr, mask, None, bgd, fgd, iterations, cv2.GC_INIT_WITH_MASK)
    return (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)


def _initial_trimap(sal: np.ndarray, t_low: float, t_init: float, t_high: float, border: np.ndarray) -> np.ndarray:
    """GC_* trimap from a map in [0, 1]: ``< t_low`` or on the border: background; ``> t_high``:
    foreground; in between: probably foreground at or above ``t_init``, else probably background."""
    trimap = np.where(sal >= t_init, cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
    trimap[sal > t_high] = cv2.GC_FGD
    trimap[(sal < t_low) | border] = cv2.GC_BGD
    return trimap


def _refined_trimap(fg: np.ndarray, border: np.ndarray, expand: int, min_core: int) -> np.ndarray:
    """GC_* trimap around a segmentation: outside its ``expand``-times dilation: background; inside
    its erosion (or the segmentation itself when the erosion keeps fewer than ``min_core`` px):
    foreground; the ring in between: probably foreground; the border: background."""
    m = fg.astype(np.uint8)
    kernel = np.ones((3, 3), np.uint8)
    big = cv2.dilate(m, kernel, iterations=expand).astype(bool)
    core = cv2.erode(m, kernel, iterations=expand).astype(bool)
    if core.sum() < min_core:
        core = fg
    trimap = np.full(fg.shape, cv2.GC_BGD, np.uint8)
    trimap[big] = cv2.GC_PR_FGD
    trimap[core] = cv2.GC_FGD
    trimap[border] = cv2.GC_BGD
    return trimap


def saliency_cut(rgb: np.ndarray, sal: np.ndarray, iterations: int = 4, *, t_low: float = 0.1,
                 t_init: float = 70 / 255, t_high: float = 0.9, grabcut_iterations: int = 3, expand: int = 5,
                 border_ratio: float = 0.02, min_changed: int = 10, min_core: int = 50, presmooth: bool = True,
                 seed: int = 0) -> np.ndarray:
    """SaliencyCut: GrabCut segmentation of the salient object, (H, W) bool.

    ``rgb``: (H, W, 3) uint8 RGB (as :func:`~pretrain.saliency.global_contrast.to_rgb_uint8`);
    ``sal``: (H, W) saliency map in [0, 1] (e.g. from ``rc``). ``presmooth`` blurs the map with a
    9 x 9 Gaussian and renormalises it, as the authors' driver does before cutting. The initial trimap
    (:func:`_initial_trimap`): below ``t_low`` background, above ``t_high`` foreground, in between
    probably foreground from ``t_init`` (70/255, the fixed binarisation threshold of the CVPR paper)
    and probably background below it; each of the ``iterations`` rounds runs
    ``grabcut_iterations`` GrabCut iterations and keeps the largest 4-connected component; the next
    round starts from the dilated / eroded result (``expand`` 3 x 3 steps). Rounds stop early when
    fewer than ``min_changed`` pixels change. A frame of ``border_ratio`` of each side is background.
    ``seed`` seeds OpenCV's RNG (GrabCut's k-means initialisation) so that the result is
    reproducible; note that this sets OpenCV's global RNG state.

    Returns all False when nothing is salient (the map never reaches ``t_low``) or GrabCut finds no
    object.
    """
    rgb = to_rgb_uint8(rgb)
    s = _check_map(sal, rgb.shape[:2]).copy()
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    if presmooth:
        s = cv2.GaussianBlur(s, (9, 9), 0)
        s = cv2.normalize(s, None, 0.0, 1.0, cv2.NORM_MINMAX)
    border = _border(s.shape, border_ratio)
    s[border] = 0.0
    empty = np.zeros(s.shape, bool)
    if float(s.max()) < t_low:
        return empty
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    cv2.setRNGSeed(seed)
    fg = _grabcut(bgr, _initial_trimap(s, t_low, t_init, t_high, border), grabcut_iterations)
    if fg is None:
        return largest_component(saliency_mask(s))
    fg = largest_component(fg)
    for _ in range(iterations - 1):
        if not fg.any():
            break
        nxt = _grabcut(bgr, _refined_trimap(fg, border, expand, min_core), grabcut_iterations)
        if nxt is None:
            break
        nxt = largest_component(nxt)
        changed = int((nxt != fg).sum())
        fg = nxt
        if changed < min_changed:
            break
    return fg


def hc_cut(rgb: np.ndarray, iterations: int = 4) -> np.ndarray:
    """SaliencyCut (:func:`saliency_cut`, ``iterations`` rounds) of the HC map of an (H, W, 3) uint8
    RGB image: the object's mask as an (H, W) float32 map of 0 / 1."""
    return saliency_cut(rgb, hc(rgb), iterations).astype(np.float32)


def rc_cut(rgb: np.ndarray, iterations: int = 4) -> np.ndarray:
    """SaliencyCut (:func:`saliency_cut`, ``iterations`` rounds) of the RC map of an (H, W, 3) uint8
    RGB image: the object's mask as an (H, W) float32 map of 0 / 1."""
    return saliency_cut(rgb, rc(rgb), iterations).astype(np.float32)
