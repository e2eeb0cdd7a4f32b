"""What a full plan costs on GPUs, printed by ``reproduce --scale full --dry-run``.

Every estimate is a stated cost scaled by a measured ratio, in V100 GPU-hours (the hardware of the
stated costs; newer GPUs are faster by a factor this module does not guess):

- pretraining: MoCo v2's ResNet-50, 200 ImageNet epochs, 53 hours on 8 V100 (facebookresearch/moco
  README @78b69ca), i.e. ``VIEW_SECONDS`` V100-seconds per 224-px view through a ResNet-50
  (forward and backward, its momentum encoder's forward included); a run costs epochs x
  images x its method's views (``VIEWS``: 224-px view equivalents a step, by pixel count) x the
  backbone's FLOPs at its image size relative to a ResNet-50 at 224 (counted here with
  ``torch.utils.flop_counter`` on one image);
- Detectron2 transfers: the model zoo's s/iter on 8 V100 (MODEL_ZOO.md: Mask R-CNN R50-FPN 1x
  0.261, R50-C4 0.584, used for VOC's Faster R-CNN C4 too) x the protocol's iterations;
- mmseg's FCN and the suites' probes are not estimated (no stated cost; the frozen-feature probes
  read cached features, a small share beside pretraining): the estimate says so.

A warning is printed where a run's batch per GPU needs more memory than ``--gpu-memory``: the
activation memory of one view, measured as the bytes autograd saves for a forward pass of the
backbone (bf16: half the fp32 bytes), times the views a GPU holds, plus weights and optimizer state.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

VIEW_SECONDS = 53 * 3600 * 8 / (200 * 1281167 * 2)      # V100-s per 224-px ResNet-50 view (fwd + bwd)
# training images a full run reads per epoch, by dataset folder (the datasets' own counts)
DATASET_IMAGES = {"imagenet": 1281167, "imagenet-100": 126689, "instances_train2017.json": 118287,
                  "trackingnet": 14431266}
# 224-px views a step per image, by pixel count (multi-crop: 2 x 224 + 6 x 96 -> 2 + 6 x (96/224)^2;
# rotation: four rotated copies; PIRL: the image and 9 jigsaw tiles of 64 px)
VIEWS = {"simclr": 2.0, "mocov2": 2.0, "byol": 2.0, "simsiam": 2.0, "mocov3": 2.0, "swav": 2 + 6 * (96 / 224) ** 2,
         "dino": 2 + 6 * (96 / 224) ** 2, "pirl": 1 + 9 * (64 / 224) ** 2, "slotcon": 2.0, "temporal": 2.0,
         "cmc": 2.0, "rotation": 4.0, "vae": 1.0, "supervised": 1.0, "random": 0.0}
# Detectron2 protocols: (V100 node-seconds per iteration on 8 GPUs, MODEL_ZOO.md) - iterations from the protocol
D2_SECONDS = {"voc-r50-c4": 0.584, "coco-r50-fpn-1x": 0.261}
GPUS = 8


@dataclass
class Estimate:
    """GPU-hours of one step (0 where not estimated, with ``note`` saying why); ``memory_gb``: the
    measured memory a GPU needs for it (0: not measured)."""

    gpu_hours: float
    note: str = ""
    memory_gb: float = 0.0


@functools.lru_cache(maxsize=None)
def backbone_profile(name: str, kwargs: tuple = (), size: int = 224) -> tuple[float, float, float]:
    """(forward FLOPs, activation bytes autograd saves in fp32, parameter count) of backbone ``name``
    on one ``size``-px image, measured on the CPU."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from pretrain.backbones import build_backbone

    net = build_backbone(name, **dict(kwargs))
    x = torch.zeros(1, 3, size, size)
    saved = [0]

    def pack(t: torch.Tensor) -> torch.Tensor:
        saved[0] += t.numel() * t.element_size()
        return t

    with FlopCounterMode(display=False) as counter, torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        net(x)
    return float(counter.get_total_flops()), float(saved[0]), float(sum(p.numel() for p in net.parameters()))


