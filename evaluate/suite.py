"""The evaluation suite: every protocol that applies to a checkpoint, stored with provenance.

    python -m evaluate.suite ckpt.pt [ckpt2.pt | runs/] [--data DIR] [--tasks linear,knn,...]
                             [--seeds 0,1,2] [--sizes 100,500,2000] [--store results/results.sqlite] [--force]

Tasks (``TASKS``): linear, knn, clustering (+ a 2-D embedding in the store's arrays), finetune
(label-efficiency curves vs scratch and the utility), pose, depth, segmentation, unsup_seg (the
default list); on request (``--tasks``) detection (Detectron2) and segmentation_transfer (mmseg),
``evaluate.transfer``, and invariance (firing-rate score on the synthetic probe sets) and
transform_invariance, ``invariance.run`` (their rows name the probe set as the dataset). With
three or more checkpoints, linear and finetune also give their rank
agreement (Spearman's rho).

For each checkpoint (a ``ckpt.pt`` or every ``*/ckpt.pt`` under a folder) the backbone is loaded
strictly; frozen features of the train and test splits are extracted once and cached
(``evaluate.features``); each task in ``TASKS`` turns them into metric values, which go to the
results store (``evaluate.store``) as one row per value. A task already stored for the same
(checkpoint hash, task, dataset, eval config) is not rerun unless ``--force``. A task whose data
lack what it needs (e.g. no class labels) is skipped with the reason; the others still run.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch

from pretrain.checkpoint import CheckpointError, read_checkpoint
from synthetic.loaders import open_source
from synthetic.store import DatasetError

from . import features as F
from .agreement import linear_finetune_agreement
from .clustering import cluster_metrics, embed_2d
from .dense import (DenseConfig, confusion, depth_metrics, pose_metrics, predict_dense, segmentation_metrics,
                    train_dense_head, unsupervised_segmentation)
from .finetune import FinetuneConfig, label_efficiency
from .knn import knn_sweep
from .linear import LinearConfig, linear_probe
from .store import Result, ResultsStore
from .utility import utility_rows

log = logging.getLogger("evaluate.suite")
DEFAULT_STORE = Path("results/results.sqlite")


@dataclass
class TransferConfig:
    """The framework transfer tasks (``detection``: Detectron2, ``segmentation_transfer``: mmseg):
    protocol names, training iterations and batch size (``evaluate.transfer``)."""

    detectron2_protocol: str = "scenes-r18-fpn"
    mmseg_protocol: str = "scenes-r18-fcn"
    iters: int | None = 300                # None: the protocol's own (the paper protocols)
    batch: int | None = 8
    num_gpus: int = 1


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
    embedding: str = "tsne"
    embedding_points: int = 2000
    image_size: int | None = None
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    dense: DenseConfig = field(default_factory=DenseConfig)
    transfer: TransferConfig = field(default_factory=TransferConfig)
    invariance_sets: int = 100            # sets per synthetic probe (invariance)
    probe_dir: str = "data/probes"        # where the probe sets are generated
    transform_images: int = 2000          # test images of transform_invariance
    cache_dir: str = str(F.DEFAULT_CACHE)
    device: str = "cpu"


# The settings each task's numbers depend on (stored as its eval config; others may change freely).
COMMON_SETTINGS = ("image_size",)
TASK_SETTINGS: dict[str, tuple[str, ...]] = {
    "linear": ("train_split", "test_split", "train_limit", "test_limit"),
    "knn": ("train_split", "test_split", "train_limit", "test_limit", "knn_k", "knn_t"),
    "clustering": ("test_split", "test_limit", "seeds", "embedding", "embedding_points"),
    "finetune": ("finetune",),
    "pose": ("train_split", "test_split", "train_limit", "test_limit"),
    "depth": ("train_split", "test_split", "dense"),
    "segmentation": ("train_split", "test_split", "dense"),
    "unsup_seg": ("test_split", "dense", "seeds"),
    "detection": ("transfer",),
    "segmentation_transfer": ("transfer",),
}
# Protocol versions, stored in the eval config: a changed protocol never reuses stored numbers.
# 2: dense tasks read the stage pyramid (FPN decoder, stride-8 descriptors), depth on standardised log depth.
PROTOCOL: dict[str, int] = {name: 2 if name in ("depth", "segmentation", "unsup_seg") else 1
                            for name in TASK_SETTINGS}


@dataclass
class Context:
    """What a task reads: the checkpoint, its metadata, the dataset path and cached features."""

    ckpt: Path
    meta: dict[str, Any]
    data: Path
    cfg: SuiteConfig
    store: ResultsStore | None = None
    _features: dict[tuple[str, str, int], F.FeatureSet] = field(default_factory=dict)

    def features(self, split: str, layer: str = "pool", limit: int | None = None) -> F.FeatureSet:
        """Cached features of ``split`` (``limit`` images; default: the suite's limit for the split)."""
        if limit is None:
            limit = self.cfg.train_limit if split == self.cfg.train_split else self.cfg.test_limit
        key = (split, layer, limit)
        if key not in self._features:
            self._features[key] = F.extract(self.ckpt, self.data, split, layer=layer, limit=limit or None,
                                            cache_dir=self.cfg.cache_dir, device=self.cfg.device,
                                            image_size=self.image_size)
        return self._features[key]

    @property
    def image_size(self) -> int | None:
        """None for a synthetic dataset (its own size); for image files, the size they are decoded
        at: ``--image-size`` or the checkpoint's training size."""
        if (self.data / "meta.json").exists():
            return None
        return self.cfg.image_size or int(self.meta["data"]["image_size"])

    def source(self, split: str) -> Any:
        return open_source(self.data, image_size=self.image_size, split=split)

    def dense(self, split: str, limit: int) -> list[torch.Tensor]:
        """The frozen stage pyramid [(N, C_i, h_i, w_i), ...] of the first ``limit`` images of ``split``."""
        return F.dense_maps(self.features(split, "dense", limit))

    def synthetic(self, split: str) -> Any:
        """The split's :class:`synthetic.loaders.SyntheticSource` (masks, depth, labels.csv)."""
        source = self.source(split)
        if not hasattr(source, "dataset"):
            raise SkipTask(f"{self.data}: not a synthetic dataset (no masks, depth or pose labels)")
        return source


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
    """k-means with as many clusters as classes: NMI, ARI, Hungarian accuracy (per seed); the 2-D
    embedding of (up to ``embedding_points``) test features goes to the store's arrays."""
    _, te = _labelled(ctx)
    rows: list[Row] = []
    for seed in ctx.cfg.seeds:
        out = cluster_metrics(te.features, te.targets, seed=seed)
        rows += [(m, float(v), ctx.cfg.test_split, seed) for m, v in out.items() if np.isscalar(v)]
    if ctx.cfg.embedding and ctx.store is not None:
        n = min(len(te.features), ctx.cfg.embedding_points)
        xy = embed_2d(te.features[:n], method=ctx.cfg.embedding, seed=ctx.cfg.seeds[0])
        ctx.store.put_arrays(run_id_of(ctx), F.file_sha256(ctx.ckpt), "clustering", ctx.data.name,
                             f"embedding_{ctx.cfg.embedding}", xy=xy.astype(np.float32), labels=te.targets[:n],
                             indices=te.indices[:n])
    return rows


def _scratch_key(ctx: Context, ecfg: dict[str, Any]) -> tuple[str, str]:
    """(pseudo checkpoint hash, run id) of the from-scratch curve: it depends only on the
    architecture, the dataset and the finetuning settings, so checkpoints share it."""
    spec = ctx.meta["backbone"]
    blob = json.dumps({"backbone": {k: spec.get(k) for k in ("name", "kwargs")}, "norm": ctx.meta["data"]["mean"]
                       + ctx.meta["data"]["std"], "cfg": ecfg}, sort_keys=True, default=str)
    return "scratch-" + hashlib.sha256(blob.encode()).hexdigest()[:16], f"scratch-{spec['name']}"


def _curve_rows(curve: dict[int, list[float]], prefix: str, split: str, seeds: tuple[int, ...]) -> list[Row]:
    return [(f"{prefix}@n{n}", float(acc), split, seed) for n, accs in curve.items() for seed, acc in zip(seeds, accs)]


def _curve_from_store(ctx: Context, sha: str, ecfg: dict[str, Any]) -> dict[int, list[float]]:
    frame = ctx.store.query(ckpt_sha256=sha, task="finetune", dataset=ctx.data.name, eval_config=ecfg)
    curve: dict[int, list[float]] = {}
    for row in frame.sort_values(["metric", "seed"]).itertuples():
        curve.setdefault(int(row.metric.split("@n")[1]), []).append(float(row.value))
    return dict(sorted(curve.items()))


def task_finetune(ctx: Context) -> list[Row]:
    """Label-efficiency curves: finetuned checkpoint vs the same architecture from scratch at each
    labelled-set size and seed (``top1@nN`` / ``scratch_top1@nN``), and Newell & Deng's utility
    (``utility@nN``, one row per finetuning seed) where it is measurable; where the pretrained curve
    passes the best scratch accuracy, their last point: ``utility_limit`` at the interpolated
    label count ``utility_limit_at``."""
    fcfg = replace(ctx.cfg.finetune, train_split=ctx.cfg.train_split, test_split=ctx.cfg.test_split,
                   device=ctx.cfg.device)
    if fcfg.target == "class" and (ctx.source(fcfg.train_split).targets < 0).all():
        raise SkipTask(f"{ctx.data}: no class labels")
    ecfg = task_config("finetune", ctx.cfg)
    scratch_sha, scratch_id = _scratch_key(ctx, ecfg)
    scratch = _curve_from_store(ctx, scratch_sha, ecfg) if ctx.store is not None else {}
    kinds = ("pretrained",) if scratch else ("pretrained", "scratch")
    curves = label_efficiency(ctx.ckpt, ctx.data, fcfg, kinds=kinds, image_size=ctx.image_size)
    if "scratch" in curves:
        scratch = curves["scratch"]
        if ctx.store is not None:
            rows = _curve_rows(scratch, "top1", fcfg.test_split, fcfg.seeds)
            ctx.store.replace([Result(scratch_id, scratch_sha, "finetune", ctx.data.name, sp, m, v, sd, ecfg)
                               for m, v, sp, sd in rows], ckpt_sha256=scratch_sha, task="finetune",
                              dataset=ctx.data.name, eval_config=ecfg)
    rows = _curve_rows(curves["pretrained"], "top1", fcfg.test_split, fcfg.seeds)
    rows += _curve_rows(scratch, "scratch_top1", fcfg.test_split, fcfg.seeds)
    rows += [(m, v, fcfg.test_split, seed) for m, v, seed in utility_rows(scratch, curves["pretrained"], fcfg.seeds)]
    return rows


def _pose_columns(ctx: Context, fs: F.FeatureSet, split: str) -> tuple[np.ndarray, np.ndarray]:
    labels = ctx.synthetic(split)
    table = labels.dataset.labels
    if "pose_bin" not in table or "azimuth" not in table:
        raise SkipTask(f"{ctx.data}: no pose labels (pose_bin / azimuth columns)")
    rows = labels.indices[fs.indices]
    return table["pose_bin"].to_numpy()[rows], table["azimuth"].to_numpy()[rows]


def task_pose(ctx: Context) -> list[Row]:
    """Pose of the primary object from frozen pooled features: 5-bin class and azimuth."""
    tr, te = ctx.features(ctx.cfg.train_split), ctx.features(ctx.cfg.test_split)
    bins_tr, az_tr = _pose_columns(ctx, tr, ctx.cfg.train_split)
    bins_te, az_te = _pose_columns(ctx, te, ctx.cfg.test_split)
    if len(np.unique(bins_tr)) < 2:      # e.g. the tcvl-xx0x variants: every object at the canonical viewpoint
        raise SkipTask(f"{ctx.data}: one pose bin only (the viewpoint does not vary)")
    out = pose_metrics(tr.features, bins_tr, az_tr, te.features, bins_te, az_te)
    return [(m, v, ctx.cfg.test_split, None) for m, v in out.items()]


def _dense_targets(ctx: Context, split: str, n: int, kind: str) -> torch.Tensor:
    source = ctx.synthetic(split)
    rows = source.indices[:n]
    if kind == "depth":
        return torch.from_numpy(np.asarray(source.dataset.depth[rows], dtype=np.float32))
    return torch.from_numpy(np.asarray(source.dataset.semantic[rows], dtype=np.int64))


def _dense_task(ctx: Context, kind: str) -> list[Row]:
    dcfg = ctx.cfg.dense
    ctx.synthetic(ctx.cfg.train_split)
    ftr, fte = ctx.dense(ctx.cfg.train_split, dcfg.train_limit), ctx.dense(ctx.cfg.test_split, dcfg.test_limit)
    ytr = _dense_targets(ctx, ctx.cfg.train_split, len(ftr[0]), kind)
    yte = _dense_targets(ctx, ctx.cfg.test_split, len(fte[0]), kind)
    classes = len(ctx.source(ctx.cfg.train_split).classes) + 1
    out_channels = 1 if kind == "depth" else classes
    head = train_dense_head(ftr, ytr, kind, out_channels, dcfg)
    pred = predict_dense(head, fte, tuple(yte.shape[-2:]))
    if kind == "depth":
        out = depth_metrics(pred, yte)
    else:
        out = segmentation_metrics(confusion(pred.argmax(1).numpy(), yte.numpy(), classes))
    return [(m, v, ctx.cfg.test_split, dcfg.seed) for m, v in out.items()]


def task_depth(ctx: Context) -> list[Row]:
    """Depth of object pixels from a light FPN decoder on the frozen stage pyramid: abs-rel, RMSE,
    delta1, scale-invariant log error."""
    return _dense_task(ctx, "depth")


def task_segmentation(ctx: Context) -> list[Row]:
    """Semantic segmentation (background + classes) with a light FPN decoder on the frozen stage
    pyramid: mIoU, mAcc, aAcc."""
    return _dense_task(ctx, "segmentation")


def task_unsup_seg(ctx: Context) -> list[Row]:
    """Unsupervised segmentation: k-means on the frozen pyramid's pixel descriptors, Hungarian-matched:
    mIoU per seed."""
    source = ctx.synthetic(ctx.cfg.test_split)
    fte = ctx.dense(ctx.cfg.test_split, ctx.cfg.dense.test_limit)
    labels = np.asarray(source.dataset.semantic[source.indices[:len(fte[0])]], dtype=np.int64)
    classes = len(source.classes) + 1
    rows: list[Row] = []
    for seed in ctx.cfg.seeds:
        out = unsupervised_segmentation(fte, labels, classes, seed=seed)
        rows += [(m, v, ctx.cfg.test_split, seed) for m, v in out.items()]
    return rows


def _transfer_dir(ctx: Context, protocol: str) -> Path:
    return Path(ctx.cfg.cache_dir).parent / "transfer" / protocol / run_id_of(ctx)


def _transfer_task(ctx: Context, framework: str) -> list[Row]:
    """One framework's transfer (``evaluate.transfer``) on the suite's dataset. A checkpoint or
    dataset the protocol cannot take is skipped with the reason; a diverging run is a failure."""
    from .transfer import detectron2, mmseg
    from .transfer.convert import ConvertError
    from .transfer.errors import TrainingDiverged, TransferError
    t = ctx.cfg.transfer
    protocol = t.detectron2_protocol if framework == "detectron2" else t.mmseg_protocol
    common = dict(iters=t.iters, device=ctx.cfg.device, num_gpus=t.num_gpus)
    try:
        if framework == "detectron2":
            out = detectron2.run(ctx.ckpt, protocol, ctx.data, _transfer_dir(ctx, protocol), ims_per_batch=t.batch,
                                 **common)
        else:
            out = mmseg.run(ctx.ckpt, protocol, ctx.data, _transfer_dir(ctx, protocol), batch=t.batch, **common)
    except TrainingDiverged:
        raise                                          # a failure, not a task that does not apply
    except (TransferError, ConvertError) as e:
        raise SkipTask(str(e)) from e
    return [(m, v, ctx.cfg.test_split, None) for m, v in out.items()]


def task_detection(ctx: Context) -> list[Row]:
    """Detectron2 transfer (``evaluate.transfer.detectron2``): COCO AP of boxes and masks."""
    return _transfer_task(ctx, "detectron2")


def task_segmentation_transfer(ctx: Context) -> list[Row]:
    """mmseg transfer (``evaluate.transfer.mmseg``): mIoU, mAcc, aAcc."""
    return _transfer_task(ctx, "mmseg")


TASKS: dict[str, Callable[[Context], list[Row]]] = {
    "linear": task_linear,
    "knn": task_knn,
    "clustering": task_clustering,
    "finetune": task_finetune,
    "pose": task_pose,
    "depth": task_depth,
    "segmentation": task_segmentation,
    "unsup_seg": task_unsup_seg,
    "detection": task_detection,
    "segmentation_transfer": task_segmentation_transfer,
}
# Measured by ``invariance.run`` on its own probe sets (it stores its rows itself).
INVARIANCE_TASKS = ("invariance", "transform_invariance")
# Run when --tasks is not given: everything but the framework transfers (minutes to hours each) and
# the invariance measures (their own data: generated probe sets, 72 transformed copies of the test set).
DEFAULT_TASKS = [t for t in TASKS if t not in ("detection", "segmentation_transfer")]


def run_id_of(ctx: Context) -> str:
    return str(ctx.meta.get("run_id", ctx.ckpt.parent.name))


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
    """The settings that change task ``name``'s numbers (stored with every row): ``TASK_SETTINGS``."""
    d = asdict(cfg)
    out = {"task": name, "protocol": PROTOCOL[name], **{k: d[k] for k in COMMON_SETTINGS + TASK_SETTINGS[name]}}
    if name == "finetune":   # the suite's splits and device override the finetuning config's own
        out["finetune"] = {k: v for k, v in out["finetune"].items() if k not in ("train_split", "test_split", "device")}
        out.update(train_split=cfg.train_split, test_split=cfg.test_split)
    return out


def run_invariance(ckpt: Path, name: str, cfg: SuiteConfig, store: ResultsStore, data: Path,
                   force: bool = False) -> list[dict[str, Any]]:
    """The suite's ``invariance`` / ``transform_invariance`` task through ``invariance.run``."""
    from invariance.run import InvarianceConfig
    from invariance.run import evaluate as measure

    base = InvarianceConfig()
    icfg = InvarianceConfig(probes=base.probes if name == "invariance" else (),
                            transforms=base.transforms if name == "transform_invariance" else (),
                            probe_sets=cfg.invariance_sets, probe_dir=cfg.probe_dir,
                            transform_images=cfg.transform_images, transform_split=cfg.test_split,
                            image_size=cfg.image_size, cache_dir=cfg.cache_dir, device=cfg.device)
    return measure(ckpt, icfg, store, force=force, data=data)


def evaluate_checkpoint(ckpt: Path, tasks: list[str], cfg: SuiteConfig, store: ResultsStore,
                        force: bool = False) -> list[dict[str, Any]]:
    """Run ``tasks`` on one checkpoint; returns the rows written (and those reused from the store)."""
    meta = read_checkpoint(ckpt)
    data = Path(cfg.data or meta["data"].get("path") or "")
    if not data.exists():
        raise DatasetError(f"{data}: dataset not found (checkpoint {ckpt} was trained on it; pass --data)")
    ctx = Context(ckpt, meta, data, cfg, store)
    sha, run_id, dataset = F.file_sha256(ckpt), run_id_of(ctx), data.name
    if meta.get("config"):                      # how it was pretrained, for the reports' variants
        store.put_run(run_id, sha, meta["config"])
    summary = []
    for name in tasks:
        if name in INVARIANCE_TASKS:
            summary += run_invariance(ckpt, name, cfg, store, data, force)
            continue
        ecfg = task_config(name, cfg)
        if not force and store.has(sha, name, dataset, ecfg):
            log.info("%s: %s already stored (use --force to rerun)", run_id, name)
            summary.append({"run_id": run_id, "task": name, "status": "stored"})
            continue
        log.info("%s: %s", run_id, name)
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
    shas = sorted({F.file_sha256(c) for c in ckpts})
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


def int_list(flag: str, text: str) -> tuple[int, ...]:
    """``"0,1,2"`` -> (0, 1, 2); anything else raises ValueError naming the flag."""
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        values = ()
    if not values:
        raise ValueError(f"{flag} {text!r}: expected comma-separated integers, e.g. 0,1,2")
    return values


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m evaluate.suite", description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoints", nargs="+", help="ckpt.pt files or runs folders")
    ap.add_argument("--data", help="dataset (default: the checkpoint's own)")
    ap.add_argument("--tasks", default=",".join(DEFAULT_TASKS),
                    help=f"comma-separated, from {', '.join(TASKS)} (default: all but the framework transfers)")
    ap.add_argument("--seeds", default="0", help="comma-separated seeds of the stochastic tasks")
    ap.add_argument("--store", default=str(DEFAULT_STORE), type=Path)
    ap.add_argument("--cache", default=str(F.DEFAULT_CACHE), help="feature cache folder")
    ap.add_argument("--train-limit", type=int, default=0)
    ap.add_argument("--test-limit", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--image-size", type=int, help="decode image-file datasets at this size (default: the "
                    "checkpoint's training size; synthetic datasets keep their own)")
    ap.add_argument("--sizes", default=None, help="finetuning labelled-set sizes, e.g. 100,500,2000 (0 = all)")
    ap.add_argument("--finetune-max-steps", type=int, default=None, help="cap on SGD steps per finetuning run")
    ap.add_argument("--dense-steps", type=int, default=None, help="training steps of the light dense heads")
    ap.add_argument("--transfer-iters", type=int, default=None, help="training iterations of detection / "
                    "segmentation_transfer (default 300)")
    ap.add_argument("--transfer-batch", type=int, default=None, help="their batch size (default 8)")
    ap.add_argument("--detectron2-protocol", help="Detectron2 protocol of the detection task (default scenes-r18-fpn)")
    ap.add_argument("--mmseg-protocol", help="mmseg protocol of segmentation_transfer (default scenes-r18-fcn)")
    ap.add_argument("--num-gpus", type=int, default=1, help="transfer processes, one per GPU (torchrun)")
    ap.add_argument("--invariance-sets", type=int, default=100, help="sets per synthetic probe (invariance)")
    ap.add_argument("--probe-dir", default="data/probes", help="where the invariance probe sets are generated")
    ap.add_argument("--transform-images", type=int, default=2000, help="test images of transform_invariance")
    ap.add_argument("--force", action="store_true", help="rerun tasks already in the store")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", datefmt="%H:%M:%S")
    a = parse_args(argv)
    try:
        tasks = [t for t in a.tasks.split(",") if t]
        valid = [*TASKS, *INVARIANCE_TASKS]
        bad = [t for t in tasks if t not in valid]
        if bad or not tasks:
            raise ValueError(f"unknown task(s) {', '.join(bad) or '(none)'}; valid: {', '.join(valid)}")
        seeds = int_list("--seeds", a.seeds)
        ft = FinetuneConfig(seeds=seeds)
        if a.sizes:
            ft = replace(ft, sizes=int_list("--sizes", a.sizes))
        if a.finetune_max_steps is not None:
            ft = replace(ft, max_steps=a.finetune_max_steps, min_steps=min(ft.min_steps, a.finetune_max_steps))
        dense = DenseConfig() if a.dense_steps is None else DenseConfig(steps=a.dense_steps)
        transfer = TransferConfig(num_gpus=a.num_gpus)
        for field_name, value in (("detectron2_protocol", a.detectron2_protocol), ("mmseg_protocol", a.mmseg_protocol)):
            if value:   # a paper protocol runs at its own iterations and batch unless told otherwise
                transfer = replace(transfer, **{field_name: value}, iters=None, batch=None)
        if a.transfer_iters is not None:
            transfer = replace(transfer, iters=a.transfer_iters)
        if a.transfer_batch is not None:
            transfer = replace(transfer, batch=a.transfer_batch)
        cfg = SuiteConfig(data=a.data, seeds=seeds, train_limit=a.train_limit, test_limit=a.test_limit,
                          cache_dir=a.cache, device=a.device, finetune=ft, dense=dense, image_size=a.image_size,
                          transfer=transfer, invariance_sets=a.invariance_sets, probe_dir=a.probe_dir,
                          transform_images=a.transform_images)
        store = ResultsStore(a.store)
        rows = []
        ckpts = find_checkpoints(a.checkpoints)
        for ckpt in ckpts:
            rows += evaluate_checkpoint(ckpt, tasks, cfg, store, force=a.force)
        if "linear" in tasks and "finetune" in tasks and len(ckpts) >= 3:
            store_agreement(store, ckpts, Path(cfg.data or read_checkpoint(ckpts[0])["data"]["path"]).name)
    except (CheckpointError, DatasetError, F.FeatureError, FileNotFoundError, ValueError, FloatingPointError) as e:
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
    own = frame["task"].isin(INVARIANCE_TASKS)           # their dataset is the probe set: keep it apart
    frame = frame.assign(metric=frame["metric"].where(~own, frame["dataset"] + "/" + frame["metric"]))
    table = frame.groupby(["run_id", "task", "metric"])["value"].mean().unstack(["task", "metric"])
    print(table.round(3).to_string())


if __name__ == "__main__":
    sys.exit(main())
