"""The suite end to end: checkpoint -> cached features -> tasks -> results store (evaluate.suite)."""
from __future__ import annotations

from pathlib import Path

import pytest

from evaluate import features as F
from evaluate import suite as S
from evaluate.store import ResultsStore


def run(args: list[str]) -> int:
    return S.main(args)


def test_suite_fills_the_store_and_reuses_features_and_results(tiny_ckpt: Path, eval_data: Path, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture) -> None:
    store, cache = tmp_path / "r.sqlite", tmp_path / "cache"
    args = [str(tiny_ckpt), "--data", str(eval_data), "--store", str(store), "--cache", str(cache), "--seeds", "0,1"]
    before = F.STATS["extractions"]
    assert run(args) == 0
    assert F.STATS["extractions"] - before == 2                        # train + test, once each
    frame = ResultsStore(store).to_frame()
    assert set(frame["task"]) == set(S.TASKS)
    assert {"top1", "best_c", "top1@k20", "nmi", "ari", "acc"} <= set(frame["metric"])
    assert set(frame.loc[frame["task"] == "clustering", "seed"]) == {0, 1}
    assert frame["value"].notna().all() and (frame["ckpt_sha256"] == F.file_sha256(tiny_ckpt)).all()
    assert "top1" in capsys.readouterr().out
    n = len(frame)
    assert run(args) == 0                                                # stored: nothing recomputed
    assert F.STATS["extractions"] - before == 2 and len(ResultsStore(store).to_frame()) == n
    assert run(args + ["--force", "--tasks", "linear"]) == 0            # features from the cache
    assert F.STATS["extractions"] - before == 2 and len(ResultsStore(store).to_frame()) == n


def test_suite_runs_folder_and_bad_input(tiny_ckpt: Path, eval_data: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture) -> None:
    store = tmp_path / "r.sqlite"
    base = ["--data", str(eval_data), "--store", str(store), "--cache", str(tmp_path / "c")]
    assert run([str(tiny_ckpt.parent.parent), "--tasks", "knn", *base]) == 0
    assert run([str(tiny_ckpt), "--tasks", "nope", *base]) == 2
    assert "unknown task(s) nope; valid: linear" in capsys.readouterr().err
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    assert run([str(junk), *base]) == 2
    assert "not a readable sslbench checkpoint" in capsys.readouterr().err
    assert run([str(tmp_path / "missing.pt"), *base]) == 2
    assert run([str(tiny_ckpt), "--data", str(tmp_path / "nodata"), "--store", str(store)]) == 2
    assert set(ResultsStore(store).to_frame()["task"]) == {"knn"}      # the store is intact
