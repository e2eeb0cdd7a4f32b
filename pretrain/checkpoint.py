"""The checkpoint contract: backbone-only, self-describing ``ckpt.pt`` and ``load_backbone``.

``ckpt.pt`` (``torch.load(..., weights_only=True)``) holds: format_version, backbone {name,
kwargs, num_features}, state_dict (no ``module.`` / ``_orig_mod.`` / ``encoder.`` prefixes; loads
strictly into the named backbone), exported (online | momentum), method, aug, run_id, config
(plain dict), data {name, image_size, mean, std}, train {epochs, steps, seed, complete},
provenance {git_sha, dirty, torch, created}, input_transform (None, or {name, params} of a
registered transform every protocol applies to the normalised images before the backbone, e.g. the
masking paper's high-pass filter; absent in older checkpoints: None). Optimiser / heads / EMA state
live in ``resume.pt``.

Everything but the weights is read as a typed :class:`CheckpointMeta` (``read_meta``,
``load_backbone``): a field that a checkpoint lacks is an error naming it, never a ``KeyError``
deep inside an evaluation. ``config`` is the run's fully resolved configuration: the method's
and the augmentation policy's settings hold every field of their config dataclasses, defaults
included, so that the reports can tell runs apart without knowing any default.

``load_backbone`` returns the backbone behind its input transform when the checkpoint has one
(:class:`pretrain.augment.input_transforms.InputTransformed`, same backbone contract), so that every
protocol that feeds it normalised images applies the transform; an unregistered transform name is
a CheckpointError.
"""
from __future__ import annotations

import dataclasses
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fsio import atomic_path

from .augment.input_transforms import INPUT_TRANSFORMS, InputTransform, with_input_transform
from .backbones import BACKBONES, build_backbone

FORMAT_VERSION = 1
REQUIRED = ("format_version", "backbone", "state_dict", "exported", "method", "aug", "run_id", "config", "data",
            "train", "provenance")