def _images(data: str, n_arg: int | None) -> int | None:
    name = Path(data).name
    if name in DATASET_IMAGES:
        return DATASET_IMAGES[name]
    return int(n_arg * 0.8) if n_arg else None          # a synthetic set rendered by the plan: its train split


def pretrain_estimate(args: tuple[str, ...], rendered: dict[str, int], gpu_memory_gb: float) -> Estimate:
    """The cost of a pretraining step (its ``python -m pretrain`` arguments) and the memory a GPU needs."""
    from pretrain.config import build_config, parse_overrides

    method = args[args.index("--method") + 1]
    aug = args[args.index("--aug") + 1] if "--aug" in args else None
    preset = args[args.index("--preset") + 1]
    data = args[args.index("--data") + 1]
    rest = [a for a in args if a.startswith("--") and "." in a.partition("=")[0]]
    cfg = build_config(method, aug, preset, parse_overrides(rest))
    images = _images(data, rendered.get(data))
    if images is None:
        return Estimate(0.0, f"{data}: unknown image count")
    size = cfg.data.image_size or 64
    flops, act, params = backbone_profile(cfg.backbone.name, tuple(sorted(cfg.backbone.kwargs.items())), size)
    ref, _, _ = backbone_profile("resnet50", (), 224)
    views = VIEWS.get(method, 2.0)
    epochs = cfg.train.epochs if not cfg.train.steps else cfg.train.steps * cfg.data.batch_size / images
    seconds = epochs * images * views * (flops / ref) * VIEW_SECONDS
    per_gpu = cfg.data.batch_size / GPUS * max(views, 1.0)
    memory = (per_gpu * act / 2 + 4 * 4 * params) / 1e9       # bf16 activations; weights, grads, 2 optimizer slots
    warn = f"batch {cfg.data.batch_size // GPUS} a GPU needs ~{memory:.0f} GB, over {gpu_memory_gb:.0f} GB" \
        if memory > gpu_memory_gb else ""
    return Estimate(seconds / 3600, warn, memory)


def step_estimate(step, rendered: dict[str, int], gpu_memory_gb: float, checkpoints: int = 1) -> Estimate:  # noqa: ANN001
    """The estimate of any step of a full plan (``reports.reproduce.Step``); a transfer step's
    ``checkpoints``: the runs it transfers."""
    if step.module == "pretrain":
        return pretrain_estimate(step.args, rendered, gpu_memory_gb)
    if step.module == "evaluate.suite" and "--detectron2-protocol" in step.args:
        proto = step.args[step.args.index("--detectron2-protocol") + 1]
        from evaluate.transfer.detectron2 import PROTOCOLS
        return Estimate(D2_SECONDS[proto] * PROTOCOLS[proto].iters * GPUS / 3600 * checkpoints, "")
    if step.module == "evaluate.suite" and "--mmseg-protocol" in step.args:
        return Estimate(0.0, "mmseg: no stated cost, not estimated")
    return Estimate(0.0)


def rendered_images(steps) -> dict[str, int]:  # noqa: ANN001
    """``--out`` folder -> ``--n`` of every synthetic.generate step of a plan."""
    out = {}
    for s in steps:
        if s.module == "synthetic.generate":
            out[s.args[s.args.index("--out") + 1]] = int(s.args[s.args.index("--n") + 1])
    return out


def format_hours(hours: float) -> str:
    return f"{hours:,.0f}" if hours >= 10 else f"{hours:.1f}" if not math.isnan(hours) else "?"


def plan_estimates(steps, gpu_memory_gb: float = 80.0) -> list[Estimate]:  # noqa: ANN001
    """One :class:`Estimate` per step of a full plan (a transfer step counts every run of its group)."""
    rendered = rendered_images(steps)
    groups: dict[str, int] = {}
    for s in steps:
        if s.module == "pretrain":
            out = next(a.partition("=")[2] for a in s.args if a.startswith("--train.out="))
            groups[out] = groups.get(out, 0) + 1
    out = []
    for s in steps:
        n = groups.get(s.args[0], 1) if s.module == "evaluate.suite" else 1
        out.append(step_estimate(s, rendered, gpu_memory_gb, n))
    return out
