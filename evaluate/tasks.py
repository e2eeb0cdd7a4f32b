"""The evaluation tasks of ``evaluate/``, registered in :mod:`measure.tasks`.

Frozen features (``measure.features``, extracted once and shared): ``linear``, ``lowshot``
(1 / 10 / 100 labels per class), ``knn``, ``floor`` (the dataset's silhouette floor, no features),
``clustering`` (+ a 2-D embedding in the store's arrays), ``pose``; the dense tasks on the frozen
stage pyramid: ``depth``, ``segmentation``, ``unsup_seg``; ``finetune`` (label-efficiency curves
vs scratch and Newell & Deng's utility); on request only (``default=False``): ``detection``
(Detectron2) and ``segmentation_transfer`` (mmseg), ``evaluate.transfer``.

Each task is a function ``Context -> rows`` (metric, value, split, seed) and a record naming the
suite settings its numbers depend on (``settings``) and its protocol version (``protocol``:
bumped when a protocol changes, so that stored numbers are never reused across it).
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from imagedata.subsets import stratified_subset
from measure import features as F
from measure.context import Context
from measure.results import Result
from measure.tasks import Row, SkipTask, Task, register
from synthetic.dataset import DatasetError

from .clustering import cluster_metrics, embed_2d
from .dense import (confusion, depth_metrics, pose_metrics, predict_dense, segmentation_metrics, train_dense_head,
                    unsupervised_segmentation)
from .fewshot import few_shot
from .finetune import label_efficiency, step_plan
from .floor import silhouette_floor
from .knn import knn_sweep
from .linear import LinearConfig, linear_probe
from .lowshot import check_config as check_lowshot
from .lowshot import low_shot_probe, smallest_class
from .utility import utility_rows

log = logging.getLogger("evaluate.tasks")

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


def task_fewshot(ctx: Context) -> list[Row]:
    """Few-shot episodes on the test split's frozen pooled features (5-way 1 / 5 / 20-shot, 600
    episodes, 15 queries a class, as ssl-transfer): prototype and logistic-regression accuracy per
    shot count (``prototype@5way1shot``, ...) and each one's 95 % CI half-width (``..._ci95``)."""
    te = ctx.features(ctx.cfg.test_split)
    try:
        out = few_shot(te.features, te.targets, ctx.cfg.fewshot)
    except ValueError as e:
        raise SkipTask(f"{ctx.data}: {e}") from e
    rows: list[Row] = []
    for name, (mean, half, _) in out.items():
        rows += [(name, mean, ctx.cfg.test_split, None), (f"{name}_ci95", half, ctx.cfg.test_split, None)]
    return rows


def task_lowshot(ctx: Context) -> list[Row]:
    """Low-shot linear probes: 1 / 10 / 100 labels per class, class-balanced draws: top-1 per size
    (``top1@<k>shot``) and draw (the row's seed). Sizes above the smallest class are left out with
    a warning naming them."""
    tr, te = _labelled(ctx)
    cfg = ctx.cfg.lowshot
    check_lowshot(cfg)
    label, count = smallest_class(tr.targets)
    fit = tuple(k for k in cfg.shots if k <= count)
    for k in cfg.shots:
        if k not in fit:
            log.warning("low-shot size %d labels per class exceeds the smallest class (class %d has %d labelled "
                        "training images): left out", k, label, count)
    if not fit:
        raise SkipTask(f"{ctx.data}: every low-shot size {list(cfg.shots)} exceeds the smallest class "
                       f"({count} labelled training images)")
    out = low_shot_probe(tr.features, tr.targets, te.features, te.targets, replace(cfg, shots=fit))
    return [(f"top1@{k}shot", v, ctx.cfg.test_split, draw) for k, accs in out.items() for draw, v in enumerate(accs)]


