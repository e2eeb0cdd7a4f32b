"""Semantic segmentation transfer in mmsegmentation, initialised from an sslbench checkpoint.

Protocols (``PROTOCOLS``):

- ``scenes-r18-fcn``: the CPU version: an FCN head (Long et al., CVPR 2015; mmseg's ``FCNHead``)
  on a dilated ResNet-18 (output stride 8, mmseg's ``ResNet`` with the standard stem, so that
  sslbench weights load as they are) on the synthetic ``scenes`` data (its VOC export), BN
  everywhere, 128-px inputs normalised as the checkpoint's pretraining data, SGD poly schedule.
- ``voc12aug-fcn``, ``cityscapes-fcn``, ``ade20k-upernet``: SlotCon's protocols, mmseg's own
  shipped configs (``fcn_r50-d8_4xb4-20k_voc12aug-512x512``, ``fcn_r50-d8_4xb2-40k_cityscapes-
  769x769``, ``upernet_r50_4xb4-80k_ade20k-512x512``) with the backbone switched to the standard
  stem ResNet-50 loaded from the checkpoint; GPU only (their data sets are not available offline).

Metrics: mmseg's ``IoUMetric``: mIoU, mAcc, aAcc (percent).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from fsio import file_sha256
from measure.results import Result, ResultsStore
from pretrain.checkpoint import read_meta
from pretrain.resolve import resolve_config

from .convert import check_transferable, convert, pixel_stats
from .errors import TrainingDiverged, TransferError

log = logging.getLogger(__name__)

SHIPPED = {
    "voc12aug-fcn": "fcn/fcn_r50-d8_4xb4-20k_voc12aug-512x512.py",
    "cityscapes-fcn": "fcn/fcn_r50-d8_4xb2-40k_cityscapes-769x769.py",
    "ade20k-upernet": "upernet/upernet_r50_4xb4-80k_ade20k-512x512.py",
}
PROTOCOLS = ("scenes-r18-fcn", *SHIPPED)


def shipped_config_path(protocol: str) -> Path:
    """The path of a paper protocol's config inside the installed mmseg (``.mim/configs``)."""
    import mmseg

    path = Path(mmseg.__file__).parent / ".mim" / "configs" / SHIPPED[protocol]
    if not path.exists():
        raise TransferError(f"{path}: mmseg's config for {protocol!r} is missing; run `make setup`")
    return path


def _require_mmseg() -> None:
    try:
        import mmseg  # noqa: F401
    except ImportError as e:
        raise TransferError(f"mmsegmentation is not installed ({e}); run `make setup`") from e


def scenes_voc(data: Path) -> tuple[Path, list[str]]:
    """The VOC export of a synthetic dataset (written if missing) and its class names (background first)."""
    from synthetic.dataset import open_dataset
    from synthetic.export import export_voc

    if not (Path(data) / "semantic.npy").exists():
        raise TransferError(f"{data}: no semantic masks (segmentation needs a synthetic dataset with masks)")
    voc = export_voc(open_dataset(data))
    return voc, (voc / "classes.txt").read_text().split()


