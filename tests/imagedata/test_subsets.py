"""Class-stratified subsets (imagedata.subsets): nested labelled subsets and validation splits."""
from __future__ import annotations

import numpy as np
import pytest

from imagedata.subsets import balanced_subset, stratified_split


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_balanced_subsets_are_balanced_nested_and_seeded(seed: int) -> None:
    y = np.repeat(np.arange(5), [40, 30, 20, 10, 3])
    y = np.concatenate([y, [-1, -1]])                                   # unlabelled rows are never picked
    subsets = {n: balanced_subset(y, n, seed) for n in (5, 25, 60, 100)}
    for n, rows in subsets.items():
        assert len(rows) == n and len(set(rows)) == n and (y[rows] >= 0).all()
        counts = np.bincount(y[rows], minlength=5)
        full = np.bincount(y[y >= 0], minlength=5)
        # as equal as possible: a class below the others only when it has run out
        assert all(counts[c] >= min(counts.max() - 1, full[c]) for c in range(5))
    assert set(subsets[5]) <= set(subsets[25]) <= set(subsets[60]) <= set(subsets[100])
    np.testing.assert_array_equal(balanced_subset(y, 25, seed), subsets[25])
    assert not np.array_equal(balanced_subset(y, 25, seed + 10), subsets[25])
    np.testing.assert_array_equal(balanced_subset(y, 0, seed), np.flatnonzero(y >= 0))
    np.testing.assert_array_equal(balanced_subset(y, 10_000, seed), np.flatnonzero(y >= 0))


@pytest.mark.parametrize("seed", [0, 1])
def test_stratified_split_holds_out_a_fraction_of_every_class(seed: int) -> None:
    y = np.repeat(np.arange(4), [20, 10, 5, 1])
    fit, val = stratified_split(y, 0.2, seed)
    assert np.all(np.diff(fit) > 0) and np.all(np.diff(val) > 0)
    np.testing.assert_array_equal(np.sort(np.concatenate([fit, val])), np.arange(y.size))
    np.testing.assert_array_equal(np.bincount(y[val], minlength=4), [4, 2, 1, 0])   # round(0.2 * n_c)
    assert set(y[fit]) == {0, 1, 2, 3}                                              # one row always stays
    again = stratified_split(y, 0.2, seed)
    np.testing.assert_array_equal(again[1], val)
    assert not np.array_equal(stratified_split(y, 0.2, seed + 10)[1], val)
    assert stratified_split(y, 1.0, seed)[0].size == 4                              # all but one per class
