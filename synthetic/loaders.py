"""Data loading: our synthetic datasets and the common real formats, as batched uint8 tensors.

Every format is an :class:`ImageSource`: a fixed-length list of images with integer targets whose
``read(indices)`` returns one uint8 batch ``(B, 3, H, W)`` (RGB, channels first) in the order
asked for. :class:`BatchLoader` iterates a source in (shuffled, prefetched) batches, and
:func:`open_source` picks the right source for a path::

    source = open_source("data/shapes-20k", split="train")      # folder with meta.json
    loader = BatchLoader(source, batch_size=256, seed=0)
    for epoch in range(10):
        loader.set_epoch(epoch)
        for images, targets, indices in loader:                 # uint8 (B,3,H,W), int64 (B,), int64 (B,)
            ...

Sources:

* :class:`SyntheticSource` - a folder written by :mod:`synthetic.store` (memory-mapped, one
  fancy-index per batch, no per-image Python work).
* :class:`ImageFolderSource` - torchvision's ImageFolder layout (``root/<class>/<image>``).
* :class:`CocoSource` - the images of a COCO annotation file.
* :class:`VocSource` - PASCAL VOC 2012 segmentation (images and masks).
* :class:`VideoFramesSource` - folders of video frames (``root/<video>/<frame>``).

The file-based sources decode with PIL on a shared thread pool (PIL releases the GIL while
decoding and resizing), resize every image to ``image_size x image_size`` (shorter side to
``image_size``, centre crop, antialiased bilinear) and by default keep the decoded pixels in memory,
so every epoch after the first costs no decoding.
"""
from __future__ import annotations

import json
import os
import queue
import re
import threading
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from PIL import Image

from synthetic import store

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
FRAME_EXTENSIONS = (".jpg", ".jpeg", ".png")
FORMATS = ("synthetic", "coco", "voc", "imagefolder", "frames")
ACCEPTED = ("a synthetic dataset folder (with meta.json), a COCO annotation .json file, "
            "a VOC folder (with JPEGImages/), an ImageFolder (class subfolders of images), "
            "or folders of video frames (pass format='frames')")
VOC_CLASSES = [
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
    "tvmonitor",
]
Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


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
# Index handling


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


def _channels_first(batch: np.ndarray) -> torch.Tensor:
    """uint8 ``(B, H, W, 3)`` array -> ``(B, 3, H, W)`` tensor view (channels_last memory, no copy)."""
    return torch.from_numpy(batch).permute(0, 3, 1, 2)


# --------------------------------------------------------------------------------------------
# Synthetic datasets


class SyntheticSource:
    """The images of one split of a :mod:`synthetic.store` dataset.

    Index ``i`` of this source is image ``self.indices[i]`` of ``self.dataset``, so masks, depth and
    the label tables are reachable as e.g. ``source.dataset.semantic[source.indices[i]]``.

    Attributes:
        dataset: the opened :class:`synthetic.store.SyntheticDataset` (memory-mapped).
        indices: int64 ``(N,)`` dataset indices of the split's images, ascending.
        targets: int64 ``(N,)`` class of each image's primary object (``labels.csv`` ``class``).
    """

    def __init__(self, root: Path | str, split: str = "all") -> None:
        self.root = Path(root)
        self.split = split
        self.dataset = store.open_dataset(self.root)
        self.indices = np.asarray(self.dataset.split_indices(split), dtype=np.int64)
        self.classes: list[str] = self.dataset.classes
        self.image_size: int | None = int(self.dataset.images.shape[1])
        labels = self.dataset.labels
        cls = labels["class"].to_numpy() if "class" in labels else np.full(len(labels), -1)
        self.targets = np.nan_to_num(np.asarray(cls, dtype=np.float64), nan=-1).astype(np.int64)[self.indices]

    def __len__(self) -> int:
        return int(self.indices.size)

    def read(self, indices: np.ndarray) -> torch.Tensor:
        """uint8 ``(B, 3, H, W)``: one fancy-index on the memmap in ascending order, then reordered."""
        rows = self.indices[as_index_array(indices, len(self))]
        order = np.argsort(rows, kind="stable")
        batch = np.asarray(self.dataset.images[rows[order]])
        if not np.array_equal(order, np.arange(order.size)):
            restored = np.empty_like(batch)
            restored[order] = batch
            batch = restored
        return _channels_first(batch)

    def __getstate__(self) -> dict[str, Any]:
        """Pickle by path (the memmaps are reopened, never copied, e.g. into DataLoader workers)."""
        return {"root": self.root, "split": self.split}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["root"], state["split"])

    def __repr__(self) -> str:
        return f"SyntheticSource({str(self.root)!r}, split={self.split!r}, n={len(self)})"


