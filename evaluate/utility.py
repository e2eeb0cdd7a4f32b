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

Those quirks are sentinels, not label savings, so the harness does not store them:
:func:`utility_points` gives, per pretrained label count, the utility where the scratch curve
brackets the pretrained accuracy (:func:`measurable`), and a bound where it does not (">= 3.00":
the scratch curve never reached it, so x exceeds its largest label count; "<= -0.75": scratch
already reached it at its first count, or ties its best). A scratch curve that ends at the largest
pretrained label count makes the utility there <= 0 or a bound by construction, which is why
``evaluate.finetune`` trains scratch beyond it (sec. 3 defines the utility by the scratch labels
needed to match the pretrained accuracy: only a scratch curve that gets there measures them).
"""
from __future__ import annotations

import numbers
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

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


# ------------------------------------------------------------------ measured points and bounds

MEASURED, AT_LEAST, AT_MOST, UNKNOWN = "measured", "at_least", "at_most", "unknown"
_METRICS = {MEASURED: "utility", AT_LEAST: "utility_atleast", AT_MOST: "utility_atmost"}


@dataclass(frozen=True)
class UtilityPoint:
    """The utility at ``n`` pretrained labels as far as the scratch curve can tell (Newell & Deng,
    CVPR 2020, sec. 3). ``kind``: ``measured`` (every run's x_r interpolated between two scratch
    points, :func:`measurable`), ``at_least`` (some run beats every scratch mean: the scratch curve
    would need more labels than its largest count, so ``runs`` are lower bounds), ``at_most`` (some
    run is below the first scratch mean, or ties the best one: scratch reaches it with at most that
    count, so ``runs`` are upper bounds), ``unknown`` (runs on both sides: no number). ``runs``: per
    run, its utility or the bound on it (exact runs count as their own bound); () when unknown."""

    n: int
    kind: str
    runs: tuple[float, ...]

    @property
    def value(self) -> float | None:
        """Mean over runs: the utility (measured) or a bound on its mean; None when unknown."""
        return float(np.mean(self.runs)) if self.runs else None

    @property
    def metric(self) -> str | None:
        """The store's metric: ``utility@nN``, ``utility_atleast@nN``, ``utility_atmost@nN``; None when unknown."""
        return f"{_METRICS[self.kind]}@n{self.n}" if self.kind in _METRICS else None

    def text(self, digits: int = 2) -> str:
        """``1.25`` measured, ``>= 3.00`` / ``<= -0.75`` bounds, ``not measurable`` otherwise."""
        if self.value is None:
            return "not measurable"
        sign = {AT_LEAST: ">= ", AT_MOST: "<= "}.get(self.kind, "")
        return f"{sign}{self.value:.{digits}f}"


def _run_reading(curve: Curve, y: float, n: int) -> tuple[str, float]:
    """(kind, utility or bound) of one run of accuracy ``y`` at ``n`` labels on the scratch ``curve``."""
    first, best = curve[0][1], max(m for _, m in curve)
    if first <= y < best:
        return MEASURED, float(_x_on_curve(curve, y) / n - 1)
    if y > best:                                       # no scratch mean reaches y: x > the largest count
        return AT_LEAST, curve[-1][0] / n - 1
    if y == best:                                      # scratch reaches y exactly where it first attains it
        return AT_MOST, next(c for c, m in curve if m >= y) / n - 1
    return AT_MOST, curve[0][0] / n - 1                # below the first mean: x < the first count


def utility_points(scratch: Mapping[int, Sequence[float]],
                   pretrained: Mapping[int, Sequence[float]]) -> list[UtilityPoint]:
    """One :class:`UtilityPoint` per pretrained label count, in its insertion order (Newell & Deng,
    CVPR 2020, sec. 3): the utility where the scratch curve brackets every run's accuracy, else a
    bound in place of :func:`calc_utility`'s sentinels (-1, -1/n - 1) and early stop. A bound
    assumes that scratch accuracy rises with labels; its ``x`` is a scratch label count measured,
    so it never reads as a measurement: a lower bound says the scratch curve must be run further."""
    curve = _curve(_check(scratch, "scratch"))
    points = []
    for n, runs in _check(pretrained, "pretrained").items():
        readings = [_run_reading(curve, float(y), n) for y in runs]
        kinds = {k for k, _ in readings} - {MEASURED}
        kind = MEASURED if not kinds else kinds.pop() if len(kinds) == 1 else UNKNOWN
        points.append(UtilityPoint(n, kind, () if kind == UNKNOWN else tuple(v for _, v in readings)))
    return points


def utility_rows(scratch: Mapping[int, Sequence[float]], pretrained: Mapping[int, Sequence[float]],
                 seeds: Sequence[int]) -> list[tuple[str, float, int | None]]:
    """The utility as the results store keeps it: ``(metric, value, seed)`` rows (Newell & Deng,
    CVPR 2020, sec. 3), one per run (``seeds[r]`` finetuned ``pretrained[n][r]``) at each label
    count: ``utility@nN`` where it is measured (:func:`measurable`), ``utility_atleast@nN`` /
    ``utility_atmost@nN`` where the scratch curve only bounds it (:func:`utility_points`), none where
    it cannot tell. Where the pretrained mean passes the best scratch mean, :func:`calc_utility`'s
    last point: ``utility_limit`` (best_n / max_x) and ``utility_limit_at`` (max_x), seed None."""
    rows: list[tuple[str, float, int | None]] = []
    for point in utility_points(scratch, pretrained):
        if point.metric is not None:
            rows += [(point.metric, u, seed) for seed, u in zip(seeds, point.runs, strict=True)]
    counts, mean, _ = calc_utility(scratch, pretrained)
    if counts and isinstance(counts[-1], float):       # the curve's end: max_x, a float (counts are ints)
        rows += [("utility_limit", float(mean[-1]), None), ("utility_limit_at", float(counts[-1]), None)]
    return rows
