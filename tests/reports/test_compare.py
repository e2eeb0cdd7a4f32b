"""reports.compare and the CLI: published tables, trend checks (yes / no / not measured) for every
registered paper (``reports.papers``) on rows built to show, or to contradict, each claim; bad input
exits 2 in one line."""
from __future__ import annotations

import hashlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from stored_configs import resolved

from measure.results import Result, ResultsStore
from reports import compare as C
from reports import data as D
from reports.__main__ import main
from reports.papers import PAPERS, get_paper

ROOT = Path(__file__).resolve().parents[2]

# (method, aug, task, dataset, metric, pretraining data, value if the claim holds, value if not)
CASES: dict[str, list[tuple[str, str, str, str, str, str, float, float]]] = {
    "saliency-aug": [
        ("simclr", "sgd", "linear", "shapes64", "top1", "shapes64", 70, 60),
        ("simclr", "default", "linear", "shapes64", "top1", "shapes64", 60, 70),
        ("simclr", "sgd", "knn", "shapes64", "top1@k20", "shapes64", 65, 55),
        ("simclr", "default", "knn", "shapes64", "top1@k20", "shapes64", 55, 65),
        ("simclr", "sgd", "segmentation", "shapes64", "miou", "shapes64", 40, 30),
        ("simclr", "default", "segmentation", "shapes64", "miou", "shapes64", 30, 40),
        ("simclr", "sgd", "clustering", "shapes64", "nmi", "shapes64", 0.5, 0.3),
        ("simclr", "default", "clustering", "shapes64", "nmi", "shapes64", 0.3, 0.5),
    ],
    "saliency-masking": [
        ("mocov2", "sal-mask", "linear", "shapes64", "top1", "shapes64", 70, 60),
        ("mocov2", "random-mask", "linear", "shapes64", "top1", "shapes64", 65, 65),
        ("mocov2", "default", "linear", "shapes64", "top1", "shapes64", 60, 70),
        ("simclr", "sal-mask", "linear", "shapes64", "top1", "shapes64", 72, 62),
        ("simclr", "default", "linear", "shapes64", "top1", "shapes64", 62, 72),
        # the fills, told apart by the pretraining configs stored beside the results ("-": the default)
        ("mocov2", "sal-mask -", "linear", "shapes64", "top1", "shapes64", 70, 60),
        ("mocov2", "sal-mask fill=blur", "linear", "shapes64", "top1", "shapes64", 68, 62),
        ("mocov2", "sal-mask fill=mean", "linear", "shapes64", "top1", "shapes64", 66, 64),
        ("simclr", "random-mask", "linear", "shapes64", "top1", "shapes64", 67, 67),
        ("simclr", "sal-mask -", "linear", "shapes64", "top1", "shapes64", 72, 62),
        ("simclr", "sal-mask fill=blur", "linear", "shapes64", "top1", "shapes64", 70, 64),
        ("simclr", "sal-mask fill=mean", "linear", "shapes64", "top1", "shapes64", 68, 66),
        ("mocov2", "sal-mask", "detection", "scenes", "AP50", "shapes64", 50, 40),
        ("mocov2", "default", "detection", "scenes", "AP50", "shapes64", 40, 50),
    ],
    "invariance": [
        ("mocov2", "aggressive", "invariance", "probe-occlusion", "top25", "shapes64", 30, 10),
        ("mocov2", "mild", "invariance", "probe-occlusion", "top25", "shapes64", 10, 30),
        *[(m, "default", "invariance", probe, "top25", "shapes64", hi, lo)
          for m in ("mocov2", "pirl")
          for probe, hi, lo in (("probe-occlusion", 40, 20), ("probe-viewpoint", 20, 40), ("probe-instance", 20, 40))],
        *[("supervised", "default", "invariance", probe, "top25", "shapes64", hi, lo)
          for probe, hi, lo in (("probe-occlusion", 30, 30), ("probe-viewpoint", 30, 30), ("probe-instance", 30, 30))],
        ("supervised", "default", "invariance", "probe-instance-viewpoint", "top25", "shapes64", 0, 99),
        ("mocov2", "default", "invariance", "probe-instance-viewpoint", "top25", "shapes64", 99, 0),
        ("temporal", "default", "invariance", "probe-viewpoint", "top25", "video", 50, 30),
        ("mocov2", "default", "invariance", "probe-viewpoint", "top25", "video", 30, 50),
        ("mocov2", "default", "linear", "shapes64", "top1", "shapes64", 60, 40),
        ("mocov2", "default", "linear", "shapes64", "top1", "scenes", 50, 50),
    ],
    "slotcon": [
        ("slotcon", "default", "detection", "scenes", "AP", "scenes", 30, 10),
        ("simclr", "default", "detection", "scenes", "AP", "scenes", 20, 20),
        ("mocov2", "default", "detection", "scenes", "AP", "scenes", 20, 20),
        ("slotcon", "default", "segmentation_transfer", "scenes", "miou", "scenes", 50, 30),
        ("byol", "default", "segmentation_transfer", "scenes", "miou", "scenes", 40, 40),
        ("slotcon", "default", "detection", "scenes", "segm_AP", "scenes", 25, 25),
        ("slotcon", "default", "unsup_seg", "scenes", "miou", "scenes", 30, 10),
        ("mocov2", "default", "unsup_seg", "scenes", "miou", "scenes", 20, 20),
        ("slotcon", "default", "segmentation", "scenes", "miou", "scenes", 40, 20),
        ("byol", "default", "segmentation", "scenes", "miou", "scenes", 30, 30),
    ],
    "utility": [
        ("mocov2", "default", "finetune", "shapes64", "utility@n100", "shapes64", 20, -5),
        ("mocov2", "default", "finetune", "shapes64", "utility@n500", "shapes64", 10, 10),
        ("mocov2", "default", "finetune", "shapes64", "utility@n2000", "shapes64", 5, 20),
    ],
}
SPREAD = (-0.5, 0.0, 0.5)          # three pretraining seeds around each value
CONFIGS: dict[str, dict] = {}      # run id -> its pretraining config, for cases whose aug names settings


