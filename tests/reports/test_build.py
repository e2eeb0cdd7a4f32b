"""``python -m reports build`` and ``reproduce``: a store -> tables, plots, comparisons, one HTML report."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from test_plots import fake_saliency, fake_store

from evaluate import suite as S
from reports import html
from reports.__main__ import main
from reports.papers import PLANS
from reports.reproduce import SCALES, plan


def check_pretrain_args(args: list[str]) -> None:
    """The settings of a ``python -m pretrain`` command line exist: config paths, the method's and
    the policy's own fields (as the trainer checks them before training)."""
    from pretrain import config as C
    from pretrain.augment import build_policy
    from pretrain.methods import METHODS
    from pretrain.trainer import method_config

    named = {k: args[args.index(k) + 1] for k in ("--method", "--aug", "--preset", "--data") if k in args}
    flags = ("--quiet", "--resume")
    rest = [a for a in args if a not in named.values() and a not in named and a not in flags]
    cfg = C.build_config(named["--method"], named.get("--aug"), named["--preset"], C.parse_overrides(rest))
    method_config(METHODS[cfg.method], cfg.method_cfg)
    build_policy(cfg.aug, **cfg.aug_cfg)


def check_output(out: Path) -> str:
    """Every written file is non-empty; the report embeds only what exists; every table cell has its n."""
    report = out / "report.html"
    assert report.exists() and html.check_report(report) == []
    for path in out.rglob("*"):
        if path.is_file():
            assert path.stat().st_size > 0, path
    for md in (out / "tables").glob("*.md"):
        for line in md.read_text().splitlines()[2:]:                     # body rows of the pipe table
            for cell in line.strip("|").split("|"):
                cell = cell.strip()
                if re.match(r"[-+−]?\d", cell) and not re.fullmatch(r"\d+", cell):   # a value, not a label count
                    assert "(n=" in cell, (md, cell)
    return report.read_text()


def test_build_from_a_store_renders_everything(tmp_path: Path, capsys) -> None:
    fake_store(tmp_path / "r.sqlite")
    np.savez(tmp_path / "sal.npz", **fake_saliency())
    out = tmp_path / "report"
    assert main(["build", "--db", str(tmp_path / "r.sqlite"), "--out", str(out), "--saliency",
                 str(tmp_path / "sal.npz")]) == 0
    text = check_output(out)
    plots = {p.stem for p in (out / "plots").glob("*.png")}
    assert {"label_efficiency", "utility", "invariance", "heatmap_linear", "saliency", "embedding_0"} <= plots
    assert {p.suffix for p in (out / "tables").iterdir()} == {".md", ".csv", ".tex", ".html"}
    assert text.count("<img") >= len(plots) and "Label-savings utility" in text
    assert "report.html" in capsys.readouterr().out
    assert "between random init and supervised" not in text             # no random / supervised runs here


def test_the_report_places_runs_between_random_and_supervised(tmp_path: Path) -> None:
    from measure.results import Result, ResultsStore

    store = ResultsStore(tmp_path / "r.sqlite")
    for method, value in (("random", 40.0), ("supervised", 80.0), ("simclr", 70.0)):
        for seed, d in enumerate((-1.0, 0.0, 1.0)):
            rid = f"{method}-mild-resnet18-shapes64-s{seed}-0a1b2c3d"
            store.add([Result(rid, rid.ljust(64, "0"), "linear", "shapes64", "test", "top1", value + d, None, {})])
    out = tmp_path / "report"
    assert main(["build", "--db", str(tmp_path / "r.sqlite"), "--out", str(out)]) == 0
    text = check_output(out)
    assert "Linear top-1 between random init and supervised (fraction of the gap closed)" in text
    gap = (out / "tables" / "linear-top1-gap.csv").read_text().splitlines()
    assert gap[0].endswith("random,supervised,gap closed") and len(gap) >= 2 and gap[1].split(",")[3] == "simclr"


