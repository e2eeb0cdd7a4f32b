"""reports.tables: aggregation over seeds (checked against numpy / scipy), pivots, and rendering
in which no number ever appears without its seed count."""
from __future__ import annotations

import csv
import io
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from stored_configs import resolved

from measure.results import Result, ResultsStore
from reports import data as D
from reports import tables as T

LINEAR = {("simclr", "default"): [60.1, 62.4, 61.0], ("simclr", "sal-mask"): [63.0, 64.5, 62.2],
          ("mocov2", "default"): [58.0, 59.9, 57.3], ("mocov2", "sal-mask"): [61.7, 60.2, 63.3]}
FINETUNE = {100: [[40.0, 41.5], [39.2, 40.1], [42.0, 41.1]], 500: [[55.0, 54.0], [56.5, 55.1], [53.9, 54.4]]}


def run_id(method: str, aug: str, seed: int) -> str:
    return f"{method}-{aug}-resnet18-shapes64-s{seed}-0a1b2c3d"


@pytest.fixture
def frame(tmp_path: Path) -> pd.DataFrame:
    """2 methods x 2 augs x 3 pretraining seeds: linear top-1 (no eval seed), finetune top-1 at two
    label counts x 2 eval seeds (simclr/default only), invariance on one probe; one single-seed run
    (byol, seed 0 only); a scratch baseline."""
    store = ResultsStore(tmp_path / "r.sqlite")
    rows = []
    for (method, aug), values in LINEAR.items():
        for seed, value in enumerate(values):
            rid = run_id(method, aug, seed)
            rows.append(Result(rid, rid.ljust(64, "0"), "linear", "shapes64", "test", "top1", value, None, {}))
            rows.append(Result(rid, rid.ljust(64, "0"), "invariance", "probe-occlusion", "test", "top25",
                               value / 3, None, {}))
    for n, per_seed in FINETUNE.items():
        for seed, evals in enumerate(per_seed):
            rid = run_id("simclr", "default", seed)
            rows += [Result(rid, rid.ljust(64, "0"), "finetune", "shapes64", "test", f"top1@n{n}", v, e, {})
                     for e, v in enumerate(evals)]
    rows.append(Result("scratch-resnet18", "s" * 64, "finetune", "shapes64", "test", "top1@n100", 30.0, 0, {}))
    rows.append(Result(run_id("byol", "default", 0), "b" * 64, "linear", "shapes64", "test", "top1", 61.24, None, {}))
    store.add(rows)
    return D.load(store.path)


def linear_agg(frame: pd.DataFrame, stat: str = "std") -> pd.DataFrame:
    return T.aggregate(frame[frame["task"] == "linear"], ["method", "aug"], stat)


def test_aggregate_mean_std_n(frame: pd.DataFrame) -> None:
    agg = linear_agg(frame).set_index(["method", "aug"])
    assert list(agg.columns) == ["mean", "std", "n"]
    for key, values in LINEAR.items():
        assert agg.loc[key, "n"] == 3
        assert agg.loc[key, "mean"] == pytest.approx(np.mean(values))
        assert agg.loc[key, "std"] == pytest.approx(np.std(values, ddof=1))


def test_aggregate_ci95_against_scipy(frame: pd.DataFrame) -> None:
    agg = linear_agg(frame, "ci95").set_index(["method", "aug"])
    assert list(agg.columns) == ["mean", "ci95", "n"]
    for key, values in LINEAR.items():
        lo, hi = stats.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=stats.sem(values))
        assert agg.loc[key, "ci95"] == pytest.approx((hi - lo) / 2)


