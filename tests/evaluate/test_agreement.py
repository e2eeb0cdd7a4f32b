"""Spearman rank correlation against scipy, and linear-vs-finetune agreement over checkpoints."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from evaluate.agreement import average_ranks, linear_finetune_agreement, spearman


@pytest.mark.parametrize("seed", range(5))
def test_spearman_matches_scipy_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 40))
    a = rng.integers(0, 6, n).astype(float)  # few distinct values: many ties
    b = np.round(a + rng.normal(0, 2, n), 1)
    assert spearman(a, b) == pytest.approx(stats.spearmanr(a, b).statistic, abs=1e-12)


def test_average_ranks_match_scipy() -> None:
    values = np.array([3.0, 1.0, 3.0, 2.0, 3.0, 1.0])
    np.testing.assert_array_equal(average_ranks(values), stats.rankdata(values))


def test_perfect_and_reversed_order() -> None:
    a = [0.1, 0.5, 0.7, 0.9, 2.0]
    assert spearman(a, [1, 2, 3, 4, 100]) == 1.0
    assert spearman(a, [100, 4, 3, 2, 1]) == -1.0


def test_constant_scores_give_nan() -> None:
    assert np.isnan(spearman([1.0, 2.0, 3.0], [5.0, 5.0, 5.0]))


@pytest.mark.parametrize("a, b, match", [
    ([1.0], [1.0], "at least 2"),
    ([1.0, 2.0], [1.0, 2.0, 3.0], "differ in length"),
    ([1.0, float("nan")], [1.0, 2.0], "finite"),
])
def test_spearman_bad_inputs(a: list[float], b: list[float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        spearman(a, b)


def test_linear_finetune_agreement_averages_seeds_per_checkpoint() -> None:
    frame = pd.DataFrame({
        "checkpoint": ["c", "a", "b", "a", "c"],
        "linear_top1": [70.0, 50.0, 60.0, 52.0, 72.0],
        "finetune_top1": [75.0, 90.0, 80.0, 88.0, 77.0],  # finetuning ranks them in reverse
    })
    assert linear_finetune_agreement(frame) == -1.0
    frame["finetune_top1"] = frame["linear_top1"] + 5
    assert linear_finetune_agreement(frame) == 1.0


def test_linear_finetune_agreement_errors() -> None:
    one = pd.DataFrame({"checkpoint": ["a", "a"], "linear_top1": [1.0, 2.0], "finetune_top1": [3.0, 4.0]})
    with pytest.raises(ValueError, match="at least 2 checkpoints"):
        linear_finetune_agreement(one)
    with pytest.raises(ValueError, match="missing columns"):
        linear_finetune_agreement(one.drop(columns="finetune_top1"))
    unscored = pd.DataFrame({"checkpoint": ["a", "b"], "linear_top1": [1.0, 2.0], "finetune_top1": [3.0, None]})
    with pytest.raises(ValueError, match=r"\['b'\]"):
        linear_finetune_agreement(unscored)
