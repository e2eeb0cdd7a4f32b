"""Histogram-contrast (HC) and region-contrast (RC) saliency.

M.-M. Cheng, N. J. Mitra, X. Huang, P. H. S. Torr, S.-M. Hu, "Global Contrast based Salient Region
Detection", CVPR 2011 / IEEE TPAMI 37(3), 2015. The numerics follow the authors' C++ release
(``CmSaliencyRC`` in CmLib): same colour quantisation, OpenCV Lab, sort orders, float32/float64
split and OpenCV filters, so the maps agree with it to rounding (see
``tests/pretrain/test_saliency_gc.py`` for the golden comparison).

Both functions take an H x W x 3 uint8 RGB image and return an H x W float32 map in [0, 1]. The
image is converted as the original drivers do: BGR, float32 scaled by ``float32(1/255)``.

* :func:`hc` (paper sec. 3.1): colours quantised to 12 levels per channel, the most frequent ones
  kept until they cover 95% of the pixels (:func:`quantize`); the saliency of a colour is its
  frequency-weighted Lab distance to all other colours, smoothed over its nearest colours
  (sec. 3.1.2); the pixel map is blurred with a 3 x 3 Gaussian and min-max normalised.
* :func:`rc` (sec. 3.2): the image is segmented (:mod:`pretrain.saliency.segment`); the saliency of a
  region is the colour-histogram distance to every other region weighted by that region's pixel count
  and by ``exp(-D_s^2 / sigma_dist)`` of the centroid distance, times a centre prior; then the
  C++ post-processing: border-region suppression, smoothing over the colour histogram and averaging
  per region, and a final 3 x 3 Gaussian blur (not renormalised).
"""
from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np

from .segment import segment_image

__all__ = ["MIN_SIDE", "Palette", "hc", "quantize", "rc", "to_rgb_uint8"]

MIN_SIDE = 4
_EPS = 1e-200          # added to the spatial spread of a region, as in GetBorderReg
_INV255 = np.float32(1 / 255)


def to_rgb_uint8(image: np.ndarray) -> np.ndarray:
    """Validate an image and return it as a C-contiguous (H, W, 3) uint8 RGB array.

    Accepted: (H, W, 3) uint8 RGB; (H, W) or (H, W, 1) grayscale (copied to the three channels);
    (H, W, 4) RGBA (alpha dropped, not composited); uint16 images of those shapes, reduced to 8 bits
    by ``v >> 8`` as OpenCV ``imread`` does for 16-bit files without ``IMREAD_ANYDEPTH``.
    Refused with a ValueError: float, bool and other integer dtypes, other shapes, and images with a
    side shorter than ``MIN_SIDE`` px.
    """
    a = np.asarray(image)
    if a.dtype == np.uint16:
        a = (a >> 8).astype(np.uint8)
    elif a.dtype != np.uint8:
        hint = "; convert a float image in [0, 1] with (x * 255).round().astype(np.uint8)" \
            if a.dtype.kind == "f" else ""
        raise ValueError(f"expected a uint8 RGB image, got dtype {a.dtype}{hint}")
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4):
        raise ValueError(f"expected an (H, W, 3) RGB, (H, W) grayscale or (H, W, 4) RGBA image, got shape {a.shape}")
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    elif a.shape[2] == 4:
        a = a[:, :, :3]
    h, w = a.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise ValueError(f"image is {h}x{w} px; saliency needs at least {MIN_SIDE} px per side "
                         "(3x3 blur, 8-connected segmentation graph)")
    return np.ascontiguousarray(a)


def _bgr_float(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H, W, 3) float32 BGR in [0, 1], bit-identical to OpenCV's
    ``convertTo(CV_32FC3, 1.0/255)`` of the BGR image."""
    return rgb[..., ::-1].astype(np.float32) * _INV255


class Palette(NamedTuple):
    """Quantised colours of an image (paper sec. 3.1.1)."""

    index: np.ndarray    # (H, W) intp: colour of each pixel, 0 = most frequent
    colors: np.ndarray   # (K, 3) float32: mean BGR colour of the pixels of each colour, in [0, 1]
    counts: np.ndarray   # (K,) intp: pixels per colour


def _bin_codes(rgb: np.ndarray, levels: int) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H, W) intp code ``b L^2 + g L + r`` of the per-channel bins
    ``int(v * (L - 0.0001))``, computed in float32 on the [0, 1] value."""
    step = np.float32(levels) - np.float32(1e-4)
    lut = ((np.arange(256, dtype=np.float32) * _INV255) * step).astype(np.intp)
    return (lut * (levels * levels))[rgb[..., 2]] + (lut * levels)[rgb[..., 1]] + lut[rgb[..., 0]]