# --------------------------------------------------------------------------------------------
# Decoding files


_EXECUTOR: ThreadPoolExecutor | None = None
_EXECUTOR_LOCK = threading.Lock()


def decode_executor() -> ThreadPoolExecutor:
    """The thread pool shared by every file-based source (created on first use)."""
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


class _DecodeImage:
    """Picklable ``path -> uint8 (size, size, 3)`` decoder (a lambda would not pickle)."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __call__(self, path: Path) -> np.ndarray:
        return decode_image(path, self.size)


class _DecodeMask(_DecodeImage):
    """Picklable ``path -> uint8 (size, size)`` label decoder."""

    def __call__(self, path: Path) -> np.ndarray:
        return decode_mask(path, self.size)


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
        self.files = DecodedFiles(self.paths, _DecodeImage(self.image_size),
                                  (self.image_size, self.image_size, 3), cache)

    def __len__(self) -> int:
        return len(self.paths)

    def read(self, indices: np.ndarray) -> torch.Tensor:
        """uint8 ``(B, 3, S, S)`` with ``S = image_size``, decoded in parallel (or from the cache)."""
        return _channels_first(self.files.gather(as_index_array(indices, len(self))))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n={len(self)}, image_size={self.image_size})"


def _is_image(path: Path, extensions: Sequence[str] = IMAGE_EXTENSIONS) -> bool:
    return path.suffix.lower() in extensions and not path.name.startswith(".")


def _subfolders(root: Path) -> list[Path]:
    """Non-hidden subfolders of ``root``, sorted by name."""
    return sorted((p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")),
                  key=lambda p: p.name)


def _images_under(folder: Path, extensions: Sequence[str] = IMAGE_EXTENSIONS) -> list[Path]:
    """Image files anywhere under ``folder`` (following links), sorted by path."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        found += [Path(dirpath) / f for f in filenames if _is_image(Path(f), extensions)]
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
# ImageFolder


class ImageFolderSource(FileSource):
    """torchvision's ImageFolder layout: ``root[/<split>]/<class>/**/<image>``.

    Classes are the sorted subfolder names (every subfolder, so the indices agree between splits
    even where a split lacks a class), unless ``classes`` or a ``root/classes.txt`` (written by
    :mod:`synthetic.exports` in the dataset's own class order) gives the order; subfolders missing
    from that list follow it, sorted. Images are sorted by path within each class.
    """

    def __init__(self, root: Path | str, image_size: int, split: str | None = None,
                 cache: bool = True, classes: Sequence[str] | None = None) -> None:
        self.root = Path(root)
        base = self.root / split if split else self.root
        if not base.is_dir():
            raise ValueError(f"{base}: no such folder; expected an ImageFolder (class subfolders of images)")
        listed = list(classes) if classes is not None else read_class_list(self.root / "classes.txt") or []
        self.classes = listed + [p.name for p in _subfolders(base) if p.name not in listed]
        paths, targets = [], []
        for c, name in enumerate(self.classes):
            files = _images_under(base / name) if (base / name).is_dir() else []
            paths += files
            targets += [c] * len(files)
        if not paths:
            raise ValueError(f"{base}: no images in class subfolders; expected an ImageFolder "
                             f"(<class>/<image>.{{jpg,png,...}})")
        self.targets = np.asarray(targets, dtype=np.int64)
        self._init_files(paths, image_size, cache)


# --------------------------------------------------------------------------------------------
# COCO