def test_build_from_a_store_filled_by_the_suite(tiny_ckpt: Path, eval_data: Path, tmp_path: Path) -> None:
    db = tmp_path / "r.sqlite"
    assert S.main([str(tiny_ckpt), "--data", str(eval_data), "--store", str(db), "--cache", str(tmp_path / "c"),
                   "--tasks", "linear,knn,clustering,finetune", "--sizes", "20,50", "--finetune-max-steps", "4",
                   "--seeds", "0,1"]) == 0
    out = tmp_path / "report"
    assert main(["build", "--db", str(db), "--out", str(out), "--stat", "ci95"]) == 0
    text = check_output(out)
    assert re.search(r"\(n=\d+\)", text) and (out / "plots" / "label_efficiency.png").exists()
    # one pretrained run: a profile of its values, and no 1 x 1 heatmaps
    assert "Profile of simclr-" in text and not list((out / "plots").glob("heatmap_*"))
    profile = (out / "tables" / "profile.csv").read_text()
    assert "linear,shapes,test,top1," in profile and "clustering,shapes,test,nmi," in profile


@pytest.mark.parametrize("args,match", [
    (["build", "--db", "/nonexistent/r.sqlite", "--out", "x"], "/nonexistent/r.sqlite"),
    (["reproduce", "--paper", "nope"], "unknown paper 'nope'; valid: saliency-aug"),
    (["reproduce", "--paper", "utility", "--scale", "huge"], "unknown scale 'huge'; valid: cpu, full"),
])
def test_bad_input_fails_in_one_line(args: list[str], match: str, capsys) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and match in err, err


def test_an_empty_store_is_refused(tmp_path: Path, capsys) -> None:
    from measure.results import ResultsStore

    ResultsStore(tmp_path / "r.sqlite")
    assert main(["build", "--db", str(tmp_path / "r.sqlite"), "--out", str(tmp_path / "o")]) == 2
    assert "no rows to report" in capsys.readouterr().err


@pytest.mark.parametrize("paper", list(PLANS))
@pytest.mark.parametrize("scale", SCALES)
def test_every_paper_has_a_plan_ending_in_its_report(paper: str, scale: str, tmp_path: Path, capsys) -> None:
    """Each reproduction pretrains, evaluates and ends with the report and the comparison; its
    commands parse with the project's own CLIs (dry run)."""
    lay, steps = plan(paper, PLANS[paper], scale, tmp_path)
    modules = [s.module for s in steps]
    assert "pretrain" in modules and "evaluate.suite" in modules or "invariance" in modules
    assert [s.args[0] for s in steps[-2:]] == ["build", "compare"]
    assert len(set(steps)) == len(steps)                                # nothing is run twice
    assert all(str(tmp_path) in " ".join(s.args) for s in steps if s.module in ("pretrain", "evaluate.suite"))
    for s in steps:
        if s.module == "pretrain":
            check_pretrain_args(list(s.args))
            assert "--resume" in s.args                     # an interrupted pretraining continues
    assert main(["reproduce", "--paper", paper, "--scale", scale, "--out", str(tmp_path), "--dry-run"]) == 0
    assert f"[{len(steps)}/{len(steps)}]" in capsys.readouterr().out


@pytest.mark.parametrize("paper", list(PLANS))
def test_cpu_plans_transfer_a_bounded_number_of_runs(paper: str, tmp_path: Path) -> None:
    """Detectron2 on 2 cores costs ~20 minutes a checkpoint: a cpu plan transfers nothing unless
    asked (``--transfer``), then at most three runs (its ``runs/transfer`` group); the full plans
    send every run of the study there."""
    for scale, transfer, bound in (("cpu", False, 0), ("cpu", True, 3), ("full", False, None)):
        lay, steps = plan(paper, PLANS[paper], scale, tmp_path, transfer=transfer)
        pretrained = [s for s in steps if s.module == "pretrain"]
        transferred = [s for s in pretrained if f"--train.out={lay.runs / 'transfer'}" in s.args]
        framework = [s for s in steps if s.module == "evaluate.suite"
                     and {"detection", "segmentation_transfer"} & set(s.args[s.args.index("--tasks") + 1].split(","))]
        if not framework:
            assert not transferred
        elif bound is not None:
            assert 0 < len(transferred) <= bound
            assert all(s.args[0] == str(lay.runs / "transfer") for s in framework)
        else:
            assert len(transferred) == len(pretrained)
        if bound == 0:
            assert not framework and not transferred


