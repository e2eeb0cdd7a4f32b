"""Datasets distributed as arrays rather than image files: CIFAR-10 / CIFAR-100 (python pickle
batches), STL-10 (binary), MNIST-style IDX files (MNIST, Fashion-MNIST), each in its own
distributed layout, as one :class:`ArraySource`.

CIFAR's batches are pickles; they are read with :class:`ArraysOnlyUnpickler`, which admits only
what those files hold (numpy's array reconstruction, ``ndarray``, ``dtype`` and the latin-1
``_codecs.encode`` that protocol-2 pickles use for raw bytes) and refuses any other global with
one line naming it, so a planted file cannot run code.

Layouts (Krizhevsky 2009, https://www.cs.toronto.edu/~kriz/cifar.html; Coates et al. 2011,
https://cs.stanford.edu/~acoates/stl10/; LeCun et al., http://yann.lecun.com/exdb/mnist/):

- ``cifar-10-batches-py/``: ``data_batch_1..5`` (train), ``test_batch``, ``batches.meta``
  (``label_names``); each batch a dict of ``data`` (N, 3072) uint8 (R, G, B planes of 32 x 32) and
  ``labels``.
- ``cifar-100-python/``: ``train``, ``test``, ``meta`` (``fine_label_names``); ``fine_labels``.
- ``stl10_binary/``: ``{train,test,unlabeled}_X.bin`` (N x 3 x 96 x 96 uint8, each plane
  column-major), ``{train,test}_y.bin`` (uint8 labels 1-10), ``class_names.txt``.
- MNIST IDX: ``{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]`` (grey images are read as RGB).
"""
from __future__ import annotations

import functools
import gzip
import pickle
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from imagedata.source import as_index_array, channels_first


class ArraySource:
    """Images held as one uint8 array (N, H, W, 3) or (N, H, W) (grey, read as RGB), in memory or
    memory-mapped, resized to ``image_size`` on read (PIL bilinear, antialiased when shrinking, as
    the file readers decode). ``paths`` are the files the arrays came from (the features cache
    fingerprints them)."""

    def __init__(self, load: Callable[[], np.ndarray], targets: np.ndarray, classes: Sequence[str],
                 image_size: int | None, paths: Sequence[Path]) -> None:
        self.load = load                 # a picklable function giving the images: pickles carry no pixels
        self.images = images = load()
        self.targets = np.asarray(targets, dtype=np.int64)
        self.classes = list(classes)
        self.native = int(images.shape[1])
        self.image_size = int(image_size or self.native)
        if self.image_size <= 0:
            raise ValueError(f"image_size must be positive, got {image_size!r}")
        self.paths = list(paths)

    def __len__(self) -> int:
        return len(self.images)

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "images"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.images = self.load()

    def read(self, indices: np.ndarray) -> torch.Tensor:
        idx = as_index_array(indices, len(self))
        batch = np.asarray(self.images[idx])
        if batch.ndim == 3:
            batch = np.repeat(batch[..., None], 3, axis=3)
        if self.image_size != self.native:
            size = (self.image_size, self.image_size)
            resized = [np.asarray(Image.fromarray(im).resize(size, Image.Resampling.BILINEAR)) for im in batch]
            batch = np.stack(resized) if resized else np.zeros((0, *size, 3), dtype=np.uint8)
        return channels_first(np.ascontiguousarray(batch))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n={len(self)}, image_size={self.image_size})"


# --------------------------------------------------------------------------------------------
# CIFAR


