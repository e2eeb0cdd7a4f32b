"""Reading a foreign checkpoint file safely: ``torch.load(weights_only=True)`` or safetensors, never
an unrestricted unpickle.

A file that pickles classes outside torch's weights-only allow-list (an ``argparse.Namespace`` in
DINO's training checkpoints, omegaconf objects in Lightning ones, numpy scalars) is refused with a
:class:`ForeignClassError` that names the class; the importer turns it into a line naming the
format and the conversion to run.
"""
from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import torch

from ..checkpoint import CheckpointError


class ForeignClassError(CheckpointError):
    """The file pickles a class that ``weights_only`` loading does not admit (``global_name``)."""

    def __init__(self, path: Path, global_name: str) -> None:
        self.path, self.global_name = path, global_name
        super().__init__(f"{path}: pickles the class {global_name}, which a weights-only load does not admit")


_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")


def read_source(path: Path | str) -> Any:
    """The object saved in ``path`` (``.safetensors``: a flat dict of tensors; otherwise a torch
    file read with ``weights_only=True``). CheckpointError for a missing, truncated or non-torch
    file; ForeignClassError for a pickle of a class outside the weights-only allow-list."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file
        try:
            return load_file(str(path), device="cpu")
        except Exception as e:  # a corrupt header, a truncated file
            raise CheckpointError(f"{path}: not a readable safetensors file ({_first_line(e)})") from e
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        name = _foreign_global(str(e))
        if name:
            raise ForeignClassError(path, name) from e
        raise CheckpointError(f"{path}: not a readable torch file ({_first_line(e)})") from e
    except Exception as e:  # truncated zip, not a torch file at all
        raise CheckpointError(f"{path}: not a readable torch file ({type(e).__name__}: {_first_line(e)})") from e


def _foreign_global(message: str) -> str | None:
    """The ``module.Class`` that a weights-only unpickling refused, read from torch's message."""
    m = _GLOBAL.search(message)
    if not m:
        return None
    return m.group(1)


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