def _kept_colours(counts: np.ndarray, n_pixels: int, ratio: float, min_colors: int, max_colors: int) -> int:
    """How many of the colours, sorted by decreasing frequency, are kept.

    Drops the largest number of rarest colours that together hold fewer than
    ``cvRound(N (1 - ratio))`` pixels (never all of them); then at most ``max_colors`` and, if that
    leaves ``min_colors`` or fewer, ``min(min_colors, #colours)``.
    """
    max_drop = round(n_pixels * (1.0 - ratio))            # Python round = cvRound, half to even
    rare_total = np.cumsum(counts[::-1])
    n_drop = min(int(np.searchsorted(rare_total, max_drop, side="left")), len(counts) - 1)
    kept = min(len(counts) - n_drop, max_colors)
    return min(min_colors, len(counts)) if kept <= min_colors else kept


def quantize(rgb: np.ndarray, img3f: np.ndarray | None = None, *, levels: int = 12, ratio: float = 0.95,
             min_colors: int = 10, max_colors: int = 256) -> Palette:
    """Colour quantisation of HC/RC (paper sec. 3.1.1; ``CmSaliencyRC::Quantize``).

    ``rgb``: (H, W, 3) uint8 RGB; ``img3f``: its float32 BGR version (computed when None).
    Colours (``levels`` bins per channel) are sorted by (count, code), descending; the frequent ones
    covering ``ratio`` of the pixels are kept (:func:`_kept_colours`); every other colour goes to the
    nearest kept colour in integer bin space (the most frequent on ties). A colour's value is the
    float32 mean of its pixels, summed in raster order as the reference does.
    """
    img3f = _bgr_float(rgb) if img3f is None else img3f
    codes = _bin_codes(rgb, levels)
    hist = np.bincount(codes.ravel(), minlength=levels ** 3)
    present = np.flatnonzero(hist)
    order = np.lexsort((present, hist[present]))[::-1]
    codes_sorted, counts_sorted = present[order], hist[present][order]
    k = _kept_colours(counts_sorted, codes.size, ratio, min_colors, max_colors)

    palette = np.empty(levels ** 3, np.intp)
    palette[codes_sorted[:k]] = np.arange(k)
    if len(codes_sorted) > k:
        bins = np.stack([codes_sorted // (levels * levels), codes_sorted // levels % levels,
                         codes_sorted % levels], axis=1).astype(np.float64)
        sq = (bins * bins).sum(1)
        d2 = sq[k:, None] + sq[None, :k] - 2.0 * (bins[k:] @ bins[:k].T)   # exact: small integers
        palette[codes_sorted[k:]] = np.argmin(d2, axis=1)
    index = palette[codes]

    flat = index.ravel()
    counts = np.bincount(flat, minlength=k)
    sums = np.zeros((3, k), np.float32)
    pixels = img3f.reshape(-1, 3)
    for c in range(3):                      # unbuffered float32 adds, in raster order
        np.add.at(sums[c], flat, pixels[:, c])
    colors = sums.T / counts.astype(np.float32)[:, None]
    return Palette(index, np.ascontiguousarray(colors), counts)


def _lab_colours(colors: np.ndarray) -> np.ndarray:
    """(K, 3) float32 BGR -> (K, 3) float32 OpenCV Lab (L in [0, 100])."""
    return cv2.cvtColor(colors.reshape(1, -1, 3), cv2.COLOR_BGR2Lab).reshape(-1, 3)


def _colour_distances(lab: np.ndarray) -> np.ndarray:
    """(K, 3) float32 Lab -> (K, K) float32 Euclidean distances, ``sqrt((d0^2 + d1^2) + d2^2)``."""
    d = lab[:, None, :] - lab[None, :, :]
    d *= d
    return np.sqrt(d[..., 0] + d[..., 1] + d[..., 2])