def pretrain_config(method: str, aug: str, seed: int, aug_cfg: dict[str, object]) -> dict:
    """A checkpoint's meta.config (the parts the variants look at), the method's and the
    policy's settings resolved: ``aug_cfg`` given (on views of 32 px), the rest at their defaults;
    MoCo v2 asymmetric in every arm, as the masking plan runs it."""
    given = {"symmetric": False} if method == "mocov2" else {}
    method_cfg, aug_cfg = resolved(method, aug, method_cfg=given, aug_cfg={"out_size": 32, **aug_cfg})
    return {"method": method, "aug": aug, "preset": "cpu", "data": {"path": f"/data/s{seed}", "batch_size": 128},
            "backbone": {"name": "resnet18", "kwargs": {}}, "optim": {"lr": 0.6},
            "train": {"seed": seed, "out": "runs", "epochs": 20.0}, "method_cfg": method_cfg, "aug_cfg": aug_cfg}


def results(cases: list[tuple], holds: bool) -> list[Result]:
    """Three seeds of each case. An aug with settings (``sal-mask fill=blur``; ``sal-mask -``: none
    given) gets its own config hash and a stored pretraining config; a bare aug, no config."""
    out = []
    for method, aug, task, dataset, metric, pretrain, yes, no in cases:
        policy, _, settings = aug.partition(" ")
        tag = hashlib.sha256(settings.encode()).hexdigest()[:8] if settings else "0a1b2c3d"
        for seed, d in enumerate(SPREAD):
            rid = f"{method}-{policy}-resnet18-{pretrain}-s{seed}-{tag}"
            sha = hashlib.sha256(rid.encode()).hexdigest()
            scale = 0.01 if max(abs(yes), abs(no)) <= 1 else 1     # a metric in [0, 1] (NMI): the spread in its units
            out.append(Result(rid, sha, task, dataset, "test", metric, (yes if holds else no) + d * scale, None, {}))
            if settings:
                given = dict(kv.split("=") for kv in settings.split() if kv != "-")
                CONFIGS[rid] = pretrain_config(method, policy, seed, given)
    return out


