"""Results store: round trip, filters, CSV, WAL, atomic adds, bad files, and concurrent writers."""
from __future__ import annotations

import multiprocessing as mp
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from measure.results import COLUMNS, Result, ResultsStore, StoreError, eval_config_key, main

SHA_A, SHA_B = "a" * 64, "b" * 64
LINEAR = {"lr": 0.1, "epochs": 10, "layers": [4]}


def results(sha: str = SHA_A, task: str = "linear", split: str = "val", cfg: dict | None = None,
            value: float = 0.5) -> list[Result]:
    cfg = LINEAR if cfg is None else cfg
    return [Result(f"run-{sha[:4]}", sha, task, "cifar10", split, "top1", value, seed=0, eval_config=cfg),
            Result(f"run-{sha[:4]}", sha, task, "cifar10", split, "top5", value + 0.25, eval_config=cfg)]


@pytest.fixture
def store(tmp_path: Path) -> ResultsStore:
    return ResultsStore(tmp_path / "nested" / "results.sqlite")


def test_round_trip(store: ResultsStore) -> None:
    assert store.add(results()) == 2
    frame = store.to_frame()
    assert list(frame.columns) == list(COLUMNS) and len(store) == 2
    row = frame.iloc[0]
    assert (row.run_id, row.ckpt_sha256, row.task, row.dataset, row.split, row.metric, row.value, row.seed) == \
        ("run-aaaa", SHA_A, "linear", "cifar10", "val", "top1", 0.5, 0)
    assert pd.isna(frame.iloc[1].seed) and frame.seed.dtype == "Int64"
    assert row.eval_config == eval_config_key(LINEAR) == '{"epochs":10,"layers":[4],"lr":0.1}'
    assert row.created.endswith("+00:00")


def test_reopen_and_wal_mode(store: ResultsStore) -> None:
    store.add(results())
    assert len(ResultsStore(store.path)) == 2
    with sqlite3.connect(store.path) as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        indexes = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "results_ckpt_task_dataset" in indexes


def test_filters_and_has(store: ResultsStore) -> None:
    store.add(results(SHA_A) + results(SHA_B, task="knn") + results(SHA_B, split="test"))
    assert len(store.query(ckpt_sha256=SHA_B)) == 4
    assert store.query(task="knn", metric="top5").value.tolist() == [0.75]
    assert len(store.query(seed=None)) == 3 and len(store.query(split=["val", "nope"])) == 4
    assert len(store.query(eval_config=LINEAR)) == 6 and store.query(eval_config={"lr": 1}).empty
    assert store.has(SHA_A, "linear", "cifar10", {"layers": [4], "lr": 0.1, "epochs": 10})  # any key order
    assert store.has(SHA_A, "linear", "cifar10", LINEAR, split="val")
    assert store.has(None, "knn", "cifar10", LINEAR, run_id="run-bbbb")
    assert not store.has(SHA_A, "linear", "cifar10", LINEAR, split="test")
    assert not store.has(SHA_A, "linear", "cifar10", {"lr": 0.2})
    assert not store.has(SHA_A, "linear", "cifar10", LINEAR, run_id="run-bbbb")
    with pytest.raises(ValueError, match="valid columns"):
        store.query(model="x")
    with pytest.raises(ValueError, match="ckpt_sha256 or run_id"):
        store.has(None, "linear", "cifar10", LINEAR)
    with pytest.raises(TypeError, match="eval_config must be a dict"):
        store.has(SHA_A, "linear", "cifar10", "val")  # split is keyword-only


def test_delete_and_replace(store: ResultsStore) -> None:
    store.add(results(SHA_A) + results(SHA_A, split="test") + results(SHA_B))
    assert store.delete(ckpt_sha256=SHA_A, task="linear", dataset="cifar10", eval_config=LINEAR, split="test") == 2
    assert store.replace(results(SHA_A, value=0.9)) == (2, 2)
    frame = store.query(ckpt_sha256=SHA_A)
    assert frame.value.tolist() == [0.9, 1.15] and len(store) == 4
    assert store.delete(ckpt_sha256=SHA_B, task="linear", dataset="cifar10", eval_config={"lr": 9}) == 0


def test_replace_a_named_evaluation(store: ResultsStore) -> None:
    store.add(results(SHA_A) + results(SHA_A, split="test") + results(SHA_B))
    key = {"ckpt_sha256": SHA_A, "task": "linear", "dataset": "cifar10", "eval_config": LINEAR}
    rerun = results(SHA_A, value=0.9)[:1]  # the rerun has one split and one metric left
    assert store.replace(rerun, **key) == (4, 1)
    assert store.query(ckpt_sha256=SHA_A).value.tolist() == [0.9] and len(store) == 3
    with pytest.raises(ValueError, match="another ckpt_sha256"):
        store.replace(results(SHA_B), **key)
    with pytest.raises(ValueError, match="pass dataset, eval_config too"):
        store.replace(rerun, ckpt_sha256=SHA_A, task="linear")
    assert len(store) == 3


