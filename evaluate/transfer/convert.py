"""sslbench checkpoint -> the backbone weight files Detectron2 and mmsegmentation load.

Detectron2 (``to_detectron2``): the ``.pkl`` layout of its ResNet as written by the MoCo and
SlotCon conversion scripts -- ``{"model": {name: ndarray}, "__author__": "sslbench",
"matching_heuristics": True}`` with torchvision names mapped to Detectron2's: ``conv1`` ->
``stem.conv1``, ``bn1`` -> ``stem.conv1.norm``, ``layer{i}.{j}.conv{k}`` -> ``res{i+1}.{j}.conv{k}``,
``bn{k}`` -> ``conv{k}.norm``, ``downsample.0`` / ``downsample.1`` -> ``shortcut`` /
``shortcut.norm``. Detectron2's checkpointer matches these names to ``backbone.*`` or
``backbone.bottom_up.*`` (C4 or FPN) by suffix.

mmsegmentation (``to_mmseg``): an mmengine checkpoint ``{"state_dict": ..., "meta": ...}`` whose
keys are those of mmseg's ``ResNet`` (``style="pytorch"``, no deep stem), i.e. torchvision's own,
for ``init_cfg=dict(type="Pretrained", checkpoint=FILE)`` on the backbone.

Both refuse a backbone they cannot take (ResNet-18/50 with the standard stem; the small-image
stem has a 3x3 first conv and no max-pool, which neither framework's ResNet builds), and a
checkpoint with an ``input_transform`` (the masking paper's high-pass filter): the frameworks'
data pipelines would feed it plain images, so it is refused with one line naming the checkpoint
and its transform rather than evaluated on images it never saw in training.
"""
from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import torch

from fsio import atomic_path
from pretrain.checkpoint import CheckpointMeta, load_backbone

DEPTHS = {"resnet18": 18, "resnet50": 50}


class ConvertError(ValueError):
    """A checkpoint the target framework's ResNet cannot take."""


def backbone_depth(meta: CheckpointMeta) -> int:
    """The ResNet depth of a checkpoint both frameworks can build, else ConvertError."""
    name = meta.backbone.name
    if name not in DEPTHS:
        raise ConvertError(f"backbone {name!r}: Detectron2 / mmseg transfer takes {', '.join(DEPTHS)} only")
    if meta.backbone.kwargs.get("width", 64) != 64:
        raise ConvertError(f"backbone {name!r} at width {meta.backbone.kwargs['width']}: the frameworks' ResNets "
                           "have the standard widths (64 ... 512)")
    if meta.backbone.kwargs.get("small_stem"):
        raise ConvertError(f"backbone {name!r} with small_stem=true: the frameworks' ResNets have the standard "
                           "7x7 stem and max-pool")
    return DEPTHS[name]


def check_transferable(ckpt: Path | str, meta: CheckpointMeta) -> int:
    """The ResNet depth of a checkpoint both frameworks can take as it was trained, else
    ConvertError: a backbone they cannot build (``backbone_depth``), or an input transform they
    would not apply (neither framework's pipeline has a hook for it here)."""
    if meta.input_transform is not None:
        raise ConvertError(f"{ckpt}: input_transform {meta.input_transform} cannot be applied inside Detectron2 / "
                           "mmseg (their pipelines would feed the backbone untransformed images): transfer refused")
    return backbone_depth(meta)


def pixel_stats(meta: CheckpointMeta) -> tuple[list[float], list[float]]:
    """The checkpoint's input normalisation (RGB mean and std of its pretraining data) on the
    0-255 scale the frameworks' data pipelines use: the features were learnt on inputs normalised
    with exactly these."""
    return [255.0 * float(m) for m in meta.data.mean], [255.0 * float(s) for s in meta.data.std]


def _resnet_state(state: dict[str, torch.Tensor], meta: CheckpointMeta) -> dict[str, torch.Tensor]:
    """The checkpoint's backbone tensors, without BN step counters."""
    backbone_depth(meta)
    return {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}


_LAYER = re.compile(r"^layer(\d)\.(\d+)\.(.+)$")


def detectron2_name(key: str) -> str:
    """torchvision ResNet key -> Detectron2 ResNet key (see the module docstring)."""
    if key.startswith("conv1."):
        return "stem." + key
    if key.startswith("bn1."):
        return "stem.conv1.norm." + key[len("bn1."):]
    m = _LAYER.match(key)
    if not m:
        raise ConvertError(f"unexpected ResNet key {key!r}")
    stage, block, rest = int(m.group(1)), m.group(2), m.group(3)
    rest = re.sub(r"^bn(\d)\.", r"conv\1.norm.", rest)
    rest = re.sub(r"^downsample\.0\.", "shortcut.", rest)
    rest = re.sub(r"^downsample\.1\.", "shortcut.norm.", rest)
    return f"res{stage + 1}.{block}.{rest}"


def to_detectron2(state: dict[str, torch.Tensor], meta: CheckpointMeta) -> dict[str, Any]:
    """The Detectron2 ``.pkl`` payload of a checkpoint's backbone ``state`` (float32 numpy arrays)."""
    model = {detectron2_name(k): v.detach().float().cpu().numpy() for k, v in _resnet_state(state, meta).items()}
    return {"model": model, "__author__": "sslbench", "matching_heuristics": True}


def to_mmseg(state: dict[str, torch.Tensor], meta: CheckpointMeta) -> dict[str, Any]:
    """The mmengine checkpoint of a checkpoint's backbone ``state`` (mmseg ``ResNet`` keys = torchvision's)."""
    state = {k: v.detach().float().cpu().clone() for k, v in _resnet_state(state, meta).items()}
    return {"state_dict": state, "meta": {"sslbench_run_id": meta.run_id, "method": meta.method,
                                          "depth": backbone_depth(meta)}}


TARGETS: dict[str, str] = {"detectron2": ".pkl", "mmseg": ".pth"}


def convert(ckpt: Path | str, to: str, out: Path | str) -> Path:
    """Write ``ckpt``'s backbone as a ``to`` (detectron2 | mmseg) weight file at ``out`` (atomically)."""
    if to not in TARGETS:
        raise ConvertError(f"--to {to!r}: valid targets: {', '.join(TARGETS)}")
    model, meta = load_backbone(ckpt)                  # strict: a file that does not rebuild fails here
    check_transferable(ckpt, meta)
    state, out = model.state_dict(), Path(out)
    with atomic_path(out) as tmp:
        if to == "detectron2":
            tmp.write_bytes(pickle.dumps(to_detectron2(state, meta), protocol=pickle.HIGHEST_PROTOCOL))
        else:
            torch.save(to_mmseg(state, meta), tmp)
    return out


__all__ = ["ConvertError", "TARGETS", "backbone_depth", "check_transferable", "convert", "pixel_stats",
           "detectron2_name", "to_detectron2", "to_mmseg"]
