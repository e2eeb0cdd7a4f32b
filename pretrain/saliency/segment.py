"""Felzenszwalb-Huttenlocher graph segmentation as used by region-contrast (RC) saliency.

P. F. Felzenszwalb, D. P. Huttenlocher, "Efficient Graph-Based Image Segmentation", IJCV 59(2), 2004,
in the variant that Cheng et al. ("Global Contrast based Salient Region Detection", CVPR 2011 /
TPAMI 2015, sec. 3.2) run on the Lab image before measuring region contrast:

* pre-blur: OpenCV ``GaussianBlur(Size(), sigma, 0, BORDER_REPLICATE)`` (5 taps for sigma 0.5);
* 8-connected grid graph: from every pixel, in raster order, an edge to the right, down, down-right
  and up-right neighbour, weighted by the float32 Euclidean distance of the two Lab colours;
* Kruskal-order merging (paper sec. 3.1): an edge of weight w joins components C1 != C2 when
  ``w <= Int(C) + k / |C|`` for both, where Int(C) is the weight of the edge that last grew C;
* one pass over the sorted edges joining any two components of which one is smaller than
  ``min_size``;
* labels numbered in raster order of first appearance.

:func:`segment_image` is the fast path. It runs scikit-image's compiled union-find
(:func:`skimage.segmentation.felzenszwalb`) on the pre-blurred image with ``sigma=0`` and
``scale = 255 k`` (scikit-image divides ``scale`` by 255). Its merge loop differs from the reference
code in two places that only matter at exact floating-point equality: it computes the edge weights
in float64 rather than float32, and it merges on ``w < threshold`` rather than ``w <= threshold``.
Its union-find keeps the smallest pixel index as the root, so its labels already come in raster order
of first appearance. :func:`segment_image_reference` is a direct, slow transcription of the
reference procedure (float32 weights, ``<=``, the edge order above) used to check the fast path.

Edges of exactly equal weight are processed in an order the reference leaves to ``std::sort``
(unspecified); scikit-image uses its own, and the transcription keeps raster order. On natural
images this does not change the result; on images with many exactly tied weights (posterised,
synthetic) the three can differ by a few pixels.
"""
from __future__ import annotations

import cv2
import numpy as np

__all__ = ["graph_edges", "preblur", "segment_image", "segment_image_reference"]


def _check_lab(lab: np.ndarray) -> np.ndarray:
    """``lab`` as a C-contiguous float32 (H, W, 3) array; ValueError otherwise."""
    lab = np.asarray(lab)
    if lab.ndim != 3 or lab.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) Lab image, got shape {lab.shape}")
    if lab.dtype != np.float32:
        raise ValueError(f"expected a float32 Lab image (cv2.cvtColor of a float32 BGR image), got {lab.dtype}")
    if min(lab.shape[:2]) < 2:
        raise ValueError(f"image is {lab.shape[0]}x{lab.shape[1]} px; segmentation needs at least 2 px per side")
    return np.ascontiguousarray(lab)


def preblur(lab: np.ndarray, sigma: float) -> np.ndarray:
    """The segmentation pre-blur, (H, W, 3) float32 -> (H, W, 3) float32; ``sigma <= 0`` copies."""
    if sigma <= 0:
        return lab.copy()
    return cv2.GaussianBlur(lab, (0, 0), sigmaX=float(sigma), sigmaY=0, borderType=cv2.BORDER_REPLICATE)


def segment_image(lab: np.ndarray, *, k: float = 50.0, min_size: int = 200,
                  sigma: float = 0.5) -> tuple[np.ndarray, int]:
    """Segment a float32 (H, W, 3) Lab image; returns ((H, W) int32 labels, region count).

    Labels run from 0 to count - 1 in raster order of first appearance. ``k`` is the threshold
    constant of the paper (sec. 3.1), ``min_size`` the smallest component kept by the merging pass,
    ``sigma`` the pre-blur (OpenCV GaussianBlur, replicated border).
    """
    from skimage.segmentation import felzenszwalb     # imported here: it pulls in scipy.ndimage (~0.2 s)

    sm = preblur(_check_lab(lab), sigma)
    labels = felzenszwalb(sm, scale=float(k) * 255.0, sigma=0.0, min_size=int(min_size))
    labels = labels.astype(np.int32, copy=False)
    return labels, int(labels.max()) + 1


