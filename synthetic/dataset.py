"""On-disk layout of an sslbench synthetic dataset, and its atomic writer / reader.

A dataset is one folder::

    DIR/meta.json     format, format_version, generator_version, preset, seed, n, unit,
                      num_images, image_size, classes, factors, args, args_hash, splits, created
    DIR/images.npy    uint8   (N, H, W, 3)  RGB
    DIR/semantic.npy  uint8   (N, H, W)     0 = background, c + 1 = class c
    DIR/instance.npy  uint8   (N, H, W)     0 = background, k = object k of the image (1-based)
    DIR/depth.npy     float16 (N, H, W)     camera-space depth along the optical axis, +inf off objects
    DIR/labels.csv    one row per image: index, split, the primary (largest visible) object's
                      class / instance / pose, and every image-level factor value
    DIR/objects.csv   one row per object per image: image, object (k of instance.npy), class,
                      instance, box x0 y0 x1 y1 (pixels, x1/y1 exclusive, tight around the visible
                      mask; -1 when nothing is visible), area, footprint, occluded_frac, pose, ...
    DIR/exports/      optional: coco/, voc/, imagefolder/, frames/ (see synthetic.export)

The ``.npy`` arrays are read memory-mapped, so a 20k-image dataset opens instantly and batches are
plain fancy indexing. A dataset is written into a temporary sibling folder and renamed into place,
so an interrupted run never leaves a folder that looks complete.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fsio import replace_folder, write_json_atomic

FORMAT = "sslbench-synthetic"
FORMAT_VERSION = 1
ARRAYS = {  # name -> (dtype, trailing shape given H, W)
    "images": ("uint8", lambda h, w: (h, w, 3)),
    "semantic": ("uint8", lambda h, w: (h, w)),
    "instance": ("uint8", lambda h, w: (h, w)),
    "depth": ("float16", lambda h, w: (h, w)),
}


class DatasetError(ValueError):
    """A dataset folder is missing, malformed, or was made by another version."""


def args_hash(args: dict[str, Any]) -> str:
    """Stable 16-hex-digit hash of the generation arguments (a JSON-serialisable dict)."""
    blob = json.dumps(args, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


@dataclass
class StagedDataset:
    """A dataset being written in a temporary folder next to its final place."""

    final: Path
    tmp: Path

    def create_arrays(self, num_images: int, size: int) -> dict[str, np.memmap]:
        """Allocate the image / mask / depth arrays as writable memory maps."""
        out = {}
        for name, (dtype, shape) in ARRAYS.items():
            out[name] = np.lib.format.open_memmap(
                self.tmp / f"{name}.npy", mode="w+", dtype=dtype, shape=(num_images, *shape(size, size)))
        return out

    def commit(self, meta: dict[str, Any], labels: pd.DataFrame, objects: pd.DataFrame,
               overwrite: bool = False) -> Path:
        """Write the tables and meta.json, then move the folder into place.

        ``meta.json`` is written last, so only a complete folder carries one. With ``overwrite``
        the old folder is moved aside first and removed only after the new one is in place.
        """
        labels.to_csv(self.tmp / "labels.csv", index=False)
        objects.to_csv(self.tmp / "objects.csv", index=False)
        write_json_atomic(self.tmp / "meta.json", meta)
        if self.final.exists() and not overwrite:
            raise DatasetError(f"{self.final}: exists; pass --overwrite to replace it")
        return replace_folder(self.tmp, self.final)

    def abort(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


def stage(out: Path | str) -> StagedDataset:
    """Create a temporary folder beside ``out`` (same filesystem, so the final rename is atomic)."""
    out = Path(out).absolute()
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    except OSError as e:
        raise DatasetError(f"{out}: cannot write there ({e.strerror}); expected a writable folder") from e
    return StagedDataset(final=out, tmp=tmp)


def read_meta(root: Path | str) -> dict[str, Any]:
    """Read and check ``meta.json``; raise DatasetError naming the folder if it is not ours."""
    root = Path(root)
    path = root / "meta.json"
    if not path.is_file():
        raise DatasetError(f"{root}: no meta.json; expected a folder made by `python -m synthetic.generate`")
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DatasetError(f"{path}: not valid JSON ({e.msg})") from e
    if meta.get("format") != FORMAT:
        raise DatasetError(f"{path}: format {meta.get('format')!r}, expected {FORMAT!r}")
    if meta.get("format_version") != FORMAT_VERSION:
        raise DatasetError(
            f"{root}: made by format version {meta.get('format_version')}, this sslbench reads "
            f"version {FORMAT_VERSION}; regenerate it with --overwrite")
    return meta


@dataclass
class SyntheticDataset:
    """A generated dataset opened for reading (arrays memory-mapped, tables in pandas)."""

    root: Path
    meta: dict[str, Any]
    images: np.ndarray
    semantic: np.ndarray
    instance: np.ndarray
    depth: np.ndarray
    labels: pd.DataFrame
    objects: pd.DataFrame

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def classes(self) -> list[str]:
        return list(self.meta["classes"])

    def split_indices(self, split: str) -> np.ndarray:
        """Indices of the images in ``split`` ("train", "val", "test" or "all")."""
        if split == "all":
            return np.arange(len(self))
        idx = np.flatnonzero(self.labels["split"].to_numpy() == split)
        if idx.size == 0:
            have = sorted(set(self.labels["split"]))
            raise DatasetError(f"{self.root}: no images in split {split!r}; splits here: {have}")
        return idx


def open_dataset(root: Path | str) -> SyntheticDataset:
    """Open a generated dataset folder (memory-mapped, read-only)."""
    root = Path(root)
    meta = read_meta(root)
    arrays = {}
    for name in ARRAYS:
        path = root / f"{name}.npy"
        if not path.is_file():
            raise DatasetError(f"{root}: missing {name}.npy; the folder is incomplete, regenerate it")
        arrays[name] = np.load(path, mmap_mode="r")
    n = arrays["images"].shape[0]
    for name, a in arrays.items():
        if a.shape[0] != meta.get("num_images", n) or a.shape[1:3] != (meta.get("image_size"),) * 2:
            raise DatasetError(f"{root}: {name}.npy has shape {a.shape}, meta.json says "
                               f"{meta.get('num_images')} images of {meta.get('image_size')} px")
    tables = {}
    for name in ("labels", "objects"):
        if not (root / f"{name}.csv").is_file():
            raise DatasetError(f"{root}: missing {name}.csv; the folder is incomplete, regenerate it")
        tables[name] = pd.read_csv(root / f"{name}.csv")
    labels, objects = tables["labels"], tables["objects"]
    if len(labels) != n or not (labels["index"].to_numpy() == np.arange(n)).all():
        raise DatasetError(f"{root}: labels.csv must have one row per image in order (index 0..{n - 1})")
    return SyntheticDataset(root=root, meta=meta, labels=labels, objects=objects, **arrays)
