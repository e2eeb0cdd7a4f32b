"""Confidence intervals of a mean and of a difference of means, and the verdict they give.

The replicate is a pretraining seed: ``reports.tables.replicates`` averages a run's evaluation
seeds (probe draws, finetuning seeds) into one value per pretraining seed first, so an interval
never counts one pretraining twice.

- :func:`mean_ci`: Student t interval of one mean, t(0.975, n - 1) s / sqrt(n);
- :func:`welch_ci`: Welch's t interval of a difference of two means (unequal variances,
  Welch-Satterthwaite degrees of freedom), as a reviewer of a benchmark table expects;
- :func:`decide`: *yes* when the interval lies above the claimed side of 0, *no* when it lies on
  the other side, *inconclusive* when it contains 0 or cannot be computed (one seed: no CI).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

YES, NO, INCONCLUSIVE = "yes", "no", "inconclusive"
LEVEL = 0.95


@dataclass(frozen=True)
class Interval:
    """An estimate with its 95 % interval (NaN bounds when it cannot be computed) and the seed counts."""

    estimate: float
    low: float
    high: float
    n: tuple[int, ...]

    @property
    def known(self) -> bool:
        return not (math.isnan(self.low) or math.isnan(self.high))

    def text(self, signed: bool = True) -> str:
        """``+2.10 [0.40, 3.80]`` or ``+2.10 (one seed: no CI)``."""
        est = f"{self.estimate:+.2f}" if signed else f"{self.estimate:.2f}"
        if not self.known:
            return f"{est} (one seed: no CI)"
        return f"{est} [{self.low:+.2f}, {self.high:+.2f}]" if signed else f"{est} [{self.low:.2f}, {self.high:.2f}]"


def _t(df: float) -> float:
    return float(stats.t.ppf(0.5 + LEVEL / 2, df))


def mean_ci(values: np.ndarray) -> Interval:
    """The mean of ``values`` (one per pretraining seed) with its Student t interval (NaN for n < 2)."""
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        raise ValueError("mean_ci: no values")
    mean = float(v.mean())
    if v.size < 2:
        return Interval(mean, math.nan, math.nan, (int(v.size),))
    half = _t(v.size - 1) * float(v.std(ddof=1)) / math.sqrt(v.size)
    return Interval(mean, mean - half, mean + half, (int(v.size),))


def welch_ci(a: np.ndarray, b: np.ndarray) -> Interval:
    """mean(a) - mean(b) with Welch's 95 % interval (NaN bounds when a side has fewer than 2 values).

    Where both sides have no variance at all the interval is the point itself (a difference of
    identical replicates is known exactly)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.size == 0 or b.size == 0:
        raise ValueError("welch_ci: a side has no values")
    diff = float(a.mean() - b.mean())
    n = (int(a.size), int(b.size))
    if min(n) < 2:
        return Interval(diff, math.nan, math.nan, n)
    va, vb = float(a.var(ddof=1)) / a.size, float(b.var(ddof=1)) / b.size
    se2 = va + vb
    if se2 == 0:
        return Interval(diff, diff, diff, n)
    df = se2 ** 2 / ((va ** 2 / (a.size - 1) if va else 0.0) + (vb ** 2 / (b.size - 1) if vb else 0.0))
    half = _t(df) * math.sqrt(se2)
    return Interval(diff, diff - half, diff + half, n)


def decide(interval: Interval) -> str:
    """*yes* if the interval is above 0, *no* if below, else *inconclusive* (also with no interval)."""
    if not interval.known:
        return INCONCLUSIVE
    if interval.low > 0:
        return YES
    if interval.high < 0:
        return NO
    return INCONCLUSIVE
