"""Speed of evaluate.linear.linear_probe against scikit-learn's LogisticRegression(lbfgs) on the same features.

    python bench/bench_linear.py                                   # 5000 x 512 train, 2000 test, 10 classes
    python bench/bench_linear.py --c 0.01 --repeats 5 --json bench/out/linear.json
    python bench/bench_linear.py --no-sklearn-grid                 # skip the slowest row

Synthetic, seeded features: 10 overlapping Gaussian classes (unit noise, class means ~ N(0, spread^2)),
mixed by a fixed random invertible map with log-normal scales, so the standardised features are
correlated and the problem is not trivially conditioned. Both solvers get the same standardised
features (scikit-learn's StandardScaler on the train split). Rows:

- fixed C: ours (float32 and float64) and LogisticRegression(C, lbfgs, max_iter=1000, tol=--tol; on float64
  and on float32 features): median seconds of --repeats fits, test top1, iterations, the training
  objective J / n = mean log-loss + ||W||^2 / (2 C n) of the solution (float64; equal objectives show
  both solved the same problem equally well) and the percent of test predictions equal to sklearn's.
- import: the one-time cost (per process) of torch.optim's first optimizer, which imports
  torch._dynamo; paid before the timed rows, and by any first linear_probe call in a process.
- grid: the full default search (8 values of C, 20 % stratified validation split, refit at the best C)
  by ours, and the same protocol with sklearn (warm_start along the same path, float64).

Single-threaded by default (--threads): the BLAS / OpenMP pools and torch are limited before import,
which is the fairer comparison on a shared machine; a busy machine inflates every figure.
"""
from __future__ import annotations

import os
import sys

_THREADS = "1"
for _i, _a in enumerate(sys.argv):                                              # thread pools are sized at import
    if _a.startswith("--threads"):
        _THREADS = _a.split("=", 1)[1] if "=" in _a else sys.argv[_i + 1]
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = _THREADS

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evaluate.linear import LinearConfig, linear_probe  # noqa: E402
from imagedata.subsets import stratified_split  # noqa: E402
from results_json import write_results  # noqa: E402