def test_pretraining_seeds_are_the_replicates(frame: pd.DataFrame) -> None:
    """Evaluation seeds are averaged inside one pretraining first: n counts pretraining seeds, and
    the spread is that of the per-pretraining means."""
    sub = frame[(frame["task"] == "finetune") & (frame["method"] == "simclr")]
    agg = T.aggregate(sub, ["metric"], stat="std").set_index("metric")
    for n, per_seed in FINETUNE.items():
        per_pretraining = np.asarray(per_seed).mean(axis=1)
        assert agg.loc[f"top1@n{n}", "n"] == len(per_pretraining) == 3
        assert agg.loc[f"top1@n{n}", "mean"] == pytest.approx(per_pretraining.mean())
        assert agg.loc[f"top1@n{n}", "std"] == pytest.approx(per_pretraining.std(ddof=1))
        rows = sub[sub["metric"] == f"top1@n{n}"]
        np.testing.assert_allclose(T.replicates(rows), per_pretraining)


def test_rows_sharing_a_seed_count_once(frame: pd.DataFrame) -> None:
    """The same (pretrain seed, eval seed) under two eval configs is one value: their mean."""
    rid = run_id("simclr", "default", 0)
    extra = frame[(frame["run_id"] == rid) & (frame["task"] == "linear")].assign(value=70.0, eval_config='{"c":2}')
    agg = linear_agg(pd.concat([frame, extra])).set_index(["method", "aug"])
    values = [(LINEAR["simclr", "default"][0] + 70.0) / 2, *LINEAR["simclr", "default"][1:]]
    assert agg.loc[("simclr", "default"), "n"] == 3
    assert agg.loc[("simclr", "default"), "mean"] == pytest.approx(np.mean(values))


def test_single_value_has_no_spread(frame: pd.DataFrame) -> None:
    for stat in T.STATS:
        row = linear_agg(frame, stat).set_index(["method", "aug"]).loc[("byol", "default")]
        assert row["n"] == 1 and row["mean"] == pytest.approx(61.24) and math.isnan(row[stat])


def test_aggregate_without_grouping_is_one_line(frame: pd.DataFrame) -> None:
    agg = T.aggregate(frame[(frame["task"] == "linear") & (frame["method"] == "mocov2")], [], stat="std")
    values = LINEAR["mocov2", "default"] + LINEAR["mocov2", "sal-mask"]
    # both augs share pretraining seeds 0-2: each seed is one value, the mean of its two rows
    per_seed = np.mean([LINEAR["mocov2", "default"], LINEAR["mocov2", "sal-mask"]], axis=0)
    assert list(agg.columns) == ["mean", "std", "n"] and agg["n"].tolist() == [3]
    assert agg["mean"].iloc[0] == pytest.approx(np.mean(values))
    assert agg["std"].iloc[0] == pytest.approx(np.std(per_seed, ddof=1))


def test_aggregate_keeps_nan_groups_and_rejects_bad_input(frame: pd.DataFrame) -> None:
    agg = T.aggregate(frame[frame["task"] == "finetune"], ["method", "aug", "metric"])
    assert ((agg["method"] == "scratch") & agg["aug"].isna()).sum() == 1
    with pytest.raises(ValueError, match="unknown stat 'sem'"):
        T.aggregate(frame, ["method"], "sem")
    with pytest.raises(ValueError, match="no column"):
        T.aggregate(frame, ["nope"])


def test_pivot_layout(frame: pd.DataFrame) -> None:
    table = T.pivot(linear_agg(frame), ["method"], ["aug"])
    assert list(table.columns) == ["default", "sal-mask"]
    assert list(table.index) == ["byol", "mocov2", "simclr"]
    cell = table.loc["mocov2", "sal-mask"]
    assert isinstance(cell, T.Cell) and cell.n == 3
    assert cell.mean == pytest.approx(np.mean(LINEAR["mocov2", "sal-mask"]))
    assert table.loc["byol", "sal-mask"] is None


def test_pivot_refuses_to_hide_a_difference(frame: pd.DataFrame) -> None:
    agg = T.aggregate(frame, ["method", "aug", "task"])
    with pytest.raises(ValueError, match="task differ"):
        T.pivot(agg, ["method"], ["aug"])


def test_pivot_orders_label_counts_as_numbers() -> None:
    agg = pd.DataFrame({"m": ["a", "a", "a"], "k": ["2000 labels", "100 labels", "500 labels"],
                        "mean": [1.0, 2.0, 3.0], "std": [0.1] * 3, "n": [3] * 3})
    assert list(T.pivot(agg, ["m"], ["k"]).columns) == ["100 labels", "500 labels", "2000 labels"]


