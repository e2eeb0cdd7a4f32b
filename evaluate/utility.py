"""Label-savings utility of a pretrained model (Newell & Deng, CVPR 2020).

Newell, Deng, "How Useful is Self-Supervised Pretraining for Visual Tasks?", CVPR 2020, sec. 3:
the utility of pretraining at n labels is how many labels a from-scratch model needs to reach
the pretrained model's accuracy, relative to n (utility = x / n - 1). A utility of 1 means
pretraining saves as many labels as were used.

This module reproduces the authors' ``calc_utility`` (repo princeton-vl/selfstudy, util/vis.py)
number for number, quirks included, as described in ../shared/golden/metrics/README.md sec. 2:

- the best scratch point is the first one in insertion order among equal means;
- x is interpolated linearly in the raw label count between the two scratch points that
  bracket the accuracy, with frac = (y - y0) / (y1 - y0), x = x0 + (x1 - x0) * frac;
- an accuracy below the first scratch mean gives x = 0 (utility exactly -1); one that no scratch
  mean strictly exceeds gives x = -1 (utility -1/n - 1, the "x = -1 quirk");
- once the pretrained mean beats the best scratch mean, the curve stops at the interpolated
  crossing max_x, whose entry is max_n / max_x (no "- 1"), with std 0, and later n are dropped;
- stds are population stds (ddof = 0) over the runs.

Accuracies are whatever unit the caller uses (the original used percent); only their order and
the interpolation depend on them.
"""
from __future__ import annotations

import numbers
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

Curve = list[tuple[int, np.float64]]  # (label count, mean accuracy), ascending label count


def _label_count(n: object, where: str) -> int:
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise ValueError(f"{where}: label counts must be ints, got {n!r} ({type(n).__name__})")
    return int(n)


def _runs(values: Sequence[float], where: str) -> np.ndarray:
    runs = np.asarray(values, dtype=np.float64)
    if runs.ndim != 1 or runs.size == 0:
        raise ValueError(f"{where}: expected a non-empty 1-D list of run accuracies, got shape {runs.shape}")
    if not np.isfinite(runs).all():
        raise ValueError(f"{where}: accuracies must be finite, got {runs.tolist()}")
    return runs


def _check(accuracies: Mapping[int, Sequence[float]], name: str) -> dict[int, np.ndarray]:
    """Validated copy of ``{n: run accuracies}`` that keeps the insertion order."""
    if not accuracies:
        raise ValueError(f"{name}: no label counts given; expected {{n: [accuracy per run, ...]}}")
    return {_label_count(n, name): _runs(v, f"{name}[{n!r}]") for n, v in accuracies.items()}


def _curve(scratch: dict[int, np.ndarray]) -> Curve:
    """The scratch learning curve: mean accuracy per label count, in ascending label count."""
    return [(n, scratch[n].mean()) for n in sorted(scratch)]


def _x_on_curve(curve: Curve, y: float) -> int | np.float64:
    """Label count at which the scratch curve reaches ``y`` (see ``get_x_val``)."""
    for j, (x1, y1) in enumerate(curve):
        if y1 > y:
            if j == 0:
                return 0
            x0, y0 = curve[j - 1]
            frac = (y - y0) / (y1 - y0)
            return x0 + (x1 - x0) * frac
    return -1


def get_x_val(scratch: Mapping[int, Sequence[float]], y: float) -> int | np.float64:
    """Scratch label count needed to reach accuracy ``y`` (Newell & Deng, CVPR 2020, sec. 3).

    Walks the scratch label counts in ascending order to the first whose mean accuracy is
    strictly greater than ``y`` and interpolates linearly (in n, not log n) from the previous
    point. Returns the int 0 when even the first mean exceeds ``y`` and the int -1 when no mean
    does (the original's sentinel, kept for fidelity); otherwise a float64.
    """
    return _x_on_curve(_curve(_check(scratch, "scratch")), y)


def _best_point(scratch: dict[int, np.ndarray]) -> tuple[int, np.float64]:
    """(n, mean) of the best scratch mean; ties go to the first key in insertion order."""
    best_n, best = None, None
    for n, runs in scratch.items():
        mean = runs.mean()
        if best is None or mean > best:
            best_n, best = n, mean
    return best_n, best


def _label_counts(label_counts: Iterable[int] | None, pretrained: dict[int, np.ndarray]) -> list[int]:
    if label_counts is None:
        return sorted(pretrained)
    counts = [_label_count(n, "label_counts") for n in label_counts]
    if not counts:
        raise ValueError("label_counts: empty; pass None to use the pretrained label counts")
    return counts