class CocoSource(FileSource):
    """The images of a COCO annotation file (``images`` in file order).

    Attributes:
        classes: category names in ascending category id; ``category_ids[c]`` is the COCO id.
        targets: int64 ``(N,)`` class of each image's largest annotation (by ``area``), -1 if none.
        image_ids: int64 ``(N,)`` COCO image ids.
        annotations: ``annotations[i]`` is the list of annotation dicts of image ``i``.
        images: the ``images`` entries of the json, one per source index.
    """

    def __init__(self, annotation_json: Path | str, image_dir: Path | str, image_size: int,
                 cache: bool = True) -> None:
        self.annotation_json = Path(annotation_json)
        self.image_dir = Path(image_dir)
        try:
            data = json.loads(self.annotation_json.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"{self.annotation_json}: cannot read COCO annotations ({e})") from e
        if not isinstance(data, dict) or not isinstance(data.get("images"), list):
            raise ValueError(f"{self.annotation_json}: not a COCO annotation file (no 'images' list)")
        if not data["images"]:
            raise ValueError(f"{self.annotation_json}: COCO file lists no images")
        categories = sorted(data.get("categories", []), key=lambda c: c["id"])
        self.category_ids = [int(c["id"]) for c in categories]
        self.classes = [str(c.get("name", c["id"])) for c in categories]
        self.images: list[dict[str, Any]] = data["images"]
        self.image_ids = np.asarray([im["id"] for im in self.images], dtype=np.int64)
        position = {int(i): k for k, i in enumerate(self.image_ids)}
        self.annotations: list[list[dict[str, Any]]] = [[] for _ in self.images]
        for ann in data.get("annotations", []):
            k = position.get(int(ann["image_id"]))
            if k is not None:
                self.annotations[k].append(ann)
        class_of = {cid: c for c, cid in enumerate(self.category_ids)}
        self.targets = np.asarray([self._largest_class(a, class_of) for a in self.annotations],
                                  dtype=np.int64)
        self._init_files([self.image_dir / im["file_name"] for im in self.images], image_size, cache)

    @staticmethod
    def _largest_class(anns: list[dict[str, Any]], class_of: dict[int, int]) -> int:
        """Class index of the annotation with the largest area (box area if ``area`` is absent)."""
        def area(a: dict[str, Any]) -> float:
            if "area" in a:
                return float(a["area"])
            box = a.get("bbox") or [0, 0, 0, 0]
            return float(box[2]) * float(box[3])

        if not anns:
            return -1
        return class_of.get(int(max(anns, key=area)["category_id"]), -1)


def coco_image_dir(annotation_json: Path) -> Path | None:
    """Guess the image folder of a COCO json: ``images/`` beside it, or the standard layout
    (``annotations/instances_val2017.json`` -> ``val2017/`` or ``images/val2017/``)."""
    split = annotation_json.stem.split("_")[-1]
    up = annotation_json.parent.parent
    for candidate in (annotation_json.parent / "images", up / split, up / "images" / split,
                      up / "images"):
        if candidate.is_dir():
            return candidate
    return None


# --------------------------------------------------------------------------------------------
# VOC


class VocSource(FileSource):
    """PASCAL VOC 2012 segmentation: ``JPEGImages/<id>.jpg`` + ``SegmentationClass/<id>.png``
    for the ids of ``ImageSets/Segmentation/<split>.txt``.

    Masks use the store's convention: 0 background, ``c + 1`` class ``c`` of ``classes`` (given, or
    read from ``root/classes.txt`` without its leading "background" as our exports write it, else
    VOC's 20 object classes), 255 void. ``targets`` is the class of the largest object box of
    ``Annotations/<id>.xml`` where that file exists, else -1.
    """

    def __init__(self, root: Path | str, image_size: int, split: str = "train", cache: bool = True,
                 classes: Sequence[str] | None = None) -> None:
        self.root = Path(root)
        self.split = split
        listing = self.root / "ImageSets" / "Segmentation" / f"{split}.txt"
        if not listing.is_file():
            have = sorted(p.stem for p in listing.parent.glob("*.txt")) if listing.parent.is_dir() else []
            raise ValueError(f"{self.root}: no VOC split {split!r} ({listing} missing; splits here: {have})")
        self.ids = [line.split()[0] for line in listing.read_text().splitlines() if line.strip()]
        if not self.ids:
            raise ValueError(f"{listing}: lists no images")
        if classes is None:
            classes = read_class_list(self.root / "classes.txt") or ["background", *VOC_CLASSES]
            classes = classes[1:] if classes[0] == "background" else classes
        self.classes = list(classes)
        self.targets = np.asarray([self._box_class(i) for i in self.ids], dtype=np.int64)
        self._init_files([self.root / "JPEGImages" / f"{i}.jpg" for i in self.ids], image_size, cache)
        self.mask_paths = [self.root / "SegmentationClass" / f"{i}.png" for i in self.ids]
        self.masks = DecodedFiles(self.mask_paths, _DecodeMask(self.image_size),
                                  (self.image_size, self.image_size), cache)

    def _box_class(self, image_id: str) -> int:
        """Class of the largest object in ``Annotations/<id>.xml``; -1 without one."""
        path = self.root / "Annotations" / f"{image_id}.xml"
        if not path.is_file():
            return -1
        best, best_area = -1, -1.0
        for obj in ET.parse(path).getroot().iter("object"):
            name, box = obj.findtext("name", "").strip(), obj.find("bndbox")
            if name not in self.classes or box is None:
                continue
            w = float(box.findtext("xmax", "0")) - float(box.findtext("xmin", "0"))
            h = float(box.findtext("ymax", "0")) - float(box.findtext("ymin", "0"))
            if w * h > best_area:
                best, best_area = self.classes.index(name), w * h
        return best

    def read_masks(self, indices: np.ndarray) -> torch.Tensor:
        """uint8 ``(B, S, S)`` label masks, cropped and resized (nearest) exactly like ``read``."""
        return torch.from_numpy(self.masks.gather(as_index_array(indices, len(self))))


