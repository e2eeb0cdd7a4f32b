"""Class-stratified subsets of a labelled set: nested labelled subsets and validation splits.

Both are pure functions of the integer targets and a seed, so the same seed picks the same rows
on every machine.
"""
from __future__ import annotations

import numpy as np


def balanced_subset(targets: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Sorted indices of ``size`` labelled examples (targets >= 0), as equal per class as possible.

    Each class's examples are shuffled with ``seed``; examples are then taken round-robin over
    classes (rank within class first), so subsets of one seed are nested. ``size`` <= 0 or larger
    than the labelled set -> every labelled example.
    """
    targets = np.asarray(targets)
    labelled = np.flatnonzero(targets >= 0)
    if size <= 0 or size >= labelled.size:
        return labelled
    rng = np.random.default_rng(seed)
    rank = np.empty(labelled.size, dtype=np.int64)
    for c in np.unique(targets[labelled]):
        members = np.flatnonzero(targets[labelled] == c)
        rank[rng.permutation(members)] = np.arange(members.size)
    tiebreak = rng.permutation(labelled.size)
    order = np.lexsort((tiebreak, rank))
    return np.sort(labelled[order[:size]])


def stratified_split(y: np.ndarray, val_frac: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (fit, val): round(val_frac * n_c) rows of each class c go to val, at least one row stays in fit."""
    rng = np.random.default_rng(seed)
    fit, val = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_val = min(int(round(val_frac * len(idx))), len(idx) - 1)
        val.append(idx[:n_val])
        fit.append(idx[n_val:])
    return np.sort(np.concatenate(fit)), np.sort(np.concatenate(val))
