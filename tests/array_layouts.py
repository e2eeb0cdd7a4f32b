"""Small datasets in the distributed array layouts (CIFAR-10 / CIFAR-100 python batches, STL-10
binaries, MNIST-style IDX), for the readers' tests and the suite's: ``make_<layout>(root)`` writes
one and returns ``{split: (images (N, H, W, 3) or raw CIFAR rows, labels)}``."""
from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np

RNG = np.random.default_rng(0)


def _cifar_batch(path: Path, n: int, labels_key: bytes, classes: int) -> tuple[np.ndarray, np.ndarray]:
    data = RNG.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    labels = RNG.integers(0, classes, size=n)
    with open(path, "wb") as f:                  # protocol 2 with bytes keys, as the distributed files
        pickle.dump({b"batch_label": b"x", labels_key: labels.tolist(), b"data": data,
                     b"filenames": [b"a.png"] * n}, f, protocol=2)
    return data, labels


def make_cifar10(root: Path, per_batch: int = 4, test: int = 6) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    base = root / "cifar-10-batches-py"
    base.mkdir(parents=True)
    parts = [_cifar_batch(base / f"data_batch_{i}", per_batch, b"labels", 10) for i in range(1, 6)]
    test_part = _cifar_batch(base / "test_batch", test, b"labels", 10)
    with open(base / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [f"c{i}".encode() for i in range(10)], b"num_vis": 3072}, f, protocol=2)
    return {"train": (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])),
            "test": test_part}


def make_cifar100(root: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    base = root / "cifar-100-python"
    base.mkdir(parents=True)
    out = {s: _cifar_batch(base / s, 5, b"fine_labels", 100) for s in ("train", "test")}
    with open(base / "meta", "wb") as f:
        pickle.dump({b"fine_label_names": [f"f{i}".encode() for i in range(100)]}, f, protocol=2)
    return out


def make_stl10(root: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    base = root / "stl10_binary"
    base.mkdir(parents=True)
    out = {}
    for split, n in (("train", 3), ("test", 2), ("unlabeled", 2)):
        images = RNG.integers(0, 256, size=(n, 96, 96, 3), dtype=np.uint8)
        images.transpose(0, 3, 2, 1).tofile(base / f"{split}_X.bin")      # planes column-major
        labels = RNG.integers(0, 10, size=n)
        if split != "unlabeled":
            (labels + 1).astype(np.uint8).tofile(base / f"{split}_y.bin")
        out[split] = (images, labels if split != "unlabeled" else np.full(n, -1))
    (base / "class_names.txt").write_text("\n".join(f"s{i}" for i in range(10)) + "\n")
    return out


def _idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


def make_idx(root: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    base = root / "fashion-mnist"
    base.mkdir(parents=True)
    out = {}
    for split, stem, n in (("train", "train", 5), ("test", "t10k", 3)):
        images, labels = RNG.integers(0, 256, size=(n, 28, 28), dtype=np.uint8), RNG.integers(0, 10, size=n)
        _idx(base / f"{stem}-images-idx3-ubyte.gz", images)
        _idx(base / f"{stem}-labels-idx1-ubyte.gz", labels)
        out[split] = (np.repeat(images[..., None], 3, axis=3), labels)
    return out


LAYOUTS = {"cifar10": (make_cifar10, "cifar-10-batches-py"), "cifar100": (make_cifar100, "cifar-100-python"),
           "stl10": (make_stl10, "stl10_binary"), "idx": (make_idx, "fashion-mnist")}
