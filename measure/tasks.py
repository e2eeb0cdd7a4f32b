"""Evaluation tasks as records in one registry, and the one loop that runs and stores them.

A :class:`Task` says what an evaluation computes (``function``: a Context -> rows), which
settings its numbers depend on (``settings``: names of the suite's settings, stored as its eval
config so that a changed setting never reuses stored numbers), its ``protocol`` version (bumped
when the protocol changes) and whether it runs by default or only when asked (``default``).
Tasks measured on data of their own (the invariance probe sets: one stored evaluation per probe
set) give ``jobs`` instead of ``function``.

The registry ``TASKS`` is filled by the task providers, each adding its records with
:func:`register` when imported: ``evaluate.tasks`` (frozen-feature, finetuning, dense and transfer
tasks) and ``invariance.tasks``. :func:`all_tasks` imports the providers named in ``PROVIDERS``
(a plugin list, read by name: this layer never imports the layers above it).

:func:`run_task` is the only place where an evaluation meets the results store: a job already
stored for (checkpoint hash, task, dataset, eval config) is not rerun unless ``force``; a job
whose data lack what it needs raises :class:`SkipTask` and is reported, not stored.
"""
from __future__ import annotations

import dataclasses
import importlib
import logging
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .results import Result

log = logging.getLogger("measure.tasks")

# A task's value: (metric, value, split, seed or None).
Row = tuple[str, float, str, "int | None"]
PROVIDERS = ("evaluate.tasks", "invariance.tasks")
COMMON_SETTINGS = ("image_size",)     # every task's numbers depend on the size the images are read at


class SkipTask(Exception):
    """The task does not apply to this checkpoint / dataset (the message says why)."""


@dataclass(frozen=True)
class Job:
    """One stored evaluation: the rows of (task, dataset, eval_config), computed on demand."""

    task: str
    dataset: str
    eval_config: dict[str, Any]
    compute: Callable[[], list[Row]]


@dataclass(frozen=True)
class Task:
    """An evaluation task (see the module docstring).

    name: registry name (``--tasks``); function: Context -> rows on the context's dataset;
    settings: the suite settings its numbers depend on; protocol: version stored with its rows;
    default: run when ``--tasks`` is not given (False: opt-in, e.g. hours-long transfers);
    adjust: edits the eval config (e.g. to drop settings the suite overrides); jobs: Context ->
    Jobs, for tasks measured on datasets of their own (instead of ``function``).
    """

    name: str
    function: Callable[[Any], list[Row]] | None = None
    settings: tuple[str, ...] = ()
    protocol: int = 1
    default: bool = True
    adjust: Callable[[dict[str, Any], Any], dict[str, Any]] | None = None
    jobs: Callable[[Any], list[Job]] | None = None

    def __post_init__(self) -> None:
        if (self.function is None) == (self.jobs is None):
            raise ValueError(f"task {self.name!r}: give exactly one of function or jobs")

    @property
    def summary(self) -> str:
        """The first paragraph of its function's docstring, on one line."""
        doc = (self.function or self.jobs).__doc__ or ""
        return " ".join(doc.strip().split("\n\n")[0].split())

    def eval_config(self, cfg: Any, image_size: int | None = None) -> dict[str, Any]:
        """The settings that change this task's numbers, stored with every row; ``image_size``:
        the side the images are read at, when the context decides it (else the setting's value)."""
        d = dataclasses.asdict(cfg)
        out = {"task": self.name, "protocol": self.protocol, **{k: d[k] for k in COMMON_SETTINGS + self.settings}}
        if image_size is not None:
            out["image_size"] = int(image_size)
        if getattr(cfg, "skip_unreadable", False):
            out["skip_unreadable"] = True     # unreadable images left out (counted in the "data" rows)
        if _limited(out):
            out["limit_draw"] = LIMIT_DRAW      # limited splits are a class-stratified draw, not the first N
        return self.adjust(out, cfg) if self.adjust else out

    def jobs_for(self, ctx: Any) -> list[Job]:
        """The stored evaluations this task makes of ``ctx``."""
        if self.jobs is not None:
            return self.jobs(ctx)
        fn = self.function
        return [Job(self.name, ctx.data.name, self.eval_config(ctx.cfg, ctx.image_size), lambda: fn(ctx))]


