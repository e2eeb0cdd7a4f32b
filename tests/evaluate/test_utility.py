"""Utility metric against the authors' ``calc_utility`` (Newell & Deng, CVPR 2020).

The golden cases in tests/golden/metrics/ are copied from the project's shared reference data
(../shared/golden/metrics/README.md, section 2, says how they were made); the small cases below
are computed by hand.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from evaluate import utility as U
from evaluate.utility import calc_utility, get_x_val, measurable, run_utilities

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "metrics"
CASES = ["case1_always_better_below_max", "case2_early_stop", "case3_worse_than_scratch"]
TYPES = {"int": int, "float64": np.float64}


def load_case(name: str) -> dict:
    return json.loads((GOLDEN / f"utility_{name}.json").read_text())


def valid_runs(inputs: dict, which: str) -> dict[int, list[float]]:
    """``{n: validation accuracies}`` in the original dict's insertion order."""
    return {n: inputs[f"{which}_valid"][str(n)] for n in inputs[f"{which}_key_order"]}


def assert_types(values: list, names: list[str]) -> None:
    assert [type(v) for v in values] == [TYPES[t] for t in names]


# ----------------------------------------------------------------------------------------- golden

@pytest.mark.parametrize("name", CASES)
def test_matches_original(name: str) -> None:
    case = load_case(name)
    inputs, want = case["inputs"], case["outputs"]
    counts, utilities, stds = calc_utility(valid_runs(inputs, "v0"), valid_runs(inputs, "v1"), inputs["d_amts"])
    for got, key in ((counts, "final_d_amts"), (utilities, "ratios"), (stds, "ratio_std")):
        assert len(got) == len(want[key])
        np.testing.assert_allclose(np.asarray(got, dtype=np.float64), want[key], rtol=0, atol=1e-9)
        assert_types(got, want[f"{key}_types"])


@pytest.mark.parametrize("name", CASES)
def test_get_x_val_matches_original(name: str) -> None:
    case = load_case(name)
    scratch = valid_runs(case["inputs"], "v0")
    runs = [r for p in case["intermediates"]["points"] for r in p.get("runs", [])]
    assert runs
    for run in runs:
        x = get_x_val(scratch, run["y"])
        assert abs(x - run["x"]) <= 1e-9
        assert type(x) is TYPES[run["x_type"]]


def test_early_stop_count_is_a_float() -> None:
    inputs = load_case("case2_early_stop")["inputs"]
    counts, _, stds = calc_utility(valid_runs(inputs, "v0"), valid_runs(inputs, "v1"))
    assert isinstance(counts[-1], float) and not float(counts[-1]).is_integer()
    assert stds[-1] == 0 and type(stds[-1]) is int


# ------------------------------------------------------------------------------------ hand-made

SCRATCH = {10: [50.0], 20: [60.0]}  # scratch curve: 50 % at 10 labels, 60 % at 20


def test_interpolates_in_label_count() -> None:
    counts, utilities, stds = calc_utility(SCRATCH, {10: [55.0]})  # scratch reaches 55 at x = 15
    assert counts == [10] and utilities == [pytest.approx(0.5)] and stds == [0.0]


def test_population_std_over_runs() -> None:
    _, utilities, stds = calc_utility(SCRATCH, {10: [52.0, 58.0]})  # x = 12, 18 -> 0.2, 0.8
    assert utilities[0] == pytest.approx(0.5) and stds[0] == pytest.approx(0.3)


def test_below_first_scratch_point_is_exactly_minus_one() -> None:
    assert get_x_val(SCRATCH, 40.0) == 0 and type(get_x_val(SCRATCH, 40.0)) is int
    counts, utilities, stds = calc_utility(SCRATCH, {10: [40.0, 45.0]})
    assert counts == [10] and utilities[0] == -1.0 and stds[0] == 0.0


def test_x_minus_one_quirk_at_the_best_scratch_accuracy() -> None:
    # 60 equals the best scratch mean: no early stop (strict >), and no scratch mean is > 60
    assert get_x_val(SCRATCH, 60.0) == -1
    _, utilities, _ = calc_utility(SCRATCH, {10: [60.0]})
    assert utilities[0] == pytest.approx(-1 / 10 - 1)


def test_label_counts_missing_from_pretrained_are_skipped() -> None:
    counts, utilities, _ = calc_utility(SCRATCH, {10: [55.0], 20: [55.0]}, label_counts=[20, 15, 10])
    assert counts == [20, 10]
    assert utilities == [pytest.approx(15 / 20 - 1), pytest.approx(0.5)]


def test_early_stop_from_previous_point_drops_later_counts() -> None:
    scratch = {100: [40.0], 200: [60.0]}
    counts, utilities, stds = calc_utility(scratch, {100: [50.0], 200: [80.0], 400: [90.0]})
    # n = 100: x = 150; n = 200: 80 > 60, crossing at 100 + 100 * (60 - 50) / (80 - 50)
    max_x = 100 + 100 * 10 / 30
    assert counts == [100, pytest.approx(max_x)]
    assert utilities == [pytest.approx(0.5), pytest.approx(200 / max_x)]  # no "- 1"
    assert stds == [0.0, 0]