def task_floor(ctx: Context) -> list[Row]:
    """The silhouette floor of a synthetic dataset (``evaluate.floor``): the top-1 of the linear probe
    on four hand-made features of the object masks, on the suite's splits and limits. The same for
    every checkpoint on that data; stored beside each one so that reports set the run against it."""
    ctx.synthetic(ctx.cfg.train_split)                     # SkipTask for files
    try:
        out = silhouette_floor(ctx.data, ctx.cfg.train_limit, ctx.cfg.test_limit, train_split=ctx.cfg.train_split,
                               test_split=ctx.cfg.test_split)
    except DatasetError as e:
        raise SkipTask(str(e)) from e
    return [("top1", out["floor_top1"], ctx.cfg.test_split, None)]


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
        pick = stratified_subset(te.targets, ctx.cfg.embedding_points, seed=0)   # every class, not the first
        xy = embed_2d(te.features[pick], method=ctx.cfg.embedding, seed=ctx.cfg.seeds[0])
        ctx.store.put_arrays(ctx.run_id, ctx.sha, "clustering", ctx.data.name,
                             f"embedding_{ctx.cfg.embedding}", xy=xy.astype(np.float32), labels=te.targets[pick],
                             indices=te.indices[pick])
    return rows


def _scratch_key(ctx: Context, ecfg: dict[str, Any]) -> tuple[str, str]:
    """(pseudo checkpoint hash, run id) of the from-scratch curve: it depends only on the
    architecture, the dataset and the finetuning settings, so checkpoints share it."""
    spec, data = ctx.meta.backbone, ctx.meta.data
    blob = json.dumps({"backbone": {"name": spec.name, "kwargs": spec.kwargs}, "norm": list(data.mean) + list(data.std),
                       "cfg": ecfg}, sort_keys=True, default=str)
    return "scratch-" + hashlib.sha256(blob.encode()).hexdigest()[:16], f"scratch-{spec.name}"


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
    labelled-set size and seed (``top1@nN`` / ``scratch_top1@nN``, scratch also beyond the largest
    size), and Newell & Deng's utility (``utility@nN``, one row per finetuning seed) where it is
    measurable, else its bound (``utility_atleast@nN`` / ``utility_atmost@nN``); where the
    pretrained curve passes the best scratch accuracy, their last point: ``utility_limit`` at the
    interpolated label count ``utility_limit_at``."""
    fcfg = replace(ctx.cfg.finetune, train_split=ctx.cfg.train_split, test_split=ctx.cfg.test_split,
                   skip_unreadable=getattr(ctx.cfg, "skip_unreadable", False),
                   device=ctx.cfg.device)
    if fcfg.target == "class" and (ctx.source(fcfg.train_split).targets < 0).all():
        raise SkipTask(f"{ctx.data}: no class labels")
    ecfg = FINETUNE.eval_config(ctx.cfg, ctx.image_size)
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


def _has_masks(source: Any) -> bool:
    """Whether a non-synthetic source has semantic masks (VOC; COCO with segmentations)."""
    return hasattr(source, "read_masks") and not hasattr(source, "dataset") and getattr(source, "has_masks", True)


def _dense_targets(ctx: Context, split: str, positions: np.ndarray, kind: str) -> torch.Tensor:
    """Depth maps or semantic masks of the images at ``positions`` of ``split`` (the features' own):
    from a synthetic dataset, or the masks of a VOC / COCO source (``read_masks``: 0 background,
    c + 1 class c, 255 void); SkipTask where the data have none."""
    source = ctx.source(split)
    if kind == "segmentation" and _has_masks(source):
        return source.read_masks(positions).long()
    source = ctx.synthetic(split)
    rows = source.indices[positions]
    if kind == "depth":
        return torch.from_numpy(np.asarray(source.dataset.depth[rows], dtype=np.float32))
    return torch.from_numpy(np.asarray(source.dataset.semantic[rows], dtype=np.int64))


def _dense_task(ctx: Context, kind: str) -> list[Row]:
    dcfg = ctx.cfg.dense
    if not (kind == "segmentation" and _has_masks(ctx.source(ctx.cfg.train_split))):
        ctx.synthetic(ctx.cfg.train_split)          # SkipTask before any feature work
    (ftr, at_tr), (fte, at_te) = ctx.dense(ctx.cfg.train_split, dcfg.train_limit), ctx.dense(ctx.cfg.test_split,
                                                                                             dcfg.test_limit)
    ytr = _dense_targets(ctx, ctx.cfg.train_split, at_tr, kind)
    yte = _dense_targets(ctx, ctx.cfg.test_split, at_te, kind)
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
    source = ctx.source(ctx.cfg.test_split)
    if not _has_masks(source):
        source = ctx.synthetic(ctx.cfg.test_split)
    fte, at = ctx.dense(ctx.cfg.test_split, ctx.cfg.dense.test_limit)
    labels = _dense_targets(ctx, ctx.cfg.test_split, at, "segmentation").numpy().astype(np.int64)
    classes = len(source.classes) + 1
    rows: list[Row] = []
    for seed in ctx.cfg.seeds:
        out = unsupervised_segmentation(fte, labels, classes, seed=seed)
        rows += [(m, v, ctx.cfg.test_split, seed) for m, v in out.items()]
    return rows


def _transfer_dir(ctx: Context, protocol: str) -> Path:
    return Path(ctx.cfg.cache_dir).parent / "transfer" / protocol / ctx.run_id


def _transfer_task(ctx: Context, framework: str) -> list[Row]:
    """One framework's transfer (``evaluate.transfer``) on the suite's dataset. A checkpoint or
    dataset the protocol cannot take is skipped with the reason; a diverging run is a failure."""
    from .transfer import detectron2, mmseg
    from .transfer.convert import ConvertError
    from .transfer.errors import TrainingDiverged, TransferError
    t = ctx.cfg.transfer
    protocol = t.detectron2_protocol if framework == "detectron2" else t.mmseg_protocol
    common = dict(iters=t.iters, device=ctx.cfg.device, num_gpus=t.num_gpus,
                  **({"input_size": t.input_size} if t.input_size else {}))
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


def _finetune_config(out: dict[str, Any], cfg: Any) -> dict[str, Any]:
    """The suite's splits and device override the finetuning config's own: store the suite's. The
    SGD steps of each label count of both curves go with it (``evaluate.finetune.step_plan``: a
    size above the split runs on the whole split, ``"all"``, at epochs x its size / batch), so that
    a stored number says how long it trained and whether the opt-in ``max_steps`` cut it."""
    out["finetune"] = {k: v for k, v in out["finetune"].items()
                       if k not in ("train_split", "test_split", "device", "skip_unreadable")
                       and not (k == "schedule" and v == "epochs")}      # the default: configs stored before it
    out["finetune"]["steps"] = step_plan(cfg.finetune)
    out.update(train_split=cfg.train_split, test_split=cfg.test_split)
    return out


_SPLITS = ("train_split", "test_split", "train_limit", "test_limit")
# Protocol 2 of the dense tasks: they read the stage pyramid (FPN decoder, stride-8 descriptors),
# depth on standardised log depth.
# Protocol 2 of finetune: steps grow with the label count (no 400-step ceiling) and the scratch curve
# runs beyond the largest finetuned size; utility bounds are stored where it is not measured.
FINETUNE = Task("finetune", task_finetune, ("finetune",), protocol=2, adjust=_finetune_config)
register(
    Task("linear", task_linear, _SPLITS),
    Task("lowshot", task_lowshot, (*_SPLITS, "lowshot")),
    Task("floor", task_floor, _SPLITS),
    Task("knn", task_knn, (*_SPLITS, "knn_k", "knn_t")),
    Task("clustering", task_clustering, ("test_split", "test_limit", "seeds", "embedding", "embedding_points")),
    FINETUNE,
    Task("pose", task_pose, _SPLITS),
    Task("depth", task_depth, ("train_split", "test_split", "dense"), protocol=2),
    Task("segmentation", task_segmentation, ("train_split", "test_split", "dense"), protocol=2),
    Task("unsup_seg", task_unsup_seg, ("test_split", "dense", "seeds"), protocol=2),
    # the framework transfers take minutes to hours each: on request only
    Task("detection", task_detection, ("transfer",), default=False),
    Task("segmentation_transfer", task_segmentation_transfer, ("transfer",), default=False),
    Task("fewshot", task_fewshot, ("test_split", "test_limit", "fewshot"), default=False),
)
