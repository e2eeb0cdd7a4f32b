"""reports.stats: the 95 % intervals against direct formulas, and the verdict they give."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from reports.stats import INCONCLUSIVE, NO, YES, decide, mean_ci, welch_ci


def test_mean_ci_is_students_interval() -> None:
    v = np.array([60.0, 61.0, 63.0, 62.5])
    ci = mean_ci(v)
    half = sps.t.ppf(0.975, 3) * v.std(ddof=1) / 2
    assert ci.estimate == pytest.approx(v.mean()) and ci.low == pytest.approx(v.mean() - half)
    assert ci.high == pytest.approx(v.mean() + half) and ci.n == (4,)


def test_welch_ci_matches_scipys_welch_test() -> None:
    """The interval excludes 0 exactly when scipy's Welch t-test rejects at 5 %."""
    rng = np.random.default_rng(0)
    for _ in range(50):
        a, b = rng.normal(1.0, 1.0, rng.integers(2, 8)), rng.normal(0.0, 2.0, rng.integers(2, 8))
        ci = welch_ci(a, b)
        p = sps.ttest_ind(a, b, equal_var=False).pvalue
        assert (decide(ci) != INCONCLUSIVE) == (p < 0.05)
        assert ci.estimate == pytest.approx(a.mean() - b.mean())


@pytest.mark.parametrize("a, b, answer", [([70, 71, 72], [60, 61, 62], YES), ([60, 61, 62], [70, 71, 72], NO),
                                          ([60, 62, 64], [61, 62, 63], INCONCLUSIVE), ([70], [60, 61], INCONCLUSIVE),
                                          ([5, 5, 5], [4, 4], YES)])
def test_decide(a: list, b: list, answer: str) -> None:
    ci = welch_ci(np.array(a, float), np.array(b, float))
    assert decide(ci) == answer
    if min(len(a), len(b)) < 2:
        assert not ci.known and "(one seed: no CI)" in ci.text() and math.isnan(ci.low)


def test_no_values_is_an_error() -> None:
    with pytest.raises(ValueError, match="no values"):
        mean_ci(np.array([]))
    with pytest.raises(ValueError, match="a side has no values"):
        welch_ci(np.array([1.0, 2.0]), np.array([]))