def graph_edges(sm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The 8-connected grid graph of an (H, W, 3) float32 image, in the reference edge order.

    Returns (a, b, w): int64 pixel indices (flat, row-major) and float32 weights
    ``sqrt((d0^2 + d1^2) + d2^2)``, each of length 4HW - 3W - 3H + 2. For every pixel in raster
    order the edges go right, down, down-right and up-right, where those neighbours exist.
    """
    h, w, _ = sm.shape
    idx = np.arange(h * w, dtype=np.int64).reshape(h, w)
    a = np.full((h, w, 4), -1, np.int64)
    b = np.full((h, w, 4), -1, np.int64)
    wt = np.zeros((h, w, 4), np.float32)

    def dist(p: np.ndarray, q: np.ndarray) -> np.ndarray:
        d = p - q
        return np.sqrt(d[..., 0] * d[..., 0] + d[..., 1] * d[..., 1] + d[..., 2] * d[..., 2])

    pairs = [((slice(None), slice(0, w - 1)), (slice(None), slice(1, w))),          # right
             ((slice(0, h - 1), slice(None)), (slice(1, h), slice(None))),          # down
             ((slice(0, h - 1), slice(0, w - 1)), (slice(1, h), slice(1, w))),      # down-right
             ((slice(1, h), slice(0, w - 1)), (slice(0, h - 1), slice(1, w)))]      # up-right
    for j, (src, dst) in enumerate(pairs):
        a[src + (j,)] = idx[src]
        b[src + (j,)] = idx[dst]
        wt[src + (j,)] = dist(sm[src], sm[dst])
    keep = a.ravel() >= 0
    return a.ravel()[keep], b.ravel()[keep], wt.ravel()[keep]


def segment_image_reference(lab: np.ndarray, *, k: float = 50.0, min_size: int = 200,
                            sigma: float = 0.5) -> tuple[np.ndarray, int]:
    """Slow reference of :func:`segment_image`: the procedure of the module docstring step by step.

    A Python union-find (union by rank, path compression) over the stably sorted float32 edges,
    with float32 thresholds ``w + float32(k) / |C|`` and the ``<=`` merge test. About 0.1-0.3 s for a
    256-px image; meant for tests.
    """
    sm = preblur(_check_lab(lab), sigma)
    h, w, _ = sm.shape
    a, b, wt = graph_edges(sm)
    order = np.argsort(wt, kind="stable")
    ea, eb, ew = a[order].tolist(), b[order].tolist(), wt[order].tolist()
    n = h * w
    parent, rank, size = list(range(n)), [0] * n, [1] * n
    c = np.float32(k)
    threshold = [float(c)] * n

    def find(x: int) -> int:
        root = x
        while parent[root] != root:
            root = parent[root]
        parent[x] = root
        return root

    def join(x: int, y: int) -> int:
        if rank[x] > rank[y]:
            x, y = y, x
        parent[x] = y
        size[y] += size[x]
        if rank[x] == rank[y]:
            rank[y] += 1
        return y

    for x0, y0, wi in zip(ea, eb, ew):
        x, y = find(x0), find(y0)
        if x != y and wi <= threshold[x] and wi <= threshold[y]:
            r = join(x, y)
            threshold[r] = float(np.float32(wi) + c / np.float32(size[r]))
    for x0, y0 in zip(ea, eb):
        x, y = find(x0), find(y0)
        if x != y and (size[x] < min_size or size[y] < min_size):
            join(x, y)
    roots = np.array([find(i) for i in range(n)])
    _, first, inverse = np.unique(roots, return_index=True, return_inverse=True)
    raster = np.empty(len(first), np.int64)
    raster[np.argsort(first)] = np.arange(len(first))
    return raster[inverse].reshape(h, w).astype(np.int32), len(first)
