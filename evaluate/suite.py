"""The evaluation suite: every protocol that applies to a checkpoint, stored with provenance.

    python -m evaluate.suite ckpt.pt [ckpt2.pt | runs/] [--data DIR] [--tasks linear,knn,clustering]
                             [--seeds 0,1,2] [--store results/results.sqlite] [--force]

For each checkpoint (a ``ckpt.pt`` or every ``*/ckpt.pt`` under a folder) the backbone is loaded
strictly; frozen features of the train and test splits are extracted once and cached
(``evaluate.features``); each task in ``TASKS`` turns them into metric values, which go to the
results store (``evaluate.store``) as one row per value. A task already stored for the same
(checkpoint hash, task, dataset, eval config) is not rerun unless ``--force``. A task whose data
lack what it needs (e.g. no class labels) is skipped with the reason; the others still run.
"""
from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from pretrain.checkpoint import CheckpointError, read_checkpoint
from synthetic.store import DatasetError

from . import features as F
from .clustering import cluster_metrics
from .knn import knn_sweep
from .linear import LinearConfig, linear_probe
from .store import Result, ResultsStore

log = logging.getLogger("evaluate.suite")
DEFAULT_STORE = Path("results/results.sqlite")


@dataclass
class SuiteConfig:
    """What the suite runs: ``data`` (default: the checkpoint's own dataset), splits, image limits
    (0 = all), seeds of the stochastic tasks, and per-task settings."""

    data: str | None = None
    train_split: str = "train"
    test_split: str = "test"
    train_limit: int = 0
    test_limit: int = 0
    seeds: tuple[int, ...] = (0,)
    knn_k: tuple[int, ...] = (20, 200)
    knn_t: float = 0.07
    cache_dir: str = str(F.DEFAULT_CACHE)
    device: str = "cpu"
    extra: dict = field(default_factory=dict)


@dataclass
class Context:
    """What a task reads: the checkpoint, its metadata, the dataset path and cached features."""

    ckpt: Path
    meta: dict[str, Any]
    data: Path
    cfg: SuiteConfig
    _features: dict[str, F.FeatureSet] = field(default_factory=dict)

    def features(self, split: str) -> F.FeatureSet:
        if split not in self._features:
            limit = self.cfg.train_limit if split == self.cfg.train_split else self.cfg.test_limit
            self._features[split] = F.extract(self.ckpt, self.data, split, limit=limit or None,
                                              cache_dir=self.cfg.cache_dir, device=self.cfg.device)
        return self._features[split]


# A task returns rows (metric, value, split, seed) or raises SkipTask(reason).
Row = tuple[str, float, str, int | None]


class SkipTask(Exception):
    """The task does not apply to this checkpoint / dataset (the message says why)."""


def _labelled(ctx: Context) -> tuple[F.FeatureSet, F.FeatureSet]:
    tr, te = ctx.features(ctx.cfg.train_split), ctx.features(ctx.cfg.test_split)
    if (tr.targets < 0).all() or (te.targets < 0).all():
        raise SkipTask(f"{ctx.data}: no class labels")
    keep_tr, keep_te = tr.targets >= 0, te.targets >= 0
    return (F.FeatureSet(tr.features[keep_tr], tr.targets[keep_tr], tr.indices[keep_tr], tr.key),
            F.FeatureSet(te.features[keep_te], te.targets[keep_te], te.indices[keep_te], te.key))


def task_linear(ctx: Context) -> list[Row]:
    """Linear probe (regularisation chosen on a held-out part of train): top-1 / top-5."""
    tr, te = _labelled(ctx)
    out = linear_probe(tr.features, tr.targets, te.features, te.targets, LinearConfig())
    return [(m, float(out[m]), ctx.cfg.test_split, None) for m in ("top1", "top5", "best_c") if m in out]


def task_knn(ctx: Context) -> list[Row]:
    """Weighted kNN (cosine, exp(sim / T) votes) for each k."""
    tr, te = _labelled(ctx)
    out = knn_sweep(tr.features, tr.targets, te.features, te.targets, ks=ctx.cfg.knn_k, temperature=ctx.cfg.knn_t)
    return [(f"{m}@k{k}", float(v), ctx.cfg.test_split, None) for k, d in out.items() for m, v in d.items()]


def task_clustering(ctx: Context) -> list[Row]:
    """k-means with as many clusters as classes: NMI, ARI, Hungarian accuracy (per seed)."""
    _, te = _labelled(ctx)
    rows: list[Row] = []
    for seed in ctx.cfg.seeds:
        out = cluster_metrics(te.features, te.targets, seed=seed)
        rows += [(m, float(v), ctx.cfg.test_split, seed) for m, v in out.items() if np.isscalar(v)]
    return rows