# --------------------------------------------------------------------------------------------
# Video frames


class VideoFramesSource(FileSource):
    """Folders of video frames: ``root[/<split>]/<video>/<frame>.{jpg,png}``.

    Frames are ordered by name within a video (numbers compared as numbers, so ``2`` < ``10``).

    Attributes:
        classes: video names; ``targets`` (= ``video_ids``) is each frame's video index.
        video_ids: int64 ``(N,)`` video index of each frame.
        frame_ids: int64 ``(N,)`` position of each frame within its video (0-based).
    """

    def __init__(self, root: Path | str, image_size: int, split: str | None = None,
                 cache: bool = True) -> None:
        self.root = Path(root)
        base = self.root / split if split else self.root
        if not base.is_dir():
            raise ValueError(f"{base}: no such folder; expected folders of video frames")
        self.classes, paths, videos, frames = [], [], [], []
        for folder in _subfolders(base):
            files = sorted((p for p in folder.iterdir() if p.is_file() and _is_image(p, FRAME_EXTENSIONS)),
                           key=lambda p: natural_key(p.name))
            if files:
                videos += [len(self.classes)] * len(files)
                frames += range(len(files))
                self.classes.append(folder.name)
                paths += files
        if not paths:
            raise ValueError(f"{base}: no video frames; expected <video>/<frame>.{{jpg,png}}")
        self.video_ids = np.asarray(videos, dtype=np.int64)
        self.frame_ids = np.asarray(frames, dtype=np.int64)
        self.targets = self.video_ids
        self._init_files(paths, image_size, cache)

    def pairs(self, max_gap: int, rng: np.random.Generator | int | None = None) -> np.ndarray:
        """int64 ``(N, 2)``: row ``i`` is frame ``i`` and a random other frame of its video at most
        ``max_gap`` frames away (uniform over those; frame ``i`` itself only when there is none)."""
        if max_gap < 0:
            raise ValueError(f"max_gap must be >= 0, got {max_gap}")
        rng = np.random.default_rng(rng)
        i = np.arange(len(self), dtype=np.int64)
        start = i - self.frame_ids                                   # first frame of the video
        end = start + np.bincount(self.video_ids)[self.video_ids]    # one past its last frame
        lo, hi = np.maximum(start, i - max_gap), np.minimum(end - 1, i + max_gap)
        others = hi - lo                                             # candidates other than i
        j = lo + (rng.random(i.size) * others).astype(np.int64)
        j = np.where(others > 0, j + (j >= i), i)
        return np.stack([i, j], axis=1)


# --------------------------------------------------------------------------------------------
# Format detection


def _bad_path(path: Path, why: str) -> ValueError:
    return ValueError(f"{path}: {why}; expected {ACCEPTED}")


def _has_class_images(folder: Path) -> bool:
    """Whether some subfolder of ``folder`` holds an image file (directly or deeper)."""
    for sub in _subfolders(folder):
        for _, _, filenames in os.walk(sub, followlinks=True):
            if any(_is_image(Path(f)) for f in filenames):
                return True
    return False


