"""The invariance measures end to end: CLI and suite -> probe sets / benchmarks -> results store."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from measure import features as F
from evaluate import suite as S
from measure.results import ResultsStore
from invariance.__main__ import main

FIRING = {"top10", "top25", "sets_used", "sets_skipped", "tied_units", "units"}


@pytest.fixture(scope="module")
def wide_ckpt(eval_data: Path, tmp_path_factory: pytest.TempPathFactory, make_ckpt) -> Path:
    """A tiny-ResNet checkpoint with 32 pooled features (the score's top-25 needs at least 25)."""
    return make_ckpt("simclr", eval_data, tmp_path_factory.mktemp("runs"), **{"backbone.kwargs": {"width": 16}})


def aloi(root: Path, objects: int = 3, angles: tuple[int, ...] = (0, 90, 180, 270)) -> Path:
    """A tiny ALOI viewpoint collection in its real layout (``aloi_red4_view/png4/<obj>/<obj>_r<a>.png``)."""
    rng = np.random.default_rng(0)
    for obj in range(1, objects + 1):
        folder = root / "aloi_red4_view" / "png4" / str(obj)
        folder.mkdir(parents=True)
        for a in angles:
            Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(folder / f"{obj}_r{a}.png")
    return root


def test_cli_measures_probes_and_transforms_into_the_store(wide_ckpt: Path, eval_data: Path, tmp_path: Path,
                                                           capsys) -> None:
    store = tmp_path / "r.sqlite"
    argv = [str(wide_ckpt), "--probes", "occlusion,viewpoint", "--sets", "6", "--probe-dir", str(tmp_path / "p"),
            "--transforms", "rotation,hflip", "--strengths", "0.5,1", "--data", str(eval_data),
            "--store", str(store), "--cache", str(tmp_path / "c")]
    assert main(argv) == 0
    rows = ResultsStore(store).query()
    inv = rows[rows["task"] == "invariance"]
    assert set(inv["dataset"]) == {"probe-occlusion", "probe-viewpoint"}
    assert set(inv["metric"]) == FIRING
    top = inv[inv["metric"].isin(["top10", "top25"])]["value"]
    assert top.between(0, 100).all() and (top > 0).all()
    assert (inv[inv["metric"] == "sets_used"]["value"] == 6).all()
    tr = rows[rows["task"] == "transform_invariance"]
    assert set(tr["metric"]) == {"rotation@0.5", "rotation@1", "hflip@0.5", "hflip@1"}
    assert set(tr["dataset"]) == {eval_data.name} and tr["value"].between(-1, 1).all()
    assert json.loads(inv["eval_config"].iloc[0])["sets"] == 6
    assert "probe-occlusion" in capsys.readouterr().out
    before = F.STATS["extractions"]
    assert main(argv) == 0                                               # stored: nothing recomputed
    assert F.STATS["extractions"] == before and len(ResultsStore(store).query()) == len(rows)
    assert "(stored)" in capsys.readouterr().out


def test_a_real_benchmark_layout_through_the_cli(wide_ckpt: Path, tmp_path: Path) -> None:
    store = tmp_path / "r.sqlite"
    root = aloi(tmp_path / "aloi")
    argv = [str(wide_ckpt), "--probes", "none", "--transforms", "none", "--benchmark", f"aloi-viewpoint={root}",
            "--image-size", "32", "--store", str(store), "--cache", str(tmp_path / "c")]
    assert main(argv) == 0
    rows = ResultsStore(store).query(task="invariance")
    assert set(rows["dataset"]) == {"aloi-viewpoint"} and set(rows["metric"]) == FIRING
    assert rows.set_index("metric").loc["sets_used", "value"] == 3


def test_the_suite_runs_both_measures(wide_ckpt: Path, eval_data: Path, tmp_path: Path, capsys) -> None:
    store = tmp_path / "r.sqlite"
    argv = [str(wide_ckpt), "--data", str(eval_data), "--tasks", "invariance,transform_invariance",
            "--invariance-sets", "4", "--probe-dir", str(tmp_path / "p"), "--store", str(store),
            "--cache", str(tmp_path / "c")]
    assert S.main(argv) == 0
    rows = ResultsStore(store).query()
    assert set(rows["task"]) == {"invariance", "transform_invariance"}
    assert {f"probe-{k}" for k in ("occlusion", "viewpoint", "illum-dir", "illum-color", "instance",
                                    "instance-viewpoint")} <= set(rows["dataset"])
    assert len(rows[rows["task"] == "transform_invariance"]) == 18 * 4
    assert "probe-occlusion/top25" in capsys.readouterr().out


@pytest.mark.parametrize("args,match", [
    (["--probes", "shadows"], "unknown probe 'shadows'; valid: occlusion"),
    (["--transforms", "warp"], "unknown transform 'warp'; valid: rotation"),
    (["--benchmark", "imagenet=/x"], "expected NAME=ROOT with NAME one of got10k-occlusion"),
    (["--benchmark", "aloi-viewpoint=/nonexistent/aloi"], "/nonexistent/aloi: missing folder (ALOI layout"),
])
def test_bad_input_fails_in_one_line(args: list[str], match: str, wide_ckpt: Path, tmp_path: Path, capsys) -> None:
    store = tmp_path / "r.sqlite"
    argv = [str(wide_ckpt), "--transforms", "none", "--probes", "none", *args, "--store", str(store),
            "--cache", str(tmp_path / "c")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and match in err, err
    assert not store.exists() or ResultsStore(store).query().empty