def test_csv_export(store: ResultsStore, tmp_path: Path) -> None:
    store.add(results())
    out = store.to_csv(tmp_path / "export" / "results.csv")
    back = pd.read_csv(out)
    assert list(back.columns) == list(COLUMNS) and back.value.tolist() == [0.5, 0.75]
    assert [p.name for p in out.parent.iterdir()] == ["results.csv"]  # no temporary file left


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), None, "0.5"])
def test_bad_value_writes_nothing(store: ResultsStore, bad: object) -> None:
    store.add(results())
    rows = results(SHA_B) + [Result("r", SHA_B, "linear", "cifar10", "val", "loss", bad)]
    with pytest.raises(ValueError, match="'loss'"):
        store.add(rows)
    with pytest.raises(ValueError, match="'loss'"):
        store.replace(results(SHA_A, value=0.1) + [Result("r", SHA_A, "linear", "cifar10", "val", "loss", bad)])
    assert store.to_frame().value.tolist() == [0.5, 0.75]


def test_failed_transaction_rolls_back(store: ResultsStore) -> None:
    store.add(results())
    with pytest.raises(RuntimeError):
        with store._transaction() as con:
            con.execute("DELETE FROM results")
            raise RuntimeError("interrupted")
    assert len(store) == 2


def test_garbage_file_is_refused(tmp_path: Path) -> None:
    garbage = tmp_path / "results.sqlite"
    garbage.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match=r"results\.sqlite: not an SQLite database"):
        ResultsStore(garbage)


def test_other_schema_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as con:
        con.execute("CREATE TABLE things (x)")
    with pytest.raises(StoreError, match="not a results store"):
        ResultsStore(other)
    store = ResultsStore(tmp_path / "old.sqlite")
    with sqlite3.connect(store.path) as con:
        con.execute("UPDATE meta SET value = '0' WHERE key = 'schema_version'")
    with pytest.raises(StoreError, match="schema_version 0; expected"):
        ResultsStore(store.path)


