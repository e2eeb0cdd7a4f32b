"""reports.data: run-id columns, loading the store, the runs table, CSV / parquet export, variants."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from stored_configs import resolved

from measure.results import Result, ResultsStore
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
def test_run_columns(rid: str, want: tuple) -> None:
    got = D.with_run_info(pd.DataFrame({"run_id": [rid]})).iloc[0]
    assert tuple(got[c] for c in D.RUN_COLUMNS) == want


@pytest.mark.parametrize("rid, method", [("scratch-resnet18", "scratch"), ("set-0123456789abcdef", "set"),
                                          ("notarun", "notarun"), ("simclr-default-s0-0a1b2c3d", "simclr")])
def test_ids_that_do_not_parse_keep_method_only(rid: str, method: str) -> None:
    got = D.with_run_info(pd.DataFrame({"run_id": [rid]})).iloc[0]
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


def test_a_failed_export_keeps_the_old_file(db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "out" / "rows.csv"
    path.parent.mkdir()
    path.write_text("old")

    def broken(self: pd.DataFrame, tmp: Path, **kwargs: object) -> None:
        Path(tmp).write_text("half")
        raise RuntimeError("disk full")
    frame = D.load(db)
    monkeypatch.setattr(pd.DataFrame, "to_csv", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        D.export(frame, path)
    assert path.read_text() == "old"
    assert [p.name for p in path.parent.iterdir()] == ["rows.csv"]          # no temporary file left


# ----------------------------------------------------------------------------------- variants

def pretrain_config(method: str, aug: str, seed: int, data: str = "shapes64", **settings: object) -> dict:
    """A resolved pretraining config as a checkpoint records it (``meta.config``: ``method_cfg``
    and ``aug_cfg`` hold every field, defaults included); ``settings``: dotted overrides
    (``aug_cfg.fill="blur"``, ``optim.lr=0.1``) given as ``aug_cfg__fill``."""
    method_cfg, aug_cfg = resolved(method, aug, {"queue_size": 1024} if method == "mocov2" else {}, {"out_size": 32})
    cfg = {"method": method, "aug": aug, "preset": "cpu",
           "data": {"path": f"/data/{data}-{seed}", "split": "train", "batch_size": 128, "prefetch": 2},
           "backbone": {"name": "resnet18", "kwargs": {}},
           "optim": {"name": "sgd", "lr": 0.6, "momentum": 0.9},
           "train": {"epochs": 15.0, "seed": seed, "out": f"runs/{seed}", "device": "auto", "log_every": 10},
           "method_cfg": method_cfg, "aug_cfg": aug_cfg}
    for key, value in settings.items():
        section, leaf = key.split("__")
        cfg[section][leaf] = value
    return cfg


def rid(method: str, aug: str, seed: int, tag: str, data: str = "shapes64") -> str:
    return f"{method}-{aug}-resnet18-{data}-s{seed}-{tag}"


def test_variant_labels_show_what_differs_within_a_group() -> None:
    configs = {}
    for seed in (0, 1):
        configs[rid("mocov2", "sal-mask", seed, "00000001")] = pretrain_config("mocov2", "sal-mask", seed)
        for n, fill in enumerate(("blur", "mean"), 2):
            configs[rid("mocov2", "sal-mask", seed, f"0000000{n}")] = pretrain_config(
                "mocov2", "sal-mask", seed, aug_cfg__fill=fill)
        for n, algo in enumerate(("hc", "rc"), 4):
            configs[rid("simclr", "sgd", seed, f"0000000{n}")] = pretrain_config(
                "simclr", "sgd", seed, aug_cfg__algo=algo)
        configs[rid("simclr", "sgd", seed, "00000006")] = pretrain_config("simclr", "sgd", seed, aug_cfg__out_size=64)
        for n, algo in enumerate(("hc", "rc"), 0xc):          # BYOL's sgd runs: out_size not varied
            configs[rid("byol", "sgd", seed, f"0000000{n:x}")] = pretrain_config("byol", "sgd", seed,
                                                                                aug_cfg__algo=algo)
        # seed, output, data path and device differ, nothing else: one variant
        configs[rid("byol", "default", seed, "00000007")] = pretrain_config(
            "byol", "default", seed, train__device="cuda" if seed else "cpu")
        configs[rid("temporal", "default", seed, "00000008", "video")] = pretrain_config(
            "temporal", "default", seed, "video", **({"method_cfg__mode": "regions"} if seed else {}))
    configs[rid("simclr", "default", 0, "00000009")] = pretrain_config("simclr", "default", 0, optim__momentum=0.8,
                                                                        method_cfg__momentum=0.5)
    configs[rid("simclr", "default", 1, "0000000a")] = pretrain_config("simclr", "default", 1)
    configs["scratch-resnet18"] = pretrain_config("simclr", "default", 0, aug_cfg__fill="x")
    configs[rid("simclr", "mild", 0, "0000000b")] = {}                      # no stored config
    labels = D.variant_labels(configs)
    for seed in (0, 1):
        assert labels[rid("mocov2", "sal-mask", seed, "00000001")] == "fill=highpass"     # the default, shown
        assert labels[rid("mocov2", "sal-mask", seed, "00000002")] == "fill=blur"
        assert labels[rid("mocov2", "sal-mask", seed, "00000003")] == "fill=mean"
        assert labels[rid("simclr", "sgd", seed, "00000004")] == "algo=hc, out_size=32"
        assert labels[rid("simclr", "sgd", seed, "00000005")] == "algo=rc, out_size=32"
        assert labels[rid("simclr", "sgd", seed, "00000006")] == "algo=rc, out_size=64"
        # a policy setting one method varies is shown for the other's runs too: the labels line up
        assert labels[rid("byol", "sgd", seed, "0000000c")] == "algo=hc, out_size=32"
        assert labels[rid("byol", "sgd", seed, "0000000d")] == "algo=rc, out_size=32"
        assert labels[rid("byol", "default", seed, "00000007")] == ""
    assert labels[rid("temporal", "default", 0, "00000008", "video")] == "mode=frames"
    assert labels[rid("temporal", "default", 1, "00000008", "video")] == "mode=regions"
    # two shown keys with one leaf name: prefixed by their section; a setting a config lacks is marked
    assert labels[rid("simclr", "default", 0, "00000009")] == "method_cfg.momentum=0.5, optim.momentum=0.8"
    assert labels[rid("simclr", "default", 1, "0000000a")] == \
        f"method_cfg.momentum={D.DEFAULT_MARK}, optim.momentum=0.9"
    assert labels["scratch-resnet18"] == "" and labels[rid("simclr", "mild", 0, "0000000b")] == ""
    assert D.parse_variant("algo=hc, out_size=64") == {"algo": "hc", "out_size": "64"}
    assert D.parse_variant("") == {} and D.parse_variant(np.nan) == {}


def test_load_joins_the_stored_configs(tmp_path: Path) -> None:
    store = build_store(tmp_path / "results.sqlite")
    for seed in SEEDS:                                      # simclr sal-mask: a blur run beside each stored one
        blur = run_id("simclr", "sal-mask", seed).replace("0a1b2c3d", "0000b10e")
        store.add([Result(blur, "b" * 63 + str(seed), "linear", "shapes64", "test", "top1", 50.0, None, {"c": 1})])
        store.put_run(blur, "b" * 63 + str(seed), pretrain_config("simclr", "sal-mask", seed, aug_cfg__fill="blur"))
        old = run_id("simclr", "sal-mask", seed)
        store.put_run(old, f"2{seed}".ljust(64, "0"), pretrain_config("simclr", "sal-mask", seed))
    frame = D.load(store.path)
    by_run = frame.drop_duplicates("run_id").set_index("run_id")["variant"]
    assert by_run[run_id("simclr", "sal-mask", 1)] == "fill=highpass"
    assert by_run[run_id("simclr", "sal-mask", 1).replace("0a1b2c3d", "0000b10e")] == "fill=blur"
    assert by_run[run_id("mocov2", "sal-mask", 1)] == "" and by_run["scratch-resnet18"] == ""   # no config
    assert D.aug_label(frame.set_index("run_id").loc[[run_id("simclr", "sal-mask", 0)]]).iloc[0] == \
        "sal-mask fill=highpass"
    table = D.runs_table(frame).set_index("run_id")
    assert table.loc[run_id("simclr", "sal-mask", 0), "variant"] == "fill=highpass"
    assert table.loc[run_id("simclr", "default", 0), "variant"] == ""


def test_settings_an_older_config_lacks_read_default() -> None:
    """Configs of older stores hold only the settings given: a setting one run gives and another
    leaves out reads ``(default)`` for the latter (the reports know no default of their own)."""
    def old(seed: int, tag: str, **aug_cfg: object) -> tuple[str, dict]:
        config = {"method": "mocov2", "aug": "sal-mask", "train": {"seed": seed}, "method_cfg": {},
                  "aug_cfg": {"out_size": 32, **aug_cfg}}
        return rid("mocov2", "sal-mask", seed, tag), config
    labels = D.variant_labels(dict([old(0, "00000001"), old(0, "00000002", fill="blur"),
                                    old(1, "00000003", fill="mean")]))
    assert labels[rid("mocov2", "sal-mask", 0, "00000001")] == f"fill={D.DEFAULT_MARK}"
    assert labels[rid("mocov2", "sal-mask", 0, "00000002")] == "fill=blur"
    assert labels[rid("mocov2", "sal-mask", 1, "00000003")] == "fill=mean"
