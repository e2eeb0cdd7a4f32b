"""evaluate.linear: known answers (separable -> ~100 %, random labels -> chance), sklearn agreement, errors."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from evaluate.linear import LinearConfig, linear_probe


def gaussians(n: int, k: int, d: int, spread: float, seed: int, scales: np.ndarray | None = None,
              means: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n rows of k Gaussian classes in d dims (class means ~ N(0, spread^2), unit noise), per-feature scales."""
    rng = np.random.default_rng(seed)
    means = rng.normal(0, spread, (k, d)) if means is None else means
    y = rng.integers(0, k, n)
    x = means[y] + rng.normal(size=(n, d))
    return (x if scales is None else x * scales), y, means


def split(n_train: int, n_test: int, k: int, d: int, spread: float, seed: int = 0):
    scales = np.exp(np.random.default_rng(seed + 100).normal(0, 1, d))         # features of very different scales
    xtr, ytr, means = gaussians(n_train, k, d, spread, seed, scales)
    xte, yte, _ = gaussians(n_test, k, d, spread, seed + 1, scales, means)
    return xtr, ytr, xte, yte


def chance_tolerance(n: int, k: int) -> float:
    """4 standard deviations (percent) of the accuracy of n test labels drawn uniformly from k classes
    independently of the features: the number correct is Binomial(n, 1/k) whatever the classifier."""
    p = 1 / k
    return 400 * math.sqrt(p * (1 - p) / n)


@pytest.mark.parametrize("k", [2, 5, 10])
def test_separable_clusters_near_100(k: int) -> None:
    xtr, ytr, xte, yte = split(400, 400, k, 16, spread=3.0)
    r = linear_probe(xtr, ytr, xte, yte)
    assert r["top1"] > 95
    assert ("top5" in r) == (k >= 5)
    if k >= 5:
        assert r["top5"] >= r["top1"]
    assert r["best_c"] in LinearConfig().c_grid


@pytest.mark.parametrize("k", [2, 4])
def test_random_labels_at_chance(k: int) -> None:
    rng = np.random.default_rng(1)
    n_test = 1500
    xtr, xte = rng.normal(size=(600, 32)), rng.normal(size=(n_test, 32))
    ytr, yte = rng.integers(0, k, 600), rng.integers(0, k, n_test)
    r = linear_probe(xtr, ytr, xte, yte)
    assert abs(r["top1"] - 100 / k) < chance_tolerance(n_test, k)


@pytest.mark.parametrize("k", [2, 4])
def test_agrees_with_sklearn(k: int) -> None:
    """Overlapping classes (~75-90 %): same test accuracy as LogisticRegression(C=best_c) within 1 point."""
    xtr, ytr, xte, yte = split(800, 2000, k, 20, spread=0.5)
    r = linear_probe(xtr, ytr, xte, yte)
    assert 60 < r["top1"] < 97                                                 # a non-trivial problem
    sc = StandardScaler().fit(xtr)
    clf = LogisticRegression(C=r["best_c"], max_iter=1000).fit(sc.transform(xtr), ytr)
    assert abs(r["top1"] - 100 * clf.score(sc.transform(xte), yte)) <= 1.0


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("c", [0.01, 1.0])
def test_same_c_same_model_as_sklearn(k: int, c: float) -> None:
    """At a fixed C (float64, tight tolerance) the class probabilities equal sklearn's (binary: C -> C / 2)."""
    xtr, ytr, xte, yte = split(300, 200, k, 8, spread=0.5, seed=3)
    r = linear_probe(xtr, ytr, xte, yte, LinearConfig(c_grid=(c,), dtype="float64", tol=1e-8),
                     return_model=True)
    sc = StandardScaler().fit(xtr)
    clf = LogisticRegression(C=c, max_iter=10_000, tol=1e-8).fit(sc.transform(xtr), ytr)
    z = r["model"].decision_function(xte)
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    np.testing.assert_allclose(p, clf.predict_proba(sc.transform(xte)), atol=1e-4)
    assert r["best_c"] == c and "val_top1" not in r


def test_torch_and_numpy_inputs_agree_and_seeded() -> None:
    xtr, ytr, xte, yte = split(300, 300, 4, 8, spread=0.5)
    a = linear_probe(xtr, ytr, xte, yte)
    b = linear_probe(torch.from_numpy(xtr).float(), torch.from_numpy(ytr), torch.from_numpy(xte).float(),
                     torch.from_numpy(yte))
    assert a["best_c"] == b["best_c"]
    assert abs(a["top1"] - b["top1"]) <= 0.5
    assert linear_probe(xtr, ytr, xte, yte) == a


def test_string_labels_and_unseen_test_label() -> None:
    """Labels are any sortable values; a test label never seen in training just counts as an error."""
    xtr, ytr, xte, yte = split(200, 200, 3, 8, spread=3.0)
    names = np.array(["cat", "dog", "eel"])
    yte_names = names[yte].astype("<U5")
    yte_names[:50] = "zebra"
    r = linear_probe(xtr, names[ytr], xte, yte_names, LinearConfig(c_grid=(1.0,)))
    assert 70 < r["top1"] <= 75                                                # 150 / 200 seen, all right


def bad(**kw):
    xtr, ytr, xte, yte = split(40, 20, 3, 4, spread=1.0)
    args = {"train_x": xtr, "train_y": ytr, "test_x": xte, "test_y": yte} | kw
    return args


@pytest.mark.parametrize("args, match", [
    (bad(train_x=np.zeros((0, 4)), train_y=np.zeros(0, int)), "train_x must be a non-empty"),
    (bad(test_x=np.zeros((0, 4)), test_y=np.zeros(0, int)), "test_x must be a non-empty"),
    (bad(train_y=np.zeros(40, int)), "train_y has 1 class"),
    (bad(train_x=np.full((40, 4), np.nan)), "train_x contains NaN"),
    (bad(test_x=np.full((20, 4), np.inf)), "test_x contains NaN or infinite"),
    (bad(test_x=np.zeros((20, 5))), "4 features but test_x has 5"),
    (bad(train_y=np.zeros(39, int)), "train_y must be a 1-D array of 40"),
    (bad(train_x=np.zeros(40)), "train_x must be a non-empty"),
])
def test_bad_inputs(args: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        linear_probe(**args)


@pytest.mark.parametrize("cfg, match", [
    (LinearConfig(c_grid=()), "c_grid"),
    (LinearConfig(c_grid=(1.0, -1.0)), "c_grid"),
    (LinearConfig(val_frac=1.0), "val_frac"),
    (LinearConfig(dtype="float16"), "dtype"),
])
def test_bad_config(cfg: LinearConfig, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        linear_probe(**bad(), cfg=cfg)


def test_empty_validation_split() -> None:
    x = np.eye(3)
    with pytest.raises(ValueError, match="validation split is empty"):
        linear_probe(x, [0, 1, 2], x, [0, 1, 2])
    assert linear_probe(x, [0, 1, 2], x, [0, 1, 2], LinearConfig(c_grid=(100.0,)))["top1"] == 100.0