def test_cli_summary_and_csv(store: ResultsStore, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    store.add(results() + results(SHA_B))
    assert main([str(store.path), "--csv", str(tmp_path / "out.csv")]) == 0
    out = capsys.readouterr().out
    assert "4 rows, 2 checkpoints, 1 tasks" in out and "top5" in out
    assert len(pd.read_csv(tmp_path / "out.csv")) == 4
    assert main([str(tmp_path / "missing.sqlite")]) == 2


# --------------------------------------------------------------------------------- concurrency

WORKERS, ROWS, PER_TRANSACTION = 4, 200, 5


def write_rows(path: str, worker: int, start: mp.synchronize.Event) -> None:
    """Worker process: open the (possibly not yet created) store, then add rows in small batches."""
    start.wait()
    store = ResultsStore(path)
    for first in range(0, ROWS, PER_TRANSACTION):
        store.add(Result(f"w{worker}", SHA_A, "linear", "cifar10", "val", f"m{i}", float(i), seed=worker)
                  for i in range(first, first + PER_TRANSACTION))


def test_parallel_writers_lose_nothing(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.sqlite")
    ctx = mp.get_context("spawn")
    start = ctx.Event()
    procs = [ctx.Process(target=write_rows, args=(path, w, start)) for w in range(WORKERS)]
    for p in procs:
        p.start()
    start.set()  # every worker races to create the store, then to write
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0] * WORKERS
    frame = ResultsStore(path).to_frame()
    assert len(frame) == WORKERS * ROWS
    assert not frame.duplicated(["seed", "metric"]).any()
    assert sorted(frame.groupby("seed").size().tolist()) == [ROWS] * WORKERS


def test_arrays_round_trip_and_replace(store: ResultsStore) -> None:
    xy = np.arange(12, dtype=np.float32).reshape(6, 2)
    store.put_arrays("run-a", "sha-a", "clustering", "shapes", "embedding_tsne", xy=xy, labels=np.arange(6))
    store.put_arrays("run-b", "sha-b", "clustering", "shapes", "embedding_tsne", xy=xy * 2, labels=np.arange(6))
    store.put_arrays("run-a", "sha-a", "clustering", "shapes", "embedding_tsne", xy=xy + 1, labels=np.arange(6))
    (a,) = store.arrays(ckpt_sha256="sha-a")
    np.testing.assert_array_equal(a["arrays"]["xy"], xy + 1)          # replaced, not duplicated
    assert a["run_id"] == "run-a" and a["name"] == "embedding_tsne"
    assert len(store.arrays(task="clustering")) == 2
    assert len(ResultsStore(store.path).arrays()) == 2                  # reopening keeps them
    with pytest.raises(ValueError, match="unknown array filter"):
        store.arrays(metric="x")


# ----------------------------------------------------------------------------------- run configs

CONFIG = {"method": "mocov2", "aug": "sal-mask", "train": {"seed": 1, "out": Path("runs")},
          "aug_cfg": {"fill": "blur", "ratio": (0.05, 0.25)}, "method_cfg": {}}


def test_run_configs_round_trip_and_replace(store: ResultsStore) -> None:
    assert store.runs().empty and list(store.runs().columns) == ["run_id", "ckpt_sha256", "config", "created"]
    store.put_run("run-a", SHA_A, CONFIG)
    store.put_run("run-b", SHA_B, {"aug_cfg": {"fill": "mean"}})
    runs = ResultsStore(store.path).runs()                                # reopened: persisted
    assert runs["run_id"].tolist() == ["run-a", "run-b"] and runs["ckpt_sha256"].tolist() == [SHA_A, SHA_B]
    assert runs["config"].iloc[0] == {"method": "mocov2", "aug": "sal-mask", "train": {"seed": 1, "out": "runs"},
                                      "aug_cfg": {"fill": "blur", "ratio": [0.05, 0.25]}, "method_cfg": {}}
    assert runs["created"].str.endswith("+00:00").all()
    with sqlite3.connect(store.path) as con:                              # canonical JSON: sorted, compact
        (text,) = con.execute("SELECT config FROM runs WHERE run_id = 'run-b'").fetchone()
    assert text == '{"aug_cfg":{"fill":"mean"}}'
    store.put_run("run-a", SHA_A, {"aug_cfg": {"fill": "highpass"}})       # replaced, not duplicated
    runs = store.runs()
    assert len(runs) == 2 and runs.set_index("run_id").loc["run-a", "config"] == {"aug_cfg": {"fill": "highpass"}}
    assert len(store) == 0                                                # the results table is untouched


def test_recording_a_new_checkpoint_of_a_run_removes_its_old_rows(store: ResultsStore, caplog) -> None:
    """A run retrained (same run id, new checkpoint): its old checkpoint's results, arrays and
    config go when the new one is recorded, with a log line; other runs and the new rows stay."""
    old = [Result("run-x", SHA_A, "linear", "cifar10", "val", "top1", 0.4, eval_config=LINEAR)]
    store.add(old + results(SHA_B))
    store.put_run("run-x", SHA_A, {"aug_cfg": {"distinct_pairs": False}})
    store.put_arrays("run-x", SHA_A, "clustering", "shapes", "embedding_tsne", xy=np.zeros((2, 2)), labels=np.arange(2))
    assert store.record_run("run-x", SHA_A, {"aug_cfg": {"distinct_pairs": False}}) == 0    # the same checkpoint
    with caplog.at_level("WARNING", logger="measure.results"):
        assert store.record_run("run-x", "c" * 64, {"aug_cfg": {"distinct_pairs": True}}) == 1
    assert "run-x: removed 1 stored values of an earlier checkpoint of this run (sha256 aaaaaaaaaaaa)" in caplog.text
    assert store.query(run_id="run-x").empty and len(store.query(run_id="run-bbbb")) == 2
    assert store.arrays(run_id="run-x") == []
    assert store.runs()["ckpt_sha256"].tolist() == ["c" * 64]


@pytest.mark.parametrize("args, error", [(("", SHA_A, {}), ValueError), (("r", None, {}), ValueError),
                                         (("r", SHA_A, "fill=blur"), TypeError),
                                         (("r", SHA_A, {"lr": float("nan")}), ValueError)])
def test_bad_run_config_writes_nothing(store: ResultsStore, args: tuple, error: type) -> None:
    with pytest.raises(error):
        store.put_run(*args)
    assert store.runs().empty


def test_store_without_runs_table_reads_and_gains_it(store: ResultsStore) -> None:
    """A store made before the runs table existed: still opens and reads (no configs); reopening
    adds the table, and configs can then be written."""
    store.add(results())
    with sqlite3.connect(store.path) as con:
        con.execute("DROP TABLE runs")
    assert store.runs().empty and len(store) == 2                         # read as it is
    reopened = ResultsStore(store.path)
    assert reopened.runs().empty and len(reopened.to_frame()) == 2
    reopened.put_run("run-aaaa", SHA_A, {"aug": "default"})
    assert reopened.runs()["config"].tolist() == [{"aug": "default"}]


def test_suite_records_the_pretraining_config(tiny_ckpt: Path, eval_data: Path, tmp_path: Path) -> None:
    """A suite run stores the checkpoint's meta.config once, keyed like its results."""
    import json

    from measure import features as F
    from evaluate import suite as S
    from pretrain.checkpoint import read_meta

    db = tmp_path / "r.sqlite"
    args = [str(tiny_ckpt), "--data", str(eval_data), "--store", str(db), "--cache", str(tmp_path / "c"),
            "--tasks", "knn"]
    assert S.main(args) == 0
    meta = read_meta(tiny_ckpt)
    runs, frame = ResultsStore(db).runs(), ResultsStore(db).to_frame()
    assert len(runs) == 1 and runs["run_id"].iloc[0] == meta.run_id == frame["run_id"].iloc[0]
    assert runs["ckpt_sha256"].iloc[0] == F.file_sha256(tiny_ckpt) == frame["ckpt_sha256"].iloc[0]
    assert runs["config"].iloc[0] == json.loads(json.dumps(meta.config, default=str))
    assert runs["config"].iloc[0]["method"] == "simclr" and "aug_cfg" in runs["config"].iloc[0]
    assert S.main(args) == 0 and len(ResultsStore(db).runs()) == 1       # a rerun replaces, never duplicates
