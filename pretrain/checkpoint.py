"""The checkpoint contract: backbone-only, self-describing ``ckpt.pt`` and ``load_backbone``.

``ckpt.pt`` (``torch.load(..., weights_only=True)``) holds: format_version, backbone {name,
kwargs, num_features}, state_dict (no ``module.`` / ``_orig_mod.`` / ``encoder.`` prefixes; loads
strictly into the named backbone), exported (online | momentum), method, aug, run_id, config
(plain dict), data {name, image_size, mean, std}, train {epochs, steps, seed, complete},
provenance {git_sha, dirty, torch, created}. Optimiser / heads / EMA state live in ``resume.pt``.
"""
from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .backbones import BACKBONES, build_backbone

FORMAT_VERSION = 1
REQUIRED = ("format_version", "backbone", "state_dict", "exported", "method", "aug", "run_id", "config", "data",
            "train", "provenance")
_PREFIXES = ("module.", "_orig_mod.", "encoder.")


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable, foreign, or does not match its backbone."""


def save_atomic(obj: Any, path: Path | str) -> None:
    """torch.save through a temporary file in the same folder and os.replace."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
                      method: str, aug: str, run_id: str, config: dict, data: dict, train: dict) -> None:
    """Write ``ckpt.pt`` for ``backbone`` (built as ``build_backbone(name, **kwargs)``)."""
    save_atomic({
        "format_version": FORMAT_VERSION,
        "backbone": {"name": name, "kwargs": dict(kwargs), "num_features": int(backbone.num_features)},
        "state_dict": clean_state_dict(backbone.state_dict()),
        "exported": exported, "method": method, "aug": aug, "run_id": run_id, "config": config,
        "data": data, "train": train, "provenance": provenance(),
    }, path)


def read_checkpoint(path: Path | str) -> dict[str, Any]:
    """Load and validate the dict of a ``ckpt.pt`` (weights_only); CheckpointError on anything wrong."""
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
    return ckpt


def load_backbone(path: Path | str, device: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the backbone of ``ckpt.pt`` and load its weights strictly -> (module in eval mode, meta).

    Fails loudly (CheckpointError) on a missing / truncated / foreign file, an unknown backbone,
    or any missing / unexpected / mis-shaped key: no downloads, no random fallback.
    """
    ckpt = read_checkpoint(path)
    spec = ckpt["backbone"]
    if spec.get("name") not in BACKBONES:
        raise CheckpointError(f"{path}: backbone {spec.get('name')!r} is not registered "
                              f"(valid: {', '.join(BACKBONES)})")
    model = build_backbone(spec["name"], **spec.get("kwargs", {}))
    try:
        model.load_state_dict(ckpt["state_dict"], strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{path}: weights do not fit backbone {spec['name']} "
                              f"({' '.join(str(e).split())[:300]})") from e
    if model.num_features != spec.get("num_features"):
        raise CheckpointError(f"{path}: num_features {spec.get('num_features')} != {model.num_features}")
    meta = {k: v for k, v in ckpt.items() if k != "state_dict"}
    return model.to(device).eval(), meta
