"""The evaluation suite: every task that applies to a checkpoint, stored with provenance.

    python -m evaluate.suite ckpt.pt [ckpt2.pt | runs/] [--data DIR] [--tasks linear,knn,...]
                             [--seeds 0,1,2] [--sizes 100,500,1000] [--scratch-factors 2]
                             [--store results/results.sqlite] [--force]
    python -m evaluate.suite --list                     # the task registry: name, default or opt-in

Tasks are records in one registry (``measure.tasks``), added by ``evaluate.tasks`` (linear, knn,
clustering, finetune, pose, depth, segmentation, unsup_seg by default; detection (Detectron2) and
segmentation_transfer (mmseg) on request) and ``invariance.tasks`` (invariance and
transform_invariance, on request: their rows name the probe set as the dataset). With three or
more checkpoints, linear and finetune also give their rank agreement (Spearman's rho).

For each checkpoint (a ``ckpt.pt`` or every ``*/ckpt.pt`` under a folder) the backbone is loaded
strictly; frozen features of the train and test splits are extracted once and cached
(``measure.features``); each task turns them into metric values, which go to the results store
(``measure.results``) as one row per value. A task already stored for the same (checkpoint hash,
task, dataset, eval config) is not rerun unless ``--force``. A task whose data lack what it needs
(e.g. no class labels) is skipped with the reason; the others still run.
"""
from __future__ import annotations

import argparse
import hashlib
import logging
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fsio import file_sha256
from measure import features as F
from measure.checkpoints import add_import_args, find_checkpoints, import_options
from measure.context import Context
from measure.results import Result, ResultsStore
from measure.tasks import all_tasks, default_tasks, describe, get_tasks, run_task
from pretrain.checkpoint import CheckpointError, CheckpointMeta, read_meta
from pretrain.resolve import recorded_config
from synthetic.dataset import DatasetError

from .agreement import linear_finetune_agreement
from .context import DEFAULT_STORE, SuiteConfig, TransferConfig
from .dense import DenseConfig
from .fewshot import FewShotConfig
from .fewshot import check_config as check_fewshot
from .finetune import FinetuneConfig
from .finetune import check_config as check_finetune
from .lowshot import LowShotConfig
from .lowshot import check_config as check_lowshot

log = logging.getLogger("evaluate.suite")


def check_complete(ckpt: Path, meta: CheckpointMeta, allow_incomplete: bool) -> None:
    """A checkpoint whose training did not finish is refused (CheckpointError) unless allowed."""
    if not meta.train.complete and not allow_incomplete:
        total = f" of {meta.train.total_steps}" if meta.train.total_steps else ""
        raise CheckpointError(f"{ckpt}: training did not complete (step {meta.train.steps}{total}); "
                              "pass --allow-incomplete to evaluate it anyway")


class Progress:
    """Task k of n over the whole run, with the elapsed time and an ETA from the tasks done so far;
    each stored value is logged as it lands."""

    def __init__(self, total: int) -> None:
        self.total, self.done, self.start = total, 0, time.monotonic()

    def begin(self, run_id: str, task: str) -> None:
        elapsed = time.monotonic() - self.start
        eta = elapsed / self.done * (self.total - self.done) if self.done else None
        log.info("[%d/%d] %s: %s (elapsed %s, ETA %s)", self.done + 1, self.total, run_id, task, _clock(elapsed),
                 _clock(eta) if eta is not None else "after the first task")

    def end(self, rows: list[dict[str, Any]]) -> None:
        self.done += 1
        for r in rows:
            if r["status"] == "new":
                seed = "" if r["seed"] is None else f" (seed {r['seed']})"
                log.info("    %s %s %s = %.4g%s", r["task"], r["dataset"], r["metric"], r["value"], seed)


