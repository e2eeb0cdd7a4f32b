"""``reproduce --scale full --smoke``: the full plan's own commands on fixtures of its datasets, cut
to a few steps; the datasets a full plan reads are checked before it starts; ``--dry-run`` prints
each full plan's GPU-hour estimate."""
from __future__ import annotations

from pathlib import Path

import pytest

from reports.__main__ import main
from reports.papers import DATASETS, PLANS, SMOKE_KEEPS
from reports.reproduce import GPUS, plan
from reports.smoke import PRETRAIN, SMOKE_PROCS, SMOKE_SEED, seed_of, with_options


def test_with_options_replaces_in_place_and_appends() -> None:
    args = ("--a", "1", "--x.y=2", "--keep")
    assert with_options(args, {"--a": "9", "--x.y": "3", "--b": "4", "--z.w": "5"}) == \
        ("--a", "9", "--x.y=3", "--keep", "--b", "4", "--z.w=5")


@pytest.mark.parametrize("paper", list(PLANS))
def test_smoke_runs_the_full_plans_commands_cut(paper: str, tmp_path: Path) -> None:
    _, full = plan(paper, PLANS[paper], "full", tmp_path)
    lay, smoke = plan(paper, PLANS[paper], "full", tmp_path, smoke=True, datasets=DATASETS[paper],
                      keep=SMOKE_KEEPS[paper])
    assert lay.root == tmp_path / f"{paper}-full-smoke" and lay.datasets == lay.root / "datasets"
    if DATASETS[paper]:
        assert smoke[0].module == "imagedata.layouts" and smoke[0].args[-len(DATASETS[paper]):] == DATASETS[paper]
        smoke = smoke[1:]
    kept = [s for s in full if (s.module != "pretrain" or seed_of(s.args) == SMOKE_SEED) and SMOKE_KEEPS[paper](s)]
    assert len(smoke) == len(kept) < len(full)          # the other seeds (utility: variants) repeat these commands
    assert {s.what for s in full if s.module == "pretrain"} == {s.what for s in kept if s.module == "pretrain"}
    root_full, root_smoke = str(tmp_path / f"{paper}-full"), str(lay.root)
    for f, s in zip(kept, smoke):
        assert (s.module, s.what) == (f.module, f.what)
        if s.module == "pretrain":
            assert s.launch == tuple(a.replace(f"={GPUS}", f"={SMOKE_PROCS}") for a in f.launch)
            assert all(f"{k}={v}" in s.args for k, v in PRETRAIN.items())
            # everything else is the full plan's own argument (paths under the smoke root)
            rest = [a for a in s.args if a.partition("=")[0] not in PRETRAIN]
            full_rest = [a.replace(root_full, root_smoke).replace("data/", f"{lay.datasets}/", 1)
                         if a.startswith("data/") else a.replace(root_full, root_smoke)
                         for a in f.args if a.partition("=")[0] not in PRETRAIN]
            assert rest == full_rest
        elif s.module in ("evaluate.suite", "invariance"):
            assert s.args[s.args.index("--device") + 1] == "cpu"


def test_smoke_is_for_full_plans() -> None:
    with pytest.raises(ValueError, match="--smoke runs a full plan"):
        plan("slotcon", PLANS["slotcon"], "cpu", "x", smoke=True)


def test_a_full_plan_checks_its_datasets_before_any_step(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "out"
    assert main(["reproduce", "--paper", "slotcon", "--scale", "full", "--out", str(out),
                 "--data-root", str(tmp_path / "data")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert str(tmp_path / "data" / "coco" / "annotations" / "instances_train2017.json") in err and "COCO 2017" in err
    assert not out.exists()                                            # nothing ran


@pytest.mark.parametrize("paper", ["slotcon", "saliency-masking"])
def test_dry_run_prints_the_gpu_hour_estimate(paper: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["reproduce", "--paper", paper, "--scale", "full", "--out", str(tmp_path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    total = [line for line in out.splitlines() if line.startswith("estimate: ~")]
    assert len(total) == 1 and "V100 GPU-hours" in total[0] and "not counted: mmseg" in total[0]
    assert out.count("V100 GPU-h]") >= 3


def test_dry_run_warns_when_a_gpu_cannot_hold_the_batch(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["reproduce", "--paper", "slotcon", "--scale", "full", "--out", str(tmp_path), "--dry-run",
                 "--gpu-memory", "4"]) == 0
    err = capsys.readouterr().err
    assert "warning: step 1 (pretrain slotcon): batch 64 a GPU needs ~" in err and "over 4 GB" in err