def detect_format(path: Path | str, split: str | None = None) -> str:
    """The format of ``path`` (one of ``FORMATS`` except "frames", which is never guessed)."""
    path = Path(path)
    if not path.exists():
        raise _bad_path(path, "no such file or folder")
    if path.is_file():
        if path.suffix.lower() == ".json":
            return "coco"
        raise _bad_path(path, "not a folder or a .json file")
    if (path / "meta.json").is_file():
        return "synthetic"
    if (path / "JPEGImages").is_dir():
        return "voc"
    base = path / split if split else path
    if base.is_dir() and _has_class_images(base):
        return "imagefolder"
    if not any(path.iterdir()):
        raise _bad_path(path, "empty folder")
    raise _bad_path(path, "unknown layout")


def open_source(path: Path | str, image_size: int | None = None, split: str | None = None, *,
                format: str | None = None, image_dir: Path | str | None = None,
                cache: bool = True) -> ImageSource:
    """Open ``path`` as the right :class:`ImageSource`.

    ``format`` (one of ``FORMATS``) skips detection; folders of video frames look like an
    ImageFolder, so they need ``format="frames"``. ``image_size`` is required for the file formats
    and must match a synthetic dataset's own size. ``split`` defaults to "all" (synthetic) and
    "train" (VOC); for ImageFolder / frames it is a subfolder. ``image_dir`` is a COCO file's image
    folder (default: ``images/`` beside the json, or the standard COCO layout).
    Raises ValueError (one line naming the path and the accepted formats) on anything else.
    """
    path = Path(path)
    if format is None:
        format = detect_format(path, split)
    elif format not in FORMATS:
        raise ValueError(f"{path}: unknown format {format!r}; expected one of {', '.join(FORMATS)}")
    elif not path.exists():
        raise _bad_path(path, "no such file or folder")
    if format == "synthetic":
        source = SyntheticSource(path, split or "all")
        if image_size is not None and image_size != source.image_size:
            raise ValueError(f"{path}: synthetic images are {source.image_size} px, asked for "
                             f"{image_size}; resize in the model's transform or regenerate")
        return source
    if image_size is None:
        raise ValueError(f"{path}: {format} images are decoded from files; pass image_size")
    if format == "coco":
        if split is not None:
            raise ValueError(f"{path}: a COCO file is one split; open that split's json instead")
        folder = Path(image_dir) if image_dir is not None else coco_image_dir(path)
        if folder is None or not folder.is_dir():
            raise ValueError(f"{path}: no image folder found for this COCO file "
                             f"({folder or 'images/ beside it'}); pass image_dir")
        return CocoSource(path, folder, image_size, cache=cache)
    if format == "voc":
        return VocSource(path, image_size, split or "train", cache=cache)
    if format == "imagefolder":
        return ImageFolderSource(path, image_size, split, cache=cache)
    return VideoFramesSource(path, image_size, split, cache=cache)


# --------------------------------------------------------------------------------------------
# Batching


