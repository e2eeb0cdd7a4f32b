"""reports.data: run-id parsing, loading the store, the runs table, CSV / parquet export."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evaluate.store import Result, ResultsStore
from reports import data as D

SEEDS = (0, 1, 2)


def run_id(method: str, aug: str, seed: int, data: str = "shapes64") -> str:
    return f"{method}-{aug}-resnet18-{data}-s{seed}-0a1b2c3d"


def build_store(path: Path) -> ResultsStore:
    """2 methods x 2 augs x 3 pretraining seeds: linear, finetune (2 eval seeds) and invariance
    rows; a scratch baseline and an agreement row."""
    store = ResultsStore(path)
    rows = []
    for i, (method, aug) in enumerate([(m, a) for m in ("simclr", "mocov2") for a in ("default", "sal-mask")]):
        for seed in SEEDS:
            rid, sha = run_id(method, aug, seed), f"{i}{seed}".ljust(64, "0")
            rows.append(Result(rid, sha, "linear", "shapes64", "test", "top1", 60.0 + i + seed, None, {"c": 1}))
            rows += [Result(rid, sha, "finetune", "shapes64", "test", f"top1@n{n}", 40.0 + n / 100 + e, e, {})
                     for n in (100, 500) for e in (0, 1)]
            rows.append(Result(rid, sha, "invariance", "probe-occlusion", "test", "top25", 20.0 + seed, None, {}))
    rows.append(Result("scratch-resnet18", "s" * 64, "finetune", "shapes64", "test", "top1@n100", 30.0, 0, {}))
    rows.append(Result("set-0123456789abcdef", "t" * 64, "agreement", "shapes64", "test",
                       "spearman_linear_finetune", 0.5, None, {}))
    store.add(rows)
    return store


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return build_store(tmp_path / "results.sqlite").path


@pytest.mark.parametrize("rid, want", [
    ("mocov2-sal-mask-hn-resnet18-shapes64-clutter-s2-0123abcd",
     ("mocov2", "sal-mask-hn", "resnet18", "shapes64-clutter", 2, "0123abcd")),
    ("simclr-mild-resnet50-tcvl-1011-s0-ed1faf4b", ("simclr", "mild", "resnet50", "tcvl-1011", 0, "ed1faf4b")),
    ("byol-default-tiny-shapes64-s13-ffffffff", ("byol", "default", "tiny", "shapes64", 13, "ffffffff")),
])
def test_parse_run_id(rid: str, want: tuple) -> None:
    got = D.parse_run_id(rid)
    assert tuple(got[c] for c in D.RUN_COLUMNS) == want


@pytest.mark.parametrize("rid, method", [("scratch-resnet18", "scratch"), ("set-0123456789abcdef", "set"),
                                          ("notarun", "notarun"), ("simclr-default-s0-0a1b2c3d", "simclr")])
def test_parse_unparseable_ids_keep_method_only(rid: str, method: str) -> None:
    got = D.parse_run_id(rid)
    assert got["method"] == method
    assert all(pd.isna(got[c]) for c in D.RUN_COLUMNS if c != "method")


def test_load_adds_run_columns(db: Path) -> None:
    frame = D.load(db)
    assert len(frame) == len(ResultsStore(db))
    assert set(D.RUN_COLUMNS) <= set(frame.columns)
    assert str(frame["pretrain_seed"].dtype) == "Int64"
    row = frame[frame["run_id"] == run_id("mocov2", "sal-mask", 2)].iloc[0]
    assert (row["method"], row["aug"], row["backbone"], row["pretrain_data"], row["pretrain_seed"]) == \
        ("mocov2", "sal-mask", "resnet18", "shapes64", 2)
    scratch = frame[frame["run_id"] == "scratch-resnet18"].iloc[0]
    assert scratch["method"] == "scratch" and pd.isna(scratch["aug"]) and pd.isna(scratch["pretrain_seed"])


def test_load_missing_store_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "none.sqlite"
    with pytest.raises(FileNotFoundError, match="no such results store"):
        D.load(path)
    assert not path.exists()


def test_runs_table(db: Path) -> None:
    table = D.runs_table(D.load(db))
    assert len(table) == 2 * 2 * 3 + 2
    assert list(table.columns[:6]) == ["run_id", "method", "aug", "backbone", "pretrain_data", "pretrain_seed"]
    row = table.set_index("run_id").loc[run_id("simclr", "default", 1)]
    assert row["tasks"] == "finetune, invariance, linear"
    assert row["datasets"] == "probe-occlusion, shapes64"
    assert row["evaluations"] == "finetune/shapes64:4; invariance/probe-occlusion:1; linear/shapes64:1"
    assert row["rows"] == 6 and row["pretrain_seed"] == 1
    assert table.set_index("run_id").loc["scratch-resnet18", "rows"] == 1


def test_export_csv_round_trip(db: Path, tmp_path: Path) -> None:
    frame = D.load(db)
    out = D.export(frame, tmp_path / "sub" / "rows.csv")
    back = pd.read_csv(out)
    assert list(back.columns) == list(frame.columns)
    assert back["run_id"].tolist() == frame["run_id"].tolist()
    np.testing.assert_array_equal(back["value"].to_numpy(), frame["value"].to_numpy())
    assert back["seed"].isna().tolist() == frame["seed"].isna().tolist()
    assert back["pretrain_seed"].fillna(-1).astype(int).tolist() == frame["pretrain_seed"].fillna(-1).tolist()
    assert [p.name for p in out.parent.iterdir()] == ["rows.csv"]          # no temporary file left


def test_export_parquet_without_pyarrow(db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(ValueError) as err:
        D.export(D.load(db), tmp_path / "rows.parquet")
    assert str(err.value) == "parquet export needs pyarrow: pip install pyarrow"
    assert not list(tmp_path.glob("*.parquet*"))


@pytest.mark.skipif(importlib.util.find_spec("pyarrow") is None and importlib.util.find_spec("fastparquet") is None,
                    reason="no parquet engine installed")
def test_export_parquet_round_trip(db: Path, tmp_path: Path) -> None:
    frame = D.load(db)
    back = pd.read_parquet(D.export(frame, tmp_path / "rows.parquet"))
    assert back["value"].tolist() == frame["value"].tolist()


def test_export_unknown_format(db: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown export format '\.xlsx'; valid: \.csv, \.parquet"):
        D.export(D.load(db), tmp_path / "rows.xlsx")


def test_write_atomic_keeps_old_file_on_failure(tmp_path: Path) -> None:
    path = D.write_text(tmp_path / "a.txt", "old")

    def broken(tmp: Path) -> None:
        tmp.write_text("half")
        raise RuntimeError("disk full")
    with pytest.raises(RuntimeError):
        D.write_atomic(path, broken)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]
