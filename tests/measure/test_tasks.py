"""The task registry (measure.tasks): every registered task runs through the one dispatch loop."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from evaluate.context import SuiteConfig
from evaluate.dense import DenseConfig
from evaluate.fewshot import FewShotConfig
from evaluate.finetune import FinetuneConfig
from evaluate.suite import evaluate_checkpoint
from measure.results import ResultsStore
from measure.tasks import Job, SkipTask, Task, all_tasks, default_tasks, get_tasks, register, store_jobs

TASKS = all_tasks()
# what the framework transfers need that the test checkpoint (backbone "tiny") does not have
NOT_FOR_TINY = {"detection": "Detectron2 / mmseg transfer takes", "segmentation_transfer": "Detectron2 / mmseg transfer takes"}


@pytest.fixture(scope="module")
def wide_ckpt(eval_data: Path, tmp_path_factory: pytest.TempPathFactory, make_ckpt) -> Path:
    """A tiny-backbone checkpoint with 32 pooled features (the invariance score's top-25 needs >= 25)."""
    return make_ckpt("simclr", eval_data, tmp_path_factory.mktemp("runs"), **{"backbone.kwargs": {"width": 16}})


def small_config(tmp_path: Path) -> SuiteConfig:
    """Settings that make every task run in seconds on the 32-px test data."""
    return SuiteConfig(cache_dir=str(tmp_path / "cache"), embedding_points=40,
                       finetune=FinetuneConfig(sizes=(20,), max_steps=4, min_steps=2),
                       dense=DenseConfig(steps=4), invariance_sets=2, probe_dir=str(tmp_path / "probes"),
                       transform_images=16, fewshot=FewShotConfig(ways=2, shots=(1,), queries=2, episodes=5))


def test_the_registry_holds_both_providers_tasks() -> None:
    assert {"linear", "knn", "clustering", "finetune", "pose", "depth", "segmentation", "unsup_seg", "detection",
            "segmentation_transfer", "invariance", "transform_invariance", "fewshot"} <= set(TASKS)
    assert default_tasks() == [n for n in TASKS if n not in ("detection", "segmentation_transfer", "invariance",
                                                             "transform_invariance", "fewshot")]


@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_task_record_is_complete(name: str) -> None:
    """A summary line, settings that exist in the suite's config, and an eval config naming task and protocol."""
    task = TASKS[name]
    assert task.name == name and task.summary
    fields = {f.name for f in dataclasses.fields(SuiteConfig)}
    assert set(task.settings) <= fields, set(task.settings) - fields
    if task.function is not None:
        ecfg = task.eval_config(SuiteConfig())
        assert ecfg["task"] == name and ecfg["protocol"] == task.protocol and "image_size" in ecfg


@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_task_runs_on_a_checkpoint_into_the_store(name: str, wide_ckpt: Path, eval_data: Path,
                                                        tmp_path: Path) -> None:
    """Each task, alone, through the suite: finite values stored under its name, or skipped with the reason."""
    store = ResultsStore(tmp_path / "r.sqlite")
    cfg = dataclasses.replace(small_config(tmp_path), data=str(eval_data))
    summary = evaluate_checkpoint(wide_ckpt, [name], cfg, store)
    assert summary and all(r["task"] == name for r in summary)
    if name in NOT_FOR_TINY:
        assert all(r["status"].startswith("skipped: ") and NOT_FOR_TINY[name] in r["status"] for r in summary)
        return
    assert {r["status"] for r in summary} == {"new"}, summary
    frame = store.to_frame()
    assert not frame.empty and set(frame["task"]) == {name} and frame["value"].notna().all()
    again = evaluate_checkpoint(wide_ckpt, [name], cfg, store)              # stored: reused, not recomputed
    assert {r["status"] for r in again} == {"stored"}


def test_unknown_and_duplicate_tasks_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown task\\(s\\) nope; valid: linear"):
        get_tasks(["linear", "nope"])
    with pytest.raises(ValueError, match="registered twice"):
        register(Task("linear", lambda ctx: []))
    with pytest.raises(ValueError, match="exactly one of function or jobs"):
        Task("x")


def test_store_jobs_skips_reports_and_keeps_the_store(tmp_path: Path) -> None:
    """A job raising SkipTask is reported, not stored; the stored job is reused unless forced."""
    store = ResultsStore(tmp_path / "r.sqlite")
    calls = []

    def rows() -> list:
        calls.append(1)
        return [("acc", 0.5, "test", None)]

    def skip() -> list:
        raise SkipTask("no labels")

    jobs = [Job("t", "d", {"task": "t"}, rows), Job("t", "e", {"task": "t"}, skip)]
    out = store_jobs(jobs, store, "run", "sha")
    assert [r["status"] for r in out] == ["new", "skipped: no labels"] and len(store.to_frame()) == 1
    assert [r["status"] for r in store_jobs(jobs[:1], store, "run", "sha")] == ["stored"] and len(calls) == 1
    store_jobs(jobs[:1], store, "run", "sha", force=True)
    assert len(calls) == 2 and len(store.to_frame()) == 1


@pytest.fixture(scope="module")
def vit_ckpt(eval_data: Path, tmp_path_factory: pytest.TempPathFactory, make_ckpt) -> Path:
    """A timm ViT-Tiny checkpoint (2 blocks, 8-px patches on 32-px images: a 4 x 4 token map)."""
    return make_ckpt("simclr", eval_data, tmp_path_factory.mktemp("vit"),
                     **{"backbone.name": "timm", "backbone.kwargs": {"model": "vit_tiny_patch16_224", "patch_size": 8,
                                                                     "img_size": 32, "depth": 2}})


@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_task_runs_on_a_vit(name: str, vit_ckpt: Path, eval_data: Path, tmp_path: Path) -> None:
    """The backbone contract carries every task to a timm ViT (CLS pooled, patch tokens as the dense
    map); the framework transfers, which take torchvision ResNets, say so."""
    store = ResultsStore(tmp_path / "r.sqlite")
    cfg = dataclasses.replace(small_config(tmp_path), data=str(eval_data))
    summary = evaluate_checkpoint(vit_ckpt, [name], cfg, store)
    assert summary and all(r["task"] == name for r in summary)
    if name in NOT_FOR_TINY:
        assert all(r["status"].startswith("skipped: ") for r in summary)
        return
    assert {r["status"] for r in summary} == {"new"}, summary
    assert store.to_frame()["value"].notna().all()