def _value(args: tuple[str, ...], flag: str) -> str:
    return args[args.index(flag) + 1]


@pytest.mark.parametrize("paper", list(PLANS))
def test_cpu_plans_classify_held_out_objects_on_2500_test_images(paper: str, tmp_path: Path) -> None:
    """Every single-object classification set a cpu plan renders splits by mesh (its test split
    shows objects never seen in training) and has >= 2500 test images, by its preset's test
    fraction and as drawn (seed 0); the other sets are scenes / video for dense tasks and
    pretraining, left small."""
    from synthetic.generate import instance_splits
    from synthetic.presets import get_preset
    from synthetic.scenes import sample_images

    _, steps = plan(paper, PLANS[paper], "cpu", tmp_path)
    data = [s for s in steps if s.module == "synthetic.generate"]
    presets = {s: get_preset(_value(s.args, "--preset")) for s in data}
    objects = [s for s, p in presets.items() if p.unit == "image" and p.objects == (1, 1)]
    assert {p.name for s, p in presets.items() if s not in objects} <= {"scenes", "video"}
    assert objects or paper == "slotcon"                     # SlotCon: scenes only
    for s in objects:
        p, n, seed = presets[s], int(_value(s.args, "--n")), int(_value(s.args, "--seed"))
        assert p.split_by == "instance" and p.name.endswith("-heldout"), p.name
        assert n * p.splits[2] >= 2500 - 1e-9, (p.name, n, p.splits)
        spec = sample_images(p, seed, np.arange(n))
        assert (instance_splits(p, seed)[spec.cls, spec.inst] == 2).sum() >= 2500, p.name


@pytest.mark.parametrize("paper", list(PLANS))
@pytest.mark.parametrize("transfer", [False, True])
def test_cpu_plans_pretrain_three_seeds(paper: str, transfer: bool, tmp_path: Path) -> None:
    """At cpu scale every pretraining comes in the three seeds of ``seeds("cpu")`` at the preset's
    backbone, so every claim a cpu plan judges rests on three pretraining seeds a side; with
    ``--transfer`` a run handed to the framework transfer is an extra arm (seed 0, standard stem)
    beside its three preset runs, never one of them, and without it there is no such arm."""
    from reports.reproduce import seeds, transfer_arm_args

    assert seeds("cpu") == (0, 1, 2)
    lay, steps = plan(paper, PLANS[paper], "cpu", tmp_path, transfer=transfer)
    runs: dict[tuple[str, ...], list[int]] = {}
    arms: dict[tuple[str, ...], list[int]] = {}
    for s in (s for s in steps if s.module == "pretrain"):
        seed, = (int(a.split("=")[1]) for a in s.args if a.startswith("--train.seed="))
        key = tuple(a for a in s.args if not a.startswith(("--train.seed=", "--train.out="))
                    and a not in transfer_arm_args(_value(s.args, "--method")))
        arm = f"--train.out={lay.runs / 'transfer'}" in s.args
        (arms if arm else runs).setdefault(key, []).append(seed)
    assert runs and all(sorted(v) == [0, 1, 2] for v in runs.values()), runs
    assert all(v == [0] and key in runs for key, v in arms.items()), arms
    assert bool(arms) == (transfer and paper in ("saliency-masking", "slotcon")), arms


