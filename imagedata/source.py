"""What an image source is: the :class:`ImageSource` protocol and the base of file-backed sources.

A source is a fixed-length list of images with integer targets whose ``read(indices)`` returns one
uint8 batch ``(B, 3, H, W)`` (RGB, channels first) in the order asked for. The sources that decode
image files (ImageFolder, COCO, VOC, video frames) share :class:`FileSource`: every image is
resized to ``image_size x image_size`` (shorter side to ``image_size``, centre crop, antialiased
bilinear; see :mod:`imagedata.decode`) and by default the decoded pixels stay in memory, so every
epoch after the first costs no decoding. The folder-listing helpers at the end are shared by the
readers and by format detection.
"""
from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from imagedata.decode import DecodedFiles, ImageDecoder

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


@runtime_checkable
class ImageSource(Protocol):
    """A fixed-length, indexable set of RGB images with one integer target each.

    Attributes:
        targets: int64 ``(N,)`` class index per image into ``classes``; -1 where unknown.
        classes: class names.
        image_size: side of the (square) images ``read`` returns; None if they vary.
    """

    targets: np.ndarray
    classes: list[str]
    image_size: int | None

    def __len__(self) -> int:
        ...

    def read(self, indices: np.ndarray) -> torch.Tensor:
        """Images ``indices`` (int, any order, repeats allowed) as uint8 ``(B, 3, H, W)`` RGB.

        The result may be a channels-last view (strides of ``(B, H, W, 3)``); call
        ``.contiguous()`` where an NCHW-contiguous tensor is needed.
        """
        ...


# --------------------------------------------------------------------------------------------
# Index and channel handling


def as_index_array(indices: Sequence[int] | np.ndarray | torch.Tensor, n: int) -> np.ndarray:
    """Check ``indices`` against a source of length ``n``; return them as a 1-D int64 array."""
    if isinstance(indices, torch.Tensor):
        indices = indices.cpu().numpy()
    idx = np.asarray(indices)
    if idx.ndim == 0:
        idx = idx.reshape(1)
    if idx.ndim != 1 or (idx.size and not np.issubdtype(idx.dtype, np.integer)):
        raise TypeError(f"indices must be a 1-D integer array, got {idx.dtype} {idx.shape}")
    idx = idx.astype(np.int64, copy=False)
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        bad = idx[(idx < 0) | (idx >= n)][0]
        raise IndexError(f"index {bad} out of range for a source of {n} images")
    return idx


def channels_first(batch: np.ndarray) -> torch.Tensor:
    """uint8 ``(B, H, W, 3)`` array -> ``(B, 3, H, W)`` tensor view (channels_last memory, no copy)."""
    return torch.from_numpy(batch).permute(0, 3, 1, 2)


# --------------------------------------------------------------------------------------------
# Sources that decode image files


class FileSource:
    """Base of the sources that decode image files: ``paths[i]`` is image ``i``.

    Subclasses set ``paths``, ``targets`` and ``classes`` and call :meth:`_init_files`.
    """

    paths: list[Path]
    targets: np.ndarray
    classes: list[str]
    image_size: int | None

    def _init_files(self, paths: Sequence[Path], image_size: int, cache: bool) -> None:
        if not isinstance(image_size, (int, np.integer)) or image_size <= 0:
            raise ValueError(f"{type(self).__name__}: image_size must be a positive int, got {image_size!r}")
        self.paths = list(paths)
        self.image_size = int(image_size)
        self.files = DecodedFiles(self.paths, ImageDecoder(self.image_size),
                                  (self.image_size, self.image_size, 3), cache)

    def __len__(self) -> int:
        return len(self.paths)

    def read(self, indices: np.ndarray) -> torch.Tensor:
        """uint8 ``(B, 3, S, S)`` with ``S = image_size``, decoded in parallel (or from the cache)."""
        return channels_first(self.files.gather(as_index_array(indices, len(self))))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n={len(self)}, image_size={self.image_size})"


def require_image_size(path: Path, format: str, image_size: int | None) -> int:
    """``image_size``, or a one-line ValueError when a file format is opened without one."""
    if image_size is None:
        raise ValueError(f"{path}: {format} images are decoded from files; pass image_size")
    return image_size


