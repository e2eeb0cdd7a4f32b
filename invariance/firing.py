"""Firing-rate invariance score of a representation (a pure function of features).

Purushwalkam & Gupta, "Demystifying Contrastive Self-Supervised Learning: Invariances,
Augmentations and Dataset Biases" (NeurIPS 2020), reproduced exactly as the authors' script
``measure_invariances.py`` computes it (checked against golden outputs of that script, tests/invariance/test_firing.py).

Inputs: ``features`` (N, D), one row per image; ``set_ids`` (N,), the set (object instance,
video, ...) each image belongs to, the images of a set showing one thing under the factor whose
invariance is measured; ``labels`` (N,), the class of each image. C is the number of distinct
labels.

1. Firing percentile p = min((1 - 1/C) * 100, 95) (float64, in this order) and threshold index
   k = int((N * p) // 100) (float floor division, so k can be one below the exact value).
2. Per neuron d: positive threshold t+ = the ascending-sorted column at position k, negative
   threshold t- = the descending-sorted column at position k; global firing rate
   g = mean(F >= t+) (non-strict).
3. For each set with at least ``min_set_size`` images, in sorted set-id order: pos = #(F > t+),
   neg = #(F < t-) (both strict), m = max(pos, neg) per neuron; where m > 0 the set adds
   m / set_size to its class's numerator and 1 to its class's count. A set's class is the label
   of its first row. Smaller sets are skipped here but still count for t+, t-, g and C.
4. local = numerator / (count + 1e-20), shape (C, D); score = local / g.
5. Per class, sort the score descending; the top-k value is cumsum[k-1] / k.
6. Reported number: the unweighted mean over classes times (100 - p).

``tied_units`` counts the neurons whose t+ is their own minimum (ReLU units silent on more than
p % of the images: t+ = 0): for them g = 1 and "firing" is any value above the minimum, so their
score rests on ties rather than on a top-(100 - p) % response. Reported beside the score, never
changing it (the authors' script has no such count).

Rows of every (C, ...) output follow ``classes`` (the sorted distinct labels).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

    ArrayLike = np.ndarray | torch.Tensor
else:
    ArrayLike = Any

EPS = 1e-20                                                                     # the original's guard on the count
MAX_PERCENTILE = 95.0


class InvarianceError(ValueError):
    """Inputs the invariance score cannot be computed from."""


def _to_numpy(x: ArrayLike, floating: bool = False) -> np.ndarray:
    """A numpy view or copy of ``x`` (numpy array, torch tensor or sequence); float64 if ``floating``."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):                              # torch.Tensor, without importing torch
        t = x.detach().cpu()
        if floating and t.is_floating_point():
            t = t.double()                                                      # bfloat16 has no numpy dtype
        x = t.numpy()
    a = np.asarray(x)
    return a.astype(np.float64, copy=False) if floating else a


def _check_options(min_set_size: int, top: tuple[int, ...]) -> None:
    if int(min_set_size) < 1:
        raise InvarianceError(f"invariance: min_set_size must be >= 1, got {min_set_size}")
    if len(top) == 0 or any(int(k) < 1 for k in top):
        raise InvarianceError(f"invariance: top must be a non-empty tuple of positive ints, got {top}")


def _check_inputs(f: np.ndarray, sets: np.ndarray, labels: np.ndarray, top: tuple[int, ...]) -> None:
    if f.ndim != 2:
        raise InvarianceError(f"invariance: features must be a 2-D (N, D) array, got shape {f.shape}")
    n, d = f.shape
    for name, a in (("set_ids", sets), ("labels", labels)):
        if a.ndim != 1 or len(a) != n:
            raise InvarianceError(f"invariance: {name} must have shape ({n},) like the feature rows, "
                                  f"got {a.shape}")
    bad = int((~np.isfinite(f)).any(axis=1).sum())
    if bad:
        raise InvarianceError(f"invariance: features contain NaN or inf in {bad} of {n} rows")
    need = max(int(k) for k in top)
    if d < need:
        raise InvarianceError(f"invariance: top-{need} needs at least {need} neurons, got D = {d}")


def firing_percentile(num_classes: int) -> float:
    """p = min((1 - 1/C) * 100, 95), in float64 and in the original's order of operations."""
    return min((1.0 - 1.0 / num_classes) * 100.0, MAX_PERCENTILE)