@pytest.mark.parametrize("paper", list(PLANS))
def test_cpu_transfer_runs_train_the_standard_stem(paper: str, tmp_path: Path, monkeypatch) -> None:
    """Detectron2 / mmseg take torchvision's ResNet stem at width 64 only: at cpu scale exactly the
    runs of the ``transfer`` group reset the backbone's kwargs (whatever the cpu preset sets), and
    no full-scale run does."""
    from pretrain import config as C
    from reports.reproduce import CPU_TRANSFER_BACKBONE

    monkeypatch.setitem(C.PRESETS, "cpu", {**C.PRESETS["cpu"], "backbone.kwargs.small_stem": True,
                                           "backbone.kwargs.width": 16})
    for scale in SCALES:
        lay, steps = plan(paper, PLANS[paper], scale, tmp_path, transfer=True)
        for s in (s for s in steps if s.module == "pretrain"):
            transfer = f"--train.out={lay.runs / 'transfer'}" in s.args
            reset = all(a in s.args for a in CPU_TRANSFER_BACKBONE)
            assert reset == (transfer and scale == "cpu"), (scale, s.what)
            if scale == "cpu":
                named = {k: _value(s.args, k) for k in ("--method", "--preset")}
                rest = [a for a in s.args if a.startswith("--") and "=" in a]
                cfg = C.build_config(named["--method"], None, named["--preset"], C.parse_overrides(rest))
                assert cfg.backbone.kwargs == ({} if transfer else {"small_stem": True, "width": 16}), s.what


def test_slotcon_transfer_arm_groups_a_4x4_map(tmp_path: Path) -> None:
    """SlotCon's standard-stem arm for the transfers trains on views where the stem leaves a 4x4
    last stage (SlotCon refuses 1x1, what the stem gives on the preset's 32 px)."""
    import torch

    from pretrain import config as C
    from pretrain.backbones import build_backbone

    lay, steps = plan("slotcon", PLANS["slotcon"], "cpu", tmp_path, transfer=True)
    arm, = (s for s in steps if s.module == "pretrain" and _value(s.args, "--method") == "slotcon"
            and f"--train.out={lay.runs / 'transfer'}" in s.args)
    cfg = C.build_config("slotcon", None, _value(arm.args, "--preset"),
                         C.parse_overrides([a for a in arm.args if a.startswith("--") and "=" in a]))
    side = cfg.aug_cfg["out_size"]
    fmap = build_backbone(cfg.backbone.name, **cfg.backbone.kwargs).eval().forward_features(torch.zeros(1, 3, side, side))
    assert cfg.backbone.kwargs == {} and fmap.shape[-2:] == (4, 4)


def test_utility_cells_count_pretraining_seeds(tmp_path: Path) -> None:
    """A utility is stored per finetuning seed, like the accuracies it comes from; both cells count
    the 3 pretraining seeds (the 2 finetuning seeds of each are averaged inside it first)."""
    from reports import data as D
    from reports import tables as T

    frame = D.load(fake_store(tmp_path / "r.sqlite", methods=("byol",)).path)
    tables = T.default_tables(frame)
    util = next(t for name, t in tables.items() if name.startswith("utility"))
    accuracy = next(t for name, t in tables.items() if name.startswith("finetune-top1"))
    for column in util.columns:
        cell = util.loc[("byol", "mild"), column]
        assert cell.n == accuracy.loc[("byol", "mild"), column].n == 3
        assert cell.spread > 0


@pytest.mark.parametrize("paper", ["saliency-aug", "saliency-masking"])
@pytest.mark.parametrize("scale", SCALES)
def test_saliency_reports_show_saliency_examples(paper: str, scale: str, tmp_path: Path) -> None:
    """The saliency studies write their examples (maps, masks, the policies' views) before the
    report, and the report renders them."""
    lay, steps = plan(paper, PLANS[paper], scale, tmp_path)
    (i, examples), = [(i, s) for i, s in enumerate(steps)
                      if s.module == "pretrain.saliency" and s.args[0] == "examples"]
    build = steps[-2].args
    out = examples.args[examples.args.index("--out") + 1]
    assert build[build.index("--saliency") + 1] == out and i < len(steps) - 2
    data = examples.args[examples.args.index("--data") + 1]
    assert any(s.module == "pretrain" and data in s.args for s in steps)       # the data the runs train on