# ------------------------------------------------------------------------------------- rendering

CELL = re.compile(r"^-?\d+\.\d+( (±|\$\\pm\$) \d+\.\d+)? \(n=\d+\)$")
BARE = re.compile(r"^\s*[-+]?\d+(\.\d+)?\s*$")


def parse(text: str, fmt: str) -> list[list[str]]:
    """Rendered text back into rows of cell strings (header first)."""
    if fmt == "md":
        lines = [ln for ln in text.splitlines() if ln.strip()]
        assert re.fullmatch(r"\|(---\|)+", lines[1])
        return [[c.strip() for c in re.split(r"(?<!\\)\|", ln)[1:-1]] for ln in [lines[0], *lines[2:]]]
    if fmt == "csv":
        return list(csv.reader(io.StringIO(text)))
    if fmt == "latex":
        body = [ln for ln in text.splitlines() if ln.endswith(r"\\")]
        return [[c.strip() for c in ln[:-2].split(" & ")] for ln in body]
    rows = re.findall(r"<tr>(.*?)</tr>", text)
    return [re.findall(r"<t[hd]>(.*?)</t[hd]>", r) for r in rows]


@pytest.mark.parametrize("fmt", T.FORMATS)
@pytest.mark.parametrize("kind", ["pivot", "aggregate"])
def test_every_value_carries_its_seed_count(frame: pd.DataFrame, fmt: str, kind: str) -> None:
    agg = linear_agg(frame)
    table = T.pivot(agg, ["method"], ["aug"]) if kind == "pivot" else agg
    rows = parse(T.render(table, fmt), fmt)
    header, body = rows[0], rows[1:]
    values = [c for r in body for c in (r[1:] if kind == "pivot" else r[2:])]
    assert len(body) == (3 if kind == "pivot" else 5)
    missing = T.MISSING[fmt]
    assert values.count(missing) == (1 if kind == "pivot" else 0)          # byol / sal-mask
    for cell in values:
        assert cell == missing or CELL.match(cell), cell
    for cell in [*header, *(c for r in body for c in r)]:
        assert not BARE.match(cell), f"bare number {cell!r} in {fmt}"
    assert sum("(n=" in c for c in values) == len(values) - values.count(missing)


@pytest.mark.parametrize("fmt", T.FORMATS)
def test_single_seed_is_flagged(frame: pd.DataFrame, fmt: str) -> None:
    rows = parse(T.render(T.pivot(linear_agg(frame), ["method"], ["aug"]), fmt), fmt)
    byol = next(r for r in rows if r[0] == "byol")
    assert byol[1] == "61.2 (n=1)"


def test_cell_text() -> None:
    assert T.format_cell(T.Cell(61.24, float("nan"), 1)) == "61.2 (n=1)"
    assert T.format_cell(T.Cell(61.24, 0.456, 3)) == "61.2 ± 0.5 (n=3)"
    assert T.format_cell(T.Cell(0.5123, 0.01, 2)) == "0.512 ± 0.010 (n=2)"
    assert T.format_cell(T.Cell(3.14159, 0.2, 4), digits=3) == "3.142 ± 0.200 (n=4)"
    assert T.format_cell(None, "latex") == "--"
    assert T.format_cell(T.Cell(-1e-17, 0.0, 2)) == "0.000 ± 0.000 (n=2)"      # no negative zero


def test_latex_escapes_labels() -> None:
    agg = pd.DataFrame({"method": ["sal_mask & 50%"], "aug": ["#1 {x}"], "mean": [61.0], "std": [1.0], "n": [3]})
    text = T.render(T.pivot(agg, ["method"], ["aug"]), "latex")
    assert r"sal\_mask \& 50\%" in text and r"\#1 \{x\}" in text
    assert r"61.0 $\pm$ 1.0 (n=3)" in text
    assert "±" not in text and r"\begin{tabular}{ll}" in text
    assert T.latex_escape(r"a\b~c^d$") == r"a\textbackslash{}b\textasciitilde{}c\textasciicircum{}d\$"


