"""Foreign checkpoints given directly to a command (the suite, invariance, transfer): imported once
and cached by the source file's sha256, so that a second run reuses the same ``ckpt.pt`` (and, with
it, the same features cache and results-store rows).

Cache: ``$SSLBENCH_CACHE/imported/<sha256>-<format>/ckpt.pt`` (``~/.cache/sslbench`` by default).
"""
from __future__ import annotations

import logging
import os
import zipfile
from pathlib import Path
from typing import Any

import torch

from fsio import file_sha256

from ..checkpoint import REQUIRED, CheckpointError, read_meta
from .core import import_checkpoint

log = logging.getLogger("pretrain.importers")
IMPORTER_VERSION = 1          # raised when a format's record changes what an import writes


def default_cache() -> Path:
    """``$SSLBENCH_CACHE/imported`` (read when called), ``~/.cache/sslbench/imported`` by default."""
    return Path(os.environ.get("SSLBENCH_CACHE", Path.home() / ".cache" / "sslbench")) / "imported"


def is_sslbench_checkpoint(path: Path | str) -> bool:
    """Whether ``path`` is a torch file holding an sslbench checkpoint (its metadata keys); a file
    that cannot be read as one (foreign, safetensors, corrupt) is not."""
    path = Path(path)
    if path.suffix == ".safetensors" or not zipfile.is_zipfile(path):
        return False
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # foreign classes, truncated: not ours (the importer gives the reason)
        return False
    return isinstance(obj, dict) and all(k in obj for k in REQUIRED)


def cached_import(src: Path | str, fmt: str = "auto", arch: str | None = None,
                  arch_kwargs: dict[str, Any] | None = None, cache_dir: Path | str | None = None) -> Path:
    """The sslbench checkpoint of foreign file ``src``, imported on first use and cached by sha256."""
    src = Path(src)
    sha = file_sha256(src)
    tag = f"v{IMPORTER_VERSION}-{fmt}" + ("" if arch is None else f"-{arch.replace('/', '_')}")
    if arch_kwargs:
        tag += "-" + "-".join(f"{k}={v}" for k, v in sorted(arch_kwargs.items()))
    out = Path(cache_dir or default_cache()) / f"{sha}-{tag}" / "ckpt.pt"
    if out.is_file():
        log.info("%s: imported earlier (%s), using %s", src, fmt, out)
        return out
    import_checkpoint(src, out, fmt, arch, arch_kwargs, run_id=None)
    meta = read_meta(out)
    log.info("%s: imported as %s into %s", src, meta.provenance["format"], out)
    for what, value in (meta.provenance.get("assumed") or {}).items():
        log.warning("%s: %s assumed: %s (not in the weights; --from / --arch-arg to say otherwise)", src, what, value)
    return out


def resolve_checkpoint(path: Path | str, fmt: str = "auto", arch: str | None = None,
                       arch_kwargs: dict[str, Any] | None = None, cache_dir: Path | str | None = None) -> Path:
    """``path`` itself when it is an sslbench checkpoint (whatever ``fmt`` says: the import options
    apply to foreign files only), else its cached import. CheckpointError (one line naming the
    file) when it is neither."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if is_sslbench_checkpoint(path):
        return path
    return cached_import(path, fmt, arch, arch_kwargs, cache_dir)
