"""Probe sets of the invariance study: :class:`ProbeSet` and the layout helpers of its readers.

Purushwalkam & Gupta, "Demystifying Contrastive Self-Supervised Learning: Invariances,
Augmentations and Dataset Biases" (NeurIPS 2020, sec. 3) measure how invariant each neuron is on
*sets* of images that show one object (or one class) while one factor changes: occlusion on GOT-10k
(:mod:`imagedata.got10k`), viewpoint / illumination colour / illumination direction on ALOI
(:mod:`imagedata.aloi`), viewpoint on PASCAL3D+ (:mod:`imagedata.pascal3d`). Each benchmark becomes
a :class:`ProbeSet`: one row per image with the image file, an optional crop box, the set it
belongs to, its class and the value of the varied factor. Which images form a set follows the
authors' feature-extraction scripts (github.com/senthilps8/demystifyssl,
``extract_features/{GOT,ALOI,pascal3d}/*.py``); each loader's docstring says how.
:func:`imagedata.benchmarks.load_benchmark` opens one by name::

    ps = load_benchmark("aloi-viewpoint", "/data/aloi")
    x = ps.read(np.arange(8), 128)          # (8, 3, 128, 128) uint8

Conventions shared by every loader:

* ``set_ids`` are consecutive from 0 in the order the sets are built; ``labels`` index
  ``meta["classes"]`` (class names, sorted); ``meta["set_names"][s]`` names set ``s``;
  ``meta["considered"]`` / ``meta["kept"]`` count the candidate units (videos, objects, images).
* Sets are never dropped for being small (the score skips and counts sets of fewer than 3 images);
  only rules of the original protocol exclude anything (GOT-10k's cover-range rule).
* Images are read as the original does (``utils.ListDataset``): PIL, RGB, crop the box exactly
  (PIL rounds fractional coordinates; outside the image is black), then resize to ``size x size``
  with PIL's bilinear filter (antialiased when shrinking), as ``transforms.Resize((s, s))``.
* A folder in the wrong layout raises :class:`LayoutError`, one line that starts with the file or
  folder that was expected.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image


class LayoutError(ValueError):
    """A benchmark folder is not in the expected layout; the message starts with the path expected."""


@dataclass
class ProbeSet:
    """Rows of one invariance benchmark: image (and crop box), set, class and factor value per row.

    ``boxes`` are ``x0, y0, x1, y1`` pixels (None: whole images). ``meta`` holds counts and names
    (see the module docstring) and, per loader, extra per-row arrays it documents.
    """

    name: str
    images: list[Path] | None
    boxes: np.ndarray | None
    set_ids: np.ndarray
    labels: np.ndarray
    factor: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.set_ids = np.asarray(self.set_ids, dtype=np.int64).reshape(-1)
        self.labels = np.asarray(self.labels, dtype=np.int64).reshape(-1)
        self.factor = np.asarray(self.factor, dtype=np.float64).reshape(-1)
        n = len(self.set_ids)
        if len(self.labels) != n or len(self.factor) != n:
            raise ValueError(f"ProbeSet {self.name}: {n} set ids, {len(self.labels)} labels and "
                             f"{len(self.factor)} factor values (must be equal)")
        if self.images is not None:
            self.images = [Path(p) for p in self.images]
            if len(self.images) != n:
                raise ValueError(f"ProbeSet {self.name}: {len(self.images)} images for {n} rows")
        if self.boxes is not None:
            self.boxes = np.asarray(self.boxes, dtype=np.float64)
            if self.boxes.shape != (n, 4):
                raise ValueError(f"ProbeSet {self.name}: boxes must be ({n}, 4), got {self.boxes.shape}")

    def __len__(self) -> int:
        return len(self.set_ids)

    def read(self, idx: np.ndarray | Sequence[int], size: int) -> torch.Tensor:
        """Rows ``idx`` as a (B, 3, size, size) uint8 tensor: RGB, box crop, bilinear resize.

        A box under one pixel wide or high (e.g. a GOT-10k frame where the object is absent) is
        widened to one pixel so that it still yields an image.
        """
        if self.images is None:
            raise ValueError(f"ProbeSet {self.name}: no image files to read")
        if size < 1:
            raise ValueError(f"ProbeSet {self.name}: size must be >= 1, got {size}")
        rows = np.asarray(idx, dtype=np.int64).reshape(-1)
        out = np.empty((len(rows), size, size, 3), dtype=np.uint8)
        for k, i in enumerate(rows):
            with Image.open(self.images[i]) as im:
                img = im.convert("RGB")
            if self.boxes is not None:
                x0, y0, x1, y1 = (round(float(v)) for v in self.boxes[i])
                img = img.crop((x0, y0, max(x1, x0 + 1), max(y1, y0 + 1)))
            out[k] = np.asarray(img.resize((size, size), Image.BILINEAR))
        return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


# -- layout helpers shared by the benchmark readers ------------------------------------------

def need_path(path: Path, layout: str, kind: str = "file") -> Path:
    """``path`` if it is an existing ``kind`` ("file" or "folder"), else a :class:`LayoutError`
    naming it and the expected ``layout``."""
    ok = path.is_dir() if kind == "folder" else path.is_file()
    if not ok:
        raise LayoutError(f"{path}: missing {kind} ({layout})")
    return path


def read_lines(path: Path) -> list[str]:
    """The lines of a text file, without trailing blank lines."""
    lines = path.read_text().splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def benchmark_root(root: Path | str, layout: str) -> Path:
    """``root`` (``~`` expanded), checked to be a folder."""
    return need_path(Path(root).expanduser(), layout, "folder")


def class_index(names: Sequence[str]) -> tuple[list[str], dict[str, int]]:
    """The sorted distinct class names and each name's index into them."""
    classes = sorted(set(names))
    return classes, {c: i for i, c in enumerate(classes)}