def test_html_and_markdown_escape() -> None:
    agg = pd.DataFrame({"method": ["<b>a|b</b>"], "mean": [61.0], "std": [1.0], "n": [2]})
    page = T.render(agg, "html")
    assert page.startswith('<table class="sslbench-table">') and "&lt;b&gt;a|b&lt;/b&gt;" in page
    assert r"<b>a\|b</b>" in T.render(agg, "md")


def test_render_refuses_bare_numbers(frame: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="bare numbers"):
        T.render(frame[["method", "value"]], "md")
    with pytest.raises(ValueError, match="unknown table format 'pdf'"):
        T.render(linear_agg(frame), "pdf")


def test_default_tables(frame: pd.DataFrame) -> None:
    tables = T.default_tables(frame)
    assert set(tables) == {"linear-top1-shapes64", "finetune-top1-shapes64", "invariance-top25"}
    fin = tables["finetune-top1-shapes64"]
    assert list(fin.columns) == ["100 labels", "500 labels"]
    assert fin.loc[("simclr", "default"), "100 labels"].n == 3           # pretraining seeds
    assert fin.loc[("scratch", ""), "100 labels"].n == 1 and fin.loc[("scratch", ""), "500 labels"] is None
    inv = tables["invariance-top25"]
    assert list(inv.columns) == ["probe-occlusion"] and inv.loc[("mocov2", "default"), "probe-occlusion"].n == 3
    for table in tables.values():
        assert "(n=" in T.render(table, "md")
    assert T.default_tables(frame.iloc[0:0]) == {}


def test_default_tables_keep_variants_apart(tmp_path: Path) -> None:
    """sal-mask with three fills (3 seeds each): with the pretraining configs stored, each fill is
    its own column; without them, the run id cannot tell them apart and they share one."""
    fills = {"highpass": [70.0, 71.0, 72.0], "blur": [60.0, 61.0, 62.0], "mean": [50.0, 51.0, 52.0]}
    for configs in (True, False):
        store = ResultsStore(tmp_path / f"{configs}.sqlite")
        for n, (fill, values) in enumerate(fills.items()):
            for seed, value in enumerate(values):
                rid = f"mocov2-sal-mask-resnet18-shapes64-s{seed}-0000000{n}"
                store.add([Result(rid, rid.ljust(64, "0"), "linear", "shapes64", "test", "top1", value, None, {})])
                if configs:                         # resolved: the high-pass runs record the default fill
                    given = {"out_size": 32} if fill == "highpass" else {"out_size": 32, "fill": fill}
                    method_cfg, aug_cfg = resolved("mocov2", "sal-mask", aug_cfg=given)
                    config = {"method": "mocov2", "aug": "sal-mask", "train": {"seed": seed},
                              "method_cfg": method_cfg, "aug_cfg": aug_cfg}
                    store.put_run(rid, rid.ljust(64, "0"), config)
        table = T.default_tables(D.load(store.path))["linear-top1-shapes64"]
        if configs:
            assert list(table.columns) == ["sal-mask fill=blur", "sal-mask fill=highpass", "sal-mask fill=mean"]
            for fill, values in fills.items():
                cell = table.loc["mocov2", f"sal-mask fill={fill}"]
                assert cell.n == 3 and cell.mean == pytest.approx(np.mean(values))
                assert cell.spread == pytest.approx(stats.t.ppf(0.975, 2) * np.std(values, ddof=1) / np.sqrt(3))
        else:
            assert list(table.columns) == ["sal-mask"]
            assert table.loc["mocov2", "sal-mask"].mean == pytest.approx(61.0)   # all three fills, per seed