def scenes_config(depth: int, weights: str, voc: Path, classes: list[str], out_dir: Path, iters: int,
                  batch: int, mean: list[float], std: list[float], size: int = 128,
                  lr: float = 0.01) -> dict[str, Any]:
    """The mmengine config dict of ``scenes-r18-fcn`` (any ResNet depth with the standard stem), RGB
    inputs normalised with ``mean`` / ``std`` (0-255; the checkpoint's own, ``pixel_stats``)."""
    channels = 512 if depth < 50 else 2048
    norm = dict(type="BN", requires_grad=True)
    palette = [[(37 * i) % 256, (91 * i) % 256, (151 * i) % 256] for i in range(len(classes))]
    dataset = dict(type="BaseSegDataset", data_root=str(voc), img_suffix=".jpg", seg_map_suffix=".png",
                   metainfo=dict(classes=tuple(classes), palette=palette), reduce_zero_label=False,
                   data_prefix=dict(img_path="JPEGImages", seg_map_path="SegmentationClass"))
    train_pipeline = [dict(type="LoadImageFromFile"), dict(type="LoadAnnotations"),
                      dict(type="RandomFlip", prob=0.5), dict(type="PackSegInputs")]
    test_pipeline = [dict(type="LoadImageFromFile"), dict(type="LoadAnnotations"), dict(type="PackSegInputs")]
    return dict(
        default_scope="mmseg",
        model=dict(
            type="EncoderDecoder",
            data_preprocessor=dict(type="SegDataPreProcessor", mean=list(mean), std=list(std), bgr_to_rgb=True,
                                   pad_val=0, seg_pad_val=255, size=(size, size)),
            backbone=dict(type="ResNet", depth=depth, num_stages=4, out_indices=(3,), strides=(1, 2, 1, 1),
                          dilations=(1, 1, 2, 4), contract_dilation=True, style="pytorch", norm_cfg=norm,
                          norm_eval=False, init_cfg=dict(type="Pretrained", checkpoint=weights)),
            decode_head=dict(type="FCNHead", in_channels=channels, in_index=0, channels=128, num_convs=2,
                             concat_input=True, dropout_ratio=0.1, num_classes=len(classes), norm_cfg=norm,
                             align_corners=False, loss_decode=dict(type="CrossEntropyLoss", loss_weight=1.0)),
            train_cfg=dict(), test_cfg=dict(mode="whole")),
        train_dataloader=dict(batch_size=batch, num_workers=0, sampler=dict(type="InfiniteSampler", shuffle=True),
                              dataset=dict(**dataset, ann_file="ImageSets/Segmentation/train.txt",
                                           pipeline=train_pipeline)),
        test_dataloader=dict(batch_size=1, num_workers=0, sampler=dict(type="DefaultSampler", shuffle=False),
                             dataset=dict(**dataset, ann_file="ImageSets/Segmentation/test.txt",
                                          pipeline=test_pipeline)),
        test_evaluator=dict(type="IoUMetric", iou_metrics=["mIoU"]),
        train_cfg=dict(type="IterBasedTrainLoop", max_iters=iters, val_interval=10 ** 9),
        test_cfg=dict(type="TestLoop"),
        optim_wrapper=dict(type="OptimWrapper", optimizer=dict(type="SGD", lr=lr, momentum=0.9, weight_decay=5e-4)),
        param_scheduler=[dict(type="PolyLR", eta_min=1e-4, power=0.9, begin=0, end=iters, by_epoch=False)],
        default_hooks=dict(logger=dict(type="LoggerHook", interval=max(1, iters // 10)),
                           checkpoint=dict(type="CheckpointHook", interval=10 ** 9),
                           timer=dict(type="IterTimerHook")),
        env_cfg=dict(cudnn_benchmark=False, dist_cfg=dict(backend="gloo")),
        randomness=dict(seed=0),
        work_dir=str(out_dir),
        log_level="INFO",                          # the LoggerHook's progress lines (iteration, loss, ETA)
    )


STAGE_CHANNELS = {18: (64, 128, 256, 512), 34: (64, 128, 256, 512), 50: (256, 512, 1024, 2048),
                  101: (256, 512, 1024, 2048), 152: (256, 512, 1024, 2048)}


def _head_channels(head: dict[str, Any], depth: int) -> None:
    """Set a decode / auxiliary head's ``in_channels`` for the stages it reads (``in_index``) of a ResNet-``depth``."""
    idx = head.get("in_index", -1)
    stages = STAGE_CHANNELS[depth]
    head["in_channels"] = [stages[i] for i in idx] if isinstance(idx, (list, tuple)) else stages[idx]


def _rebase_data(node: Any, root: Path, seen: list[Path]) -> None:
    """Replace every ``data_root`` of the form ``data/...`` (mmseg's layout) with ``root/...``, in place."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "data_root" and isinstance(v, str):
                node[k] = str(root / Path(v).relative_to("data")) if Path(v).parts[:1] == ("data",) else v
                seen.append(Path(node[k]))
            else:
                _rebase_data(v, root, seen)
    elif isinstance(node, list):
        for v in node:
            _rebase_data(v, root, seen)


def paper_config(protocol: str, depth: int, weights: str, data: Path, out_dir: Path, mean: list[float],
                 std: list[float], iters: int | None = None, batch: int | None = None) -> dict[str, Any]:
    """mmseg's shipped config of a paper protocol (SlotCon's) with the backbone switched to the
    standard-stem ``ResNet`` of ``depth`` loaded from ``weights`` (instead of the deep-stem
    ``ResNetV1c`` ImageNet weights), the heads' input channels matched to it, inputs normalised
    with ``mean`` / ``std`` (0-255), the data read under ``data`` (mmseg's ``data/`` layout, e.g.
    ``data/VOCdevkit/VOC2012``), ``iters`` iterations and ``batch`` images per GPU if given."""
    from mmengine.config import Config

    cfg = Config.fromfile(str(shipped_config_path(protocol))).to_dict()
    model = cfg["model"]
    model["pretrained"] = None
    model["backbone"].update(type="ResNet", depth=depth, init_cfg=dict(type="Pretrained", checkpoint=weights))
    model["data_preprocessor"].update(mean=list(mean), std=list(std), bgr_to_rgb=True)
    for head in ("decode_head", "auxiliary_head"):
        if model.get(head):
            _head_channels(model[head], depth)
    if batch:
        cfg["train_dataloader"]["batch_size"] = batch
    if iters:
        cfg["train_cfg"]["max_iters"] = iters
        for sched in cfg["param_scheduler"]:
            sched["end"] = iters
    roots: list[Path] = []
    _rebase_data(cfg, Path(data), roots)
    for root in roots:
        if not root.is_dir():
            raise TransferError(f"{root}: missing (the {protocol!r} data in mmseg's layout, see mmseg's "
                                "docs/en/user_guides/2_dataset_prepare.md)")
    cfg["work_dir"] = str(out_dir)
    return cfg


def _resize_inputs(node: Any, side: int) -> None:
    """A cut-down run (smoke): every crop and padded size of the config ``side`` x ``side``, every
    resize scale's shorter side ``side`` (the shipped ratio kept), in place."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k in ("crop_size", "size") and isinstance(v, (tuple, list)) and len(v) == 2:
                node[k] = (side, side)
            elif k == "scale" and isinstance(v, (tuple, list)) and len(v) == 2:
                node[k] = (round(v[0] * side / min(v)), round(v[1] * side / min(v)))
            else:
                _resize_inputs(v, side)
    elif isinstance(node, list):
        for v in node:
            _resize_inputs(v, side)


def _finite_loss_hook() -> Any:
    """An mmengine hook that stops training when the loss is NaN / inf (mmseg has none of its own)."""
    import math

    from mmengine.hooks import Hook

    class FiniteLoss(Hook):
        def after_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
            loss = float((outputs or {}).get("loss", 0.0))
            if not math.isfinite(loss):
                raise TrainingDiverged(f"mmseg training diverged at iteration {runner.iter + 1}: loss {loss}")

    return FiniteLoss()


def train_and_evaluate(config: dict[str, Any], launcher: str = "none") -> dict[str, float]:
    """Train and test an mmseg config dict with mmengine's Runner: {"miou", "macc", "aacc"};
    TrainingDiverged if the loss stops being finite. ``launcher="pytorch"``: one of torchrun's
    processes (the process group already joined, ``launch.init_worker``)."""
    import torch
    from mmengine.config import Config
    from mmengine.runner import Runner
    from mmseg.utils import register_all_modules

    register_all_modules(init_default_scope=False)
    config = {**config, "launcher": launcher}
    if launcher != "none" and not torch.cuda.is_available():   # CPU processes: DDP without device ids
        config["model_wrapper_cfg"] = dict(type="MMDistributedDataParallel", device_ids=None,
                                           broadcast_buffers=False, find_unused_parameters=False)
    runner = Runner.from_cfg(Config(config))
    runner.register_hook(_finite_loss_hook(), priority="VERY_HIGH")
    runner.train()
    res = runner.test()
    out = {"miou": res.get("mIoU"), "macc": res.get("mAcc"), "aacc": res.get("aAcc")}
    if any(v is None for v in out.values()):
        raise TransferError(f"mmseg returned no mIoU / mAcc / aAcc (got {sorted(res)})")
    return {k: float(v) for k, v in out.items()}


def run(ckpt: Path | str, protocol: str, data: Path | str, out_dir: Path | str, *, iters: int | None = None,
        batch: int | None = None, lr: float | None = None, device: str = "cpu", num_gpus: int = 1,
        store: Path | str | None = None, input_size: int | None = None) -> dict[str, float]:
    """Convert ``ckpt``, train ``protocol`` on ``data`` in ``num_gpus`` processes (``batch`` images
    each, mmseg's convention), return mIoU / mAcc / aAcc and, with ``store``, write them to the
    results store (task ``segmentation_transfer``). The paper protocols need ``device="cuda"``;
    ``data`` is then the root of mmseg's data layout (``data``)."""
    from .launch import check_devices, spawn

    _require_mmseg()
    if protocol not in PROTOCOLS:
        raise TransferError(f"unknown mmseg protocol {protocol!r}; valid: {', '.join(PROTOCOLS)}")
    meta = read_meta(ckpt)
    depth = check_transferable(ckpt, meta)
    if protocol in SHIPPED and not device.startswith("cuda") and not (iters and input_size):
        raise TransferError(f"protocol {protocol!r} ({SHIPPED[protocol]}) is a full-scale GPU protocol: run it with "
                            "--device cuda --num-gpus N, or cut to --transfer-iters N --transfer-input-size S for a "
                            "check on CPU (docs/evaluate.md, 'Full-scale transfer on GPUs')")
    check_devices(num_gpus, device)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    mean, std = pixel_stats(meta)
    if protocol in SHIPPED:
        weights = convert(ckpt, "mmseg", out_dir / "backbone.pth")
        config = paper_config(protocol, depth, str(weights), Path(data), out_dir, mean, std, iters, batch)
        if input_size:
            _resize_inputs(config, input_size)
        if lr is not None:
            config["optim_wrapper"]["optimizer"]["lr"] = lr
    else:
        voc, classes = scenes_voc(Path(data))
        weights = convert(ckpt, "mmseg", out_dir / "backbone.pth")
        config = scenes_config(depth, str(weights), voc, classes, out_dir, iters or 300, batch or 8, mean, std,
                               lr=0.01 if lr is None else lr)
    iters, batch = config["train_cfg"]["max_iters"], config["train_dataloader"]["batch_size"]
    if num_gpus == 1:
        metrics = train_and_evaluate(config)
    else:
        from mmengine.config import Config

        Config(config).dump(out_dir / "config.py")
        metrics = spawn("mmseg", out_dir / "config.py", out_dir / "metrics.json", num_gpus)
    if store is not None:
        ecfg = {"task": "segmentation_transfer", "framework": "mmseg", "protocol": protocol, "iters": iters,
                "batch": batch * num_gpus, "lr": config["optim_wrapper"]["optimizer"]["lr"]}
        sha, run_id, name = file_sha256(ckpt), meta.run_id or Path(ckpt).parent.name, Path(data).name
        rows = [Result(run_id, sha, "segmentation_transfer", name, "test", m, v, None, ecfg)
                for m, v in metrics.items()]
        results = ResultsStore(store)
        results.record_run(run_id, sha, resolve_config(meta.config))
        results.replace(rows, ckpt_sha256=sha, task="segmentation_transfer", dataset=name, eval_config=ecfg)
    return metrics


__all__ = ["PROTOCOLS", "SHIPPED", "paper_config", "run", "shipped_config_path", "scenes_config", "scenes_voc",
           "train_and_evaluate"]