@pytest.mark.parametrize("order, best_n", [((200, 100), 200), ((100, 200), 100)])
def test_best_scratch_tie_goes_to_first_inserted(order: tuple[int, int], best_n: int) -> None:
    scratch = {n: [60.0] for n in order}
    counts, utilities, _ = calc_utility(scratch, {100: [90.0]})  # early stop from (0, 0)
    assert counts == [pytest.approx(100 * 60 / 90)]
    assert utilities == [pytest.approx(best_n / (100 * 60 / 90))]


@pytest.mark.parametrize("scratch, pretrained, counts, match", [
    ({}, {10: [1.0]}, None, "scratch: no label counts"),
    (SCRATCH, {}, None, "pretrained: no label counts"),
    (SCRATCH, {10: []}, None, r"pretrained\[10\]"),
    ({10.0: [50.0]}, {10: [1.0]}, None, "must be ints"),
    (SCRATCH, {"10": [1.0]}, None, "must be ints"),
    (SCRATCH, {True: [1.0]}, None, "must be ints"),
    (SCRATCH, {10: [1.0]}, [10.5], "must be ints"),
    (SCRATCH, {10: [1.0]}, [], "label_counts: empty"),
    (SCRATCH, {10: [float("nan")]}, None, "finite"),
])
def test_bad_inputs_raise(scratch: dict, pretrained: dict, counts: list | None, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        calc_utility(scratch, pretrained, counts)


@pytest.mark.parametrize("runs, expected", [
    ([50.0, 55.0], True),           # inside the scratch range: interpolated
    ([50.0], True),                 # exactly the first scratch mean: x = its label count
    ([40.0, 55.0], False),          # one run below the first scratch mean: x = 0 sentinel
    ([60.0], False),                # ties the best scratch mean: the x = -1 sentinel
    ([65.0], False),                # beats it: the curve's end (utility_limit)
])
def test_measurable_only_inside_the_scratch_range(runs: list[float], expected: bool) -> None:
    assert measurable(SCRATCH, {10: runs}) == {10: expected}


def test_saturated_scratch_curve_measures_nothing() -> None:
    """A task solved from scratch at every size (e.g. tcvl-0000, where all images of a class are
    identical) has no label saving to measure: calc_utility's -1 and -1/n - 1 are sentinels."""
    scratch = {50: [100.0, 100.0], 200: [100.0, 100.0]}
    pretrained = {50: [98.3, 100.0], 200: [100.0, 100.0]}
    _, utilities, _ = calc_utility(scratch, pretrained)
    assert utilities[0] <= -1.0                     # sentinels, not savings
    assert measurable(scratch, pretrained) == {50: False, 200: False}


@pytest.mark.parametrize("name", CASES)
def test_run_utilities_are_calc_utilitys_runs(name: str) -> None:
    """Per-run utilities average to calc_utility's mean, with its population std, at every label
    count it reports before the curve's end."""
    inputs = load_case(name)["inputs"]
    scratch, pretrained = valid_runs(inputs, "v0"), valid_runs(inputs, "v1")
    counts, utilities, stds = calc_utility(scratch, pretrained)
    per_run = run_utilities(scratch, pretrained)
    checked = [(n, u, s) for n, u, s in zip(counts, utilities, stds) if n in pretrained]
    assert checked
    for n, u, s in checked:
        assert len(per_run[n]) == len(pretrained[n])
        assert abs(np.mean(per_run[n]) - u) < 1e-9 and abs(np.std(per_run[n]) - s) < 1e-9


# ------------------------------------------------------------ scratch beyond the finetuned sizes

def scratch_accuracy(n: float) -> float:
    """A constructed scratch learning curve, rising and linear in n between knots at the label
    counts the scratch runs use (so the utility's linear interpolation is exact everywhere)."""
    return float(np.interp(n, [100, 500, 2000, 4000, 8000], [30.0, 45.0, 65.0, 80.0, 90.0]))


TRUE_UTILITY = 2.0                                   # pretrained(n) = scratch(3 n): saves 2 n labels
SIZES = (100, 500, 2000)


def curves(scratch_sizes: tuple[int, ...]) -> tuple[dict[int, list[float]], dict[int, list[float]]]:
    scratch = {n: [scratch_accuracy(n)] * 2 for n in scratch_sizes}
    pretrained = {n: [scratch_accuracy((1 + TRUE_UTILITY) * n)] * 2 for n in SIZES}
    return scratch, pretrained


def test_scratch_only_to_the_largest_size_cannot_measure_a_saving_there() -> None:
    """The old range: scratch at the finetuned sizes only. At 2000 labels the pretrained accuracy
    (scratch at 6000) is beyond the scratch curve: calc_utility ends its curve and no utility is
    measured; and any accuracy the curve does bracket there reads x <= 2000, utility <= 0, whatever
    the pretraining saves: a tautology."""
    scratch, pretrained = curves(SIZES)
    assert measurable(scratch, pretrained)[2000] is False
    counts, _, _ = calc_utility(scratch, pretrained)
    assert 2000 not in counts                                   # the curve ended before it
    for y in np.linspace(scratch_accuracy(100), scratch_accuracy(2000), 50, endpoint=False):
        assert run_utilities(scratch, {2000: [y]})[2000][0] <= 0
    point = U.utility_points(scratch, pretrained)[-1]
    assert point.kind == U.AT_LEAST and point.value == pytest.approx(0.0) and point.text() == ">= 0.00"


def test_scratch_beyond_the_largest_size_measures_the_true_utility() -> None:
    """Scratch at 2x and 4x the largest size (evaluate.finetune's scratch_factors (2, 4)): the
    utility at every finetuned size is the true 2.0, the largest included."""
    from evaluate.finetune import FinetuneConfig, scratch_label_counts
    sizes = scratch_label_counts(FinetuneConfig(sizes=SIZES, scratch_factors=(2, 4)), available=20_000)
    assert sizes == [100, 500, 2000, 4000, 8000]
    scratch, pretrained = curves(tuple(sizes))
    assert all(measurable(scratch, pretrained).values())
    points = U.utility_points(scratch, pretrained)
    assert [p.kind for p in points] == [U.MEASURED] * 3
    assert [p.value for p in points] == pytest.approx([TRUE_UTILITY] * 3)
    counts, utilities, _ = calc_utility(scratch, pretrained)
    assert counts == list(SIZES) and utilities == pytest.approx([TRUE_UTILITY] * 3)


def test_a_saving_beyond_the_scratch_range_is_a_lower_bound() -> None:
    """With scratch only at 2x the largest size, a true utility of 2 at 2000 labels (scratch would
    need 6000) is reported as ">= 1.00" (scratch's 4000 labels did not get there), never as 1."""
    scratch, pretrained = curves((100, 500, 2000, 4000))
    point = U.utility_points(scratch, pretrained)[-1]
    assert (point.n, point.kind, point.runs, point.text()) == (2000, U.AT_LEAST, (1.0, 1.0), ">= 1.00")
    assert point.metric == "utility_atleast@n2000"
    rows = U.utility_rows(scratch, pretrained, seeds=[0, 1])
    assert ("utility_atleast@n2000", 1.0, 1) in rows
    assert not any(m == "utility@n2000" for m, _, _ in rows)
    assert [m for m, _, s in rows if s is None] == ["utility_limit", "utility_limit_at"]     # calc_utility's end


@pytest.mark.parametrize("runs, kind, bounds, text", [
    ([52.0, 58.0], U.MEASURED, (0.2, 0.8), "0.50"),             # x = 12, 18
    ([65.0, 70.0], U.AT_LEAST, (1.0, 1.0), ">= 1.00"),          # above every scratch mean: x > 20
    ([55.0, 65.0], U.AT_LEAST, (0.5, 1.0), ">= 0.75"),          # one measured run, one beyond
    ([40.0, 45.0], U.AT_MOST, (0.0, 0.0), "<= 0.00"),           # below the first mean: x < 10
    ([60.0], U.AT_MOST, (1.0,), "<= 1.00"),                     # ties the best mean: scratch reaches it at 20
    ([40.0, 65.0], U.UNKNOWN, (), "not measurable"),            # one run on each side: no number
])
def test_points_outside_the_scratch_range_are_flagged(runs: list[float], kind: str, bounds: tuple, text: str) -> None:
    (point,) = U.utility_points(SCRATCH, {10: runs})
    assert point.kind == kind and point.runs == pytest.approx(bounds) and point.text() == text
    assert (point.kind == U.MEASURED) == measurable(SCRATCH, {10: runs})[10]
    assert point.metric == {U.MEASURED: "utility@n10", U.AT_LEAST: "utility_atleast@n10",
                            U.AT_MOST: "utility_atmost@n10", U.UNKNOWN: None}[kind]


def test_saturated_scratch_curve_gives_upper_bounds_not_savings() -> None:
    """tcvl-0000-like: scratch at 100 % from 50 labels; pretrained 100 % too: scratch needs at most
    50 labels, so the utility is <= 0 at 50 and <= -0.75 at 200, never calc_utility's -1 / -1.005."""
    scratch = {50: [100.0, 100.0], 200: [100.0, 100.0]}
    points = U.utility_points(scratch, {50: [100.0, 100.0], 200: [100.0, 100.0]})
    assert [(p.kind, p.text()) for p in points] == [(U.AT_MOST, "<= 0.00"), (U.AT_MOST, "<= -0.75")]


@pytest.mark.parametrize("name", CASES)
def test_measured_points_are_run_utilities(name: str) -> None:
    """A measured point's runs are run_utilities', whose mean is calc_utility's where it lists n."""
    inputs = load_case(name)["inputs"]
    scratch, pretrained = valid_runs(inputs, "v0"), valid_runs(inputs, "v1")
    per_run, known = run_utilities(scratch, pretrained), measurable(scratch, pretrained)
    for point in U.utility_points(scratch, pretrained):
        assert (point.kind == U.MEASURED) == known[point.n]
        if known[point.n]:
            assert point.runs == pytest.approx(per_run[point.n])
