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

from fsio import file_sha256
from measure.results import Result, ResultsStore
from pretrain.checkpoint import read_meta
from pretrain.resolve import resolve_config

from .convert import ConvertError, check_transferable, convert, pixel_stats
from .errors import TrainingDiverged, TransferError

log = logging.getLogger(__name__)


@dataclass
class D2Protocol:
    """One Detectron2 protocol: the model-zoo config it starts from and what it changes."""

    base: str
    dataset: str                       # "scenes" (a synthetic dataset's COCO export) or Detectron2 names joined by +
    iters: int
    ims_per_batch: int
    lr: float
    norm: str = "BN"
    min_size: tuple[int, ...] = (128,)
    max_size: int = 128
    test_min_size: int = 128
    mask: bool = True
    test_dataset: str = ""             # Detectron2's registered test set (paper protocols)
    overrides: dict[str, Any] = field(default_factory=dict)


PROTOCOLS: dict[str, D2Protocol] = {
    # 128-px images with 2-6 objects: 128 sampled RoIs per image (Detectron2's own value for small data
    # sets) and 256 proposals per image (not 1000): the RoI heads dominate a CPU step otherwise.
    "scenes-r18-fpn": D2Protocol("COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_1x.yaml", "scenes", iters=300,
                                 ims_per_batch=8, lr=0.02, overrides={
                                     "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE": 128,
                                     "MODEL.RPN.PRE_NMS_TOPK_TRAIN": 1000, "MODEL.RPN.POST_NMS_TOPK_TRAIN": 256,
                                     "MODEL.RPN.PRE_NMS_TOPK_TEST": 500, "MODEL.RPN.POST_NMS_TOPK_TEST": 256}),
    "voc-r50-c4": D2Protocol("PascalVOC-Detection/faster_rcnn_R_50_C4.yaml", "voc_2007_trainval+voc_2012_trainval",
                             iters=24000, ims_per_batch=16, lr=0.02, norm="SyncBN",
                             min_size=(480, 512, 544, 576, 608, 640, 672, 704, 736, 768, 800), max_size=1333,
                             test_min_size=800, mask=False, test_dataset="voc_2007_test"),
    "coco-r50-fpn-1x": D2Protocol("COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_1x.yaml", "coco_2017_train",
                                  iters=90000, ims_per_batch=16, lr=0.02, norm="SyncBN",
                                  min_size=(640, 672, 704, 736, 768, 800), max_size=1333, test_min_size=800,
                                  test_dataset="coco_2017_val"),
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

    from synthetic.dataset import open_dataset
    from synthetic.export import export_coco

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


def builtin_data(protocol: str) -> tuple[str, str, int]:
    """(train sets joined by +, test set, classes) of a paper protocol, after checking that the files
    Detectron2's builtin catalog reads (under ``$DETECTRON2_DATASETS``, default ``datasets/``) exist."""
    from detectron2.data import MetadataCatalog

    p = PROTOCOLS[protocol]
    for name in [*p.dataset.split("+"), p.test_dataset]:
        meta = MetadataCatalog.get(name)
        if hasattr(meta, "json_file"):
            needed = [Path(meta.json_file), Path(meta.image_root)]
        else:
            root = Path(meta.dirname)
            needed = [root / "ImageSets" / "Main" / f"{meta.split}.txt", root / "JPEGImages"]
        for path in needed:
            if not path.exists():
                raise TransferError(f"{path}: missing ({name} of protocol {protocol!r}; Detectron2 reads its data "
                                    "under $DETECTRON2_DATASETS, see its datasets/README.md)")
    classes = len(MetadataCatalog.get(p.test_dataset).thing_classes)
    return p.dataset, p.test_dataset, classes


def build_cfg(protocol: str, depth: int, weights: str, out_dir: Path, *, train_set: str, test_set: str,
              num_classes: int, mean: list[float], std: list[float], iters: int | None = None,
              ims_per_batch: int | None = None, device: str = "cpu", input_size: int | None = None) -> Any:
    """The Detectron2 CfgNode of ``protocol`` for a ResNet-``depth`` backbone loaded from ``weights``,
    fed RGB images normalised with ``mean`` / ``std`` (0-255; the checkpoint's own, ``pixel_stats``).
    ``train_set``: Detectron2 dataset names joined by +; ``ims_per_batch``: the total over all
    processes (Detectron2's convention), the learning rate scaled linearly from the protocol's."""
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
    cfg.DATASETS.TRAIN, cfg.DATASETS.TEST = tuple(train_set.split("+")), (test_set,)
    cfg.DATALOADER.NUM_WORKERS = 0 if device == "cpu" else 4
    cfg.INPUT.MIN_SIZE_TRAIN, cfg.INPUT.MAX_SIZE_TRAIN = p.min_size, p.max_size
    cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST = p.test_min_size, p.max_size
    if input_size:                                  # a cut-down run (smoke): shorter side input_size
        cfg.INPUT.MIN_SIZE_TRAIN, cfg.INPUT.MIN_SIZE_TEST = (input_size,), input_size
        cfg.INPUT.MAX_SIZE_TRAIN = cfg.INPUT.MAX_SIZE_TEST = 2 * input_size
        # and few proposals: the C4 head runs res5 once per region (512 a training image, 1000 at test)
        cfg.MODEL.RPN.PRE_NMS_TOPK_TRAIN = cfg.MODEL.RPN.PRE_NMS_TOPK_TEST = 200
        cfg.MODEL.RPN.POST_NMS_TOPK_TRAIN = cfg.MODEL.RPN.POST_NMS_TOPK_TEST = 32
        cfg.MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE = 32
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
    from detectron2.evaluation import COCOEvaluator, PascalVOCDetectionEvaluator, inference_on_dataset
    from detectron2.modeling import build_model
    from detectron2.solver import build_lr_scheduler, build_optimizer

    from detectron2.utils.env import seed_all_rng

    from detectron2.engine import create_ddp_model
    from detectron2.utils import comm
    from detectron2.utils.events import CommonMetricPrinter

    _local_group(comm)
    seed_all_rng((cfg.SEED if cfg.SEED >= 0 else 0) + comm.get_rank())
    model = build_model(cfg)
    DetectionCheckpointer(model).load(cfg.MODEL.WEIGHTS)
    optimizer = build_optimizer(cfg, model)
    cpu = cfg.MODEL.DEVICE == "cpu"
    ddp = create_ddp_model(model, broadcast_buffers=False, **({"device_ids": None} if cpu else {}))
    trainer = SimpleTrainer(ddp, build_detection_train_loader(cfg), optimizer)

    period = max(1, cfg.SOLVER.MAX_ITER // 20)         # progress: iteration, losses, time, ETA
    trainer.register_hooks([hooks.IterationTimer(), hooks.LRScheduler(optimizer, build_lr_scheduler(cfg, optimizer)),
                            hooks.PeriodicWriter([CommonMetricPrinter(cfg.SOLVER.MAX_ITER)], period=period)])
    try:
        trainer.train(0, cfg.SOLVER.MAX_ITER)
    except FloatingPointError as e:
        raise TrainingDiverged(f"Detectron2 training diverged at iteration {trainer.iter}: "
                            f"{str(e).splitlines()[0]}") from e
    model.eval()
    test = cfg.DATASETS.TEST[0]
    comm.synchronize()
    if test.startswith("voc_"):
        evaluator = PascalVOCDetectionEvaluator(test)      # VOC's AP / AP50 / AP75, as MoCo reports
    else:
        evaluator = COCOEvaluator(test, output_dir=str(Path(cfg.OUTPUT_DIR) / "eval"),
                                  tasks=("bbox", "segm") if cfg.MODEL.MASK_ON else ("bbox",),
                                  use_fast_impl=False)    # pycocotools itself (no C++ extension built)
    with torch.no_grad():
        res = inference_on_dataset(model, build_detection_test_loader(cfg, cfg.DATASETS.TEST[0]), evaluator)
    return coco_metrics(res, cfg.MODEL.MASK_ON) if comm.is_main_process() else {}   # gathered on rank 0


def _local_group(comm: Any) -> None:
    """Under torchrun, the per-machine process group Detectron2's own ``launch`` would create (one machine)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and comm._LOCAL_PROCESS_GROUP is None:
        comm._LOCAL_PROCESS_GROUP = dist.new_group(list(range(dist.get_world_size())))


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
        ims_per_batch: int | None = None, lr: float | None = None, device: str = "cpu", num_gpus: int = 1,
        store: Path | str | None = None, input_size: int | None = None) -> dict[str, float]:
    """Convert ``ckpt``, train ``protocol`` on ``data`` (the scenes protocol; the paper protocols read
    Detectron2's builtin data sets and need ``device="cuda"``) in ``num_gpus`` processes, return its
    metrics and, with ``store``, write them to the results store (task ``detection``, split ``test``)."""
    from .launch import check_devices, spawn

    _require_detectron2()
    if protocol not in PROTOCOLS:
        raise TransferError(f"unknown Detectron2 protocol {protocol!r}; valid: {', '.join(PROTOCOLS)}")
    meta = read_meta(ckpt)
    depth = check_transferable(ckpt, meta)
    scenes = PROTOCOLS[protocol].dataset == "scenes"
    if not scenes and not device.startswith("cuda") and not (iters and input_size):
        raise TransferError(f"protocol {protocol!r} is a full-scale GPU protocol: run it with --device cuda "
                            "--num-gpus N, or cut to --transfer-iters N --transfer-input-size S for a check on CPU "
                            "(docs/evaluate.md, 'Full-scale transfer on GPUs')")
    check_devices(num_gpus, device)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    train_set, test_set, classes = register_scenes(Path(data)) if scenes else builtin_data(protocol)
    weights = convert(ckpt, "detectron2", out_dir / "backbone.pkl")
    mean, std = pixel_stats(meta)
    cfg = build_cfg(protocol, depth, str(weights), out_dir, train_set=train_set, test_set=test_set,
                    num_classes=classes, mean=mean, std=std, iters=iters, ims_per_batch=ims_per_batch, device=device,
                    input_size=input_size)
    if lr is not None:
        cfg.SOLVER.BASE_LR = lr
    if cfg.SOLVER.IMS_PER_BATCH % num_gpus:
        raise TransferError(f"--batch {cfg.SOLVER.IMS_PER_BATCH}: expected a multiple of --num-gpus {num_gpus}")
    (out_dir / "config.yaml").write_text(cfg.dump())
    log.info("Detectron2 %s: %d iterations of %s on %s in %d process(es); config %s", protocol,
             cfg.SOLVER.MAX_ITER, ckpt, data if scenes else train_set, num_gpus, out_dir / "config.yaml")
    if num_gpus == 1:
        metrics = train_and_evaluate(cfg)
    else:
        metrics = spawn("detectron2", out_dir / "config.yaml", out_dir / "metrics.json", num_gpus,
                        ["--scenes", str(data)] if scenes else [])
    if store is not None:
        _store(ckpt, Path(data) if scenes else Path(test_set), protocol, cfg, metrics, store)
    return metrics


def _store(ckpt: Path | str, data: Path, protocol: str, cfg: Any, metrics: dict[str, float], path: Path | str) -> None:

    meta = read_meta(ckpt)
    ecfg = {"task": "detection", "framework": "detectron2", "protocol": protocol, "iters": int(cfg.SOLVER.MAX_ITER),
            "ims_per_batch": int(cfg.SOLVER.IMS_PER_BATCH), "lr": float(cfg.SOLVER.BASE_LR)}
    sha, run_id = file_sha256(ckpt), meta.run_id or Path(ckpt).parent.name
    rows = [Result(run_id, sha, "detection", data.name, "test", m, v, None, ecfg) for m, v in metrics.items()]
    store = ResultsStore(path)
    store.record_run(run_id, sha, resolve_config(meta.config))
    store.replace(rows, ckpt_sha256=sha, task="detection", dataset=data.name, eval_config=ecfg)


__all__ = ["ConvertError", "D2Protocol", "PROTOCOLS", "TrainingDiverged", "TransferError", "build_cfg", "builtin_data",
           "coco_metrics", "register_scenes", "run", "train_and_evaluate"]