def _nearest(dist: np.ndarray, n: int) -> np.ndarray:
    """(K, K) distances with a zero diagonal -> (K, n) column indices of each row's n nearest
    colours, chosen by (distance, index) as the reference's sort of (distance, index) pairs."""
    kth = np.partition(dist, n - 1, axis=1)[:, n - 1:n]
    take = dist < kth
    ties = dist == kth
    need = n - take.sum(axis=1, keepdims=True)
    take |= ties & (np.cumsum(ties, axis=1) <= need)
    return np.nonzero(take)[1].reshape(len(dist), n)


def _normalize_minmax(values: np.ndarray, dtype: int = cv2.CV_32F) -> np.ndarray:
    """OpenCV ``normalize(NORM_MINMAX)`` of a 1-D array to [0, 1] (all zeros when constant)."""
    return cv2.normalize(values.reshape(1, -1), None, 0.0, 1.0, cv2.NORM_MINMAX, dtype).ravel()


def smooth_colour_saliency(sal: np.ndarray, weights: np.ndarray, dist: np.ndarray, delta: float) -> np.ndarray:
    """Colour-space smoothing (paper sec. 3.1.2, eq. 3; ``CmSaliencyRC::SmoothSaliency``).

    ``sal``: (K,) float32 colour saliency; ``weights``: (K,) colour weights (ones for HC, pixel
    counts for RC); ``dist``: (K, K) float32 Lab distances. Each colour takes the average over its
    ``n = max(cvRound(K delta), 2)`` nearest colours c_j (itself included) weighted by
    ``(T - D(c, c_j)) w_j``, T the sum of those n distances; the result is min-max normalised,
    (K,) float32. Fewer than two colours: returned unchanged. A zero denominator gives 0.
    """
    k = len(sal)
    if k < 2:
        return sal
    n = min(max(round(float(np.float32(k) * np.float32(delta))), 2), k)
    cols = _nearest(dist, n)
    d = dist[np.arange(k)[:, None], cols].astype(np.float64)
    w = np.asarray(weights, np.float64)[cols]
    total_d = d.sum(axis=1)
    total_w = w.sum(axis=1)
    num = (sal.astype(np.float64)[cols] * (total_d[:, None] - d) * w).sum(axis=1)
    den = total_d * total_w
    new = np.divide(num, den, out=np.zeros(k), where=den != 0)
    return _normalize_minmax(new)


def _blur3(sal: np.ndarray) -> np.ndarray:
    """3 x 3 Gaussian, sigma 0 (kernel [1/4, 1/2, 1/4]), reflect-101 border; (H, W) float32."""
    return cv2.GaussianBlur(sal, (3, 3), 0)


def hc(rgb: np.ndarray, *, levels: int = 12, ratio: float = 0.95, min_colors: int = 10, max_colors: int = 256,
       delta: float = 0.25) -> np.ndarray:
    """Histogram-contrast saliency (paper sec. 3.1; ``CmSaliencyRC::GetHC``).

    ``rgb``: (H, W, 3) uint8 RGB (see :func:`to_rgb_uint8` for grayscale, RGBA and uint16 input).
    ``levels``, ``ratio``, ``min_colors``, ``max_colors``: colour quantisation (:func:`quantize`);
    ``delta``: fraction of the colours used by the colour-space smoothing. Returns (H, W) float32 in
    [0, 1]; a single-colour image gives all zeros.
    """
    rgb = to_rgb_uint8(rgb)
    pal = quantize(rgb, levels=levels, ratio=ratio, min_colors=min_colors, max_colors=max_colors)
    dist = _colour_distances(_lab_colours(pal.colors))
    weight = cv2.normalize(pal.counts.astype(np.int32).reshape(1, -1), None, 1.0, 0.0, cv2.NORM_L1, cv2.CV_32F)
    contrast = np.cumsum(dist * weight, axis=1, dtype=np.float32)[:, -1]     # sequential float32 sum
    colour_sal = smooth_colour_saliency(contrast, np.ones(len(contrast)), dist, delta)
    sal = _blur3(colour_sal[pal.index])
    sal = cv2.normalize(sal, None, 0.0, 1.0, cv2.NORM_MINMAX)
    return np.clip(sal, 0.0, 1.0, out=sal)