TASKS: dict[str, Callable[[Context], list[Row]]] = {
    "linear": task_linear,
    "knn": task_knn,
    "clustering": task_clustering,
}


def find_checkpoints(paths: list[str]) -> list[Path]:
    """``ckpt.pt`` files named directly or found as ``*/ckpt.pt`` (recursively) under folders."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(p.rglob("ckpt.pt"))
            if not found:
                raise FileNotFoundError(f"{p}: no ckpt.pt under this folder")
            out += found
        elif p.is_file():
            out.append(p)
        else:
            raise FileNotFoundError(f"{p}: no such checkpoint file or runs folder")
    return out


def task_config(name: str, cfg: SuiteConfig) -> dict[str, Any]:
    """The settings that change task ``name``'s numbers (stored with every row)."""
    d = asdict(cfg)
    for k in ("cache_dir", "device", "data"):
        d.pop(k)
    return {"task": name, **d}


def evaluate_checkpoint(ckpt: Path, tasks: list[str], cfg: SuiteConfig, store: ResultsStore,
                        force: bool = False) -> list[dict[str, Any]]:
    """Run ``tasks`` on one checkpoint; returns the rows written (and those reused from the store)."""
    meta = read_checkpoint(ckpt)
    data = Path(cfg.data or meta["data"].get("path") or "")
    if not data.exists():
        raise DatasetError(f"{data}: dataset not found (checkpoint {ckpt} was trained on it; pass --data)")
    ctx = Context(ckpt, meta, data, cfg)
    sha, run_id, dataset = F.file_sha256(ckpt), str(meta.get("run_id", ckpt.parent.name)), data.name
    summary = []
    for name in tasks:
        ecfg = task_config(name, cfg)
        if not force and store.has(sha, name, dataset, ecfg):
            log.info("%s: %s already stored (use --force to rerun)", run_id, name)
            summary.append({"run_id": run_id, "task": name, "status": "stored"})
            continue
        try:
            rows = TASKS[name](ctx)
        except SkipTask as e:
            log.warning("%s: skipping %s: %s", run_id, name, e)
            summary.append({"run_id": run_id, "task": name, "status": f"skipped: {e}"})
            continue
        results = [Result(run_id, sha, name, dataset, split, metric, value, seed, ecfg)
                   for metric, value, split, seed in rows]
        store.replace(results, ckpt_sha256=sha, task=name, dataset=dataset, eval_config=ecfg)
        summary += [{"run_id": run_id, "task": name, "metric": r.metric, "value": r.value, "seed": r.seed,
                     "status": "new"} for r in results]
    return summary


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m evaluate.suite", description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoints", nargs="+", help="ckpt.pt files or runs folders")
    ap.add_argument("--data", help="dataset (default: the checkpoint's own)")
    ap.add_argument("--tasks", default=",".join(TASKS), help=f"comma-separated, from {', '.join(TASKS)}")
    ap.add_argument("--seeds", default="0", help="comma-separated seeds of the stochastic tasks")
    ap.add_argument("--store", default=str(DEFAULT_STORE), type=Path)
    ap.add_argument("--cache", default=str(F.DEFAULT_CACHE), help="feature cache folder")
    ap.add_argument("--train-limit", type=int, default=0)
    ap.add_argument("--test-limit", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--force", action="store_true", help="rerun tasks already in the store")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", datefmt="%H:%M:%S")
    a = parse_args(argv)
    try:
        tasks = [t for t in a.tasks.split(",") if t]
        bad = [t for t in tasks if t not in TASKS]
        if bad or not tasks:
            raise ValueError(f"unknown task(s) {', '.join(bad) or '(none)'}; valid: {', '.join(TASKS)}")
        seeds = tuple(int(s) for s in a.seeds.split(",") if s)
        cfg = SuiteConfig(data=a.data, seeds=seeds, train_limit=a.train_limit, test_limit=a.test_limit,
                          cache_dir=a.cache, device=a.device)
        store = ResultsStore(a.store)
        rows = []
        for ckpt in find_checkpoints(a.checkpoints):
            rows += evaluate_checkpoint(ckpt, tasks, cfg, store, force=a.force)
    except (CheckpointError, DatasetError, F.FeatureError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print_summary(store, [r["run_id"] for r in rows])
    return 0


def print_summary(store: ResultsStore, run_ids: list[str]) -> None:
    """One line per (run, task, metric): mean over seeds."""
    frame = store.to_frame()
    frame = frame[frame["run_id"].isin(set(run_ids))]
    if frame.empty:
        print("(no results)")
        return
    table = frame.groupby(["run_id", "task", "metric"])["value"].mean().unstack(["task", "metric"])
    print(table.round(3).to_string())


if __name__ == "__main__":
    sys.exit(main())