def calc_utility(scratch: Mapping[int, Sequence[float]], pretrained: Mapping[int, Sequence[float]],
                 label_counts: Iterable[int] | None = None) -> tuple[list, list, list]:
    """Utility curve of ``pretrained`` against ``scratch`` (Newell & Deng, CVPR 2020, sec. 3).

    scratch, pretrained: ``{n: [validation accuracy of each run]}`` for models trained from
    scratch / finetuned from the pretrained weights with n labels. ``label_counts``: the n to
    evaluate, in order (default: the sorted pretrained keys); an n absent from ``pretrained`` is
    skipped. Returns ``(counts, utilities, stds)``, one entry per evaluated n: counts are ints,
    utilities and stds float64 (mean and population std over runs of x_r / n - 1). If the
    pretrained mean beats the best scratch mean at some n, the curve ends there with one extra
    entry: the float64 crossing point max_x (interpolated from the previous pretrained point,
    or from (0, 0)), the utility best_n / max_x and the std int 0.
    """
    scratch_runs, pretrained_runs = _check(scratch, "scratch"), _check(pretrained, "pretrained")
    curve = _curve(scratch_runs)
    max_n, max_val = _best_point(scratch_runs)
    counts: list = []
    utilities: list = []
    stds: list = []
    d_prev, y_prev = 0, 0
    for n in _label_counts(label_counts, pretrained_runs):
        if n not in pretrained_runs:
            continue
        runs = pretrained_runs[n]
        y = runs.mean()
        if y > max_val:
            max_x = d_prev + (n - d_prev) * (max_val - y_prev) / (y - y_prev)
            counts.append(max_x)
            utilities.append(max_n / max_x)
            stds.append(0)
            break
        ratios = np.array([_x_on_curve(curve, y_r) / n - 1 for y_r in runs])
        counts.append(n)
        utilities.append(ratios.mean())
        stds.append(ratios.std())
        d_prev, y_prev = n, y
    return counts, utilities, stds


def measurable(scratch: Mapping[int, Sequence[float]], pretrained: Mapping[int, Sequence[float]]) -> dict[int, bool]:
    """Whether the utility at each pretrained label count is a measured number (Newell & Deng,
    CVPR 2020, sec. 3: the scratch curve must reach the pretrained accuracy within its range).

    True for n when every run's accuracy y_r lies in [first scratch mean, best scratch mean):
    then x_r is interpolated between two measured scratch points. Below the first scratch mean
    :func:`calc_utility` returns -1 (x = 0: fewer labels than the smallest scratch run would do,
    by an unknown amount), and at or above the best scratch mean the -1/n - 1 sentinel or the
    curve's end (utility_limit): neither is a measured label saving. ``{n: bool}`` in the
    pretrained insertion order.
    """
    curve = _curve(_check(scratch, "scratch"))
    first, best = curve[0][1], max(y for _, y in curve)
    return {n: bool(((runs >= first) & (runs < best)).all())
            for n, runs in _check(pretrained, "pretrained").items()}


def run_utilities(scratch: Mapping[int, Sequence[float]],
                  pretrained: Mapping[int, Sequence[float]]) -> dict[int, list[float]]:
    """Each run's utility x_r / n - 1 at each pretrained label count (Newell & Deng, CVPR 2020,
    sec. 3), x_r read off the mean scratch curve as in :func:`calc_utility`, whose mean and
    population std over runs these are at every label count it reports before the curve's end.
    ``{n: [utility of run r, ...]}`` in the pretrained insertion order; only the label counts where
    :func:`measurable` is true are measured label savings."""
    curve = _curve(_check(scratch, "scratch"))
    return {n: [float(_x_on_curve(curve, y) / n - 1) for y in runs]
            for n, runs in _check(pretrained, "pretrained").items()}


def utility_rows(scratch: Mapping[int, Sequence[float]], pretrained: Mapping[int, Sequence[float]],
                 seeds: Sequence[int]) -> list[tuple[str, float, int | None]]:
    """The utility as the results store keeps it: ``(metric, value, seed)`` rows (Newell & Deng,
    CVPR 2020, sec. 3). ``utility@nN``, one row per run (``seeds[r]`` finetuned ``pretrained[n][r]``),
    at each label count where it is :func:`measurable`, before the curve's end; where the pretrained
    mean passes the best scratch mean, the curve's last point: ``utility_limit`` (best_n / max_x)
    and ``utility_limit_at`` (max_x), seed None."""
    counts, mean, _ = calc_utility(scratch, pretrained)
    known = measurable(scratch, pretrained)
    per_run = run_utilities(scratch, pretrained)
    rows: list[tuple[str, float, int | None]] = []
    for n, m in zip(counts, mean):
        if n in per_run:
            if known[n]:            # else outside the scratch curve's range: no measured saving, no row
                rows += [(f"utility@n{n}", u, seed) for seed, u in zip(seeds, per_run[n], strict=True)]
        else:                       # the curve's end
            rows += [("utility_limit", float(m), None), ("utility_limit_at", float(n), None)]
    return rows