class ArraysOnlyUnpickler(pickle.Unpickler):
    """Unpickles only plain containers, numbers, bytes and numpy arrays; any other global is an
    UnpicklingError naming it."""

    def find_class(self, module: str, name: str) -> Any:
        import codecs
        allowed = {("numpy.core.multiarray", "_reconstruct"): np._core.multiarray._reconstruct,
                   ("numpy._core.multiarray", "_reconstruct"): np._core.multiarray._reconstruct,
                   ("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
                   ("_codecs", "encode"): codecs.encode}
        if (module, name) not in allowed:
            raise pickle.UnpicklingError(f"refused global {module}.{name} (only arrays, lists and bytes are read)")
        return allowed[(module, name)]


def load_arrays_pickle(path: Path) -> dict[str, Any]:
    """A CIFAR batch: the pickled dict with its keys as str; ValueError naming the file if it is not one."""
    try:
        with open(path, "rb") as f:
            obj = ArraysOnlyUnpickler(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as e:
        raise ValueError(f"{path}: not a readable CIFAR batch ({e})") from e
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: not a readable CIFAR batch (a {type(obj).__name__}, expected a dict)")
    return {k.decode() if isinstance(k, bytes) else str(k): v for k, v in obj.items()}


CIFAR_SPLITS = {"cifar10": {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]},
                "cifar100": {"train": ["train"], "test": ["test"]}}
_CIFAR = {"cifar10": ("cifar-10-batches-py", "batches.meta", "label_names", "labels"),
          "cifar100": ("cifar-100-python", "meta", "fine_label_names", "fine_labels")}


def cifar_root(path: Path, kind: str) -> Path:
    """The folder holding the batches: ``path`` itself or its distributed subfolder."""
    sub = path / _CIFAR[kind][0]
    return sub if sub.is_dir() else path


def _names(values: Sequence[Any]) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def open_cifar(path: Path, image_size: int | None, split: str | None = None, kind: str = "cifar10") -> ArraySource:
    """CIFAR-10 / CIFAR-100 ``split`` (train | test) in the python-batches layout."""
    root = cifar_root(path, kind)
    split = split or "train"
    files = CIFAR_SPLITS[kind].get(split)
    if files is None:
        raise ValueError(f"{path}: {kind} has no split {split!r}; splits: {', '.join(CIFAR_SPLITS[kind])}")
    _, meta_file, names_key, labels_key = _CIFAR[kind]
    paths = [root / f for f in files]
    targets = np.concatenate([_entry(p, labels_key, np.int64) for p in paths])
    meta = root / meta_file
    classes = _names(load_arrays_pickle(meta)[names_key]) if meta.is_file() else [str(i) for i in
                                                                                  range(int(targets.max()) + 1)]
    return ArraySource(functools.partial(cifar_images, tuple(paths)), targets, classes, image_size, paths)


def _entry(path: Path, key: str, dtype: type) -> np.ndarray:
    """Entry ``key`` of a CIFAR batch as an array; ValueError naming the file when it lacks it or
    it is not numeric."""
    batch = load_arrays_pickle(path)
    try:
        return np.asarray(batch[key], dtype=dtype)
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{path}: not a CIFAR batch with {key!r} ({type(e).__name__}: {e})") from e


def cifar_images(paths: tuple[Path, ...]) -> np.ndarray:
    """uint8 (N, 32, 32, 3) of CIFAR batches (rows of R, G, B planes)."""
    data = np.concatenate([_entry(p, "data", np.uint8) for p in paths])
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise ValueError(f"{paths[0]}: CIFAR data of shape {data.shape}, expected (N, 3072)")
    return np.ascontiguousarray(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))


# --------------------------------------------------------------------------------------------
# STL-10

STL10_SPLITS = ("train", "test", "unlabeled")


def stl10_root(path: Path) -> Path:
    sub = path / "stl10_binary"
    return sub if sub.is_dir() else path


