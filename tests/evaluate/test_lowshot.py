"""Low-shot linear probes (evaluate.lowshot): class-balanced draws, known answers, bad sizes."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from evaluate import suite as S
from evaluate.lowshot import LowShotConfig, low_shot_probe, per_class_draw, smallest_class
from measure.results import ResultsStore


def clusters(n_per_class: int, classes: int, dim: int, spread: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, dim)) * 4
    y = np.repeat(np.arange(classes), n_per_class)
    return (centres[y] + spread * rng.normal(size=(y.size, dim))).astype(np.float32), y


@pytest.mark.parametrize("shots", [1, 3, 7])
def test_a_draw_holds_exactly_k_labelled_images_of_every_class(shots: int) -> None:
    y = np.array([0] * 9 + [1] * 7 + [2] * 12 + [-1] * 5)
    rows = per_class_draw(y, shots, seed=0)
    assert sorted(np.bincount(y[rows])) == [shots] * 3 and (y[rows] >= 0).all()
    assert np.array_equal(rows, per_class_draw(y, shots, seed=0))                  # seeded
    assert any(not np.array_equal(rows, per_class_draw(y, shots, seed=s)) for s in range(1, 5))


def test_a_size_above_the_smallest_class_is_one_clear_error() -> None:
    y = np.array([0] * 9 + [1] * 7)
    assert smallest_class(y) == (1, 7)
    with pytest.raises(ValueError, match="low-shot size 8 labels per class exceeds the smallest class "
                                         r"\(class 1 has 7 labelled training images\)"):
        per_class_draw(y, 8, seed=0)


def test_separable_clusters_are_learnt_from_few_labels_and_random_features_are_not() -> None:
    x, y = clusters(60, 5, 16, spread=0.5, seed=0)
    xt, yt = clusters(40, 5, 16, spread=0.5, seed=0)
    out = low_shot_probe(x, y, xt, yt, LowShotConfig(shots=(1, 10), draws=3))
    assert set(out) == {1, 10} and all(len(v) == 3 for v in out.values())
    assert min(out[10]) > 95 and np.mean(out[1]) > 80
    noise = np.random.default_rng(1).normal(size=x.shape).astype(np.float32)
    chance = low_shot_probe(noise, y, noise[:200], yt[:200], LowShotConfig(shots=(10,), draws=3))
    assert np.mean(chance[10]) < 40                                                 # 5 classes: chance is 20


def test_the_suite_stores_one_row_per_size_and_draw(tiny_ckpt: Path, eval_data: Path, tmp_path: Path,
                                                   caplog: pytest.LogCaptureFixture, capsys) -> None:
    store = tmp_path / "r.sqlite"
    base = [str(tiny_ckpt), "--data", str(eval_data), "--store", str(store), "--cache", str(tmp_path / "c")]
    assert S.main([*base, "--tasks", "lowshot", "--lowshot-shots", "1,2,500", "--lowshot-draws", "3"]) == 0
    frame = ResultsStore(store).to_frame()
    assert sorted(set(frame["metric"])) == ["top1@1shot", "top1@2shot"] and sorted(set(frame["seed"])) == [0, 1, 2]
    assert "low-shot size 500 labels per class exceeds the smallest class" in caplog.text
    assert S.main([*base, "--tasks", "lowshot", "--lowshot-shots", "0"]) == 2
    assert "low-shot sizes must be positive labels per class, got [0]" in capsys.readouterr().err
    assert S.main([*base, "--tasks", "lowshot", "--lowshot-shots", "400,500"]) == 2      # nothing can be computed
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: no task could be computed (lowshot: ") and "exceeds the smallest class" in err
    assert len(err.splitlines()) == 1