def synthetic(n_train: int, n_test: int, dim: int, classes: int, spread: float,
              seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Standardised (train, train labels, test, test labels), float64."""
    rng = np.random.default_rng(seed)
    means = rng.normal(0, spread, (classes, dim))
    mix = np.linalg.qr(rng.normal(size=(dim, dim)))[0] * np.exp(rng.normal(0, 1, dim))
    ytr, yte = rng.integers(0, classes, n_train), rng.integers(0, classes, n_test)
    xtr = (means[ytr] + rng.normal(size=(n_train, dim))) @ mix
    xte = (means[yte] + rng.normal(size=(n_test, dim))) @ mix
    sc = StandardScaler().fit(xtr)
    return sc.transform(xtr), ytr, sc.transform(xte), yte


def timed(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Median seconds of ``repeats`` calls of fn() and the last result."""
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def objective(w: np.ndarray, b: np.ndarray, x: np.ndarray, y: np.ndarray, c: float) -> float:
    """mean log-loss + ||W||^2 / (2 C n) of the multinomial model scores = x @ w + b (w: (D, K)), float64."""
    z = x @ w + b
    z -= z.max(1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(1, keepdims=True))
    return float(-logp[np.arange(len(y)), y].mean() + (w ** 2).sum() / (2 * c * len(y)))


def fixed_c_rows(x, y, xt, yt, c: float, tol: float, repeats: int) -> list[dict[str, Any]]:
    rows = []
    ref = None
    for dtype in ("float64", "float32"):                                        # sklearn first: the reference
        xs, xts = x.astype(dtype), xt.astype(dtype)
        sec, clf = timed(lambda: LogisticRegression(C=c, max_iter=1000, tol=tol).fit(xs, y), repeats)
        pred = clf.predict(xts)
        ref = pred if ref is None else ref
        rows.append({"solver": f"sklearn lbfgs ({dtype} features)", "task": f"fixed C={c}", "seconds": sec,
                     "top1": 100 * float(np.mean(pred == yt)), "n_iter": int(clf.n_iter_.max()),
                     "objective": objective(clf.coef_.T.astype(float), clf.intercept_.astype(float), x, y, c),
                     "same_pred_as_sklearn64": 100 * float(np.mean(pred == ref))})
    for dtype in ("float32", "float64"):
        cfg = LinearConfig(c_grid=(c,), standardize=False, dtype=dtype, tol=tol)
        sec, r = timed(lambda: linear_probe(x, y, xt, yt, cfg, return_model=True), repeats)
        m = r["model"]
        rows.append({"solver": f"ours torch L-BFGS ({dtype})", "task": f"fixed C={c}", "seconds": sec,
                     "top1": r["top1"], "n_iter": int(r["n_iter"]),
                     "objective": objective(m.weight, m.bias, x, y, c),
                     "same_pred_as_sklearn64": 100 * float(np.mean(m.predict(xt) == ref))})
    return rows


def sklearn_grid(x, y, xt, yt, cfg: LinearConfig) -> dict[str, float]:
    """The same protocol as linear_probe's search, with LogisticRegression(warm_start=True) along the path."""
    fit, val = stratified_split(y, cfg.val_frac, cfg.seed)
    clf = LogisticRegression(max_iter=cfg.max_iter, tol=cfg.tol, warm_start=True)
    best_acc, best_c = -1.0, None
    for c in sorted(cfg.c_grid):
        clf.set_params(C=c).fit(x[fit], y[fit])
        acc = 100 * clf.score(x[val], y[val])
        if acc > best_acc:
            best_acc, best_c = acc, c
    final = LogisticRegression(C=best_c, max_iter=cfg.max_iter, tol=cfg.tol).fit(x, y)
    return {"top1": 100 * final.score(xt, yt), "best_c": best_c, "val_top1": best_acc}


def grid_rows(x, y, xt, yt, tol: float, repeats: int, with_sklearn: bool) -> list[dict[str, Any]]:
    cfg = LinearConfig(standardize=False, tol=tol)
    sec, r = timed(lambda: linear_probe(x, y, xt, yt, cfg), repeats)
    rows = [{"solver": "ours torch L-BFGS (float32)", "task": f"grid of {len(cfg.c_grid)} C + refit",
             "seconds": sec, "top1": r["top1"], "best_c": r["best_c"], "val_top1": r["val_top1"]}]
    if with_sklearn:
        sec, s = timed(lambda: sklearn_grid(x, y, xt, yt, cfg), repeats)
        rows.append({"solver": "sklearn lbfgs, warm-started (float64)", "task": rows[0]["task"], "seconds": sec, **s})
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-train", type=int, default=5000)
    p.add_argument("--n-test", type=int, default=2000)
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--spread", type=float, default=0.1, help="sd of the class means (overlap)")
    p.add_argument("--c", type=float, default=1.0, help="C of the fixed-C rows (sklearn's default)")
    p.add_argument("--tol", type=float, default=1e-4, help="gradient tolerance of both (sklearn's default)")
    p.add_argument("--repeats", type=int, default=3, help="fits per fixed-C row (median)")
    p.add_argument("--grid-repeats", type=int, default=1)
    p.add_argument("--no-sklearn-grid", action="store_true")
    p.add_argument("--threads", type=int, default=1, help="BLAS / OpenMP / torch threads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    t = time.perf_counter()
    torch.optim.LBFGS([torch.nn.Parameter(torch.zeros(1))])
    rows = [{"solver": "ours", "task": "one-time torch.optim import", "seconds": time.perf_counter() - t}]
    x, y, xt, yt = synthetic(args.n_train, args.n_test, args.dim, args.classes, args.spread, args.seed)
    rows += fixed_c_rows(x, y, xt, yt, args.c, args.tol, args.repeats)
    rows += grid_rows(x, y, xt, yt, args.tol, args.grid_repeats, not args.no_sklearn_grid)
    for r in rows:
        print({k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()})
    sk = next(r["seconds"] for r in rows if r["solver"].startswith("sklearn") and r["task"].startswith("fixed"))
    ours = next(r["seconds"] for r in rows if r["solver"] == "ours torch L-BFGS (float32)")
    print(f"fixed C={args.c}: ours (float32) {ours:.3f} s vs sklearn (float64) {sk:.3f} s: {sk / ours:.1f}x")
    if args.json:
        env = {k: v for k, v in vars(args).items() if k != "json"} | {"torch": torch.__version__}
        write_results(args.json, env, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
