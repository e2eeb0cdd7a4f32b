"""Weighted k-nearest-neighbour classifier on frozen features (a pure function of features).

Wu et al., "Unsupervised Feature Learning via Non-Parametric Instance Discrimination" (CVPR 2018,
sec. 3.4), as in DINO's ``knn_classifier`` (Caron et al., ICCV 2021) and lightly's ``knn_predict``:
features are L2-normalised, each test row takes its k most cosine-similar training rows, and each
neighbour votes for its class with weight exp(sim / T). Defaults k = 20, T = 0.07 (DINO, lightly).

The test set is processed ``chunk`` rows at a time: memory is O(N_train * (D + chunk)) for any
number of test rows, and one similarity pass serves several k at once (``knn_sweep``). Labels are
non-negative integers; score column c is class c.

Chunking does not change any result, to the bit: BLAS chooses its kernel, hence the order of the
sums in a dot product, from the shape of the product (odd or tiny row counts take other paths), so
similarities are computed in zero-padded blocks of a fixed ``BLOCK`` rows and a row's result
depends on that row alone. (chunk below BLOCK still works but wastes the padding.)
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

ArrayLike = np.ndarray | torch.Tensor
BLOCK = 64                                                                      # test rows per matrix product


def _features(x: ArrayLike, name: str, device: torch.device | None = None) -> torch.Tensor:
    t = x.detach() if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x))
    if t.ndim != 2 or t.shape[0] == 0:
        raise ValueError(f"knn: {name} must be a non-empty (N, D) array, got shape {tuple(t.shape)}")
    if not t.is_floating_point():
        t = t.float()
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"knn: {name} contains NaN or infinite values")
    return t if device is None else t.to(device)


def _labels(y: ArrayLike, n: int, name: str, device: torch.device) -> torch.Tensor:
    t = y.detach() if isinstance(y, torch.Tensor) else torch.from_numpy(np.asarray(y))
    if t.ndim != 1 or len(t) != n:
        raise ValueError(f"knn: {name} must be a 1-D array of {n} labels, got shape {tuple(t.shape)}")
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise ValueError(f"knn: {name} must hold integer class indices, got {t.dtype}")
    if len(t) and int(t.min()) < 0:
        raise ValueError(f"knn: {name} must be non-negative class indices, got {int(t.min())}")
    return t.to(device=device, dtype=torch.int64)


def _check(ks: Sequence[int], temperature: float, chunk: int) -> None:
    if not ks or min(ks) < 1:
        raise ValueError(f"knn: k must be >= 1, got {list(ks)}")
    if temperature <= 0:
        raise ValueError(f"knn: temperature must be > 0, got {temperature}")
    if chunk < 1:
        raise ValueError(f"knn: chunk must be >= 1, got {chunk}")


def _similarity(test: torch.Tensor, train: torch.Tensor) -> torch.Tensor:
    """(b, N) = test (b, D) @ train (N, D).T, as fixed-shape (BLOCK, D) @ (D, N) products (see module docstring)."""
    b = len(test)
    padded = torch.zeros(-(-b // BLOCK) * BLOCK, test.shape[1], dtype=test.dtype, device=test.device)
    padded[:b] = test
    out = torch.empty(len(padded), len(train), dtype=test.dtype, device=test.device)
    for s in range(0, len(padded), BLOCK):
        torch.mm(padded[s:s + BLOCK], train.T, out=out[s:s + BLOCK])
    return out[:b]


def _chunk_scores(train: torch.Tensor, train_y: torch.Tensor, test: torch.Tensor, ks: Sequence[int],
                  temperature: float, num_classes: int, chunk: int) -> Iterator[tuple[slice, dict[int, torch.Tensor]]]:
    """For each chunk of test rows: (its rows, {k: (b, C) float64 scores}); train, test L2-normalised.

    k larger than the training set uses every training row.
    """
    kmax = min(max(ks), len(train))
    for s in range(0, len(test), chunk):
        rows = slice(s, min(s + chunk, len(test)))
        sim = _similarity(test[rows], train)                                   # (b, N) cosine similarities
        top_sim, top_idx = sim.topk(kmax, dim=1)                               # (b, kmax), most similar first
        top_y = train_y[top_idx]
        weight = (top_sim.double() / temperature).exp()                        # float64: f32 overflows for T < 0.012
        scores = {}
        for k in ks:
            kk = min(k, kmax)
            out = torch.zeros(top_y.shape[0], num_classes, dtype=torch.float64, device=train.device)
            scores[k] = out.scatter_add_(1, top_y[:, :kk], weight[:, :kk])
        yield rows, scores


def knn_predict(train_x: ArrayLike, train_y: ArrayLike, test_x: ArrayLike, k: int = 20, temperature: float = 0.07,
                num_classes: int | None = None, chunk: int = 1024) -> torch.Tensor:
    """(M, C) class scores of the M test rows: sum over the k nearest training rows of class c of exp(sim / T).

    train_x: (N, D), train_y: (N,) non-negative int labels, test_x: (M, D); tensors (computed on
    train_x's device) or numpy arrays. Scores are unnormalised (as DINO's and lightly's), float64;
    C = num_classes, default max(train_y) + 1.
    """
    _check([k], temperature, chunk)
    train = _features(train_x, "train_x")
    test = _features(test_x, "test_x", train.device)
    labels = _labels(train_y, len(train), "train_y", train.device)
    c = int(labels.max()) + 1 if num_classes is None else num_classes
    if c <= int(labels.max()):
        raise ValueError(f"knn: num_classes={c} but train_y holds label {int(labels.max())}")
    train, test = _normalized(train, test)
    return torch.cat([s[k] for _, s in _chunk_scores(train, labels, test, [k], temperature, c, chunk)])


def _normalized(train: torch.Tensor, test: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if train.shape[1] != test.shape[1]:
        raise ValueError(f"knn: train_x has {train.shape[1]} features but test_x has {test.shape[1]}")
    dtype = torch.promote_types(train.dtype, test.dtype)
    return F.normalize(train.to(dtype), dim=1), F.normalize(test.to(dtype), dim=1)


def knn_sweep(train_x: ArrayLike, train_y: ArrayLike, test_x: ArrayLike, test_y: ArrayLike,
              ks: Sequence[int] = (10, 20, 100, 200), temperature: float = 0.07,
              chunk: int = 1024) -> dict[int, dict[str, float]]:
    """{k: {"top1", "top5"}} (percent) for several k from one similarity pass over the test set.

    Labels are non-negative ints; test labels absent from training count as errors. "top5" is
    reported only when there are >= 5 classes (max label + 1 over both splits): with fewer, every
    class is in the top 5. Raises ValueError on empty or NaN inputs and non-integer labels.
    """
    ks = [int(k) for k in ks]
    _check(ks, temperature, chunk)
    train = _features(train_x, "train_x")
    test = _features(test_x, "test_x", train.device)
    ytr = _labels(train_y, len(train), "train_y", train.device)
    yte = _labels(test_y, len(test), "test_y", train.device)
    c = max(int(ytr.max()), int(yte.max())) + 1
    train, test = _normalized(train, test)
    hits = {k: torch.zeros(2, dtype=torch.int64) for k in ks}                 # (top1, top5) counts
    for rows, scores in _chunk_scores(train, ytr, test, ks, temperature, c, chunk):
        target = yte[rows, None]
        for k, sc in scores.items():
            top = sc.topk(min(5, c), dim=1).indices == target                  # (b, min(5, C))
            hits[k] += torch.stack([top[:, 0].sum(), top.any(1).sum()]).cpu()
    n = len(test)
    return {k: {"top1": 100.0 * int(h[0]) / n, **({"top5": 100.0 * int(h[1]) / n} if c >= 5 else {})}
            for k, h in hits.items()}


def knn_classifier(train_x: ArrayLike, train_y: ArrayLike, test_x: ArrayLike, test_y: ArrayLike, k: int = 20,
                   temperature: float = 0.07, chunk: int = 1024) -> dict[str, float]:
    """{"top1", "top5"} (percent) of the weighted kNN classifier with one k (see ``knn_sweep``)."""
    return knn_sweep(train_x, train_y, test_x, test_y, (k,), temperature, chunk)[int(k)]
