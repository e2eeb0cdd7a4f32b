"""reports.papers: the registry of reproduced papers. Every paper has claims, a plan that builds at
each scale, its published tables on disk, and a module that imports first in a fresh interpreter."""
from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from reports import compare as C
from reports import reproduce as R
from reports.papers import MODULES, PAPERS, PLANS, get_paper, get_plan
from reports.reproduce import SCALES, Step, plan

ROOT = Path(__file__).resolve().parents[2]
NAMES = ["saliency-aug", "saliency-masking", "invariance", "slotcon", "utility"]


def test_the_registry_names_every_paper_once() -> None:
    assert list(PAPERS) == list(PLANS) == NAMES            # the --paper names of compare and reproduce
    for module in MODULES:
        assert dataclasses.replace(PAPERS[module.SPEC.name], planned=frozenset()) == module.SPEC
        assert PLANS[module.SPEC.name] is module.plan
        assert module.__name__ == f"reports.papers.{module.SPEC.name.replace('-', '_')}"


@pytest.mark.parametrize("name", NAMES)
def test_planned_settings_are_what_the_plan_passes(name: str) -> None:
    """Every ``--section.key=`` a pretraining step of the plan passes (its cpu transfer arms
    included) is planned; the seed and the output folder are not settings."""
    passed = {a[2:].partition("=")[0] for scale in SCALES for s in plan(name, get_plan(name), scale, transfer=True)[1]
              if s.module == "pretrain" for a in s.args if a.startswith("--") and "." in a.partition("=")[0]}
    assert get_paper(name).planned == passed - {"train.seed", "train.out"}
    assert "train.epochs" in get_paper(name).planned


@pytest.mark.parametrize("lookup", [get_paper, get_plan])
def test_an_unknown_name_lists_the_valid_ones(lookup) -> None:
    with pytest.raises(ValueError, match=f"unknown paper 'nope'; valid: {', '.join(NAMES)}"):
        lookup("nope")


@pytest.mark.parametrize("name", NAMES)
def test_every_paper_has_claims_and_its_published_tables(name: str) -> None:
    spec = get_paper(name)
    assert isinstance(spec, C.PaperSpec) and spec.name == name and spec.title
    assert spec.trends and all(t.claim for t in spec.trends)
    for table in spec.tables:
        assert (C.TABLES_DIR / table).is_file(), table
    if spec.tables:
        assert len(C.published(spec)) and spec.match is not None
    else:
        assert spec.ours_rows and spec.ours_by                # what the comparison shows without a table


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("scale", SCALES)
def test_every_paper_has_a_plan_at_each_scale(name: str, scale: str, tmp_path: Path) -> None:
    lay, steps = plan(name, get_plan(name), scale, tmp_path)
    assert lay.root == tmp_path / f"{name}-{scale}"
    assert steps and all(isinstance(s, Step) for s in steps)
    assert steps[-1].args[:3] == ("compare", "--paper", name)   # ends with the comparison with that paper


@pytest.mark.parametrize("module", ["reports.papers", *(m.__name__ for m in MODULES)])
def test_each_paper_module_imports_first(module: str) -> None:
    """No import cycle between the machinery (compare, reproduce) and the paper modules."""
    done = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_machinery_does_not_import_the_papers() -> None:
    """The papers import compare and reproduce, never the other way round (only the registry and
    the CLI know the papers)."""
    for module in (C, R):
        imported = {line.split()[1].lstrip(".").split(".")[0] for line in Path(module.__file__).read_text().splitlines()
                    if line.lstrip().startswith(("from ", "import "))}
        assert "papers" not in imported and "reports" not in imported, module.__name__


@pytest.mark.parametrize("scale", SCALES)
def test_the_masking_plan_runs_moco_v2_as_the_authors_do(scale: str, tmp_path: Path) -> None:
    """Every MoCo v2 arm of the masking plan, unmasked baseline included, is the asymmetric MoCo v2
    (the authors' moco/builder.py); hard negatives weigh alpha = 2 (their README's --alpha 2.0)."""
    _, steps = plan("saliency-masking", get_plan("saliency-masking"), scale, tmp_path)
    runs = [s.args[s.args.index("--method"):] for s in steps if "--method" in s.args]
    moco = [a for a in runs if a[1] == "mocov2"]
    assert moco and all("--method_cfg.symmetric=false" in a for a in moco)
    assert {a[3] for a in moco if a[2] == "--aug"} >= {"default", "sal-mask"}
    assert not any("--method_cfg.symmetric=false" in a for a in runs if a[1] != "mocov2")
    hard = [a for a in runs if "sal-mask-hn" in a]
    assert bool(hard) == (scale == "full")              # cpu: the arms of the linear claims only
    assert all("--method_cfg.hard_negative_alpha=2.0" in a for a in hard)
    assert all(("--method_cfg.queue_size=65536" in a) == (scale == "full") for a in moco)


@pytest.mark.parametrize(("elapsed", "done", "total", "expected"), [
    (600.0, 1, 4, "10.0 min elapsed, ETA 30.0 min"),
    (1200.0, 4, 4, "20.0 min elapsed, ETA 0.0 min"),
])
def test_progress_gives_the_eta_at_the_pace_so_far(elapsed: float, done: int, total: int, expected: str) -> None:
    assert R.progress(elapsed, done, total) == expected