class _Failure:
    """An exception raised in the prefetch thread, carried to the consumer."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


_END = object()


class BatchLoader:
    """Iterate an :class:`ImageSource` in batches, reading ahead on a background thread.

    Yields ``(images, targets, indices)``: uint8 ``(B, 3, H, W)``, int64 ``(B,)``, int64 ``(B,)``
    where ``indices`` are source indices. With ``shuffle`` the order is a permutation drawn from
    ``(seed, epoch)``: the same for the same seed and epoch, different across epochs; call
    :meth:`set_epoch` before each epoch (iterating does not advance it). ``indices`` restricts the
    loader to a subset of the source. ``prefetch`` batches are read ahead (0: read in the
    consumer's thread); an exception in the reader is re-raised by the iterator, and the reader
    stops when the iterator is exhausted, closed or dropped. ``pin_memory`` pins the images
    (ignored with a warning when no CUDA device is present).
    """

    def __init__(self, source: ImageSource, batch_size: int, shuffle: bool = True, seed: int = 0,
                 drop_last: bool = True, prefetch: int = 2, indices: np.ndarray | None = None,
                 pin_memory: bool = False) -> None:
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if prefetch < 0:
            raise ValueError(f"prefetch must be >= 0, got {prefetch}")
        self.source = source
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.seed = int(seed)
        self.drop_last = drop_last
        self.prefetch = int(prefetch)
        n = len(source)
        self.indices = np.arange(n, dtype=np.int64) if indices is None else as_index_array(indices, n)
        self.pin_memory = pin_memory and torch.cuda.is_available()
        if pin_memory and not self.pin_memory:
            warnings.warn("pin_memory=True but no CUDA device is available; not pinning", stacklevel=2)
        self.epoch = 0
        self._targets = torch.from_numpy(np.asarray(source.targets, dtype=np.int64))

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose shuffled order the next iteration uses."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        """Number of batches per epoch."""
        n = self.indices.size
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def order(self, epoch: int | None = None) -> np.ndarray:
        """int64 ``(M,)`` the source indices of ``epoch`` (default: the current one), in order."""
        if not self.shuffle:
            return self.indices
        rng = np.random.default_rng([self.seed, self.epoch if epoch is None else int(epoch)])
        return self.indices[rng.permutation(self.indices.size)]

    def batches(self, epoch: int | None = None) -> list[np.ndarray]:
        """The index arrays of ``epoch``'s batches (``len(self)`` of them)."""
        order = self.order(epoch)
        return [order[s:s + self.batch_size] for s in range(0, len(self) * self.batch_size, self.batch_size)]

    def read_batch(self, idx: np.ndarray) -> Batch:
        """Read one batch of source indices ``idx``."""
        images = self.source.read(idx)
        if self.pin_memory:
            images = images.pin_memory()
        index = torch.from_numpy(idx)
        return images, self._targets[index], index

    def __iter__(self) -> Iterator[Batch]:
        return self.iter_plan(self.batches())

    def iter_plan(self, plan: Sequence[np.ndarray]) -> Iterator[Batch]:
        """Read the given batches of source indices in order (prefetched like ``__iter__``); used
        to resume mid-epoch and to read one process's share of a global batch."""
        if self.prefetch == 0:
            return (self.read_batch(idx) for idx in plan)
        return self._prefetched(list(plan))

    def _prefetched(self, plan: list[np.ndarray]) -> Iterator[Batch]:
        """Yield the batches of ``plan`` read by a background thread through a bounded queue."""
        q: queue.Queue[Any] = queue.Queue(maxsize=self.prefetch)
        stop = threading.Event()
        thread = threading.Thread(target=self._produce, args=(plan, q, stop), daemon=True,
                                  name="sslbench-prefetch")
        thread.start()
        try:
            while True:
                item = q.get()
                if item is _END:
                    return
                if isinstance(item, _Failure):
                    raise item.error
                yield item
        finally:
            stop.set()
            thread.join()

    def _produce(self, plan: list[np.ndarray], q: queue.Queue[Any], stop: threading.Event) -> None:
        """Prefetch thread: read the batches of ``plan`` into ``q`` until done or ``stop`` is set."""
        def put(item: Any) -> bool:
            while not stop.is_set():
                try:
                    q.put(item, timeout=0.05)
                    return True
                except queue.Full:
                    pass
            return False

        try:
            for idx in plan:
                if stop.is_set() or not put(self.read_batch(idx)):
                    return
        except BaseException as e:  # noqa: BLE001 - handed to the consumer, which re-raises it
            put(_Failure(e))
            return
        put(_END)


# --------------------------------------------------------------------------------------------
# torch.utils.data


class SourceDataset(torch.utils.data.Dataset):
    """A map-style ``torch.utils.data.Dataset`` over an :class:`ImageSource`.

    ``dataset[i]`` is ``(uint8 (3, H, W), int target)``; ``__getitems__`` reads a whole batch with
    one ``source.read`` when a ``DataLoader`` asks for a batch of indices.
    """

    def __init__(self, source: ImageSource) -> None:
        self.source = source

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.source.read(np.asarray([index]))[0], int(self.source.targets[index])

    def __getitems__(self, indices: Sequence[int]) -> list[tuple[torch.Tensor, int]]:
        images = self.source.read(np.asarray(indices, dtype=np.int64))
        return [(img, int(self.source.targets[i])) for img, i in zip(images, indices)]


def as_torch_dataset(source: ImageSource) -> SourceDataset:
    """Wrap ``source`` for ``torch.utils.data.DataLoader`` (use a batch sampler for speed)."""
    return SourceDataset(source)