@pytest.mark.parametrize("paper", list(PLANS))
def test_full_plans_run_on_the_gpus(paper: str, tmp_path: Path) -> None:
    """full: every pretraining under torchrun on 8 processes, every evaluation on CUDA; cpu: neither."""
    from reports.reproduce import GPUS

    for scale in SCALES:
        _, steps = plan(paper, PLANS[paper], scale, tmp_path)
        for s in steps:
            cmd = s.command("python")
            if s.module == "pretrain":
                ddp = cmd[:6] == ["python", "-m", "torch.distributed.run", "--standalone",
                                  f"--nproc_per_node={GPUS}", "-m"] and cmd[6] == "pretrain"
                assert ddp == (scale == "full"), cmd
            elif s.module in ("evaluate.suite", "invariance"):
                device = s.args[s.args.index("--device") + 1] if "--device" in s.args else "cpu"
                assert device == ("cuda" if scale == "full" else "cpu"), cmd
            else:
                assert cmd[:3] == ["python", "-m", s.module]


def test_rebuild_removes_what_the_store_no_longer_gives(tmp_path: Path) -> None:
    """A rebuild without the saliency npz drops the earlier saliency plot; files of other tools in
    the output folder (a compare written beside the report) stay."""
    fake_store(tmp_path / "r.sqlite")
    np.savez(tmp_path / "sal.npz", **fake_saliency())
    out = tmp_path / "report"
    args = ["build", "--db", str(tmp_path / "r.sqlite"), "--out", str(out)]
    assert main([*args, "--saliency", str(tmp_path / "sal.npz")]) == 0
    assert (out / "plots" / "saliency.png").exists()
    (out / "utility.md").write_text("written by reports compare --out")
    before = {p.name for p in (out / "tables").iterdir()}
    assert main(args) == 0
    assert not (out / "plots" / "saliency.png").exists() and (out / "plots" / "utility.png").exists()
    assert {p.name for p in (out / "tables").iterdir()} == before
    assert (out / "utility.md").read_text() == "written by reports compare --out"
    check_output(out)


def test_masking_cpu_plan_runs_the_arms_of_its_linear_claims(tmp_path: Path) -> None:
    """cpu: SimCLR and MoCo v2 (asymmetric in every arm) each run no / random / high-pass saliency
    masks, all at the cpu epochs, and random init;
    with ``--transfer`` the MoCo v2 pair of seed 0 adds its standard-stem arms; full: every
    variant of both methods."""
    from reports.reproduce import CPU_EPOCHS

    def runs(scale: str, transfer: bool = False) -> dict[str, list[str]]:
        _, steps = plan("saliency-masking", PLANS["saliency-masking"], scale, tmp_path, transfer=transfer)
        out: dict[str, list[str]] = {}
        for s in steps:
            if s.module == "pretrain" and "--train.seed=0" in s.args:
                method = s.args[s.args.index("--method") + 1]
                out.setdefault(method, []).append(s.what)
                if scale == "cpu":
                    assert f"--train.epochs={CPU_EPOCHS}" in s.args, s.what
        return out

    cpu, full = runs("cpu"), runs("full")
    assert len(full["simclr"]) == len(full["mocov2"]) == 7
    masked = "sal-mask --aug_cfg.saliency=rc --aug_cfg.fill="
    asym = " --method_cfg.symmetric=false"                 # the authors' one-directional MoCo v2, every arm
    assert [n.split(" ", 2)[2] for n in cpu["simclr"]] == ["default", "random-mask", masked + "highpass"]
    assert [n.split(" ", 2)[2] for n in cpu["mocov2"]] == ["default" + asym, "random-mask" + asym,
                                                           masked + "highpass" + asym]
    arm = " (standard stem for the transfers)"
    assert [n for n in runs("cpu", transfer=True)["mocov2"] if n.endswith(arm)] == \
        [f"pretrain mocov2 default{asym}{arm}", f"pretrain mocov2 {masked}highpass{asym}{arm}"]
    assert "random" in cpu and "random" not in full
