"""Decoding image files: PIL on a shared thread pool, resizing, and the decoded-pixel cache.

PIL releases the GIL while decoding and resizing, so one process-wide thread pool decodes a batch
in parallel. Every image is resized to ``size x size``: shorter side to ``size``, centre crop,
antialiased bilinear (label masks: nearest). :class:`DecodedFiles` keeps the decoded pixels of a
list of files in one preallocated array, so each file is decoded once.
"""
from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

_EXECUTOR: ThreadPoolExecutor | None = None
_EXECUTOR_LOCK = threading.Lock()


def _reset_after_fork() -> None:
    """A forked child (a DataLoader worker) has none of the parent's pool threads, and may have
    copied the lock held: it starts with a pool and a lock of its own."""
    global _EXECUTOR, _EXECUTOR_LOCK
    _EXECUTOR, _EXECUTOR_LOCK = None, threading.Lock()


os.register_at_fork(after_in_child=_reset_after_fork)


def decode_executor() -> ThreadPoolExecutor:
    """The thread pool shared by every file-based source of this process (created on first use;
    a forked child makes its own)."""
    global _EXECUTOR
    with _EXECUTOR_LOCK:
        if _EXECUTOR is None:
            _EXECUTOR = ThreadPoolExecutor(max_workers=min(32, os.cpu_count() or 1),
                                           thread_name_prefix="sslbench-decode")
        return _EXECUTOR


def center_box(width: int, height: int) -> tuple[float, float, float, float]:
    """The centred square of a ``width x height`` image, as a PIL box (x0, y0, x1, y1)."""
    side = min(width, height)
    x0, y0 = (width - side) / 2, (height - side) / 2
    return (x0, y0, x0 + side, y0 + side)


def decode_image(path: Path, size: int) -> np.ndarray:
    """Decode ``path`` to RGB, shorter side to ``size``, centre-cropped: uint8 ``(size, size, 3)``.

    Resizing and cropping are one PIL ``resize`` over the centred square (bilinear, which PIL
    antialiases when shrinking); JPEGs are first DCT-downscaled towards ``size`` with ``draft``.
    """
    try:
        with Image.open(path) as im:
            im.draft("RGB", (size, size))
            im = im.convert("RGB")
            if im.size != (size, size):
                im = im.resize((size, size), Image.Resampling.BILINEAR, box=center_box(*im.size))
            return np.asarray(im, dtype=np.uint8)
    except (OSError, ValueError, SyntaxError) as e:
        raise OSError(f"{path}: cannot decode image ({e})") from e


def decode_mask(path: Path, size: int) -> np.ndarray:
    """Decode a label PNG (palette or grey) to uint8 ``(size, size)``, resized like the images (nearest)."""
    try:
        with Image.open(path) as im:
            if im.mode not in ("P", "L"):
                raise ValueError(f"mode {im.mode}, expected a palette or greyscale label image")
            if im.size != (size, size):
                im = im.resize((size, size), Image.Resampling.NEAREST, box=center_box(*im.size))
            return np.asarray(im, dtype=np.uint8)
    except (OSError, ValueError, SyntaxError) as e:
        raise OSError(f"{path}: cannot decode mask ({e})") from e


class ImageDecoder:
    """Picklable ``path -> uint8 (size, size, 3)`` decoder (a lambda would not pickle)."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __call__(self, path: Path) -> np.ndarray:
        return decode_image(path, self.size)


class MaskDecoder(ImageDecoder):
    """Picklable ``path -> uint8 (size, size)`` label decoder."""

    def __call__(self, path: Path) -> np.ndarray:
        return decode_mask(path, self.size)


# --------------------------------------------------------------------------------------------
# The decoded-pixel cache


def _cache_fits(nbytes: int) -> bool:
    """Whether an in-memory cache of ``nbytes`` is under half the physical memory."""
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return True
    return nbytes <= total // 2


class DecodedFiles:
    """Decoded, equally shaped arrays of a list of files, with an optional in-memory cache.

    With ``cache`` a uint8 ``(N, *shape)`` array is preallocated (untouched pages cost no memory)
    with a filled flag per file; each file is decoded once and later reads are one fancy index.
    A cache larger than half the machine's memory is refused with a warning.
    """

    def __init__(self, paths: Sequence[Path], decode: Callable[[Path], np.ndarray],
                 shape: tuple[int, ...], cache: bool = True) -> None:
        self.paths = list(paths)
        self.decode = decode
        self.shape = shape
        self.cache: np.ndarray | None = None
        self.filled = np.zeros(len(self.paths), dtype=bool)
        if cache:
            nbytes = len(self.paths) * int(np.prod(shape))
            if _cache_fits(nbytes):
                self.cache = np.empty((len(self.paths), *shape), dtype=np.uint8)
            else:
                warnings.warn(f"decoded-image cache would take {nbytes / 2**30:.1f} GiB, over half "
                              f"the memory; reading without a cache", stacklevel=3)

    def _decode_into(self, files: np.ndarray, out: np.ndarray, rows: np.ndarray) -> None:
        """Decode ``paths[files[k]]`` into ``out[rows[k]]`` on the shared pool."""
        def work(k: int) -> None:
            out[rows[k]] = self.decode(self.paths[files[k]])

        if files.size == 1:
            work(0)
        elif files.size:
            list(decode_executor().map(work, range(files.size)))

    def gather(self, idx: np.ndarray) -> np.ndarray:
        """uint8 ``(B, *shape)`` for checked int64 indices ``idx`` (any order, repeats allowed)."""
        if self.cache is not None:
            missing = np.unique(idx[~self.filled[idx]])
            self._decode_into(missing, self.cache, missing)
            self.filled[missing] = True
            return self.cache[idx]
        _, first, inverse = np.unique(idx, return_index=True, return_inverse=True)
        out = np.empty((idx.size, *self.shape), dtype=np.uint8)
        self._decode_into(idx[first], out, first)
        if first.size < idx.size:
            out[:] = out[first[inverse.reshape(-1)]]
        return out

    def clear(self) -> None:
        """Forget the cached pixels (the next read decodes again)."""
        self.filled[:] = False

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without the pixels: a copy (e.g. in a DataLoader worker) starts with an empty cache."""
        return {"paths": self.paths, "decode": self.decode, "shape": self.shape,
                "cache": self.cache is not None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)
