"""Importing a foreign checkpoint: find its weights, split backbone from known heads, rename, check
strictly against the backbone, write an sslbench ``ckpt.pt`` that records what was dropped.

    split = split_keys(FORMATS["moco"], state_dict)      # backbone / dropped / unexpected keys
    result = import_weights(obj, "auto")                  # -> Imported (format, backbone, weights)
    import_checkpoint("moco_v2_800ep_pretrain.pth.tar", out="ckpt.pt")

Strict, as ssl-transfer's and mmselfsup's users learned the hard way: a key that is neither the
backbone's nor one of the format's known heads, a backbone key that is missing, or a shape that
does not fit is a CheckpointError naming the key. The one tolerance: BatchNorm's
``num_batches_tracked`` counters, absent from files saved before PyTorch 0.4.1, are set to 0 (they
do not change evaluation-mode outputs; torch fills them the same way) and listed in the provenance.
"""
from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from fsio import file_sha256

from ..backbones import BACKBONES, build_backbone
from ..checkpoint import (FORMAT_VERSION, BackboneSpec, CheckpointError, CheckpointMeta, DataSpec,
                          TrainSpec, provenance, save_atomic)
from . import keymaps
from .arch import infer_arch
from .formats import FORMATS, ImportFormat, get_format
from .source import ForeignClassError, read_source

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Formats tried by ``auto`` when several explain a file equally well: identical layouts (a bare
# torchvision state dict is also a valid timm, SimCLR-port or BYOL-port file) are named by the
# first of these.
PREFERENCE = ("torchvision", "timm", "moco", "mocov3", "dino", "swav", "pycontrast", "barlowtwins", "solo-learn",
              "lightly", "openmmlab", "vissl", "simclr", "simclr-v2", "byol", "deepcluster-v2", "sela-v2")


class FitError(CheckpointError):
    """A format that does not fit a file; ``rank`` says how far it got (0: one key off, 3: no weights)."""

    def __init__(self, message: str, rank: int) -> None:
        super().__init__(message)
        self.rank = rank


@dataclass
class Split:
    """A state dict divided by a format: the backbone's weights (renamed), the known heads dropped,
    and the keys that are neither."""

    entry: tuple[str, ...]
    prefix: str
    backbone: dict[str, Tensor]
    source_key: dict[str, str]
    dropped: list[str]
    unexpected: list[str]
    weights: dict[str, Tensor] = field(default_factory=dict)   # every tensor at the entry, by source key

    def reclaim(self, expected: dict[str, Tensor], rename: Any) -> None:
        """Move back into the backbone the dropped keys that the backbone itself has (a head
        prefix that is also a backbone module's name, e.g. timm ConvNeXt's ``head.norm``)."""
        for k in list(self.dropped):
            if k.startswith(self.prefix) and (name := rename(k[len(self.prefix):])) in expected:
                self.backbone[name], self.source_key[name] = self.weights[k], k
                self.dropped.remove(k)


@dataclass
class Imported:
    """A foreign checkpoint's backbone, ready to be written as an sslbench checkpoint."""

    format: str
    backbone: str
    kwargs: dict[str, Any]
    state_dict: dict[str, Tensor]
    entry: tuple[str, ...]
    prefix: str
    dropped: list[str]
    filled: list[str] = field(default_factory=list)
    matched: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)      # top-level entries beside the weights (epoch, optimizer, ...)
    assumed: dict[str, Any] = field(default_factory=dict)  # what the weights do not show (a ViT's heads, ...)


def flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts -> one dict with ``.``-joined keys (VISSL nests ``trunk`` / ``heads``)."""
    out: dict[str, Any] = {}
    for k, v in obj.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def weights_at(obj: Any, entry: tuple[str, ...]) -> dict[str, Tensor] | None:
    """The tensors at ``entry`` in the saved object, flattened; None unless it is a non-empty dict
    of tensors only."""
    for part in entry:
        if not isinstance(obj, dict) or part not in obj:
            return None
        obj = obj[part]
    if not isinstance(obj, dict) or not obj:
        return None
    flat = flatten(obj)
    return flat if all(isinstance(v, Tensor) for v in flat.values()) else None


def split_keys(fmt: ImportFormat, obj: Any) -> Split | None:
    """Divide the weights of ``obj`` as ``fmt`` lays them out; None when ``fmt`` finds no weights
    or no backbone key in it."""
    for entry in fmt.entries:
        sd = weights_at(obj, entry)
        if sd is None:
            continue
        dropped = [k for k in sd if k.startswith(fmt.drop)]
        keep = [k for k in sd if not k.startswith(fmt.drop)]
        prefix = next((p for p in fmt.backbone if any(k.startswith(p) for k in keep)), None)
        if prefix is None:
            continue
        backbone, source_key, unexpected = {}, {}, []
        for k in keep:
            if k.startswith(prefix):
                name = fmt.rename(k[len(prefix):])
                backbone[name], source_key[name] = sd[k], k
            else:
                unexpected.append(k)
        return Split(entry, prefix, backbone, source_key, sorted(dropped), unexpected, sd)
    return None


@functools.lru_cache(maxsize=16)
def skeleton(name: str, kwargs_json: str) -> tuple[dict[str, Tensor], int, int | None]:
    """Backbone ``name``'s state dict as shapes and dtypes (meta tensors), its ``num_features`` and
    a ViT's attention heads (None for other backbones), built once per process (``auto`` checks
    one file against many formats)."""
    with torch.device("meta"):
        model = build_backbone(name, **json.loads(kwargs_json))
    blocks = getattr(model, "blocks", None)
    heads = getattr(getattr(blocks[0], "attn", None), "num_heads", None) if blocks is not None and len(blocks) else None
    return model.state_dict(), int(model.num_features), heads


def check_fit(split: Split, expected: dict[str, Tensor], fmt: str, arch: str,
              renamed: bool = False) -> tuple[dict[str, Tensor], list[str]]:
    """The split's backbone weights checked key by key against the backbone's ``expected`` state
    dict -> (state dict, filled ``num_batches_tracked`` keys); FitError naming the first key that
    does not fit."""
    if split.unexpected:
        raise FitError(f"unexpected key {split.unexpected[0]!r}: neither the backbone (prefix "
                       f"{split.prefix!r}) nor a known head of format {fmt} ({len(split.unexpected)} such keys)", 1)
    extra = [k for k in split.backbone if k not in expected]
    if extra:
        raise FitError(f"unexpected key {split.source_key[extra[0]]!r}: not a parameter of backbone {arch} "
                       f"(as {extra[0]!r}) nor a known head of format {fmt} ({len(extra)} such keys)", 1)
    sd, filled = dict(split.backbone), []
    for k, v in expected.items():
        if k in sd:
            if sd[k].shape != v.shape:
                raise FitError(f"key {split.source_key[k]!r} has shape {tuple(sd[k].shape)}, backbone {arch} "
                               f"expects {tuple(v.shape)}", 0)
        elif k.endswith("num_batches_tracked"):
            sd[k], filled = torch.zeros(v.shape, dtype=v.dtype), filled + [k]
        else:
            where = f"{split.prefix + k!r}" if renamed is False else f"{k!r} (renamed from under {split.prefix!r})"
            raise FitError(f"missing backbone key {where} in a {fmt} checkpoint of {arch}", 0)
    return sd, filled


def import_as(obj: Any, fmt: ImportFormat, arch: str | None = None,
              arch_kwargs: dict[str, Any] | None = None) -> Imported:
    """The backbone of ``obj`` read as format ``fmt``, checked strictly; CheckpointError if it
    does not fit."""
    split = split_keys(fmt, obj)
    if split is None:
        raise FitError(f"no {fmt.name} weights in this file (looked for {_entries(fmt)} with a key under "
                       f"{', '.join(repr(p) for p in fmt.backbone)})", 3)
    try:
        name, kwargs = _arch(split.backbone, arch, arch_kwargs)
    except CheckpointError as e:
        raise FitError(str(e), 2) from e
    if name == "timm" and "cls_token" in split.backbone and "num_heads" not in (arch_kwargs or {}):
        heads = dict(fmt.vit_heads).get(int(split.backbone["cls_token"].shape[-1]))
        if heads:                              # e.g. MoCo v3's ViT-S: 12 heads where timm's has 6
            kwargs["num_heads"] = heads
    if name not in BACKBONES:
        raise FitError(f"backbone {name!r} is not registered (valid: {', '.join(BACKBONES)}, timm/MODEL)", 2)
    try:
        expected, _, heads = skeleton(name, json.dumps(kwargs, sort_keys=True))
    except (ValueError, TypeError) as e:           # TypeError: an --arch-arg JSON cannot hold
        raise FitError(str(e), 2) from e
    split.reclaim(expected, fmt.rename)
    assumed = {"num_heads": heads} if heads is not None and "num_heads" not in (arch_kwargs or {}) else {}
    sd, filled = check_fit(split, expected, fmt.name, _label(name, kwargs), fmt.rename is not keymaps.same)
    ignored = sorted(str(k) for k in obj if k != split.entry[0]) if split.entry and isinstance(obj, dict) else []
    return Imported(fmt.name, name, kwargs, sd, split.entry, split.prefix, split.dropped, filled, [fmt.name], ignored,
                    assumed)


def _arch(sd: dict[str, Tensor], arch: str | None, arch_kwargs: dict[str, Any] | None) -> tuple[str, dict[str, Any]]:
    if arch is None:
        name, kwargs = infer_arch(sd)
    elif arch.startswith("timm/"):
        name, kwargs = "timm", {"model": arch.removeprefix("timm/")}
    else:
        name, kwargs = arch, {}
    return name, {**kwargs, **(arch_kwargs or {})}


def _label(name: str, kwargs: dict[str, Any]) -> str:
    return f"timm/{kwargs['model']}" if name == "timm" else name


def _entries(fmt: ImportFormat) -> str:
    return " or ".join("the file itself" if not e else "[" + "][".join(repr(p) for p in e) + "]" for e in fmt.entries)


def detect(obj: Any, arch: str | None = None, arch_kwargs: dict[str, Any] | None = None) -> Imported:
    """Try every format; the one that explains every key and fits the backbone (the first of
    :data:`PREFERENCE` when several do, which are then listed in ``matched``). CheckpointError with
    the closest formats and the first keys none explains when none fits."""
    fits: list[Imported] = []
    tried: list[tuple[int, int, str, str]] = []
    explained: set[str] = set()              # keys some format places (backbone or known head)
    for name in PREFERENCE:
        split = split_keys(FORMATS[name], obj)
        if split is not None:             # a bare layout ("" prefix) places nothing by its prefix
            explained |= set(split.dropped) | (set(split.source_key.values()) if split.prefix else set())
        try:
            fits.append(import_as(obj, FORMATS[name], arch, arch_kwargs))
        except FitError as e:
            tried.append((e.rank, len(split.unexpected) if split else 0, name, str(e)))
    if fits:
        best = fits[0]
        best.matched = [f.format for f in fits]
        inputs = {f: (FORMATS[f].mean, FORMATS[f].std) for f in best.matched}
        if len(set(inputs.values())) > 1:            # e.g. a bare torchvision file is also a SimCLR-v1 port
            others = [f for f in best.matched if inputs[f] != inputs[best.format]]
            best.assumed["normalisation"] = (f"{best.format}'s; {', '.join(others)} fit too and expect other "
                                             "inputs (name the format with --from)")
        return best
    tried.sort()
    closest = "; ".join(f"{n} ({msg})" for _, _, n, msg in tried[:3])
    unplaced = [k for k in _first_keys(obj, 10 ** 6) if not any(k.endswith(e) for e in explained)]
    raise CheckpointError(f"unknown checkpoint layout; closest formats: {closest}; first keys no format "
                          f"places: {', '.join((unplaced or _first_keys(obj))[:5])}")


def _first_keys(obj: Any, n: int = 5) -> list[str]:
    """The first keys of the saved object (flattened to its tensors where it nests dicts)."""
    if not isinstance(obj, dict):
        return [f"<a {type(obj).__name__}, not a dict>"]
    return list(flatten(obj))[:n]


def read_foreign(src: Path | str, fmt: str = "auto") -> Any:
    """The saved object of a foreign file; a file that needs foreign classes is refused with the
    format's conversion (CheckpointError)."""
    try:
        return read_source(src)
    except ForeignClassError as e:
        how = (get_format(fmt).conversion(str(src)) if fmt != "auto" else
               "extract its weights on a machine where the source is trusted: torch.save(torch.load(F, "
               "weights_only=False)[<entry>], 'weights.pth'), then import weights.pth")
        raise CheckpointError(f"{src}: pickles {e.global_name}, which is not read here (no unrestricted unpickling) "
                              f"- {how}") from e


