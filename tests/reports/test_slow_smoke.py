"""``python -m reports reproduce --paper P --scale full --smoke`` end to end, in a fresh folder: every
paper's full plan (its own commands, datasets in their real layouts, torchrun, the paper transfer
protocols) on fixtures, cut to a few steps, on CPU; it leaves a store whose ``compare`` runs. The
smallest plan is a default test; the others are ``slow`` (their wall times: bench/RESULTS.md)."""
from __future__ import annotations

from pathlib import Path

import pytest

from measure.results import ResultsStore
from reports.__main__ import main
from reports.papers import PLANS

DEFAULT = "saliency-aug"            # the smallest smoke plan: one dataset, no framework transfer


def smoke(paper: str, out: Path) -> Path:
    assert main(["reproduce", "--paper", paper, "--scale", "full", "--smoke", "--out", str(out)]) == 0
    root = out / f"{paper}-full-smoke"
    assert (root / "report" / "report.html").is_file()
    frame = ResultsStore(root / "results.sqlite").query()
    assert len(frame) and frame["run_id"].nunique() >= 2
    assert main(["compare", "--paper", paper, "--db", str(root / "results.sqlite"), "--out",
                 str(out / "again")]) == 0
    return root


def test_smallest_full_plan_runs_end_to_end_on_fixtures(tmp_path: Path) -> None:
    root = smoke(DEFAULT, tmp_path)
    runs = [p for p in (root / "runs").rglob("ckpt.pt")]
    assert len(runs) == 8                                    # SimCLR, BYOL x default, sgd HC / RC, sgd-only
    import torch
    assert all(torch.load(p, weights_only=True)["train"]["world_size"] == 2 for p in runs)    # torchrun, DDP


@pytest.mark.slow
@pytest.mark.parametrize("paper", [p for p in PLANS if p != DEFAULT])
def test_full_plan_runs_end_to_end_on_fixtures(paper: str, tmp_path: Path) -> None:
    smoke(paper, tmp_path)
