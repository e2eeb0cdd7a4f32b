"""Which checkpoints a command evaluates: ``ckpt.pt`` files named directly or found under folders,
and foreign checkpoints (a published MoCo / DINO / timm / ... file) named directly, imported once
and cached by their sha256 (``pretrain.importers``).

Every command that takes checkpoints (the suite, invariance, transfer) offers the same options
(:func:`add_import_args`): ``--from FORMAT`` (default ``auto``), ``--arch NAME|timm/MODEL``,
``--arch-arg KEY=VALUE``.
"""
from __future__ import annotations

import argparse
import ast
from pathlib import Path
from typing import Any

from pretrain.importers import FORMATS, resolve_checkpoint


def find_checkpoints(paths: list[str], import_from: str = "auto", arch: str | None = None,
                     arch_kwargs: dict[str, Any] | None = None, cache_dir: Path | str | None = None) -> list[Path]:
    """``ckpt.pt`` files named directly or found as ``*/ckpt.pt`` (recursively) under folders; a
    file named directly that is not an sslbench checkpoint is imported (format ``import_from``,
    cached by its sha256) and its import is returned in its place.

    A folder without any ``ckpt.pt`` and a path that does not exist raise FileNotFoundError naming
    it; a foreign file that does not import raises CheckpointError naming it and the key.
    """
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(p.rglob("ckpt.pt"))
            if not found:
                raise FileNotFoundError(f"{p}: no ckpt.pt under this folder")
            out += found
        elif p.is_file():
            out.append(resolve_checkpoint(p, import_from, arch, arch_kwargs, cache_dir))
        else:
            raise FileNotFoundError(f"{p}: no such checkpoint file or runs folder")
    return out


def add_import_args(ap: argparse.ArgumentParser) -> None:
    """The options that say how a foreign checkpoint named on the command line is imported."""
    ap.add_argument("--from", dest="import_from", default="auto",
                    help=f"format of foreign checkpoints named directly: auto (the default) or one of "
                         f"{', '.join(FORMATS)} (see python -m evaluate.import_checkpoint --list)")
    ap.add_argument("--arch", default=None, help="backbone of a foreign checkpoint: a registered name or "
                    "timm/MODEL (default: read from its keys)")
    ap.add_argument("--arch-arg", action="append", default=[], metavar="KEY=VALUE",
                    help="a backbone argument the weights do not show, e.g. num_heads=12")


def import_options(a: argparse.Namespace) -> dict[str, Any]:
    """``find_checkpoints`` keyword arguments from the parsed :func:`add_import_args` options."""
    return {"import_from": a.import_from, "arch": a.arch, "arch_kwargs": arch_args(a.arch_arg) or None}


def arch_args(pairs: list[str]) -> dict[str, Any]:
    """``["num_heads=12", "qkv_bias=False"]`` -> {"num_heads": 12, "qkv_bias": False}; ValueError naming a bad pair."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--arch-arg {pair!r}: expected KEY=VALUE")
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = value
    return out