def _clock(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m // 60}:{m % 60:02d}:{s:02d}" if m >= 60 else f"{m}:{s:02d}"


def evaluate_checkpoint(ckpt: Path, tasks: list[str], cfg: SuiteConfig, store: ResultsStore,
                        force: bool = False, allow_incomplete: bool = False,
                        progress: Progress | None = None) -> list[dict[str, Any]]:
    """Run ``tasks`` on one checkpoint; returns the rows written (and those reused from the store)."""
    chosen = get_tasks(tasks)
    meta = read_meta(ckpt)
    check_complete(ckpt, meta, allow_incomplete)
    progress = progress or Progress(len(chosen))
    if not cfg.data and not meta.data.path:
        raise DatasetError(f"{ckpt}: the checkpoint names no dataset of its own ({meta.method}, imported); pass --data")
    data = Path(cfg.data or meta.data.path or "")
    if not data.exists():
        raise DatasetError(f"{data}: dataset not found (checkpoint {ckpt} was trained on it; pass --data)")
    ctx = Context(ckpt, meta, data, cfg, store)
    if meta.config:                      # how it was pretrained, for the reports' variants
        store.record_run(ctx.run_id, ctx.sha, recorded_config(meta))
    summary: list[dict[str, Any]] = []
    for task in chosen:
        progress.begin(ctx.run_id, task.name)
        rows = run_task(task, ctx, force)
        progress.end(rows)
        summary += rows
    if cfg.skip_unreadable:
        store_skipped(ctx)
    return summary


def store_skipped(ctx: Context) -> None:
    """With ``--skip-unreadable``: how many images of each split were left out, as rows of the
    ``data`` task (metric ``unreadable_skipped``), each skipped file named in the log."""
    rows = []
    for split in dict.fromkeys((ctx.cfg.train_split, ctx.cfg.test_split)):
        try:
            skipped = list(getattr(ctx.source(split), "skipped", []))
        except (ValueError, DatasetError):
            continue
        for path in skipped:
            log.warning("%s: unreadable image left out of split %s", path, split)
        rows.append(Result(ctx.run_id, ctx.sha, "data", ctx.data.name, split, "unreadable_skipped",
                           float(len(skipped)), None, {"skip_unreadable": True}))
    if rows:
        ctx.store.replace(rows)


def agreement(store: ResultsStore, shas: list[str], dataset: str, size: int | None = None) -> float | None:
    """Spearman's rho between the linear-probe top-1 and the finetuned top-1 (largest labelled-set
    size, or ``size``, mean over seeds) over the checkpoints ``shas``; None below 3 checkpoints
    with both numbers (a rank correlation of 2 points is always +-1)."""
    frame = store.query(dataset=dataset)
    frame = frame[frame["ckpt_sha256"].isin(set(shas))]
    lin = frame[(frame["task"] == "linear") & (frame["metric"] == "top1")]
    fin = frame[(frame["task"] == "finetune") & frame["metric"].str.match(r"top1@n\d+$")]
    if fin.empty:
        return None
    counts = fin["metric"].str.split("@n").str[1].astype(int)
    fin = fin[counts == (size or counts.max())]
    table = pd.DataFrame({"linear_top1": lin.groupby("ckpt_sha256")["value"].mean(),
                          "finetune_top1": fin.groupby("ckpt_sha256")["value"].mean()}).dropna()
    if len(table) < 3:
        return None
    return linear_finetune_agreement(table.rename_axis("checkpoint").reset_index())


def store_agreement(store: ResultsStore, ckpts: list[Path], dataset: str) -> float | None:
    """Compute :func:`agreement` over ``ckpts`` and store it (one row, keyed by the set of checkpoints)."""
    shas = sorted({file_sha256(c) for c in ckpts})
    rho = agreement(store, shas, dataset)
    if rho is None:
        log.info("linear-vs-finetune agreement needs >= 3 checkpoints with linear and finetune results")
        return None
    if not np.isfinite(rho):
        print(f"linear vs finetune rank agreement over {len(shas)} checkpoints: undefined "
              "(one protocol scores every checkpoint the same)")
        return None
    key = "set-" + hashlib.sha256("".join(shas).encode()).hexdigest()[:16]
    ecfg = {"task": "agreement", "checkpoints": shas}
    store.replace([Result(key, key, "agreement", dataset, "test", "spearman_linear_finetune", rho, None, ecfg)],
                  ckpt_sha256=key, task="agreement", dataset=dataset, eval_config=ecfg)
    print(f"linear vs finetune rank agreement over {len(shas)} checkpoints: Spearman rho = {rho:.3f}")
    return rho


def number_list(flag: str, text: str, kind: type = int) -> tuple:
    """``"0,1,2"`` -> (0, 1, 2) of ``kind`` (int or float); anything else raises ValueError naming the flag."""
    try:
        values = tuple(kind(v) for v in text.split(",") if v.strip())
    except ValueError:
        values = ()
    if not values:
        what, example = ("integers", "0,1,2") if kind is int else ("numbers", "2,4")
        raise ValueError(f"{flag} {text!r}: expected comma-separated {what}, e.g. {example}")
    return values


def int_list(flag: str, text: str) -> tuple[int, ...]:
    """``"0,1,2"`` -> (0, 1, 2) (:func:`number_list` of ints)."""
    return number_list(flag, text, int)


def float_list(flag: str, text: str) -> tuple[float, ...]:
    """``"2,4"`` -> (2.0, 4.0) (:func:`number_list` of floats)."""
    return number_list(flag, text, float)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m evaluate.suite", description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoints", nargs="*", help="ckpt.pt files, runs folders, or foreign checkpoint files "
                    "(imported once, cached by sha256: see --from)")
    ap.add_argument("--list", action="store_true", help="print the task registry and exit")
    ap.add_argument("--data", help="dataset (default: the checkpoint's own)")
    opt_in = [name for name in all_tasks() if name not in default_tasks()]
    ap.add_argument("--tasks", default=None,
                    help=f"comma-separated task names (--list describes them); default: {', '.join(default_tasks())}; "
                         f"on request only: {', '.join(opt_in)}")
    ap.add_argument("--seeds", default="0", help="comma-separated seeds of the stochastic tasks")
    ap.add_argument("--store", default=str(DEFAULT_STORE), type=Path)
    ap.add_argument("--cache", default=str(F.DEFAULT_CACHE), help="feature cache folder")
    ap.add_argument("--train-split", default="train", help="the split probes train on (ImageNet / VOC: train)")
    ap.add_argument("--test-split", default="test", help="the split they are scored on (ImageNet / VOC: val)")
    ap.add_argument("--train-limit", type=int, default=0, help="images of the train split, drawn class-stratified "
                    "(seed 0; 0 = all)")
    ap.add_argument("--test-limit", type=int, default=0, help="images of the test split, drawn the same way")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--image-size", type=int, help="read every dataset's images at this size (default: the size "
                    "of the views the checkpoint trained on)")
    ap.add_argument("--lowshot-shots", default=None, help="low-shot labels per class, e.g. 1,10,100 (the default)")
    ap.add_argument("--lowshot-draws", type=int, default=None, help="class-balanced draws per low-shot size (default 5)")
    ap.add_argument("--fewshot-ways", type=int, default=None, help="classes per few-shot episode (default 5)")
    ap.add_argument("--fewshot-shots", default=None, help="support images per class, e.g. 1,5,20 (the default)")
    ap.add_argument("--fewshot-episodes", type=int, default=None, help="episodes per shot count (default 600)")
    ap.add_argument("--sizes", default=None, help="finetuning labelled-set sizes (0 = all; default 100,500,1000)")
    ap.add_argument("--scratch-factors", default=None, help="the from-scratch curve also runs at these multiples "
                    "of the largest size, each > 1 (default 2; utility needs scratch beyond the finetuned sizes)")
    ap.add_argument("--scratch-sizes", default=None, help="extra from-scratch label counts, e.g. 8000 (0 = all)")
    ap.add_argument("--finetune-schedule", default=None, help="finetuning length per label count: epochs (20 "
                    "epochs, >= 100 steps; the default) or newell-deng (the utility paper's 200 / 600 epochs)")
    ap.add_argument("--finetune-max-steps", type=int, default=None, help="opt-in ceiling on SGD steps per "
                    "finetuning run (default: none; steps = 20 epochs, at least 100): for quick runs, it cuts "
                    "large sizes short, is recorded in the eval config and warned about")
    ap.add_argument("--dense-steps", type=int, default=None, help="training steps of the light dense heads")
    ap.add_argument("--transfer-iters", type=int, default=None, help="training iterations of detection / "
                    "segmentation_transfer (default 300)")
    ap.add_argument("--transfer-batch", type=int, default=None, help="their batch size (default 8)")
    ap.add_argument("--transfer-input-size", type=int, default=None, help="detection / segmentation_transfer: "
                    "the frameworks' input side in px (shorter side, crop; default: the protocol's own)")
    ap.add_argument("--detectron2-protocol", help="Detectron2 protocol of the detection task (default scenes-r18-fpn)")
    ap.add_argument("--mmseg-protocol", help="mmseg protocol of segmentation_transfer (default scenes-r18-fcn)")
    ap.add_argument("--num-gpus", type=int, default=1, help="transfer processes, one per GPU (torchrun)")
    ap.add_argument("--invariance-sets", type=int, default=100, help="sets per synthetic probe (invariance)")
    ap.add_argument("--probe-dir", default="data/probes", help="where the invariance probe sets are generated")
    ap.add_argument("--transform-images", type=int, default=2000, help="test images of transform_invariance")
    ap.add_argument("--skip-unreadable", action="store_true", help="leave out images that do not decode "
                    "(counted per split in the store, task 'data'); by default one is an error naming it")
    ap.add_argument("--force", action="store_true", help="rerun tasks already in the store")
    add_import_args(ap)
    ap.add_argument("--allow-incomplete", action="store_true",
                    help="evaluate checkpoints whose training did not complete (refused by default)")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", datefmt="%H:%M:%S")
    a = parse_args(argv)
    if a.list:
        print(describe())
        return 0
    try:
        if not a.checkpoints:
            raise ValueError("no checkpoint given: python -m evaluate.suite ckpt.pt [ckpt2.pt | runs/]")
        tasks = default_tasks() if a.tasks is None else [t for t in a.tasks.split(",") if t]
        get_tasks(tasks)                                   # unknown names fail before any work
        if a.image_size is not None and a.image_size < 1:
            raise ValueError(f"--image-size {a.image_size}: expected a positive number of pixels")
        seeds = int_list("--seeds", a.seeds)
        ft = FinetuneConfig(seeds=seeds, train_split=a.train_split, test_split=a.test_split)
        if a.sizes:
            ft = replace(ft, sizes=int_list("--sizes", a.sizes))
        if a.scratch_factors:
            ft = replace(ft, scratch_factors=float_list("--scratch-factors", a.scratch_factors))
        if a.scratch_sizes:
            ft = replace(ft, scratch_sizes=int_list("--scratch-sizes", a.scratch_sizes))
        if a.finetune_schedule is not None:
            ft = replace(ft, schedule=a.finetune_schedule)
        if a.finetune_max_steps is not None:
            ft = replace(ft, max_steps=a.finetune_max_steps, min_steps=min(ft.min_steps, a.finetune_max_steps))
        check_finetune(ft)
        dense = DenseConfig() if a.dense_steps is None else DenseConfig(steps=a.dense_steps)
        lowshot = LowShotConfig()
        if a.lowshot_shots:
            lowshot = replace(lowshot, shots=int_list("--lowshot-shots", a.lowshot_shots))
        if a.lowshot_draws is not None:
            lowshot = replace(lowshot, draws=a.lowshot_draws)
        check_lowshot(lowshot)
        fewshot = FewShotConfig()
        if a.fewshot_ways is not None:
            fewshot = replace(fewshot, ways=a.fewshot_ways)
        if a.fewshot_shots:
            fewshot = replace(fewshot, shots=int_list("--fewshot-shots", a.fewshot_shots))
        if a.fewshot_episodes is not None:
            fewshot = replace(fewshot, episodes=a.fewshot_episodes)
        check_fewshot(fewshot)
        transfer = TransferConfig(num_gpus=a.num_gpus)
        for field_name, value in (("detectron2_protocol", a.detectron2_protocol), ("mmseg_protocol", a.mmseg_protocol)):
            if value:   # a paper protocol runs at its own iterations and batch unless told otherwise
                transfer = replace(transfer, **{field_name: value}, iters=None, batch=None)
        if a.transfer_iters is not None:
            transfer = replace(transfer, iters=a.transfer_iters)
        if a.transfer_batch is not None:
            transfer = replace(transfer, batch=a.transfer_batch)
        if a.transfer_input_size is not None:
            transfer = replace(transfer, input_size=a.transfer_input_size)
        cfg = SuiteConfig(data=a.data, seeds=seeds, train_split=a.train_split, test_split=a.test_split,
                          train_limit=a.train_limit, test_limit=a.test_limit,
                          cache_dir=a.cache, device=a.device, finetune=ft, dense=dense, image_size=a.image_size,
                          transfer=transfer, invariance_sets=a.invariance_sets, probe_dir=a.probe_dir,
                          transform_images=a.transform_images, lowshot=lowshot, fewshot=fewshot,
                          skip_unreadable=a.skip_unreadable)
        store = ResultsStore(a.store)
        rows = []
        ckpts = find_checkpoints(a.checkpoints, **import_options(a))
        for ckpt in ckpts:                                  # every checkpoint is checked before any work
            check_complete(ckpt, read_meta(ckpt), a.allow_incomplete)
        progress = Progress(len(ckpts) * len(tasks))
        for ckpt in ckpts:
            rows += evaluate_checkpoint(ckpt, tasks, cfg, store, force=a.force, allow_incomplete=a.allow_incomplete,
                                        progress=progress)
        if "linear" in tasks and "finetune" in tasks and len(ckpts) >= 3:
            store_agreement(store, ckpts, Path(cfg.data or read_meta(ckpts[0]).data.path or "").name)
    except (CheckpointError, DatasetError, F.FeatureError, FileNotFoundError, ValueError, FloatingPointError,
            OSError) as e:   # OSError: an unreadable image file, named by the reader
        print(f"error: {e}", file=sys.stderr)
        return 2
    if rows and all(r["status"].startswith("skipped") for r in rows):   # nothing computed, nothing stored
        reasons = "; ".join(sorted({f"{r['task']}: {r['status'][len('skipped: '):]}" for r in rows}))
        print(f"error: no task could be computed ({reasons})", file=sys.stderr)
        return 2
    print_summary(store, [r["run_id"] for r in rows])
    return 0