_PREFIXES = ("module.", "_orig_mod.", "encoder.")


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable, foreign, or does not match its backbone."""


@dataclass(frozen=True)
class BackboneSpec:
    """What rebuilds the network: ``build_backbone(name, **kwargs)``, with ``num_features`` pooled features."""

    name: str
    kwargs: dict[str, Any]
    num_features: int


@dataclass(frozen=True)
class DataSpec:
    """The pretraining data: its name, side in pixels, per-channel mean / std in [0, 1] (the
    normalisation every protocol applies), and where it was read (absent in older checkpoints)."""

    name: str
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    path: str | None = None
    split: str | None = None


@dataclass(frozen=True)
class TrainSpec:
    """How far training went: epochs, steps (of total_steps), seed, processes, and whether it finished."""

    epochs: float
    steps: int
    seed: int
    complete: bool = False
    total_steps: int | None = None
    world_size: int = 1


@dataclass(frozen=True)
class CheckpointMeta:
    """Everything in ``ckpt.pt`` but the weights (see the module docstring for each field)."""

    format_version: int
    backbone: BackboneSpec
    exported: str
    method: str
    aug: str
    run_id: str
    config: dict[str, Any]
    data: DataSpec
    train: TrainSpec
    provenance: dict[str, Any] = field(default_factory=dict)
    input_transform: InputTransform | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "checkpoint") -> "CheckpointMeta":
        """The typed metadata of a checkpoint dict; CheckpointError naming ``where`` and the field
        on anything missing or of the wrong kind."""
        try:
            return cls(format_version=int(d["format_version"]), backbone=_spec(BackboneSpec, d["backbone"], "backbone"),
                       exported=str(d["exported"]), method=str(d["method"]), aug=str(d["aug"]),
                       run_id=str(d["run_id"]), config=dict(d["config"] or {}),
                       data=_spec(DataSpec, d["data"], "data"), train=_spec(TrainSpec, d["train"], "train"),
                       provenance=dict(d.get("provenance") or {}),
                       input_transform=_input_transform(d.get("input_transform"), where))
        except CheckpointError:
            raise
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointError(f"{where}: malformed checkpoint metadata ({e})") from e

    @property
    def view_size(self) -> int:
        """The side of the views the backbone was trained on: the policy's ``out_size`` (the cpu
        preset's 32-px views of 64-px images), else the data's own size. Every protocol reads
        images at this size unless told otherwise (Touvron et al., "Fixing the train-test
        resolution discrepancy", NeurIPS 2019: a network is best evaluated near its training
        resolution)."""
        aug_cfg = self.config.get("aug_cfg") or {}
        return int(aug_cfg.get("out_size") or self.data.image_size)

    def to_dict(self) -> dict[str, Any]:
        """The plain dict stored in ``ckpt.pt`` (lists for tuples)."""
        out = dataclasses.asdict(self)
        out["data"]["mean"], out["data"]["std"] = list(self.data.mean), list(self.data.std)
        return out


def _input_transform(d: Any, where: str) -> InputTransform | None:
    """The checkpoint's input transform (None when it has none); CheckpointError for a name that is
    not registered or settings the transform does not take."""
    if isinstance(d, dict) and isinstance(d.get("name"), str) and d["name"] not in INPUT_TRANSFORMS:
        raise CheckpointError(f"{where}: input_transform {d['name']!r} is not registered "
                              f"(valid: {', '.join(INPUT_TRANSFORMS)})")
    try:
        return InputTransform.from_dict(d)
    except ValueError as e:
        raise CheckpointError(f"{where}: bad input_transform ({e})") from e


def _spec(cls: type, d: Any, name: str) -> Any:
    """``cls(**d)`` keeping only its fields; a missing required field names ``name.field``."""
    if not isinstance(d, dict):
        raise TypeError(f"{name} is a {type(d).__name__}, expected a dict")
    known = {f.name: f for f in dataclasses.fields(cls)}
    missing = [f"{name}.{k}" for k, f in known.items()
               if k not in d and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise KeyError(", ".join(missing))
    values = {k: v for k, v in d.items() if k in known}
    for k in ("mean", "std"):
        if k in values:
            values[k] = tuple(float(x) for x in values[k])
    return cls(**values)


def save_atomic(obj: Any, path: Path | str) -> None:
    """``torch.save`` through :func:`fsio.atomic_path`: the file is the old one or the complete new one."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def clean_state_dict(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Strip wrapper prefixes (DDP ``module.``, torch.compile ``_orig_mod.``), detach to CPU, and store
    every tensor in the standard (contiguous) layout whatever memory format it was trained in."""
    out = {}
    for k, v in sd.items():
        changed = True
        while changed:
            changed = False
            for p in _PREFIXES:
                if k.startswith(p):
                    k, changed = k[len(p):], True
        out[k] = v.detach().cpu().clone(memory_format=torch.contiguous_format)
    return out


def provenance() -> dict[str, Any]:
    root = Path(__file__).resolve().parents[1]

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    return {"git_sha": git("rev-parse", "HEAD") or "unknown", "dirty": bool(git("status", "--porcelain")),
            "torch": str(torch.__version__), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def export_checkpoint(path: Path | str, backbone: nn.Module, *, name: str, kwargs: dict, exported: str,
                      method: str, aug: str, run_id: str, config: dict, data: DataSpec, train: TrainSpec,
                      input_transform: InputTransform | None = None) -> None:
    """Write ``ckpt.pt`` for ``backbone`` (built as ``build_backbone(name, **kwargs)``), trained on
    inputs through ``input_transform`` (None: plain images)."""
    meta = CheckpointMeta(format_version=FORMAT_VERSION,
                          backbone=BackboneSpec(name, dict(kwargs), int(backbone.num_features)), exported=exported,
                          method=method, aug=aug, run_id=run_id, config=config, data=data, train=train,
                          provenance=provenance(), input_transform=input_transform)
    save_atomic({**meta.to_dict(), "state_dict": clean_state_dict(backbone.state_dict())}, path)


def read_meta(path: Path | str) -> CheckpointMeta:
    """The typed metadata of ``ckpt.pt`` (validated as :func:`read_checkpoint` does)."""
    return read_checkpoint(path)[1]


def read_checkpoint(path: Path | str) -> tuple[dict[str, torch.Tensor], CheckpointMeta]:
    """Load and validate a ``ckpt.pt`` (weights_only) -> (state dict, metadata); CheckpointError on
    anything wrong."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated files, pickles with foreign classes, not a torch file
        raise CheckpointError(f"{path}: not a readable sslbench checkpoint ({type(e).__name__}: "
                              f"{str(e).splitlines()[0][:200]})") from e
    if not isinstance(ckpt, dict) or any(k not in ckpt for k in REQUIRED):
        missing = [k for k in REQUIRED if not isinstance(ckpt, dict) or k not in ckpt]
        raise CheckpointError(f"{path}: not an sslbench checkpoint (missing {', '.join(missing)})")
    if ckpt["format_version"] != FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format {ckpt['format_version']}, this sslbench reads "
                              f"{FORMAT_VERSION}")
    if not isinstance(ckpt["state_dict"], dict):
        raise CheckpointError(f"{path}: state_dict is a {type(ckpt['state_dict']).__name__}, expected a dict")
    return ckpt["state_dict"], CheckpointMeta.from_dict(ckpt, str(path))


def load_backbone(path: Path | str, device: str | torch.device = "cpu") -> tuple[nn.Module, CheckpointMeta]:
    """Rebuild the backbone of ``ckpt.pt`` and load its weights strictly -> (module in eval mode, meta).

    A checkpoint with an ``input_transform`` gives the backbone behind it (``InputTransformed``:
    the same contract, every normalised input (B, 3, H, W) transformed first). Fails loudly
    (CheckpointError) on a missing / truncated / foreign file, an unknown backbone or input
    transform, or any missing / unexpected / mis-shaped key: no downloads, no random fallback.
    """
    state_dict, meta = read_checkpoint(path)
    spec = meta.backbone
    if spec.name not in BACKBONES:
        raise CheckpointError(f"{path}: backbone {spec.name!r} is not registered (valid: {', '.join(BACKBONES)})")
    model = build_backbone(spec.name, **spec.kwargs)
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{path}: weights do not fit backbone {spec.name} "
                              f"({' '.join(str(e).split())[:300]})") from e
    if model.num_features != spec.num_features:
        raise CheckpointError(f"{path}: num_features {spec.num_features} != {model.num_features}")
    model = with_input_transform(model, meta.input_transform, meta.data.mean, meta.data.std)
    return model.to(device).eval(), meta