def import_file(src: Path | str, fmt: str = "auto", arch: str | None = None,
                arch_kwargs: dict[str, Any] | None = None) -> Imported:
    """The backbone of foreign checkpoint ``src`` as format ``fmt`` (``auto``: detected)."""
    obj = read_foreign(src, fmt)
    try:
        return detect(obj, arch, arch_kwargs) if fmt == "auto" else import_as(obj, get_format(fmt), arch, arch_kwargs)
    except CheckpointError as e:
        raise CheckpointError(f"{src}: {e}") from e
    except ValueError as e:  # an unknown format name
        raise CheckpointError(str(e)) from e


@dataclass(frozen=True)
class DataOverrides:
    """What the user says about the pretraining data where the defaults do not hold: its name, the
    training resolution, the input normalisation (None: the format's, else ImageNet's)."""

    name: str = "imagenet"
    image_size: int | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None


def imported_meta(src: Path, imp: Imported, sha: str, model: nn.Module, data: DataOverrides | None = None,
                  run_id: str | None = None) -> CheckpointMeta:
    """The sslbench metadata of an imported backbone: method = format, aug = ``imported``, data =
    ImageNet at the backbone's native size with the format's normalisation (ImageNet's unless the
    format's models expect other inputs, e.g. SimCLR's converted TF models take [0, 1] pixels),
    each overridable, and a provenance naming the source file, its sha256, the format and every
    dropped key."""
    fmt, data = FORMATS[imp.format], data or DataOverrides()
    size = data.image_size or int(imp.kwargs.get("img_size", 224))
    data = DataSpec(name=data.name, image_size=size, mean=data.mean or fmt.mean or IMAGENET_MEAN,
                    std=data.std or fmt.std or IMAGENET_STD)
    created = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(Path(src).stat().st_mtime))
    prov = {**provenance(), "created": created,          # the source's time: one file, one imported checkpoint
            "imported_from": str(Path(src).resolve()), "source_sha256": sha, "format": imp.format,
            "matched_formats": imp.matched, "entry": list(imp.entry), "prefix": imp.prefix,
            "dropped": imp.dropped, "filled": imp.filled, "ignored_entries": imp.ignored, "assumed": imp.assumed}
    config = {"imported": {"format": imp.format, "source_sha256": sha, "backbone": _label(imp.backbone, imp.kwargs)}}
    return CheckpointMeta(format_version=FORMAT_VERSION,
                          backbone=BackboneSpec(imp.backbone, dict(imp.kwargs), int(model.num_features)),
                          exported="imported", method=imp.format, aug="imported",
                          run_id=run_id or f"{imp.format}-{Path(src).name.split('.')[0]}-{sha[:8]}", config=config,
                          data=data, train=TrainSpec(epochs=0.0, steps=0, seed=0, complete=True),
                          provenance=prov, input_transform=None)


def import_checkpoint(src: Path | str, out: Path | str, fmt: str = "auto", arch: str | None = None,
                      arch_kwargs: dict[str, Any] | None = None, data: DataOverrides | None = None,
                      run_id: str | None = None) -> Path:
    """Write foreign checkpoint ``src`` as an sslbench ``ckpt.pt`` at ``out`` (atomically); the
    written file loads strictly with ``pretrain.checkpoint.load_backbone``."""
    src, out = Path(src), Path(out)
    imp = import_file(src, fmt, arch, arch_kwargs)
    model = build_backbone(imp.backbone, **imp.kwargs)
    model.load_state_dict(imp.state_dict, strict=True)
    meta = imported_meta(src, imp, file_sha256(src), model, data, run_id)
    record = {**meta.to_dict(), "state_dict": {k: v.detach().clone().contiguous() for k, v in imp.state_dict.items()}}
    out.parent.mkdir(parents=True, exist_ok=True)
    save_atomic(record, out)
    return out