# --------------------------------------------------------------------------------------------
# Folder listing


def is_image(path: Path, extensions: Sequence[str] = IMAGE_EXTENSIONS) -> bool:
    """Whether ``path`` names a non-hidden file with one of ``extensions`` (case-insensitive)."""
    return path.suffix.lower() in extensions and not path.name.startswith(".")


def subfolders(root: Path) -> list[Path]:
    """Non-hidden subfolders of ``root``, sorted by name."""
    return sorted((p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")),
                  key=lambda p: p.name)


def images_under(folder: Path, extensions: Sequence[str] = IMAGE_EXTENSIONS) -> list[Path]:
    """Image files anywhere under ``folder`` (following links), sorted by path."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        found += [Path(dirpath) / f for f in filenames if is_image(Path(f), extensions)]
    return sorted(found)


def read_class_list(path: Path) -> list[str] | None:
    """Class names, one a line, from ``path`` (e.g. the ``classes.txt`` of our exports); None if absent."""
    if not path.is_file():
        return None
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def natural_key(name: str) -> list[Any]:
    """Sort key that orders ``frame2`` before ``frame10``."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


# --------------------------------------------------------------------------------------------
# Unreadable files


_UNREADABLE: dict[str, list[int]] = {}     # file-list fingerprint -> positions found unreadable


def unreadable_files(paths: Sequence[Path]) -> list[int]:
    """Positions of the files PIL cannot open and decode (a truncated or corrupt image), decoded
    on the shared pool; remembered per file list (paths, sizes, mtimes) for the process, so the
    many opens of one split in a suite run check its files once."""
    import hashlib

    from PIL import Image

    from imagedata.decode import decode_executor
    h = hashlib.sha256()
    for p in paths:
        st = Path(p).stat()
        h.update(f"{p}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    key = h.hexdigest()
    if key not in _UNREADABLE:
        def bad(p: Path) -> bool:
            try:
                with Image.open(p) as im:
                    im.load()
                return False
            except (OSError, ValueError, SyntaxError):
                return True
        flags = list(decode_executor().map(bad, paths))
        _UNREADABLE[key] = [i for i, f in enumerate(flags) if f]
    return list(_UNREADABLE[key])


class ReadableSubset:
    """A file-backed source without its unreadable images (``--skip-unreadable``): the same
    contract, ``skipped`` the paths left out (positions and targets follow the kept files)."""

    def __init__(self, source: Any, keep: np.ndarray, skipped: list[Path]) -> None:
        self.source, self.keep, self.skipped = source, keep, skipped
        self.targets = np.asarray(source.targets)[keep]
        self.classes = source.classes
        self.image_size = source.image_size
        self.paths = [source.paths[i] for i in keep]

    def __len__(self) -> int:
        return len(self.keep)

    def read(self, indices: np.ndarray) -> torch.Tensor:
        return self.source.read(self.keep[as_index_array(indices, len(self))])

    @property
    def read_masks(self) -> Any:
        """The kept images' masks, where the source has masks (VOC, COCO)."""
        if not hasattr(self.source, "read_masks"):
            raise AttributeError("read_masks")
        return lambda indices: self.source.read_masks(self.keep[as_index_array(indices, len(self))])

    def __getattr__(self, name: str) -> Any:          # anything else is the source's
        if name in ("source", "read_masks"):
            raise AttributeError(name)
        return getattr(self.source, name)


def without_unreadable(source: Any) -> Any:
    """``source`` itself when every file decodes, else a :class:`ReadableSubset` of the files that
    do; sources that are not file lists (synthetic, arrays) are returned unchanged."""
    paths = getattr(source, "paths", None)
    if not paths or not isinstance(getattr(source, "files", None), DecodedFiles):
        return source
    bad = set(unreadable_files(paths))
    if not bad:
        return source
    keep = np.asarray([i for i in range(len(paths)) if i not in bad], dtype=np.int64)
    return ReadableSubset(source, keep, [paths[i] for i in sorted(bad)])
