"""evaluate.knn: known answers, chunking, a brute-force reference, several k at once, errors."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from evaluate.knn import knn_classifier, knn_predict, knn_sweep


def clusters(n: int, k: int, d: int, spread: float, seed: int, means: np.ndarray | None = None):
    rng = np.random.default_rng(seed)
    means = rng.normal(0, spread, (k, d)) if means is None else means
    y = rng.integers(0, k, n)
    return (means[y] + rng.normal(size=(n, d))).astype(np.float32), y, means


@pytest.mark.parametrize("k", [1, 5, 20])
@pytest.mark.parametrize("classes", [3, 10])
def test_separable_clusters_near_100(k: int, classes: int) -> None:
    xtr, ytr, means = clusters(500, classes, 16, 3.0, 0)
    xte, yte, _ = clusters(300, classes, 16, 3.0, 1, means)
    r = knn_classifier(xtr, ytr, xte, yte, k=k)
    assert r["top1"] > 95
    assert ("top5" in r) == (classes >= 5)


@pytest.mark.parametrize("classes", [2, 5])
def test_random_labels_at_chance(classes: int) -> None:
    """Test labels uniform and independent of everything: #correct ~ Binomial(n, 1/C); allow 4 sigma."""
    rng = np.random.default_rng(2)
    n = 1500
    xtr, xte = rng.normal(size=(800, 32)), rng.normal(size=(n, 32))
    ytr, yte = rng.integers(0, classes, 800), rng.integers(0, classes, n)
    p = 1 / classes
    r = knn_classifier(xtr, ytr, xte, yte)
    assert abs(r["top1"] - 100 * p) < 400 * math.sqrt(p * (1 - p) / n)


def brute_force(xtr: np.ndarray, ytr: np.ndarray, xte: np.ndarray, k: int, t: float, c: int) -> np.ndarray:
    """The weighted vote written out with loops, in float64."""
    a = xtr / np.linalg.norm(xtr, axis=1, keepdims=True)
    out = np.zeros((len(xte), c))
    for i, q in enumerate(xte):
        sim = [float(np.dot(q / np.linalg.norm(q), a[j])) for j in range(len(a))]
        for j in sorted(range(len(a)), key=lambda j: -sim[j])[:k]:
            out[i, ytr[j]] += math.exp(sim[j] / t)
    return out


@pytest.mark.parametrize("k, t", [(1, 0.07), (3, 0.07), (4, 0.5), (50, 0.1)])
def test_matches_brute_force(k: int, t: float) -> None:
    rng = np.random.default_rng(3)
    xtr, xte = rng.normal(size=(12, 5)), rng.normal(size=(7, 5))
    ytr = rng.integers(0, 4, 12)
    got = knn_predict(xtr, ytr, xte, k=k, temperature=t, num_classes=6, chunk=3)
    assert got.shape == (7, 6)
    np.testing.assert_allclose(got.numpy(), brute_force(xtr, ytr, xte, k, t, 6), rtol=1e-10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("chunk", [1, 7, 33, 64, 100, 10_000])
def test_chunked_equals_unchunked(chunk: int, dtype: type) -> None:
    """Bit for bit (odd chunk sizes would take other BLAS kernels without the fixed-shape blocks)."""
    xtr, ytr, means = clusters(300, 6, 16, 0.5, 0)
    xte, yte, _ = clusters(200, 6, 16, 0.5, 1, means)
    xtr, xte = xtr.astype(dtype), xte.astype(dtype)
    whole = knn_predict(xtr, ytr, xte, chunk=len(xte))
    assert torch.equal(knn_predict(xtr, ytr, xte, chunk=chunk), whole)
    assert knn_classifier(xtr, ytr, xte, yte, chunk=chunk) == knn_classifier(xtr, ytr, xte, yte, chunk=len(xte))


def test_sweep_equals_single_k_and_matches_scores() -> None:
    xtr, ytr, means = clusters(300, 6, 16, 0.5, 0)
    xte, yte, _ = clusters(250, 6, 16, 0.5, 1, means)
    sweep = knn_sweep(xtr, ytr, xte, yte, ks=(1, 10, 20, 1000), chunk=64)
    for k, r in sweep.items():
        assert r == knn_classifier(xtr, ytr, xte, yte, k=k)
        pred = knn_predict(xtr, ytr, xte, k=k).argmax(1).numpy()
        assert r["top1"] == pytest.approx(100 * np.mean(pred == yte))
    assert 40 < sweep[20]["top1"] < 99                                         # overlapping: a real test


def test_torch_input_and_unseen_test_label() -> None:
    xtr, ytr, means = clusters(100, 3, 8, 3.0, 0)
    xte, yte, _ = clusters(100, 3, 8, 3.0, 1, means)
    yte[:10] = 7                                                                # a class never seen in training
    r = knn_classifier(torch.from_numpy(xtr), torch.from_numpy(ytr), torch.from_numpy(xte), torch.from_numpy(yte))
    assert 85 < r["top1"] <= 90 and "top5" in r                               # labels 0..7: 8 classes


def args(**kw) -> dict:
    rng = np.random.default_rng(0)
    return {"train_x": rng.normal(size=(10, 3)), "train_y": rng.integers(0, 3, 10),
            "test_x": rng.normal(size=(4, 3)), "test_y": rng.integers(0, 3, 4)} | kw


@pytest.mark.parametrize("kw, match", [
    ({"train_x": np.zeros((0, 3)), "train_y": np.zeros(0, int)}, "train_x must be a non-empty"),
    ({"test_x": np.zeros((0, 3)), "test_y": np.zeros(0, int)}, "test_x must be a non-empty"),
    ({"train_x": np.full((10, 3), np.nan)}, "train_x contains NaN"),
    ({"test_x": np.full((4, 3), np.inf)}, "test_x contains NaN"),
    ({"test_x": np.zeros((4, 2))}, "3 features but test_x has 2"),
    ({"train_y": np.zeros(10)}, "integer class indices"),
    ({"train_y": -np.ones(10, int)}, "non-negative"),
    ({"test_y": np.zeros(5, int)}, "1-D array of 4 labels"),
    ({"k": 0}, "k must be >= 1"),
    ({"temperature": 0.0}, "temperature"),
    ({"chunk": 0}, "chunk"),
])
def test_bad_inputs(kw: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        knn_classifier(**args(**kw))


def test_predict_num_classes_too_small() -> None:
    a = args()
    with pytest.raises(ValueError, match="num_classes"):
        knn_predict(a["train_x"], a["train_y"] * 0 + 2, a["test_x"], num_classes=2)
