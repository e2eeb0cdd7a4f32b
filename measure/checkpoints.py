"""Which checkpoints a command evaluates: ``ckpt.pt`` files named directly or found under folders."""
from __future__ import annotations

from pathlib import Path


def find_checkpoints(paths: list[str]) -> list[Path]:
    """``ckpt.pt`` files named directly or found as ``*/ckpt.pt`` (recursively) under folders.

    A folder without any ``ckpt.pt`` and a path that does not exist raise FileNotFoundError naming it.
    """
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(p.rglob("ckpt.pt"))
            if not found:
                raise FileNotFoundError(f"{p}: no ckpt.pt under this folder")
            out += found
        elif p.is_file():
            out.append(p)
        else:
            raise FileNotFoundError(f"{p}: no such checkpoint file or runs folder")
    return out
