"""invariance.firing: golden outputs of the original script, a loop reference, invariances, errors."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from invariance.firing import InvarianceError, invariance_score

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "metrics"   # copied from the shared golden data
CASES = ["invariance_case1_small_random.npz", "invariance_case2_varying_sets_C10.npz"]
TOL = 1e-9


def golden(name: str) -> dict[str, np.ndarray]:
    path = GOLDEN / name                                       # part of the repository: never skipped
    with np.load(path, allow_pickle=True) as z:
        return {k: z[k] for k in z.files}


def reference(f: np.ndarray, sets: np.ndarray, labels: np.ndarray, min_size: int = 3,
              top: tuple[int, ...] = (10, 25)) -> dict:
    """Straight loops over sets and neurons, written from the README's description."""
    f = np.asarray(f, np.float64)
    n, d = f.shape
    classes = sorted(set(labels.tolist()))
    p = min((1 - 1 / len(classes)) * 100, 95)
    k = int((n * p) // 100)
    ascending = np.sort(f, axis=0)
    t_pos, t_neg = ascending[k], ascending[::-1][k]
    g = (f >= t_pos).sum(axis=0) / n
    num, cnt = np.zeros((len(classes), d)), np.zeros((len(classes), d))
    for s in sorted(set(sets.tolist())):
        rows = [i for i in range(n) if sets[i] == s]
        if len(rows) < min_size:
            continue
        c = classes.index(labels[rows[0]])
        x = f[rows]
        for j in range(d):
            m = max(int((x[:, j] > t_pos[j]).sum()), int((x[:, j] < t_neg[j]).sum()))
            if m > 0:
                num[c, j] += m / len(rows)
                cnt[c, j] += 1
    local = num / (cnt + 1e-20)
    per_class = {kk: np.array([sum(sorted(row / g, reverse=True)[:kk]) / kk for row in local]) for kk in top}
    out = {f"top{kk}": float(np.mean(v)) * (100 - p) for kk, v in per_class.items()}
    out.update(per_class=per_class, thresholds=t_pos, neg_thresholds=t_neg, global_firing=g, local_firing=local,
               local_count=cnt, percentile=p, threshold_index=k)
    return out


def messy(seed: int = 0, n_sets: int = 40, d: int = 30, classes: int = 4):
    """Integer-valued features (many ties with the thresholds), set sizes 1..7, non-contiguous set
    ids, shuffled rows, and a few sets whose rows disagree on the label."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 8, n_sets)
    ids = rng.choice(10_000, n_sets, replace=False) - 5_000
    set_label = rng.integers(0, classes, n_sets)
    set_label[:classes] = np.arange(classes)
    sets = np.repeat(ids, sizes)
    labels = np.repeat(set_label, sizes)
    f = rng.integers(-3, 4, (len(sets), d)).astype(np.float64) + np.repeat(rng.integers(-2, 3, (n_sets, d)), sizes, 0)
    perm = rng.permutation(len(sets))
    sets, labels, f = sets[perm], labels[perm], f[perm]
    for s in ids[sizes >= 3][:3]:                                                # mixed-label sets
        rows = np.flatnonzero(sets == s)
        labels[rows[1:]] = (labels[rows[0]] + 1) % classes
    return f, sets, labels


def block_sets(rng: np.random.Generator, n_sets: int, size: int, classes: int):
    sets = np.repeat(np.arange(n_sets), size)
    return sets, (sets % classes)


# ------------------------------------------------------------------------------------------ golden
@pytest.mark.parametrize("case", CASES)
def test_golden_equivalence(case: str) -> None:
    g = golden(case)
    r = invariance_score(g["F"], g["set_id"], g["class_per_image"])
    assert r["percentile"] == pytest.approx(float(g["firing_percent"]), abs=TOL)
    assert r["threshold_index"] == int(g["threshold_index"])
    np.testing.assert_array_equal(r["classes"], g["unique_classes"])
    np.testing.assert_array_equal(r["set_ids"], g["unique_set_ids"])
    np.testing.assert_array_equal(r["set_size"], g["set_size"])
    np.testing.assert_array_equal(r["local_count"], g["local_count"])                # integer-valued: exact
    for key in ("thresholds", "neg_thresholds", "global_firing", "local_firing"):
        np.testing.assert_allclose(r[key], g[key], rtol=0, atol=TOL, err_msg=key)
    for k in (10, 25):
        np.testing.assert_allclose(r["per_class"][k], g[f"inv_score_per_class_top{k}"], rtol=0, atol=TOL)
        assert r[f"top{k}"] == pytest.approx(float(g[f"reported_top{k}"]), abs=TOL)
    assert r["sets_used"] == len(g["set_ids_unique"]) and r["sets_skipped"] == 0
    assert f"0010: {r['top10']:.3f} 0025: {r['top25']:.3f}" == str(g["printed_line"])


def test_matches_loop_reference_with_ties_small_and_mixed_sets() -> None:
    f, sets, labels = messy()
    assert (np.bincount(np.unique(sets, return_inverse=True)[1]) < 3).any()
    r, ref = invariance_score(f, sets, labels), reference(f, sets, labels)
    assert not np.all(r["global_firing"] == r["global_firing"][0])              # ties move g off (N - k) / N
    for key in ("thresholds", "neg_thresholds", "global_firing", "local_firing", "local_count"):
        np.testing.assert_allclose(r[key], ref[key], rtol=0, atol=1e-12, err_msg=key)
    for k in (10, 25):
        np.testing.assert_allclose(r["per_class"][k], ref["per_class"][k], rtol=0, atol=1e-12)
        assert r[f"top{k}"] == pytest.approx(ref[f"top{k}"], abs=1e-10)
    assert r["threshold_index"] == ref["threshold_index"] and r["percentile"] == ref["percentile"]


def test_float_percentile_quirk_c12() -> None:
    """C = 12, N = 240: p = 91.66666666666666 (float), so k = 219, not 220, and g = 21/240."""
    rng = np.random.default_rng(3)
    sets, labels = block_sets(rng, 48, 5, 12)
    r = invariance_score(rng.normal(size=(240, 32)), sets, labels)
    assert r["percentile"] == 91.66666666666666
    assert r["threshold_index"] == 219
    np.testing.assert_array_equal(r["global_firing"], np.full(32, 21 / 240))


def test_percentile_capped_at_95() -> None:
    """C = 25 would give p = 96; the cap makes it 95.0, so k = int(250 * 95.0 // 100) = 237."""
    rng = np.random.default_rng(11)
    sets, labels = block_sets(rng, 50, 5, 25)
    r = invariance_score(rng.normal(size=(250, 32)), sets, labels)
    assert r["percentile"] == 95.0 and r["threshold_index"] == 237
    np.testing.assert_array_equal(r["global_firing"], np.full(32, 13 / 250))


def test_extra_top_values() -> None:
    f, sets, labels = messy(seed=4)
    r, ref = invariance_score(f, sets, labels, top=(1, 5, 30)), reference(f, sets, labels, top=(1, 5, 30))
    assert set(r["per_class"]) == {1, 5, 30} and "top10" not in r
    for k in (1, 5, 30):
        assert r[f"top{k}"] == pytest.approx(ref[f"top{k}"], abs=1e-10)


# -------------------------------------------------------------------------------------- invariances
def test_torch_inputs_match_numpy() -> None:
    g = golden(CASES[1])
    a = invariance_score(g["F"], g["set_id"], g["class_per_image"])
    sets, labels = torch.from_numpy(g["set_id"]), torch.from_numpy(g["class_per_image"])
    b = invariance_score(torch.from_numpy(g["F"]), sets, labels)
    c = invariance_score(torch.from_numpy(g["F"]).float(), sets, labels)
    d = invariance_score(g["F"].astype(np.float32), g["set_id"], g["class_per_image"])
    assert (a["top10"], a["top25"]) == (b["top10"], b["top25"])
    for key in ("thresholds", "neg_thresholds", "global_firing", "local_firing", "local_count"):
        np.testing.assert_array_equal(a[key], b[key])
        np.testing.assert_array_equal(c[key], d[key])                             # float32 in, float64 math
    assert (c["top10"], c["top25"]) == (d["top10"], d["top25"])
    assert c["thresholds"].dtype == np.float64


@pytest.mark.parametrize("case", CASES)
def test_row_order_does_not_matter(case: str) -> None:
    g = golden(case)
    perm = np.random.default_rng(5).permutation(len(g["F"]))
    a = invariance_score(g["F"], g["set_id"], g["class_per_image"])
    b = invariance_score(g["F"][perm], g["set_id"][perm], g["class_per_image"][perm])
    assert (a["top10"], a["top25"]) == (b["top10"], b["top25"])                   # sets summed in set-id order: exact
    np.testing.assert_array_equal(a["local_firing"], b["local_firing"])


def test_set_class_is_the_label_of_its_first_row() -> None:
    rng = np.random.default_rng(6)
    sets, labels = block_sets(rng, 24, 5, 3)
    f = rng.normal(size=(len(sets), 32))
    mixed = labels.copy()
    mixed[1:5] = 2                                           # set 0: first row class 0, rest class 2
    a, b = invariance_score(f, sets, labels), invariance_score(f, sets, mixed)
    np.testing.assert_array_equal(a["local_firing"], b["local_firing"])
    assert b["set_class"][0] == 0
    flipped = np.r_[1, 0, 2:len(sets)]                                            # now a class-2 row comes first
    c = invariance_score(f[flipped], sets[flipped], mixed[flipped])
    assert c["set_class"][0] == 2
    assert not np.allclose(c["local_firing"], a["local_firing"])


def test_invariant_encoder_beats_random_features() -> None:
    rng = np.random.default_rng(7)
    sets, labels = block_sets(rng, 60, 5, 3)
    signal = np.repeat(rng.normal(size=(60, 64)), 5, axis=0)
    invariant = invariance_score(signal + 1e-3 * rng.normal(size=signal.shape), sets, labels)
    random = invariance_score(rng.normal(size=signal.shape), sets, labels)
    assert invariant["top25"] > random["top25"] + 30
    assert invariant["top10"] > random["top10"] + 30
    # a set that fires does so on all its images (local rate 1), except the set holding the threshold
    # image itself (strict > / <: 4 of 5); the score then nears its ceiling (100 - p) / g = 100
    ceiling = (100 - invariant["percentile"]) / invariant["global_firing"].max()
    assert ceiling == pytest.approx(100.0, abs=1e-9)
    assert 99 < invariant["top25"] <= ceiling + 1e-9
    assert invariant["top10"] == pytest.approx(ceiling, abs=1e-9)
    assert random["top25"] < 60


# ------------------------------------------------------------------------------------- small sets
def test_small_sets_skipped_but_count_for_thresholds() -> None:
    rng = np.random.default_rng(8)
    sets, labels = block_sets(rng, 30, 5, 3)
    small_sets = np.repeat([100, 101, 102, 103], [1, 2, 2, 1])
    sets = np.r_[sets, small_sets]
    labels = np.r_[labels, [0, 1, 1, 2, 2, 0]]
    f = rng.normal(size=(len(sets), 32))
    f[150:] += 3.0                                           # small-set rows sit high: they move t+
    r = invariance_score(f, sets, labels)
    assert (r["sets_used"], r["sets_skipped"]) == (30, 4)
    assert r["threshold_index"] == int((156 * r["percentile"]) // 100)            # all N rows count for k
    np.testing.assert_array_equal(r["global_firing"], np.full(32, (156 - r["threshold_index"]) / 156))

    keep = np.arange(150)
    without = invariance_score(f[keep], sets[keep], labels[keep])
    assert without["sets_skipped"] == 0
    assert not np.allclose(r["thresholds"], without["thresholds"])
    assert not np.allclose(r["neg_thresholds"], without["neg_thresholds"])
    assert r["top25"] != without["top25"]
    np.testing.assert_allclose(r["local_firing"], reference(f, sets, labels)["local_firing"], rtol=0, atol=1e-12)

    loose = invariance_score(f, sets, labels, min_set_size=2)
    assert (loose["sets_used"], loose["sets_skipped"]) == (32, 2)
    assert not np.array_equal(loose["local_count"], r["local_count"])


def test_class_only_in_small_sets_still_counts() -> None:
    rng = np.random.default_rng(9)
    sets, labels = block_sets(rng, 20, 4, 2)
    sets, labels = np.r_[sets, [50, 50]], np.r_[labels, [7, 7]]                  # class 7 has one set of 2 rows
    r = invariance_score(rng.normal(size=(len(sets), 32)), sets, labels)
    np.testing.assert_array_equal(r["classes"], [0, 1, 7])
    assert r["percentile"] == pytest.approx(200 / 3)                             # C = 3, not 2
    assert not r["local_count"][2].any() and not r["local_firing"][2].any()
    assert r["per_class"][25][2] == 0.0
    assert r["top25"] == pytest.approx(np.mean(r["per_class"][25]) * (100 - r["percentile"]), rel=1e-15)


# ------------------------------------------------------------------------------------------ errors
def _ok(n_sets: int = 10, size: int = 3, d: int = 32):
    rng = np.random.default_rng(10)
    sets = np.repeat(np.arange(n_sets), size)
    return rng.normal(size=(len(sets), d)), sets, sets % 2


def _nan_rows(rows: int):
    f, s, y = _ok()
    f[:rows, 0] = np.nan
    f[-1, 3] = np.inf
    return f, s, y


BAD = {
    "1-D features": (lambda: (np.zeros(30),) + _ok()[1:], {}, "must be a 2-D (N, D) array, got shape (30,)"),
    "3-D features": (lambda: (np.zeros((30, 32, 1)),) + _ok()[1:], {}, "must be a 2-D"),
    "short set_ids": (lambda: (_ok()[0], _ok()[1][:-1], _ok()[2]), {}, "set_ids must have shape (30,)"),
    "2-D labels": (lambda: (_ok()[0], _ok()[1], _ok()[2][:, None]), {}, "labels must have shape (30,)"),
    "long labels": (lambda: (_ok()[0], _ok()[1], np.r_[_ok()[2], 0]), {},
                    "labels must have shape (30,) like the feature rows, got (31,)"),
    "nan and inf": (lambda: _nan_rows(2), {}, "NaN or inf in 3 of 30 rows"),
    "D < 25": (lambda: _ok(d=20), {}, "needs at least 25 neurons, got D = 20"),
    "D < custom top": (lambda: _ok(d=30), {"top": (10, 40)}, "needs at least 40 neurons, got D = 30"),
    "no set big enough": (lambda: _ok(size=2), {}, "no set has at least 3 images (10 sets, the largest has 2)"),
    "min_set_size": (lambda: _ok(), {"min_set_size": 4}, "no set has at least 4 images (10 sets, the largest has 3)"),
    "one class": (lambda: _ok()[:2] + (np.zeros(30, int),), {}, "needs at least 2 classes, got 1"),
    "empty": (lambda: (np.zeros((0, 32)), np.zeros(0, int), np.zeros(0, int)), {}, "at least 2 classes, got 0"),
    "bad top": (lambda: _ok(), {"top": (0, 10)}, "top must be a non-empty tuple of positive ints"),
    "bad min_set_size": (lambda: _ok(), {"min_set_size": 0}, "min_set_size must be >= 1"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_input_raises(name: str) -> None:
    make, kwargs, fragment = BAD[name]
    with pytest.raises(InvarianceError) as info:
        invariance_score(*make(), **kwargs)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, ValueError)


def test_good_input_of_the_error_cases_passes() -> None:
    """The base input the error cases break is itself valid (so each error is the one named)."""
    r = invariance_score(*_ok())
    assert r["sets_used"] == 10 and np.isfinite(r["top25"])


def test_tied_units_are_those_whose_threshold_is_their_minimum() -> None:
    """A ReLU unit silent on more than p % of the images gets t+ = 0 = its minimum: counted."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 8)
    sets = np.repeat(np.arange(20), 4)
    f = rng.random((80, 6))
    f[:75, 0] = 0.0                                   # fires on 5 of 80 images, p = 90 %: t+ = 0
    f[:, 1] = 0.0                                     # never fires
    r = invariance_score(f, sets, labels, top=(1,))
    assert r["tied_units"] == 2 and r["thresholds"][0] == 0.0
    assert invariance_score(rng.random((80, 6)), sets, labels, top=(1,))["tied_units"] == 0