class _Regions(NamedTuple):
    """Per-region pixel statistics of a label map with R regions."""

    pixels: np.ndarray     # (R,) int64 pixel counts
    col_hist: np.ndarray   # (R, W) int64 pixels of each region per column
    row_hist: np.ndarray   # (R, H) int64 pixels of each region per row


def _region_stats(labels: np.ndarray, n_regions: int) -> _Regions:
    """Column and row histograms of each region of an (H, W) label map in [0, n_regions)."""
    h, w = labels.shape
    lab = labels.astype(np.intp, copy=False)
    col = np.bincount((lab * w + np.arange(w)).ravel(), minlength=n_regions * w).reshape(n_regions, w)
    row = np.bincount((lab * h + np.arange(h)[:, None]).ravel(), minlength=n_regions * h).reshape(n_regions, h)
    return _Regions(col.sum(axis=1), col, row)


def _region_saliency(regions: _Regions, labels: np.ndarray, pal: Palette, dist: np.ndarray,
                     sigma_dist: float) -> np.ndarray:
    """Spatially weighted region contrast with the centre prior (paper eq. 5-6;
    ``BuildRegions`` + ``RegionContrast``), (R,) float64 before normalisation.

    ``S(r_i) = c_i sum_{j != i} exp(-D_s(r_i, r_j)^2 / sigma_dist) |r_j| D_r(r_i, r_j)``, with
    ``D_r = f_i^T D f_j`` the colour distance of the region histograms f (float32 frequencies),
    centroids normalised by the image size and ``c_i = exp(-9 (dx_i^2 + dy_i^2))`` from the mean
    absolute offset of the region's pixels to the image centre, also normalised by the image size.
    """
    h, w = labels.shape
    n_regions, k = len(regions.pixels), len(pal.counts)
    pix = regions.pixels.astype(np.float64)
    xs, ys = np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64)
    cx = regions.col_hist @ xs / (pix * w)
    cy = regions.row_hist @ ys / (pix * h)
    ad_x = regions.col_hist @ np.abs(xs - w / 2.0) / (pix * w)
    ad_y = regions.row_hist @ np.abs(ys - h / 2.0) / (pix * h)

    hist = np.bincount((labels.astype(np.intp, copy=False) * k + pal.index).ravel(),
                       minlength=n_regions * k).reshape(n_regions, k)
    freq = (hist.astype(np.float32) / regions.pixels.astype(np.float32)[:, None]).astype(np.float64)
    colour_d = freq @ dist.astype(np.float64) @ freq.T
    spatial = np.exp(-((cx[:, None] - cx[None, :]) ** 2 + (cy[:, None] - cy[None, :]) ** 2) / sigma_dist)
    contrast = colour_d * spatial
    np.fill_diagonal(contrast, 0.0)
    return (contrast * pix[None, :]).sum(axis=1) * np.exp(-9.0 * (ad_x ** 2 + ad_y ** 2))


def border_regions(regions: _Regions, labels: np.ndarray, ratio: float = 0.02, thr: float = 0.4) -> np.ndarray:
    """Background mask from regions touching the image border (``CmSaliencyRC::GetBorderReg``), (H, W) bool.

    Border strips are ``cvRound(W ratio)`` columns and ``cvRound(H ratio)`` rows wide. A region is
    background when ``(n_lr / (4 h_gap)) / v_y + (n_tb / (4 w_gap)) / v_x > thr``, with n_lr / n_tb
    its pixels in the left+right / top+bottom strips and v_x, v_y the mean absolute deviation of its
    x / y coordinates. The strips themselves are always in the mask.
    """
    h, w = labels.shape
    w_gap, h_gap = round(w * ratio), round(h * ratio)
    pix = regions.pixels.astype(np.float64)
    xs, ys = np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64)
    mx = regions.col_hist @ xs / pix
    my = regions.row_hist @ ys / pix
    vx = (regions.col_hist * np.abs(xs[None, :] - mx[:, None])).sum(axis=1) / pix + _EPS
    vy = (regions.row_hist * np.abs(ys[None, :] - my[:, None])).sum(axis=1) / pix + _EPS
    n_tb = regions.row_hist[:, :h_gap].sum(axis=1) + regions.row_hist[:, h - h_gap:].sum(axis=1)
    n_lr = regions.col_hist[:, :w_gap].sum(axis=1) + regions.col_hist[:, w - w_gap:].sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_r, y_r = np.float64(1.0) / (4 * h_gap), np.float64(1.0) / (4 * w_gap)
        likelihood = n_lr * x_r / vy + n_tb * y_r / vx
        background = likelihood / thr > 1
    mask = background[labels]
    mask[:h_gap] = True
    mask[h - h_gap:] = True
    mask[:, :w_gap] = True
    mask[:, w - w_gap:] = True
    return mask