def print_summary(store: ResultsStore, run_ids: list[str], width: int = 100) -> None:
    """A block per run, a line (wrapped at ``width``) per task: each metric's mean over seeds, with
    the number of seeds where there are several."""
    frame = store.to_frame()
    frame = frame[frame["run_id"].isin(set(run_ids))]
    if frame.empty:
        print("(no results)")
        return
    own_data = {name for name, task in all_tasks().items() if task.jobs is not None}   # e.g. the probe sets
    own = frame["task"].isin(own_data)
    frame = frame.assign(metric=frame["metric"].where(~own, frame["dataset"] + "/" + frame["metric"]))
    order = {name: i for i, name in enumerate(all_tasks())}
    for run_id, run in frame.groupby("run_id", sort=True):
        print(run_id)
        for task, rows in sorted(run.groupby("task"), key=lambda kv: order.get(kv[0], len(order))):
            stats = rows.groupby("metric", sort=False)["value"].agg(["mean", "size"])
            items = [f"{m} {row['mean']:.4g}" + (f" (x{int(row['size'])})" if row["size"] > 1 else "")
                     for m, row in stats.iterrows()]
            lines = textwrap.wrap("  ".join(items), width=width - 24, break_on_hyphens=False) or [""]
            print(f"  {task:<21} {lines[0]}")
            for line in lines[1:]:
                print(f"  {'':<21} {line}")

if __name__ == "__main__":
    sys.exit(main())