def open_stl10(path: Path, image_size: int | None, split: str | None = None) -> ArraySource:
    """STL-10 ``split`` (train | test | unlabeled; unlabeled targets are -1), memory-mapped."""
    root = stl10_root(path)
    split = split or "train"
    if split not in STL10_SPLITS:
        raise ValueError(f"{path}: stl10 has no split {split!r}; splits: {', '.join(STL10_SPLITS)}")
    xfile = root / f"{split}_X.bin"
    if not xfile.is_file():
        raise ValueError(f"{xfile}: missing; an STL-10 folder holds {split}_X.bin")
    if xfile.stat().st_size % (3 * 96 * 96):
        raise ValueError(f"{xfile}: {xfile.stat().st_size} bytes is not a whole number of 3 x 96 x 96 images")
    n = xfile.stat().st_size // (3 * 96 * 96)
    yfile = root / f"{split}_y.bin"
    targets = (np.fromfile(yfile, dtype=np.uint8).astype(np.int64) - 1 if yfile.is_file()
               else np.full(n, -1, dtype=np.int64))
    if len(targets) != n:
        raise ValueError(f"{yfile}: {len(targets)} labels for {n} images")
    names = root / "class_names.txt"
    classes = ([s.strip() for s in names.read_text().splitlines() if s.strip()] if names.is_file()
               else [str(i) for i in range(10)])
    return ArraySource(functools.partial(stl10_images, xfile), targets, classes, image_size,
                       [xfile] + ([yfile] if yfile.is_file() else []))


def stl10_images(xfile: Path) -> np.ndarray:
    """uint8 (N, 96, 96, 3) view of an STL-10 ``*_X.bin`` (memory-mapped; planes column-major)."""
    return np.memmap(xfile, dtype=np.uint8, mode="r").reshape(-1, 3, 96, 96).transpose(0, 3, 2, 1)


# --------------------------------------------------------------------------------------------
# IDX (MNIST, Fashion-MNIST)

IDX_SPLITS = {"train": "train", "test": "t10k"}
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot"]


def idx_file(root: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (root / name).is_file():
            return root / name
    return None


def read_idx(path: Path) -> np.ndarray:
    """An IDX array (magic 0x00 0x00 type ndim, big-endian dims, data); gzip by suffix."""
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path}: not an IDX file of unsigned bytes")
    ndim = raw[3]
    dims = np.frombuffer(raw, dtype=">u4", count=ndim, offset=4).astype(np.int64)
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: {data.size} values for dims {dims.tolist()}")
    return data.reshape(dims)


def open_idx(path: Path, image_size: int | None, split: str | None = None) -> ArraySource:
    """MNIST-style ``split`` (train | test, the ``t10k`` files); Fashion-MNIST's class names when the
    folder is named for it."""
    split = split or "train"
    if split not in IDX_SPLITS:
        raise ValueError(f"{path}: an IDX dataset has no split {split!r}; splits: {', '.join(IDX_SPLITS)}")
    stem = IDX_SPLITS[split]
    xf, yf = idx_file(path, f"{stem}-images-idx3-ubyte"), idx_file(path, f"{stem}-labels-idx1-ubyte")
    if xf is None or yf is None:
        raise ValueError(f"{path}: missing {stem}-images-idx3-ubyte[.gz] / {stem}-labels-idx1-ubyte[.gz]")
    targets = read_idx(yf).astype(np.int64)
    classes = FASHION_CLASSES if "fashion" in path.resolve().name.lower() else [str(i) for i in range(10)]
    source = ArraySource(functools.partial(read_idx, xf), targets, classes, image_size, [xf, yf])
    if len(source) != len(targets):
        raise ValueError(f"{yf}: {len(targets)} labels for {len(source)} images")
    return source


def detect_array_format(path: Path) -> str | None:
    """``cifar10`` / ``cifar100`` / ``stl10`` / ``idx`` when ``path`` holds that layout, else None."""
    if (cifar_root(path, "cifar10") / "data_batch_1").is_file():
        return "cifar10"
    root = cifar_root(path, "cifar100")
    if (root / "train").is_file() and (root / "meta").is_file():
        return "cifar100"
    if (stl10_root(path) / "train_X.bin").is_file() or (stl10_root(path) / "test_X.bin").is_file():
        return "stl10"
    if idx_file(path, "train-images-idx3-ubyte") or idx_file(path, "t10k-images-idx3-ubyte"):
        return "idx"
    return None