def frame_of(tmp_path: Path, rows: list[Result]) -> pd.DataFrame:
    store = ResultsStore(tmp_path / "results.sqlite")
    store.add(rows)
    for r in {r.run_id: r for r in rows}.values():
        if r.run_id in CONFIGS:
            store.put_run(r.run_id, r.ckpt_sha256, CONFIGS[r.run_id])
    return D.load(store.path)


def measurable(paper: str) -> list[bool]:
    return [bool(t.ours) for t in PAPERS[paper].trends]


def test_registry_names_and_tables() -> None:
    assert list(PAPERS) == ["saliency-aug", "saliency-masking", "invariance", "slotcon", "utility"]
    assert set(CASES) == set(PAPERS)
    for spec in PAPERS.values():
        assert spec.trends
        for name in spec.tables:
            table = C.published(spec)
            assert (C.TABLES_DIR / name).is_file() and table["value"].notna().all()
    assert (C.TABLES_DIR / "README.md").read_text().count("arXiv") >= 2


@pytest.mark.parametrize("paper", list(PAPERS))
def test_no_matching_rows_is_not_measured(paper: str, tmp_path: Path) -> None:
    unrelated = [Result("byol-none-resnet18-shapes64-s0-0a1b2c3d", "x" * 64, "pose", "shapes64", "test",
                        "pose_top1", 50.0, None, {})]
    for frame in (frame_of(tmp_path, unrelated), D.load(ResultsStore(tmp_path / "empty.sqlite").path)):
        numbers, trends = C.compare(frame, PAPERS[paper])
        assert list(trends.columns) == list(C.TREND_COLUMNS)
        assert (trends["ours shows"] == C.NOT_MEASURED).all()
        assert len(trends) == len(PAPERS[paper].trends)
        ours = numbers["ours"].tolist() if len(numbers) else []
        assert all(v == C.NOT_MEASURED or v.startswith("no counterpart") for v in ours)


@pytest.mark.parametrize("paper", list(PAPERS))
@pytest.mark.parametrize("holds", [True, False])
def test_trends_follow_the_rows(paper: str, holds: bool, tmp_path: Path) -> None:
    _, trends = C.compare(frame_of(tmp_path, results(CASES[paper], holds)), PAPERS[paper])
    want = [(C.YES if holds else C.NO) if m else C.NOT_MEASURED for m in measurable(paper)]
    assert trends["ours shows"].tolist() == want, trends.to_string()
    for detail, m in zip(trends["ours: detail"], measurable(paper)):
        assert ("(n=3)" in detail) == m


@pytest.mark.parametrize("paper", list(PAPERS))
def test_one_side_missing_is_not_measured(paper: str, tmp_path: Path) -> None:
    """Only the first row kind of each case: no comparison has both sides (a one-sided check,
    utility > 0 at the smallest size, is still made)."""
    _, trends = C.compare(frame_of(tmp_path, results(CASES[paper][:1], True)), PAPERS[paper])
    one_sided = [bool(t.ours) and all(isinstance(c, C.Positive) for c in t.ours) for t in PAPERS[paper].trends]
    assert trends["ours shows"].tolist() == [C.YES if o else C.NOT_MEASURED for o in one_sided]


def test_groups_are_compared_apart(tmp_path: Path) -> None:
    """sal-mask beats default on one pretraining dataset and loses on another: 'no', 1/2 hold;
    a comparison across datasets is never made."""
    rows = results([("mocov2", "sal-mask", "linear", "shapes64", "top1", "shapes64", 70, 0),
                    ("mocov2", "default", "linear", "shapes64", "top1", "shapes64", 60, 0),
                    ("mocov2", "sal-mask", "linear", "tcvl-1111", "top1", "tcvl-1111", 50, 0),
                    ("mocov2", "default", "linear", "tcvl-1111", "top1", "tcvl-1111", 55, 0),
                    ("simclr", "sal-mask", "linear", "shapes64", "top1", "shapes64", 70, 0),
                    ("simclr", "default", "linear", "tcvl-1111", "top1", "tcvl-1111", 60, 0)], True)
    _, trends = C.compare(frame_of(tmp_path, rows), PAPERS["saliency-masking"])
    first, second = trends.iloc[0], trends.iloc[1]
    assert first["ours shows"] == C.NO and first["ours: detail"].startswith("1/2 hold")
    assert second["ours shows"] == C.NOT_MEASURED


