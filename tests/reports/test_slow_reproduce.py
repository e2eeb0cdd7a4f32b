"""`make reproduce PAPER=utility SCALE=cpu` end to end (`make test-slow`): the plan's own commands
(pretraining in three seeds, finetuning curves, dense tasks, the report with its label-savings
utility plot and the comparison) on two of its 12 T/C/V/L variants (every factor fixed, every
factor varied) at 2500 images each, so that it finishes within the slow tests' hours: the whole
cpu plan takes about 12 hours on 2 cores (docs/reports.md, an estimate)."""
from __future__ import annotations

from pathlib import Path

import pytest

from measure.results import ResultsStore
from reports import html
from reports.papers import get_plan
from reports.reproduce import run

pytestmark = pytest.mark.slow


def test_utility_reproduction_at_cpu_scale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import reports.papers.utility as U
    import synthetic.presets as P

    monkeypatch.setattr(P, "TCVL_VARIANTS", ("0000", "1111"))
    monkeypatch.setattr(U, "CPU_OBJECTS", 2500)
    report = run("utility", get_plan("utility"), "cpu", tmp_path)
    assert html.check_report(report / "report.html") == []
    assert (report / "plots" / "utility.png").stat().st_size > 0
    assert (report / "plots" / "label_efficiency.png").stat().st_size > 0
    assert (report / "utility.md").exists()                     # the plan's last step: compare --paper utility
    fin = ResultsStore(report.parent / "results.sqlite").query(task="finetune")
    pretrained = fin[~fin["run_id"].str.startswith("scratch-")]
    assert pretrained["dataset"].nunique() == 2                 # every variant finetuned
    assert set(pretrained["run_id"].str.split("-").str[0]) == {"rotation", "simclr"}
    util = pretrained[pretrained["metric"].str.startswith("utility@n")]
    assert len(util) and util["seed"].notna().all()             # measured somewhere, per finetuning seed