def test_many_datasets_fold_into_one_table(tmp_path: Path) -> None:
    """Six pretraining datasets (each evaluated on itself): one linear table with the dataset as a
    row label, not six; the pretraining data, equal to the dataset on every row, is not repeated."""
    store = ResultsStore(tmp_path / "r.sqlite")
    datasets = [f"tcvl-{i:04d}" for i in range(T.FOLD_OVER + 2)]
    for d, dataset in enumerate(datasets):
        for method in ("simclr", "rotation"):
            for seed in (0, 1):
                rid = f"{method}-mild-resnet18-{dataset}-s{seed}-0a1b2c3d"
                store.add([Result(rid, rid.ljust(64, "0"), "linear", dataset, "test", "top1", d + seed, None, {})])
    tables = T.default_tables(D.load(store.path))
    assert list(tables) == ["linear-top1"]
    table = tables["linear-top1"]
    assert table.index.names == ["method", "dataset"] and list(table.columns) == ["mild"]
    assert table.loc[("simclr", datasets[3]), "mild"].mean == pytest.approx(3.5)
    assert table.loc[("simclr", datasets[3]), "mild"].n == 2


def test_table_of_any_grouping(frame: pd.DataFrame) -> None:
    """method x aug for one task and metric; method x task for one metric kind; label counts as columns."""
    lin = T.table(frame, ["method"], ["aug"], {"task": ["linear"]})
    assert lin.loc["simclr", "sal-mask"].n == 3
    assert lin.loc["simclr", "sal-mask"].mean == pytest.approx(np.mean(LINEAR[("simclr", "sal-mask")]))
    by_task = T.table(frame, ["method", "aug"], ["task"], {"metric": ["top1"]})
    assert list(by_task.columns) == ["linear"]
    curves = T.table(frame, ["method", "aug"], ["labels"], {"task": ["finetune"]})
    assert list(curves.columns) == ["100 labels", "500 labels"]
    assert curves.loc[("simclr", "default"), "100 labels"].n == 3        # pretraining seeds
    assert "(n=" in T.render(by_task, "latex")


@pytest.mark.parametrize("rows, cols, where, message", [
    (["method"], ["aug"], {}, "mix several values of task"),                  # linear and invariance
    (["method"], ["nope"], {}, "unknown column"),
    ([], ["aug"], {"task": ["linear"]}, "at least one row"),
    (["method"], ["aug"], {"task": ["detection"]}, "no rows match"),
])
def test_table_refuses_to_mix_or_guess(frame: pd.DataFrame, rows, cols, where, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        T.table(frame, rows, cols, where)


def test_table_cli(frame: pd.DataFrame, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from reports.__main__ import main

    db = tmp_path / "r.sqlite"                          # the fixture's store
    out = tmp_path / "t.csv"
    assert main(["table", "--db", str(db), "--rows", "method,aug", "--cols", "task", "--where", "metric=top1",
                 "--where", "task=linear", "--format", "csv", "--out", str(out)]) == 0
    assert out.read_text() == capsys.readouterr().out and "(n=3)" in out.read_text()
    assert main(["table", "--db", str(db), "--rows", "method", "--where", "task"]) == 2
    assert "expected COLUMN=VALUE" in capsys.readouterr().err


def test_gap_table_places_each_run_between_random_and_supervised(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path / "g.sqlite")
    for method, values in (("random", [40.0, 41.0, 39.0]), ("supervised", [80.0, 81.0, 79.0]),
                           ("simclr", [70.0, 71.0, 69.0])):
        for seed, v in enumerate(values):
            rid = f"{method}-mild-resnet18-shapes64-s{seed}-0a1b2c3d"
            store.add([Result(rid, rid.ljust(64, "0"), "linear", "shapes64", "test", "top1", v, None, {}),
                       Result(rid, rid.ljust(64, "0"), "floor", "shapes64", "test", "top1", 49.75, None, {})])
    table = T.gap_table(D.load(store.path))
    (row,) = table.to_dict("records")
    assert row["method"] == "simclr" and row["gap closed"] == "0.75" and row["silhouette floor"] == "49.75"
    assert row["random"].mean == 40.0 and row["supervised"].mean == 80.0 and row["value"].n == 3
    only = T.gap_table(D.load(store.path).query("method != 'supervised'"))
    assert only.empty                                                    # no ceiling: nothing to place
