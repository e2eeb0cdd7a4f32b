"""evaluate.clustering: Hungarian accuracy, k-means metrics on known answers, 2-D embeddings, errors."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from evaluate.clustering import cluster_metrics, contingency, embed_2d, hungarian_accuracy, kmeans


def blobs(n: int, k: int, d: int, spread: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % k)                                       # every class present
    return rng.normal(0, spread, (k, d))[y] + rng.normal(size=(n, d)), y


@pytest.mark.parametrize("k", [2, 5, 12])
def test_hungarian_of_a_permuted_labelling_is_100(k: int) -> None:
    rng = np.random.default_rng(k)
    labels = rng.integers(0, k, 300)
    pred = rng.permutation(k)[labels] + 100                                     # renamed clusters
    assert hungarian_accuracy(pred, labels) == 100.0
    assert hungarian_accuracy(torch.from_numpy(pred), torch.from_numpy(labels)) == 100.0


@pytest.mark.parametrize("pred, labels, expected", [
    ([0, 0, 1, 1, 2, 2], [0, 0, 0, 1, 1, 1], 400 / 6),                          # more clusters than classes
    ([0, 0, 0, 0, 0, 0], [0, 0, 0, 1, 1, 2], 50.0),                             # one cluster: its best class
    ([5, 5, 7, 7], ["a", "b", "b", "b"], 75.0),                                  # any label values
    ([0, 1, 2, 3], [0, 0, 1, 1], 50.0),                                         # every row its own cluster
])
def test_hungarian_hand_cases(pred: list, labels: list, expected: float) -> None:
    assert hungarian_accuracy(np.array(pred), np.array(labels)) == pytest.approx(expected)


def test_contingency() -> None:
    np.testing.assert_array_equal(contingency(np.array([3, 3, 9]), np.array([1, 2, 2])), [[1, 1], [0, 1]])


@pytest.mark.parametrize("k", [3, 6])
def test_separable_blobs_are_recovered(k: int) -> None:
    x, y = blobs(300, k, 8, spread=10.0)
    m = cluster_metrics(x, y, seed=0)
    assert m["nmi"] == pytest.approx(1.0) and m["ari"] == pytest.approx(1.0) and m["acc"] == 100.0
    assert cluster_metrics(torch.from_numpy(x).float(), torch.from_numpy(y), seed=0) == m


def test_random_features_score_near_zero() -> None:
    """Clusters of pure noise are independent of the labels: for n = 1200 and 4 x 4 clusters / classes the
    expected NMI is ~ (4-1)^2 / (2 n ln 4) ~ 0.003 and ARI ~ 0 with sd ~ 1/n; accuracy near 25 %
    (the best matching of 4 nearly equal splits sits a few points above 25)."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(1200, 8)), rng.integers(0, 4, 1200)
    m = cluster_metrics(x, y, seed=0, n_init=2)
    assert m["nmi"] < 0.02 and abs(m["ari"]) < 0.02 and m["acc"] < 32


def test_more_clusters_than_classes_and_seeded() -> None:
    x, y = blobs(240, 3, 8, spread=10.0)
    m = cluster_metrics(x, y, n_clusters=6, seed=1, n_init=3)
    assert m["acc"] < 100 and 0 < m["nmi"] < 1                                  # the unmatched clusters count as errors
    assert cluster_metrics(x, y, n_clusters=6, seed=1, n_init=3) == m
    np.testing.assert_array_equal(kmeans(x, 6, seed=1, n_init=3), kmeans(x, 6, seed=1, n_init=3))


def test_l2_normalize_clusters_directions() -> None:
    """Two classes that differ only in direction, at very different norms: raw k-means splits by norm."""
    rng = np.random.default_rng(0)
    y = np.arange(200) % 2
    direction = np.where(y[:, None] == 0, [1.0, 0.0], [0.0, 1.0]) + 0.05 * rng.normal(size=(200, 2))
    x = direction * np.where(np.arange(200) % 4 < 2, 1.0, 50.0)[:, None]
    assert cluster_metrics(x, y, l2_normalize=True)["acc"] == 100.0
    assert cluster_metrics(x, y)["acc"] < 100.0


def test_embed_2d_tsne_deterministic_and_capped() -> None:
    """One thread: OpenMP's spin-waiting makes t-SNE ~100x slower on a 2-core machine that is busy."""
    x, y = blobs(120, 3, 64, spread=5.0)
    a = embed_2d(x, seed=0, n_threads=1)
    assert a.shape == (120, 2) and np.isfinite(a).all()
    np.testing.assert_array_equal(a, embed_2d(x, seed=0, n_threads=1))
    assert cluster_metrics(a, y)["acc"] == 100.0                               # the blobs stay apart in 2-D
    c = embed_2d(x, seed=0, max_points=50, n_threads=1)
    assert c.shape == (120, 2) and np.isfinite(c).all(1).sum() == 50


@pytest.mark.skipif(importlib.util.find_spec("umap") is not None, reason="umap-learn is installed")
def test_umap_missing_is_a_clear_error() -> None:
    with pytest.raises(ImportError, match="umap-learn"):
        embed_2d(np.zeros((10, 3)), method="umap")


@pytest.mark.skipif(importlib.util.find_spec("faiss") is not None, reason="faiss is installed")
def test_faiss_missing_is_a_clear_error() -> None:
    with pytest.raises(ImportError, match="faiss"):
        kmeans(np.zeros((10, 3)), 2, backend="faiss")


@pytest.mark.parametrize("call, match", [
    (lambda: cluster_metrics(np.zeros((0, 3)), np.zeros(0)), "non-empty"),
    (lambda: cluster_metrics(np.full((5, 3), np.nan), np.zeros(5)), "NaN"),
    (lambda: cluster_metrics(np.zeros((5, 3)), np.zeros(4)), "1-D array of 5 labels"),
    (lambda: cluster_metrics(np.zeros((5, 3)), np.zeros(5), n_clusters=6), "n_clusters"),
    (lambda: kmeans(np.zeros((5, 3)), 2, backend="cuml"), "unknown backend"),
    (lambda: hungarian_accuracy(np.zeros(3), np.zeros(4)), "1-D array of 3 labels"),
    (lambda: hungarian_accuracy(np.zeros(0), np.zeros(0)), "non-empty"),
    (lambda: embed_2d(np.zeros((10, 3)), method="pca"), "unknown method"),
    (lambda: embed_2d(np.zeros((3, 3))), "at least 4 rows"),
])
def test_bad_inputs(call, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()