def test_linear_off_the_pretraining_data_is_not_in_domain(tmp_path: Path) -> None:
    rows = results([("mocov2", "sal-mask", "linear", "other", "top1", "shapes64", 70, 0),
                    ("mocov2", "default", "linear", "other", "top1", "shapes64", 60, 0)], True)
    _, trends = C.compare(frame_of(tmp_path, rows), PAPERS["saliency-masking"])
    assert trends.iloc[0]["ours shows"] == C.NOT_MEASURED


def test_published_side(tmp_path: Path) -> None:
    frame = frame_of(tmp_path, results(CASES["saliency-masking"], True))
    numbers, trends = C.compare(frame, PAPERS["saliency-masking"])
    row = numbers[(numbers["method"] == "mocov2") & (numbers["variant"] == "saliency-mask-highpass")
                  & (numbers["eval"] == "ImageNet-100")].iloc[0]
    assert row["paper"] == "73.80" and row["ours"] == "70.0 ± 1.2 (n=3)"
    assert row[C.OURS_DATA] == "sal-mask / shapes64 / resnet18 / shapes64"
    adios = numbers[numbers["variant"] == "adios"]["ours"]
    assert len(adios) and adios.str.startswith("no counterpart").all()
    assert trends.iloc[0]["paper shows"] == "yes (saliency-mask-highpass 73.80 > none 68.22)"
    assert trends.iloc[3]["paper shows"].startswith("yes (2/2 hold")            # fill order, both sides
    assert trends.iloc[3]["ours shows"] == C.YES
    assert "fill=highpass 70.0 ± 1.2 (n=3) vs fill=blur 68.0 ± 1.2 (n=3): difference +2.00 [+0.87, +3.13]" in \
        trends.iloc[3]["ours: detail"]
    blur = numbers[(numbers["method"] == "mocov2") & (numbers["variant"] == "saliency-mask-blur")
                   & (numbers["eval"] == "ImageNet-100")]
    assert blur[[C.OURS_DATA, "ours"]].values.tolist() == [["sal-mask fill=blur / shapes64 / resnet18 / shapes64",
                                                           "68.0 ± 1.2 (n=3)"]]
    _, slot = C.compare(frame_of(tmp_path / "s", []), PAPERS["slotcon"])
    assert slot["paper shows"].eq("claimed (not in the stored table)").all()
    numbers, util = C.compare(frame_of(tmp_path / "u", results(CASES["utility"], True)), PAPERS["utility"])
    assert util["paper shows"].eq("claimed (no published table stored)").all()
    assert numbers["paper"].eq("no published table stored").all() and numbers["ours"].str.contains(r"\(n=3\)").all()


def test_unknown_paper() -> None:
    with pytest.raises(ValueError, match="unknown paper 'nope'; valid: saliency-aug, saliency-masking, invariance"):
        get_paper("nope")


# ------------------------------------------------------------------------------------------ CLI

@pytest.fixture
def db(tmp_path: Path) -> Path:
    store = ResultsStore(tmp_path / "results.sqlite")
    store.add(results(CASES["saliency-masking"], True))
    return store.path


