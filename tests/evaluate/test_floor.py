"""The silhouette floor (evaluate.floor): features with known answers, and its command line."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from evaluate.floor import main, silhouette_features


def box(h: int, w: int, size: int = 32) -> np.ndarray:
    m = np.zeros((size, size), bool)
    m[2:2 + h, 3:3 + w] = True
    return m


def test_features_of_boxes_and_an_empty_mask() -> None:
    f = silhouette_features(np.stack([box(10, 20), box(12, 12), box(2, 24), np.zeros((32, 32), bool)]))
    assert f[0, 0] == pytest.approx(200 / 1024) and f[0, 1] == pytest.approx(2.0) and f[2, 1] == pytest.approx(12.0)
    assert f[0, 2] == pytest.approx((2 * 20 + 2 * 10 - 4) / 32)             # the ring of boundary pixels
    assert f[1, 3] > f[0, 3] > f[2, 3]                                      # a square is the most compact box
    assert np.array_equal(f[3], np.zeros(4))


def test_the_command_line(eval_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main([str(eval_data), "--train", "80", "--test", "20"]) == 0
    out = capsys.readouterr().out
    assert "silhouette floor top-1" in out and "area, box_aspect, perimeter, compactness" in out
    assert main([str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and len(err.splitlines()) == 1


def test_the_suite_stores_the_floor_beside_the_probe(tiny_ckpt: Path, eval_data: Path, tmp_path: Path) -> None:
    """The ``floor`` task stores the dataset's floor on the suite's splits: the same number the
    command line prints, whatever the checkpoint."""
    import dataclasses

    from evaluate.context import SuiteConfig
    from evaluate.floor import silhouette_floor
    from evaluate.suite import evaluate_checkpoint
    from measure.results import ResultsStore

    store = ResultsStore(tmp_path / "r.sqlite")
    cfg = dataclasses.replace(SuiteConfig(cache_dir=str(tmp_path / "c")), data=str(eval_data), train_limit=60)
    evaluate_checkpoint(tiny_ckpt, ["floor"], cfg, store)
    frame = store.to_frame()
    expected = silhouette_floor(eval_data, 60, 0)["floor_top1"]
    assert frame[["task", "metric"]].values.tolist() == [["floor", "top1"]]
    assert frame["value"].iloc[0] == pytest.approx(expected)