def threshold_index(n: int, percentile: float) -> int:
    """k = int((N * p) // 100): float floor division, as the original."""
    return int((n * percentile) // 100)


def _thresholds(f: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per column: the value at ascending position k (t+) and at descending position k (t-)."""
    n = f.shape[0]
    part = np.partition(f, sorted({k, n - 1 - k}), axis=0)                      # order statistics = sorted values
    return part[k].copy(), part[n - 1 - k].copy()


def _group_sets(sets: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sorted distinct set ids, a stable row order grouping each set's rows (sets in sorted-id
    order, rows in their original order), the start of each set in that order, each set's first
    row and each set's size."""
    uniq, first, inverse, size = np.unique(sets, return_index=True, return_inverse=True, return_counts=True)
    order = np.argsort(inverse.ravel(), kind="stable")
    starts = np.concatenate(([0], np.cumsum(size)[:-1]))
    return uniq, order, starts, first, size


def _set_counts(f: np.ndarray, order: np.ndarray, starts: np.ndarray, pos_t: np.ndarray,
                neg_t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(S, D) int64 per-set counts of strict positive (F > t+) and strict negative (F < t-) firing;
    ``order`` groups the rows set by set, ``starts`` is where each set begins in it. (The boolean
    masks are reordered rather than F: 1 byte per entry instead of 8.)"""
    pos = np.add.reduceat((f > pos_t)[order], starts, axis=0, dtype=np.int64)
    neg = np.add.reduceat((f < neg_t)[order], starts, axis=0, dtype=np.int64)
    return pos, neg


def _local_firing(pos: np.ndarray, neg: np.ndarray, size: np.ndarray, set_class: np.ndarray,
                  num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Local firing rate (C, D) and the number of contributing sets (C, D), float64; the rows
    of ``pos`` / ``neg`` are the used sets in sorted set-id order, accumulated in that order."""
    m = np.maximum(pos, neg)
    total = np.zeros((num_classes, m.shape[1]), np.float64)
    count = np.zeros_like(total)
    np.add.at(total, set_class, m / size[:, None].astype(np.float64))           # m = 0 adds exactly 0.0
    np.add.at(count, set_class, (m > 0).astype(np.float64))
    return total / (count + EPS), count


def _top_k_means(score: np.ndarray, top: tuple[int, ...]) -> dict[int, np.ndarray]:
    """Per class (row): the running mean cumsum / (1..D) of the descending-sorted row, at each k."""
    ranked = -np.sort(-score, axis=1)
    cummean = np.cumsum(ranked, axis=1) / np.arange(1, score.shape[1] + 1, dtype=np.float64)
    return {int(k): cummean[:, int(k) - 1].copy() for k in top}


def invariance_score(features: ArrayLike, set_ids: ArrayLike, labels: ArrayLike, *,
                     min_set_size: int = 3, top: tuple[int, ...] = (10, 25)) -> dict[str, Any]:
    """The firing-rate invariance score of ``features`` (N, D) over sets ``set_ids`` (N,) of
    images with class ``labels`` (N,); numpy arrays or torch tensors, computed in float64.

    Returns a dict: ``top{k}`` (float, the reported number for each k in ``top``: the mean over
    classes of ``per_class[k]`` times (100 - p)); ``per_class`` {k: (C,)} the per-class top-k
    mean score before scaling; ``classes`` (C,) sorted distinct labels (row order of the (C, ...)
    arrays); ``percentile`` p; ``threshold_index`` k; ``thresholds`` / ``neg_thresholds`` (D,);
    ``global_firing`` (D,); ``local_firing`` / ``local_count`` (C, D); ``set_ids`` (S,) sorted
    distinct set ids, ``set_size`` (S,), ``set_class`` (S,) label of each set's first row;
    ``sets_used`` / ``sets_skipped`` (sets with fewer than ``min_set_size`` images);
    ``tied_units`` (neurons whose t+ is their minimum, see the module docstring).
    Raises :class:`InvarianceError` on inputs it cannot score.
    """
    top = tuple(int(k) for k in top)
    _check_options(min_set_size, top)
    f = _to_numpy(features, floating=True)
    sets, labs = _to_numpy(set_ids), _to_numpy(labels)
    _check_inputs(f, sets, labs, top)
    classes, label_index = np.unique(labs, return_inverse=True)
    if len(classes) < 2:
        raise InvarianceError(f"invariance: needs at least 2 classes, got {len(classes)}")
    uniq, order, starts, first, size = _group_sets(sets)
    used = size >= min_set_size
    if not used.any():
        raise InvarianceError(f"invariance: no set has at least {min_set_size} images "
                              f"({len(uniq)} sets, the largest has {int(size.max())})")

    n = f.shape[0]
    p = firing_percentile(len(classes))
    k = threshold_index(n, p)
    pos_t, neg_t = _thresholds(f, k)
    global_firing = (f >= pos_t).sum(axis=0) / n
    pos, neg = _set_counts(f, order, starts, pos_t, neg_t)
    set_class_index = label_index.ravel()[first]
    local, count = _local_firing(pos[used], neg[used], size[used], set_class_index[used], len(classes))
    per_class = _top_k_means(local / global_firing, top)

    scale = 100.0 - p
    out: dict[str, Any] = {f"top{k_}": float(np.mean(v) * scale) for k_, v in per_class.items()}
    out.update(per_class=per_class, classes=classes, percentile=p, threshold_index=k, thresholds=pos_t,
               neg_thresholds=neg_t, global_firing=global_firing, local_firing=local, local_count=count,
               set_ids=uniq, set_size=size, set_class=classes[set_class_index],
               sets_used=int(used.sum()), sets_skipped=int((~used).sum()),
               tied_units=int((pos_t <= f.min(axis=0)).sum()))
    return out