def _limited(settings: dict[str, Any]) -> bool:
    """Whether any image limit (``train_limit`` / ``test_limit``, at any depth) is set."""
    return any(bool(v) if k in ("train_limit", "test_limit") else isinstance(v, dict) and _limited(v)
               for k, v in settings.items())


# How a limited split is drawn (``imagedata.subsets.stratified_subset``, seed 0); stored with the
# rows of a limited evaluation, so rows of the earlier first-N draw are never reused for them.
LIMIT_DRAW = "stratified-s0"

TASKS: dict[str, Task] = {}


def register(*tasks: Task) -> None:
    """Add tasks to the registry; a name registered twice is an error."""
    for task in tasks:
        if task.name in TASKS and TASKS[task.name] is not task:
            raise ValueError(f"task {task.name!r} is registered twice")
        TASKS[task.name] = task


def all_tasks() -> dict[str, Task]:
    """The registry with every provider's tasks (imports ``PROVIDERS``), in the providers' order and,
    within one, in registration order, whatever order they were imported in."""
    for module in PROVIDERS:
        importlib.import_module(module)
    rank = {name: _provider_rank(task) for name, task in TASKS.items()}
    return dict(sorted(TASKS.items(), key=lambda kv: rank[kv[0]]))


def _provider_rank(task: Task) -> int:
    module = (task.function or task.jobs).__module__
    return PROVIDERS.index(module) if module in PROVIDERS else len(PROVIDERS)


def default_tasks() -> list[str]:
    """The tasks run when none are named: every registered task with ``default`` set."""
    return [name for name, task in all_tasks().items() if task.default]


def get_tasks(names: list[str]) -> list[Task]:
    """The tasks called ``names``; an unknown (or no) name raises ValueError listing the valid ones."""
    tasks = all_tasks()
    bad = [n for n in names if n not in tasks]
    if bad or not names:
        raise ValueError(f"unknown task(s) {', '.join(bad) or '(none)'}; valid: {', '.join(tasks)}")
    return [tasks[n] for n in names]


def store_jobs(jobs: list[Job], store: Any, run_id: str, sha: str, force: bool = False) -> list[dict[str, Any]]:
    """Compute and store each job not already in ``store`` (all with ``force``); one summary dict per
    stored value, ``stored`` job or skipped job."""
    summary: list[dict[str, Any]] = []
    for job in jobs:
        head = {"run_id": run_id, "task": job.task, "dataset": job.dataset}
        if not force and store.has(sha, job.task, job.dataset, job.eval_config):
            log.info("%s: %s on %s already stored (use --force to rerun)", run_id, job.task, job.dataset)
            summary.append({**head, "status": "stored"})
            continue
        log.info("%s: %s on %s", run_id, job.task, job.dataset)
        try:
            rows = job.compute()
        except SkipTask as e:
            log.warning("%s: skipping %s: %s", run_id, job.task, e)
            summary.append({**head, "status": f"skipped: {e}"})
            continue
        results = [Result(run_id, sha, job.task, job.dataset, split, metric, float(value), seed, job.eval_config)
                   for metric, value, split, seed in rows]
        store.replace(results, ckpt_sha256=sha, task=job.task, dataset=job.dataset, eval_config=job.eval_config)
        summary += [{**head, "metric": r.metric, "value": r.value, "seed": r.seed, "status": "new"} for r in results]
    return summary


def run_task(task: Task, ctx: Any, force: bool = False) -> list[dict[str, Any]]:
    """Run ``task`` on the context's checkpoint and store its rows (see :func:`store_jobs`)."""
    try:
        jobs = task.jobs_for(ctx)
    except SkipTask as e:
        log.warning("%s: skipping %s: %s", ctx.run_id, task.name, e)
        return [{"run_id": ctx.run_id, "task": task.name, "dataset": ctx.data.name, "status": f"skipped: {e}"}]
    return store_jobs(jobs, ctx.store, ctx.run_id, ctx.sha, force)


def describe(tasks: Mapping[str, Task] | None = None) -> str:
    """One line per task: name, default or opt-in, summary."""
    tasks = all_tasks() if tasks is None else tasks
    return "\n".join(f"{n:<22} {'default' if t.default else 'opt-in ':<8} {textwrap.shorten(t.summary, 100)}"
                     for n, t in tasks.items())
