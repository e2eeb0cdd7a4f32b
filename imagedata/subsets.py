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


def stratified_subset(targets: np.ndarray, size: int | None, seed: int = 0) -> np.ndarray:
    """Sorted indices of ``size`` examples drawn class-stratified with ``seed``: each class (and the
    unlabelled examples, target -1, as one more stratum) keeps its share of the set, rounded by
    largest remainder so the shares add up to ``size``; within a class the examples are a seeded
    random draw. ``size`` None, <= 0 or >= the set -> every example.

    What every image limit uses (``--train-limit`` / ``--test-limit``, the finetuning test set, the
    dense tasks' limits): the first N images of a class-sorted folder would be a few classes.
    """
    targets = np.asarray(targets)
    n = targets.size
    if size is None or size <= 0 or size >= n:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(targets, return_counts=True)
    quota = counts * size / n
    take = np.floor(quota).astype(np.int64)
    order = np.argsort(-(quota - take), kind="stable")
    take[order[:size - int(take.sum())]] += 1
    picked = [rng.permutation(np.flatnonzero(targets == c))[:k] for c, k in zip(classes, take)]
    return np.sort(np.concatenate(picked))