def test_cli_runs_export_compare(db: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["runs", "--db", str(db)]) == 0
    assert "mocov2-sal-mask-resnet18-shapes64-s2-0a1b2c3d" in capsys.readouterr().out
    assert main(["export", "--db", str(db), "--out", str(tmp_path / "x.csv")]) == 0
    assert len(pd.read_csv(tmp_path / "x.csv")) == len(ResultsStore(db))
    capsys.readouterr()
    assert main(["compare", "--paper", "saliency-masking", "--db", str(db), "--out", str(tmp_path / "cmp")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# saliency-masking") and "| claim | paper shows | ours shows |" in out
    assert sorted(p.name for p in (tmp_path / "cmp").iterdir()) == \
        ["saliency-masking-trends.csv", "saliency-masking.csv", "saliency-masking.md"]
    assert (tmp_path / "cmp" / "saliency-masking.md").read_text() == out
    assert pd.read_csv(tmp_path / "cmp" / "saliency-masking-trends.csv")["ours shows"].iloc[0] == "yes"


@pytest.mark.parametrize("argv, match", [
    (["runs", "--db", "{tmp}/missing.sqlite"], "no such results store"),
    (["compare", "--paper", "nope", "--db", "{db}"],
     "valid: saliency-aug, saliency-masking, invariance, slotcon, utility"),
    (["export", "--db", "{db}", "--out", "{tmp}/x.xlsx"], "unknown export format"),
    (["export", "--db", "{db}"], "--out"),
    (["compare", "--db", "{db}"], "--paper"),
    (["build"], "the following arguments are required: --out"),
    (["draw"], "invalid choice"),
    ([], "COMMAND"),
])
def test_cli_bad_input_one_line_exit_2(argv: list[str], match: str, db: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture) -> None:
    argv = [a.format(tmp=tmp_path, db=db) for a in argv]
    assert main(argv) == 2
    captured = capsys.readouterr()
    err = captured.err
    assert err.endswith("\n") and err.count("\n") == 1 and err.startswith("error: ") and match in err, err
    assert captured.out == ""
    assert not (tmp_path / "missing.sqlite").exists() and not list(tmp_path.glob("x.*"))


def test_cli_parquet_without_pyarrow(db: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    assert main(["export", "--db", str(db), "--out", str(tmp_path / "x.parquet")]) == 2
    assert capsys.readouterr().err == "error: parquet export needs pyarrow: pip install pyarrow\n"


def test_python_dash_m(db: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "reports", "compare", "--paper", "unknown", "--db", str(db)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "unknown paper" in done.stderr


def test_ours_table_keeps_pretraining_data_apart(tmp_path: Path) -> None:
    numbers, _ = C.compare(frame_of(tmp_path, results(CASES["invariance"], True)), PAPERS["invariance"])
    mocov2 = numbers[(numbers["method"] == "mocov2") & (numbers["dataset"] == "probe-viewpoint")]
    assert sorted(zip(mocov2["pretrain_data"], mocov2["ours"])) == [("shapes64", "20.0 ± 1.2 (n=3)"),
                                                                    ("video", "30.0 ± 1.2 (n=3)")]


def test_runs_the_run_id_cannot_tell_apart_are_flagged(tmp_path: Path) -> None:
    """Two sal-mask runs per seed (e.g. two fills: only the config hash differs) are averaged per
    seed, and every number made of them says so."""
    rows = results(CASES["saliency-masking"], True)
    rows += [Result(r.run_id[:-8] + "ffffffff", "f" + r.ckpt_sha256[1:], r.task, r.dataset, r.split, r.metric,
                    r.value - 4, None, {}) for r in rows
             if "-sal-mask-" in r.run_id and r.task == "linear" and r.run_id.endswith("0a1b2c3d")]
    numbers, trends = C.compare(frame_of(tmp_path, rows), PAPERS["saliency-masking"])
    mocov2 = trends.iloc[0]["ours: detail"]
    assert "sal-mask 68.0 ± 1.2 (n=3) [mixes 2 runs per seed] vs default 60.0 ± 1.2 (n=3)" in mocov2
    # the runs with stored configs are told apart by their variant: compared on their own, unflagged
    assert "sal-mask fill=highpass 70.0 ± 1.2 (n=3) vs default 60.0 ± 1.2 (n=3): difference +10.00" in mocov2
    flagged = numbers[numbers["ours"].str.contains("mixes 2 runs per seed", regex=False)]
    assert set(flagged["variant"]) == {"saliency-mask-highpass"} and set(flagged["eval"]) == {"ImageNet-100"}


def masking_frame(tmp_path: Path, runs: list[tuple[dict | None, float]]) -> pd.DataFrame:
    """MoCo v2 sal-mask runs (3 seeds each, linear top-1 on the pretraining data): (aug_cfg given,
    value), None for a run without a stored config; and a default-augmentation baseline at 50."""
    store = ResultsStore(tmp_path / "results.sqlite")
    rows = [(None, "default", 50.0, "0a1b2c3d")]
    rows += [(given, "sal-mask", value, f"{i:08x}") for i, (given, value) in enumerate(runs, 1)]
    for given, aug, value, tag in rows:
        for seed, d in enumerate(SPREAD):
            rid = f"mocov2-{aug}-resnet18-shapes64-s{seed}-{tag}"
            sha = hashlib.sha256(rid.encode()).hexdigest()
            store.add([Result(rid, sha, "linear", "shapes64", "test", "top1", value + d, None, {})])
            if given is not None:
                store.put_run(rid, sha, pretrain_config("mocov2", aug, seed, given))
    return D.load(store.path)


FILL_CLAIM = 3                     # index of the fill-order trend of saliency-masking


_G = "[backbone=resnet18, pretrain_data=shapes64, dataset=shapes64] "


@pytest.mark.parametrize("runs, answer, shown, blur", [
    # high-pass (the default, not given) > blur > mean; a both-branch run in the group is never compared
    ([({}, 70), ({"fill": "blur"}, 65), ({"fill": "mean"}, 60), ({"branch": "both"}, 99)], C.YES,
     f"2/2 hold: {_G}branch=query, fill=highpass 70.0 ± 1.2 (n=3) vs branch=query, fill=blur 65.0 ± 1.2 (n=3): "
     f"difference +5.00 [+3.87, +6.13]; {_G}branch=query, fill=blur 65.0 ± 1.2 (n=3) vs branch=query, fill=mean",
     ["65.0 ± 1.2 (n=3)"]),
    # a run at another resolution is compared with none of the others
    ([({"fill": "highpass"}, 70), ({"fill": "blur"}, 65), ({"fill": "mean"}, 60),
      ({"fill": "blur", "out_size": 64}, 99)], C.YES,
     f"{_G}fill=blur, out_size=32 65.0 ± 1.2 (n=3) vs fill=mean, out_size=32 60.0 ± 1.2 (n=3): difference +5.00",
     ["65.0 ± 1.2 (n=3)", "99.0 ± 1.2 (n=3)"]),
    ([({}, 65), ({"fill": "blur"}, 70), ({"fill": "mean"}, 60)], C.NO,
     f"1/2 hold: {_G}fill=highpass 65.0 ± 1.2 (n=3) vs fill=blur 70.0 ± 1.2 (n=3): difference -5.00 [-6.13, -3.87]",
     ["70.0 ± 1.2 (n=3)"]),
    ([({}, 70), ({"fill": "blur"}, 65)], C.YES, f"{_G}fill=highpass 70.0 ± 1.2 (n=3) vs fill=blur 65.0 ± 1.2 (n=3)",
     ["65.0 ± 1.2 (n=3)"]),
    ([(None, 70), (None, 65), (None, 60)], C.NOT_MEASURED, "--aug_cfg.fill", [C.NOT_MEASURED]),  # no configs
    ([({}, 70), ({"branch": "both"}, 65)], C.NOT_MEASURED, "--aug_cfg.fill", [C.NOT_MEASURED]),  # one fill
])
def test_fill_order_claim(runs: list, answer: str, shown: str, blur: list[str], tmp_path: Path) -> None:
    # apart: the run at 64 px differs in a setting the plan does not vary (tested on its own below)
    numbers, trends = C.compare(masking_frame(tmp_path, runs), PAPERS["saliency-masking"], apart=True)
    claim = trends.iloc[FILL_CLAIM]
    assert "high-pass fill is best" in claim["claim"]
    assert claim["ours shows"] == answer and shown in claim["ours: detail"], claim["ours: detail"]
    assert claim["ours: detail"].count(": difference ") == (0 if answer == C.NOT_MEASURED else 2 if len(runs) > 2 else 1)
    rows = numbers[(numbers["method"] == "mocov2") & (numbers["variant"] == "saliency-mask-blur")
                   & (numbers["eval"] == "ImageNet-100")]
    assert rows["ours"].tolist() == blur


# rows left from before a default changed: the noise fill's strength was N(0, 1), now 0.18
_BEFORE = [({"fill": "mean"}, 60), ({"fill": "mean", "noise_std": 1.0}, 50)]


def test_runs_differing_in_a_setting_the_plan_does_not_vary_are_not_pooled(tmp_path: Path) -> None:
    """Two sets of sal-mask runs that differ only in noise_std (not a setting of the masking plan)
    are refused in one line naming the setting and the runs at each value; ``apart`` compares each
    setting on its own; a setting the plan varies (the fill) is no reason to refuse."""
    frame = masking_frame(tmp_path, _BEFORE)
    with pytest.raises(C.PoolingRefused) as refused:
        C.compare(frame, PAPERS["saliency-masking"])
    line = str(refused.value)
    assert "\n" not in line and "differ in aug_cfg.noise_std (0.18: " in line
    assert "mocov2-sal-mask-resnet18-shapes64-s0-00000001" in line and "1: mocov2-sal-mask-resnet18-shapes64-s0-00000002" in line
    assert "--group-apart" in line
    [mixed] = C.mixed_settings(frame, PAPERS["saliency-masking"])
    assert mixed.path == "aug_cfg.noise_std" and sorted(mixed.runs) == ["0.18", "1"]
    _, trends = C.compare(frame, PAPERS["saliency-masking"], apart=True)
    detail = trends.iloc[0]["ours: detail"]
    assert "noise_std=0.18 60.0 ± 1.2 (n=3) vs default" in detail and "noise_std=1 50.0 ± 1.2 (n=3) vs default" in detail
    assert C.mixed_settings(masking_frame(tmp_path / "fills", [({}, 70), ({"fill": "blur"}, 65)]),
                            PAPERS["saliency-masking"]) == []


def test_cli_refuses_to_pool_or_groups_apart(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    masking_frame(tmp_path, _BEFORE)
    db = tmp_path / "results.sqlite"
    assert main(["compare", "--paper", "saliency-masking", "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: saliency-masking: refusing to pool runs") \
        and "aug_cfg.noise_std" in err
    assert main(["compare", "--paper", "saliency-masking", "--db", str(db), "--group-apart"]) == 0
    assert "noise_std=1 50.0" in capsys.readouterr().out


def test_masking_claims_use_the_high_pass_variant(tmp_path: Path) -> None:
    """sal-mask > default is checked on the high-pass variant (the paper's), not on the other fills
    nor on the both-branch run, and never flagged: every run has a stored config."""
    frame = masking_frame(tmp_path, [({}, 60), ({"fill": "blur"}, 40), ({"branch": "both"}, 30)])
    numbers, trends = C.compare(frame, PAPERS["saliency-masking"])
    first = trends.iloc[0]
    assert first["ours shows"] == C.YES, first["ours: detail"]
    assert first["ours: detail"].endswith("sal-mask branch=query, fill=highpass 60.0 ± 1.2 (n=3) vs "
                                          "default 50.0 ± 1.2 (n=3): difference +10.00 [+8.87, +11.13]")
    assert not numbers["ours"].str.contains("mixes").any()
    high = numbers[(numbers["method"] == "mocov2") & (numbers["variant"] == "saliency-mask-highpass")
                   & (numbers["eval"] == "ImageNet-100")]
    assert high[C.OURS_DATA].tolist() == ["sal-mask branch=query, fill=highpass / shapes64 / resnet18 / shapes64"]


def test_smallest_size_without_utility_is_not_measured(tmp_path: Path) -> None:
    """Finetuned at 50, 200 and 1000 labels, utility measurable only from 200: the claim at the
    smallest size is not measured for that group (not judged at 200); another group measured at
    50 is judged, and the unmeasured one is listed beside it."""
    def rows(aug: str, counts: tuple[int, ...], utility_from: int) -> list[Result]:
        cases = [("simclr", aug, "finetune", "tcvl-0100", f"top1@n{n}", "tcvl-0100", 80, 80) for n in counts]
        cases += [("simclr", aug, "finetune", "tcvl-0100", f"utility@n{n}", "tcvl-0100", 5.0, 5.0)
                  for n in counts if n >= utility_from]
        return results(cases, True)
    check = next(t for t in PAPERS["utility"].trends if "smallest" in t.claim)
    unmeasured = C.prepare(frame_of(tmp_path, rows("mild", (50, 200, 1000), 200)))
    answer, detail = C.verdict(check.ours, unmeasured, ours=True)
    assert answer == C.NOT_MEASURED and "label_count 50: not measurable" in detail
    (tmp_path / "b").mkdir()
    both = C.prepare(frame_of(tmp_path / "b", rows("mild", (50, 200, 1000), 200) + rows("aggressive", (50, 200), 50)))
    answer, detail = C.verdict(check.ours, both, ours=True)
    assert answer == C.YES and "not measured: " in detail and "label_count 50: 5.00" in detail
    assert "95% CI 5.00 [3.76, 6.24]" in detail


@pytest.mark.parametrize("gap, answer, ci", [(10, C.YES, "+10.00 [+8.87, +11.13]"), (-10, C.NO, "-10.00 [-11.13, -8.87]"),
                                             (0.2, C.INCONCLUSIVE, "+0.20 [-0.93, +1.33]")])
def test_a_claim_is_decided_by_the_ci_of_the_difference(gap: float, answer: str, ci: str, tmp_path: Path) -> None:
    """Three pretraining seeds a side, spread 0.5: a clear win is yes, a clear loss no, and a gap
    whose Welch 95 % CI contains 0 inconclusive; the CI is printed."""
    rows = results([("mocov2", "sal-mask", "linear", "shapes64", "top1", "shapes64", 60 + gap, 0),
                    ("mocov2", "default", "linear", "shapes64", "top1", "shapes64", 60, 0)], True)
    _, trends = C.compare(frame_of(tmp_path, rows), PAPERS["saliency-masking"])
    detail = trends.iloc[0]["ours: detail"]
    assert trends.iloc[0]["ours shows"] == answer, detail
    assert f"difference {ci}" in detail and "one seed" not in detail


def test_evaluation_seeds_are_not_replicates(tmp_path: Path) -> None:
    """Two pretraining seeds a side, each evaluated with three seeds: n is 2, not 6."""
    rows = []
    for aug, base in (("sal-mask", 62.0), ("default", 60.0)):
        for seed, d in enumerate((-0.3, 0.3)):
            rid = f"mocov2-{aug}-resnet18-shapes64-s{seed}-0a1b2c3d"
            sha = hashlib.sha256(rid.encode()).hexdigest()
            rows += [Result(rid, sha, "linear", "shapes64", "test", "top1", base + d + e, ev, {})
                     for ev, e in enumerate((-1.0, 0.0, 1.0))]
    numbers, trends = C.compare(frame_of(tmp_path, rows), PAPERS["saliency-masking"])
    detail = trends.iloc[0]["ours: detail"]
    assert "62.0 ± 3.8 (n=2) vs default 60.0 ± 3.8 (n=2): difference +2.00 [+0.17, +3.83]" in detail, detail
    assert trends.iloc[0]["ours shows"] == C.YES


def test_one_seed_comparisons_print_the_figure_without_a_ci(tmp_path: Path) -> None:
    rows = [r for r in results([("mocov2", "sal-mask", "linear", "shapes64", "top1", "shapes64", 70, 0),
                                ("mocov2", "default", "linear", "shapes64", "top1", "shapes64", 60, 0)], True)
            if "-s0-" in r.run_id]
    _, trends = C.compare(frame_of(tmp_path, rows), PAPERS["saliency-masking"])
    assert "difference +10.00 (one seed: no CI)" in trends.iloc[0]["ours: detail"]
    assert trends.iloc[0]["ours shows"] == C.INCONCLUSIVE


def test_the_report_shows_the_refusal_where_the_comparison_would_be(tmp_path: Path) -> None:
    from reports.build import build
    masking_frame(tmp_path, _BEFORE)
    page = build(tmp_path / "results.sqlite", tmp_path / "report").read_text()
    assert "Published vs ours: saliency-masking" in page and "refusing to pool runs" in page
    assert not (tmp_path / "report" / "compare" / "saliency-masking.md").exists()
