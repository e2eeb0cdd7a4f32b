"""Detection / instance segmentation transfer in Detectron2, initialised from an sslbench checkpoint.

Protocols (``PROTOCOLS``) start from Detectron2's own model-zoo configs:

- ``voc-r50-c4``: Faster R-CNN R50-C4 on VOC07+12 (MoCo's protocol, He et al. 2020; the masking
  paper), 24k iterations at batch 16, SyncBN in the backbone and head.
- ``coco-r50-fpn-1x``: Mask R-CNN R50-FPN 1x on COCO (SlotCon, the masking paper), SyncBN.
- ``scenes-r18-fpn``: the CPU version: Mask R-CNN with a ResNet-18 FPN on the synthetic
  ``scenes`` data (its COCO export), BN (not FrozenBN) everywhere, 128-px inputs.

Every protocol sets ``MODEL.RESNETS.STRIDE_IN_1X1 = False`` (torchvision strides in the 3x3 conv)
and loads the backbone from ``evaluate.transfer.convert.to_detectron2``, with the input
normalisation the checkpoint was pretrained with (``convert.pixel_stats``); ``random`` checkpoints
go through the same path (their random weights are converted like any other). Metrics: COCO AP,
AP50, AP75 (boxes) and mask AP (``segm_*``), from Detectron2's COCOEvaluator (pycocotools).
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pretrain.checkpoint import read_checkpoint

from .convert import ConvertError, backbone_depth, convert, pixel_stats
from .errors import TrainingDiverged, TransferError

log = logging.getLogger(__name__)




@dataclass
class D2Protocol:
    """One Detectron2 protocol: the model-zoo config it starts from and what it changes."""

    base: str
    dataset: str                       # "scenes" (a synthetic dataset's COCO export) or a registered name
    iters: int
    ims_per_batch: int
    lr: float
    norm: str = "BN"
    min_size: tuple[int, ...] = (128,)
    max_size: int = 128
    test_min_size: int = 128
    mask: bool = True
    overrides: dict[str, Any] = field(default_factory=dict)


PROTOCOLS: dict[str, D2Protocol] = {
    "scenes-r18-fpn": D2Protocol("COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_1x.yaml", "scenes", iters=300,
                                 ims_per_batch=8, lr=0.02),
    "voc-r50-c4": D2Protocol("PascalVOC-Detection/faster_rcnn_R_50_C4.yaml", "voc_2007_trainval+voc_2012_trainval",
                             iters=24000, ims_per_batch=16, lr=0.02, norm="SyncBN",
                             min_size=(480, 512, 544, 576, 608, 640, 672, 704, 736, 768, 800), max_size=1333,
                             test_min_size=800, mask=False),
    "coco-r50-fpn-1x": D2Protocol("COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_1x.yaml", "coco_2017_train",
                                  iters=90000, ims_per_batch=16, lr=0.02, norm="SyncBN",
                                  min_size=(640, 672, 704, 736, 768, 800), max_size=1333, test_min_size=800),
}


def _require_detectron2() -> None:
    try:
        import detectron2  # noqa: F401
    except ImportError as e:
        raise TransferError(f"Detectron2 is not installed ({e}); run `make setup`") from e


def register_scenes(data: Path) -> tuple[str, str, int]:
    """Register a synthetic scenes dataset's COCO export (train / test) with Detectron2; returns
    the two dataset names and the number of classes. The export is written if missing."""
    from detectron2.data import DatasetCatalog
    from detectron2.data.datasets import register_coco_instances

    from synthetic.exports import export_coco
    from synthetic.store import open_dataset

    if not (Path(data) / "instance.npy").exists():
        raise TransferError(f"{data}: no instance masks (detection needs a scene dataset with boxes and masks)")
    ds = open_dataset(data)
    coco = export_coco(ds)
    names = []
    for split in ("train", "test"):
        ann = coco / f"annotations_{split}.json"
        if not ann.exists():
            raise TransferError(f"{data}: no {split} split in its COCO export ({ann})")
        name = f"sslbench_{ds.meta.get('args_hash', Path(data).name)}_{split}"
        if name not in DatasetCatalog.list():
            register_coco_instances(name, {}, str(ann), str(coco / "images"))
        names.append(name)
    return names[0], names[1], len(ds.classes)


def build_cfg(protocol: str, depth: int, weights: str, out_dir: Path, *, train_set: str, test_set: str,
              num_classes: int, mean: list[float], std: list[float], iters: int | None = None,
              ims_per_batch: int | None = None, device: str = "cpu") -> Any:
    """The Detectron2 CfgNode of ``protocol`` for a ResNet-``depth`` backbone loaded from ``weights``,
    fed RGB images normalised with ``mean`` / ``std`` (0-255; the checkpoint's own, ``pixel_stats``)."""
    from detectron2 import model_zoo
    from detectron2.config import get_cfg

    p = PROTOCOLS[protocol]
    cfg = get_cfg()
    cfg.merge_from_file(model_zoo.get_config_file(p.base))
    cfg.MODEL.WEIGHTS = weights
    cfg.MODEL.DEVICE = device
    cfg.MODEL.PIXEL_MEAN, cfg.MODEL.PIXEL_STD = list(mean), list(std)
    cfg.INPUT.FORMAT = "RGB"                       # sslbench backbones take RGB
    cfg.MODEL.RESNETS.DEPTH = depth
    cfg.MODEL.RESNETS.STRIDE_IN_1X1 = False
    cfg.MODEL.RESNETS.NORM = p.norm
    cfg.MODEL.BACKBONE.FREEZE_AT = 0
    if depth in (18, 34):
        cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = 64
        if "C4" in p.base:
            raise TransferError("the C4 head needs a ResNet-50 (ResNet-18/34 have no bottleneck res5 head)")
    if "FPN" in p.base:
        cfg.MODEL.FPN.NORM = p.norm
        cfg.MODEL.ROI_BOX_HEAD.NORM = p.norm
        cfg.MODEL.ROI_MASK_HEAD.NORM = p.norm
    cfg.MODEL.MASK_ON = p.mask
    if p.dataset == "scenes":
        cfg.INPUT.MASK_FORMAT = "bitmask"          # the synthetic COCO export stores RLE masks
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = num_classes
    cfg.DATASETS.TRAIN, cfg.DATASETS.TEST = (train_set,), (test_set,)
    cfg.DATALOADER.NUM_WORKERS = 0 if device == "cpu" else 4
    cfg.INPUT.MIN_SIZE_TRAIN, cfg.INPUT.MAX_SIZE_TRAIN = p.min_size, p.max_size
    cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST = p.test_min_size, p.max_size
    total = iters or p.iters
    cfg.SOLVER.MAX_ITER = total
    cfg.SOLVER.IMS_PER_BATCH = ims_per_batch or p.ims_per_batch
    cfg.SOLVER.BASE_LR = p.lr * cfg.SOLVER.IMS_PER_BATCH / 16
    cfg.SOLVER.STEPS = tuple(sorted({int(total * f) for f in (2 / 3, 8 / 9)} - {0, total}))   # the 1x decays
    cfg.SOLVER.WARMUP_ITERS = min(cfg.SOLVER.WARMUP_ITERS, max(1, total // 10))
    cfg.SOLVER.CHECKPOINT_PERIOD = 10 ** 9
    cfg.TEST.EVAL_PERIOD = 0
    cfg.OUTPUT_DIR = str(out_dir)
    for k, v in p.overrides.items():
        cfg.merge_from_list([k, v])
    return cfg


def train_and_evaluate(cfg: Any) -> dict[str, float]:
    """Train ``cfg`` (Detectron2's SimpleTrainer + its LR schedule) and evaluate on its test set
    with COCOEvaluator; returns {"AP", "AP50", "AP75", ..., "segm_AP", ...} (percent)."""
    import torch
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.data import build_detection_test_loader, build_detection_train_loader
    from detectron2.engine import SimpleTrainer, hooks
    from detectron2.evaluation import COCOEvaluator, inference_on_dataset
    from detectron2.modeling import build_model
    from detectron2.solver import build_lr_scheduler, build_optimizer

    from detectron2.utils.env import seed_all_rng

    seed_all_rng(cfg.SEED if cfg.SEED >= 0 else 0)
    model = build_model(cfg)
    DetectionCheckpointer(model).load(cfg.MODEL.WEIGHTS)
    optimizer = build_optimizer(cfg, model)
    trainer = SimpleTrainer(model, build_detection_train_loader(cfg), optimizer)
    from detectron2.utils.events import CommonMetricPrinter

    period = max(1, cfg.SOLVER.MAX_ITER // 20)         # progress: iteration, losses, time, ETA
    trainer.register_hooks([hooks.IterationTimer(), hooks.LRScheduler(optimizer, build_lr_scheduler(cfg, optimizer)),
                            hooks.PeriodicWriter([CommonMetricPrinter(cfg.SOLVER.MAX_ITER)], period=period)])
    try:
        trainer.train(0, cfg.SOLVER.MAX_ITER)
    except FloatingPointError as e:
        raise TrainingDiverged(f"Detectron2 training diverged at iteration {trainer.iter}: "
                            f"{str(e).splitlines()[0]}") from e
    model.eval()
    evaluator = COCOEvaluator(cfg.DATASETS.TEST[0], output_dir=str(Path(cfg.OUTPUT_DIR) / "eval"),
                              tasks=("bbox", "segm") if cfg.MODEL.MASK_ON else ("bbox",),
                              use_fast_impl=False)        # pycocotools itself (no C++ extension built)
    with torch.no_grad():
        res = inference_on_dataset(model, build_detection_test_loader(cfg, cfg.DATASETS.TEST[0]), evaluator)
    return coco_metrics(res, cfg.MODEL.MASK_ON)


def coco_metrics(res: dict[str, dict[str, float]], mask_on: bool) -> dict[str, float]:
    """Store rows from COCOEvaluator's results: AP, AP50, AP75, APs/m/l (boxes) and ``segm_*``.
    A size range with no object (COCO's -1, NaN here) is left out; a model with no detection at
    all (the evaluator returns nothing) scores 0 AP, which is COCO's value for it."""
    out: dict[str, float] = {}
    for task, prefix in (("bbox", ""), ("segm", "segm_")) if mask_on else (("bbox", ""),):
        got = res.get(task)
        if not got:
            log.warning("Detectron2 made no %s detection on the test set: AP 0", task)
            got = {"AP": 0.0, "AP50": 0.0, "AP75": 0.0}
        for metric, value in got.items():
            if metric in ("AP", "AP50", "AP75", "APs", "APm", "APl") and math.isfinite(float(value)):
                out[prefix + metric] = float(value)
    return out


def run(ckpt: Path | str, protocol: str, data: Path | str, out_dir: Path | str, *, iters: int | None = None,
        ims_per_batch: int | None = None, device: str = "cpu", store: Path | str | None = None) -> dict[str, float]:
    """Convert ``ckpt``, train ``protocol`` on ``data``, return its metrics and, with ``store``,
    write them to the results store (task ``detection``, split ``test``)."""
    _require_detectron2()
    if protocol not in PROTOCOLS:
        raise TransferError(f"unknown Detectron2 protocol {protocol!r}; valid: {', '.join(PROTOCOLS)}")
    meta = read_checkpoint(ckpt)
    depth = backbone_depth(meta)
    if PROTOCOLS[protocol].dataset != "scenes":
        raise TransferError(f"protocol {protocol!r} trains on {PROTOCOLS[protocol].dataset}: run it with Detectron2's "
                            "own launcher on a GPU machine (README, 'Transfer')")
    out_dir = Path(out_dir)
    weights = convert(ckpt, "detectron2", out_dir / "backbone.pkl")
    mean, std = pixel_stats(meta)
    train_set, test_set, classes = register_scenes(Path(data))
    cfg = build_cfg(protocol, depth, str(weights), out_dir, train_set=train_set, test_set=test_set,
                    num_classes=classes, mean=mean, std=std, iters=iters, ims_per_batch=ims_per_batch, device=device)
    log.info("Detectron2 %s: %d iterations of %s on %s", protocol, cfg.SOLVER.MAX_ITER, ckpt, data)
    metrics = train_and_evaluate(cfg)
    if store is not None:
        _store(ckpt, Path(data), protocol, cfg, metrics, store)
    return metrics


def _store(ckpt: Path | str, data: Path, protocol: str, cfg: Any, metrics: dict[str, float], path: Path | str) -> None:
    from evaluate.features import file_sha256
    from evaluate.store import Result, ResultsStore

    meta = read_checkpoint(ckpt)
    ecfg = {"task": "detection", "framework": "detectron2", "protocol": protocol, "iters": int(cfg.SOLVER.MAX_ITER),
            "ims_per_batch": int(cfg.SOLVER.IMS_PER_BATCH)}
    sha, run_id = file_sha256(ckpt), str(meta.get("run_id", Path(ckpt).parent.name))
    rows = [Result(run_id, sha, "detection", data.name, "test", m, v, None, ecfg) for m, v in metrics.items()]
    ResultsStore(path).replace(rows, ckpt_sha256=sha, task="detection", dataset=data.name, eval_config=ecfg)


__all__ = ["ConvertError", "D2Protocol", "PROTOCOLS", "TrainingDiverged", "TransferError", "build_cfg",
           "coco_metrics", "register_scenes", "run", "train_and_evaluate"]