def _smooth_by_hist(sal: np.ndarray, pal: Palette, dist: np.ndarray, delta: float) -> np.ndarray:
    """Colour-histogram smoothing of a pixel map (``CmSaliencyRC::SmoothByHist``), (H, W) float32.

    Mean saliency per quantised colour, min-max normalised, smoothed over the nearest colours
    weighted by their pixel counts (:func:`smooth_colour_saliency`), and written back to the pixels.
    """
    k = len(pal.counts)
    mean = np.bincount(pal.index.ravel(), weights=sal.ravel(), minlength=k) / pal.counts
    colour_sal = smooth_colour_saliency(_normalize_minmax(mean), pal.counts, dist, delta)
    return colour_sal[pal.index]


def _smooth_by_region(sal: np.ndarray, labels: np.ndarray, regions: _Regions) -> np.ndarray:
    """Mean saliency per region, min-max normalised in float64 (``CmSaliencyRC::SmoothByRegion``),
    (H, W) float32."""
    mean = np.bincount(labels.ravel(), weights=sal.ravel(), minlength=len(regions.pixels)) / regions.pixels
    return _normalize_minmax(mean, cv2.CV_64F).astype(np.float32)[labels]


def rc(rgb: np.ndarray, *, sigma_dist: float = 0.4, seg_k: float = 50.0, seg_min_size: int = 200,
       seg_sigma: float = 0.5, border_ratio: float = 0.02, border_thr: float = 0.4, hist_delta: float = 0.1,
       levels: int = 12, ratio: float = 0.95, min_colors: int = 10, max_colors: int = 256) -> np.ndarray:
    """Region-contrast saliency (paper sec. 3.2; ``CmSaliencyRC::GetRC``).

    ``rgb``: (H, W, 3) uint8 RGB (see :func:`to_rgb_uint8` for grayscale, RGBA and uint16 input).
    ``sigma_dist``: spatial weighting sigma_s^2 over centroids in [0, 1]; ``seg_k``, ``seg_min_size``,
    ``seg_sigma``: Felzenszwalb-Huttenlocher segmentation of the Lab image; ``border_ratio``,
    ``border_thr``: border-background suppression (:func:`border_regions`); ``hist_delta``: colour
    fraction of the histogram smoothing; ``levels``, ``ratio``, ``min_colors``, ``max_colors``:
    colour quantisation (:func:`quantize`). Returns (H, W) float32 in [0, 1].

    As in the reference, an image with exactly two quantised colours returns 1 on the second most
    frequent colour and 0 elsewhere, and an image with one colour returns zeros.
    """
    rgb = to_rgb_uint8(rgb)
    img3f = _bgr_float(rgb)
    labels, n_regions = segment_image(cv2.cvtColor(img3f, cv2.COLOR_BGR2Lab), k=seg_k, min_size=seg_min_size,
                                      sigma=seg_sigma)
    pal = quantize(rgb, img3f, levels=levels, ratio=ratio, min_colors=min_colors, max_colors=max_colors)
    if len(pal.counts) == 2:
        return (pal.index == 1).astype(np.float32)
    if len(pal.counts) < 2:
        return np.zeros(labels.shape, np.float32)

    dist = _colour_distances(_lab_colours(pal.colors))
    regions = _region_stats(labels, n_regions)
    sal = _normalize_minmax(_region_saliency(regions, labels, pal, dist, sigma_dist))[labels]
    background = border_regions(regions, labels, border_ratio, border_thr)
    sal[background] = 0.0
    sal = _smooth_by_hist(sal, pal, dist, hist_delta)
    sal = _smooth_by_region(sal, labels, regions)
    sal[background] = 0.0
    sal = _blur3(sal)
    return np.clip(sal, 0.0, 1.0, out=sal)
