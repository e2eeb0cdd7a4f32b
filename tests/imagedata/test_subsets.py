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


@pytest.mark.parametrize("size", [1, 7, 50, 99])
def test_stratified_subsets_keep_each_class_share(size: int) -> None:
    from imagedata.subsets import stratified_subset
    y = np.concatenate([np.repeat(np.arange(4), [40, 30, 20, 8]), [-1, -1]])    # class-sorted, 2 unlabelled
    rows = stratified_subset(y, size, seed=3)
    assert len(rows) == size and len(set(rows)) == size and (np.diff(rows) > 0).all()
    strata, full = np.unique(y, return_counts=True)
    got = np.array([(y[rows] == c).sum() for c in strata])
    assert (np.abs(got - full * size / len(y)) < 1).all()                     # largest-remainder shares
    assert np.array_equal(rows, stratified_subset(y, size, seed=3))           # seeded
    assert np.array_equal(stratified_subset(y, 0, 0), np.arange(len(y)))      # 0: everything


def test_a_limit_on_a_class_sorted_imagefolder_draws_every_class(tmp_path, tiny_ckpt) -> None:
    """``--train-limit 100`` on a class-sorted 10-class ImageFolder: all 10 classes, 10 each (the
    first 100 images would have been 7 classes)."""
    from PIL import Image

    from measure import features as F
    for c in range(10):
        for j in range(15):
            folder = tmp_path / "data" / "train" / f"class{c:02d}"
            folder.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (8, 8), (20 * c, 5 * j, 0)).save(folder / f"{j:03d}.png")
    fs = F.extract(tiny_ckpt, tmp_path / "data", "train", limit=100, cache_dir=tmp_path / "cache", image_size=8,
                   progress=False)
    assert len(fs.targets) == 100 and np.array_equal(np.bincount(fs.targets, minlength=10), np.full(10, 10))
    assert set(fs.indices.tolist()) <= set(range(150))
    assert np.array_equal(fs.targets, np.repeat(np.arange(10), 15)[fs.indices])
