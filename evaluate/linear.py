"""Linear probe: multinomial logistic regression on frozen features (a pure function of features).

Protocol of Kornblith et al. ("Do Better ImageNet Models Transfer Better?", CVPR 2019) as used for
the many-shot linear evaluation of Ericsson et al. ("How Well Do Self-Supervised Models
Transfer?", CVPR 2021): full-batch L-BFGS on the (standardised) features, the L2 strength picked
from a log grid by accuracy on a held-out part of the training split, then a refit on the whole
training split and a single evaluation on the test split. (Those papers search 45 values between
1e-6 and 1e5; the default grid here is one value per decade over the range that matters for
standardised features, and any grid can be passed.)

Objective, in scikit-learn's convention, so that a given C is the same model as
``sklearn.linear_model.LogisticRegression(C=C)`` on the same features:

    J(W, b) = sum_i CE(x_i W + b, y_i) + 1 / (2 C) ||W||_F^2        (intercept b not penalised)

minimised here in the equivalent form J / n = mean CE + ||W||^2 / (2 C n) (scikit-learn does the
same), so C is tied to the number of training rows. With K >= 3 classes W is (D, K) (softmax, one
column per class, as scikit-learn's multinomial). With K = 2 scikit-learn fits one binomial
vector w with penalty ||w||^2 / (2 C); a two-column softmax with penalty (||w_0||^2 + ||w_1||^2)
/ (2 C') reaches its optimum at w_1 = -w_0 = w / 2, i.e. penalty ||w||^2 / (4 C'), so the binary
case is fitted with C' = C / 2 and is then the same model as scikit-learn's.

Stopping rule as scikit-learn's lbfgs: max |gradient of J / n| <= tol (default 1e-4), or max_iter
iterations. Speed comes from float32 matrix products, analytic gradients (no autograd) and
warm starts along the regularisation path, from strong to weak regularisation.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from imagedata.subsets import stratified_split

ArrayLike = np.ndarray | torch.Tensor


@dataclass(frozen=True)
class LinearConfig:
    """Settings of ``linear_probe``.

    c_grid: inverse L2 strengths C to search (scikit-learn's C, see the module docstring); a single
        value skips the search and fits the whole training split at that C.
    val_frac: fraction of each training class held out to choose C (stratified, seeded).
    max_iter: L-BFGS iterations per fit (scikit-learn's max_iter); tol: its gradient tolerance.
    history: L-BFGS memory (scikit-learn / scipy use 10).
    standardize: z-score every feature with the training split's mean and std (std 0 -> 1), as
        scikit-learn's StandardScaler; the statistics of the whole training split (label-free) are
        used for the search too.
    dtype: "float32" (fast) or "float64".
    """

    c_grid: tuple[float, ...] = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 1e1, 1e2, 1e3)
    val_frac: float = 0.2
    max_iter: int = 1000
    tol: float = 1e-4
    history: int = 10
    seed: int = 0
    standardize: bool = True
    dtype: str = "float32"


@dataclass
class LinearModel:
    """A fitted probe in the raw feature space (standardisation folded in): scores = x @ weight + bias.

    weight: (D, K), bias: (K,), classes: (K,) the training labels that the K columns stand for.
    """

    weight: np.ndarray
    bias: np.ndarray
    classes: np.ndarray

    def decision_function(self, x: ArrayLike) -> np.ndarray:
        """(N, K) class scores (logits) of the rows of x (N, D)."""
        x = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
        return x @ self.weight + self.bias

    def predict(self, x: ArrayLike) -> np.ndarray:
        """(N,) predicted labels."""
        return self.classes[self.decision_function(x).argmax(1)]


def _features(x: ArrayLike, name: str, dtype: torch.dtype) -> torch.Tensor:
    t = x.detach() if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x))
    if t.ndim != 2 or t.shape[0] == 0:
        raise ValueError(f"linear_probe: {name} must be a non-empty (N, D) array, got shape {tuple(t.shape)}")
    t = t.to(dtype)
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"linear_probe: {name} contains NaN or infinite values")
    return t


def _labels(y: ArrayLike, n: int, name: str) -> np.ndarray:
    a = y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
    if a.ndim != 1 or len(a) != n:
        raise ValueError(f"linear_probe: {name} must be a 1-D array of {n} labels, got shape {a.shape}")
    return a


def _standardize(train: torch.Tensor, test: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor,
                                                                    torch.Tensor]:
    """z-score both with the train statistics (population std, 0 -> 1); also returns mean, std (D,)."""
    mean = train.mean(0)
    std = train.std(0, correction=0)
    std = torch.where(std > 0, std, torch.ones_like(std))
    return (train - mean) / std, (test - mean) / std, mean, std


def fit_logistic(x: torch.Tensor, y: torch.Tensor, num_classes: int, c: float, max_iter: int = 1000,
                 tol: float = 1e-4, history: int = 10, init: torch.Tensor | None = None) -> tuple[torch.Tensor, int]:
    """Minimise mean CE(x @ theta.T, y) + ||theta[:, :-1]||^2 / (2 c n) by full-batch L-BFGS (strong Wolfe).

    x: (n, D + 1) features whose last column is ones (so theta[:, -1] is the unpenalised intercept),
    y: (n,) int64 in [0, num_classes); init: (K, D + 1) warm start. This is the multinomial form:
    for scikit-learn's binary C pass c = C / 2 (module docstring). Returns theta (K, D + 1) and the
    number of L-BFGS iterations. Logits are kept as (K, n): theta @ x.T and (P - Y) @ x are the
    BLAS-friendly products (about 4x faster on a CPU than x @ W and x.T @ (P - Y) with W (D, K)).
    """
    n = x.shape[0]
    lam = 1.0 / (c * n)
    theta = torch.zeros(num_classes, x.shape[1], dtype=x.dtype, device=x.device) if init is None else init.clone()
    param = torch.nn.Parameter(theta)
    onehot = torch.nn.functional.one_hot(y, num_classes).to(x.dtype).T.contiguous()   # (K, n)
    opt = torch.optim.LBFGS([param], lr=1.0, max_iter=max_iter, max_eval=4 * max_iter, tolerance_grad=tol,
                            tolerance_change=torch.finfo(x.dtype).eps, history_size=history,
                            line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        w = param.detach()                                                     # (K, D + 1)
        logp = torch.log_softmax(w @ x.T, dim=0)                               # (K, n) log-probabilities
        loss = -(logp * onehot).sum() / n + 0.5 * lam * w[:, :-1].square().sum()
        grad = (logp.exp_() - onehot) @ x / n                                  # (K, D + 1)
        grad[:, :-1] += lam * w[:, :-1]
        param.grad = grad
        return loss

    opt.step(closure)
    return param.detach(), int(opt.state[param].get("n_iter", 0))


def _top_k(scores: torch.Tensor, target: torch.Tensor, k: int) -> float:
    """Percent of rows whose target is among the k highest scores (target -1: never)."""
    hit = (scores.topk(k, dim=1).indices == target[:, None]).any(1)
    return 100.0 * hit.double().mean().item()


def linear_probe(train_x: ArrayLike, train_y: ArrayLike, test_x: ArrayLike, test_y: ArrayLike,
                 cfg: LinearConfig = LinearConfig(), return_model: bool = False) -> dict:
    """Linear-probe accuracy of frozen features.

    train_x: (N, D), train_y: (N,) labels (any sortable values, >= 2 distinct); test_x: (M, D),
    test_y: (M,). Torch tensors (computed on their device) or numpy arrays. Test labels not seen in
    training count as errors. Returns {"top1", "top5" (percent; top5 only when there are >= 5
    training classes, since with fewer every label is in the "top 5"), "best_c", "val_top1" (only
    when a grid was searched), "n_iter" (iterations of the final fit)}, plus "model": LinearModel
    when return_model. Raises ValueError on empty splits, NaN / inf features, mismatched shapes,
    or fewer than 2 classes in train_y.
    """
    dtypes = {"float32": torch.float32, "float64": torch.float64}
    if cfg.dtype not in dtypes:
        raise ValueError(f"linear_probe: dtype must be one of {sorted(dtypes)}, got {cfg.dtype!r}")
    dtype = dtypes[cfg.dtype]
    xtr, xte = _features(train_x, "train_x", dtype), _features(test_x, "test_x", dtype)
    if xtr.shape[1] != xte.shape[1]:
        raise ValueError(f"linear_probe: train_x has {xtr.shape[1]} features but test_x has {xte.shape[1]}")
    ytr, yte = _labels(train_y, len(xtr), "train_y"), _labels(test_y, len(xte), "test_y")
    classes, ytr_idx = np.unique(ytr, return_inverse=True)
    if len(classes) < 2:
        raise ValueError(f"linear_probe: train_y has {len(classes)} class(es); a linear probe needs at least 2")
    if not cfg.c_grid or min(cfg.c_grid) <= 0:
        raise ValueError(f"linear_probe: c_grid must be non-empty and positive, got {cfg.c_grid}")
    if not 0 < cfg.val_frac < 1:
        raise ValueError(f"linear_probe: val_frac must be in (0, 1), got {cfg.val_frac}")

    device = xtr.device
    xte = xte.to(device)
    mean = torch.zeros(xtr.shape[1], dtype=dtype, device=device)
    std = torch.ones_like(mean)
    if cfg.standardize:
        xtr, xte, mean, std = _standardize(xtr, xte)
    ones = torch.ones(1, dtype=dtype, device=device)
    xtr = torch.cat([xtr, ones.expand(len(xtr), 1)], 1)                        # (N, D + 1)
    xte = torch.cat([xte, ones.expand(len(xte), 1)], 1)
    k = len(classes)
    scale = 0.5 if k == 2 else 1.0                                             # binary: sklearn's C -> C / 2
    y_all = torch.from_numpy(ytr_idx.astype(np.int64)).to(device)
    fit = dict(num_classes=k, max_iter=cfg.max_iter, tol=cfg.tol, history=cfg.history)

    out: dict = {}
    init = None
    best_c = float(cfg.c_grid[0])
    if len(cfg.c_grid) > 1:
        fit_idx, val_idx = stratified_split(ytr_idx, cfg.val_frac, cfg.seed)
        if len(val_idx) == 0:
            raise ValueError("linear_probe: the validation split is empty (too few rows per class); "
                             "pass a single C in c_grid")
        fi, vi = torch.from_numpy(fit_idx).to(device), torch.from_numpy(val_idx).to(device)
        x_fit, y_fit, x_val, y_val = xtr[fi], y_all[fi], xtr[vi], y_all[vi]
        best_acc, theta = -1.0, None
        for c in sorted(float(c) for c in cfg.c_grid):                         # strong -> weak, warm-started
            theta, _ = fit_logistic(x_fit, y_fit, c=c * scale, init=theta, **fit)
            acc = _top_k(x_val @ theta.T, y_val, 1)
            if acc > best_acc:                                                 # ties: the stronger regularisation
                best_acc, best_c, init = acc, c, theta
        out["val_top1"] = best_acc
    theta, n_iter = fit_logistic(xtr, y_all, c=best_c * scale, init=init, **fit)

    pos = np.searchsorted(classes, yte).clip(0, k - 1)
    target = torch.from_numpy(np.where(classes[pos] == yte, pos, -1).astype(np.int64)).to(device)
    scores = xte @ theta.T
    out = {"top1": _top_k(scores, target, 1), **({"top5": _top_k(scores, target, 5)} if k >= 5 else {}),
           "best_c": best_c, **out, "n_iter": float(n_iter)}
    if return_model:
        w = theta[:, :-1].T / std[:, None]                                     # (D, K) on raw features
        b = theta[:, -1] - mean @ w
        out["model"] = LinearModel(w.double().cpu().numpy(), b.double().cpu().numpy(), classes)
    return out
