"""Tiny datasets in every layout the image readers accept, written by the tests themselves.

Each builder writes a handful of solid-colour images (one colour per image number, far apart so
JPEG keeps them distinguishable), so what a reader must return is known exactly.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from fakes import write_fake_dataset
from imagedata.coco import CocoSource
from imagedata.frames import VideoFramesSource
from imagedata.imagefolder import ImageFolderSource
from imagedata.source import ImageSource
from imagedata.synthetic import SyntheticSource
from imagedata.voc import VocSource

SIZE = 8


def colour(k: int) -> tuple[int, int, int]:
    """A distinct solid colour per image number (far apart, so JPEG keeps them distinguishable)."""
    return (20 + 37 * k % 200, 230 - 23 * k % 200, 60 + 51 * k % 180)


def solid(path: Path, k: int, size: tuple[int, int] = (12, 10)) -> None:
    """Write a solid-colour image ``k`` of ``size`` (w, h) at ``path`` (format from its suffix)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour(k)).save(path, quality=95)


@dataclass
class Built:
    """A source plus what reading it must give."""

    source: ImageSource
    expected: np.ndarray   # uint8 (N, S, S, 3)
    targets: np.ndarray    # int64 (N,)
    tolerance: int         # max abs pixel error (JPEG)
    path: Path


def solid_expected(n: int) -> np.ndarray:
    return np.stack([np.broadcast_to(np.uint8(colour(k)), (SIZE, SIZE, 3)) for k in range(n)])


def make_imagefolder(root: Path) -> Path:
    """root/train/{ant,bee,cat}/ and root/val/ (val has no bee) with solid PNG/JPEG images."""
    k = 0
    for split, per_class in (("train", {"ant": 2, "bee": 3, "cat": 1}), ("val", {"ant": 1, "cat": 2})):
        for c, count in per_class.items():
            for j in range(count):
                solid(root / split / c / f"img{j}.png", k, size=(10 + j, 14))
                k += 1
    (root / "val" / "bee").mkdir()
    return root


def make_coco(root: Path) -> Path:
    """root/images/*.png + root/annotations.json: 4 images, image 2 without annotations."""
    images = [dict(id=10 + k, file_name=f"im{k}.png", width=12, height=10) for k in range(4)]
    for k in range(4):
        solid(root / "images" / f"im{k}.png", k)
    anns = [dict(id=1, image_id=10, category_id=7, area=30.0, bbox=[0, 0, 5, 6], iscrowd=0),
            dict(id=2, image_id=10, category_id=3, area=50.0, bbox=[1, 1, 5, 10], iscrowd=0),
            dict(id=3, image_id=11, category_id=7, area=5.0, bbox=[0, 0, 1, 5], iscrowd=0),
            dict(id=4, image_id=13, category_id=3, bbox=[0, 0, 2, 2], iscrowd=0)]
    cats = [dict(id=7, name="dog"), dict(id=3, name="cat")]
    path = root / "annotations.json"
    path.write_text(json.dumps(dict(images=images, annotations=anns, categories=cats)))
    return path


VOC_IDS = {"train": ["2007_000001", "2007_000002", "2007_000003"], "val": ["2008_000001"]}


def voc_mask(k: int, w: int = 12, h: int = 10) -> Image.Image:
    """Palette mask: left half class k % 20 + 1, right half background, one void pixel row."""
    m = np.zeros((h, w), dtype=np.uint8)
    m[:, : w // 2] = k % 20 + 1
    m[0] = 255
    im = Image.fromarray(m, mode="P")
    im.putpalette([v for i in range(256) for v in (i, 255 - i, (7 * i) % 256)])
    return im


def make_voc(root: Path) -> Path:
    """A VOC2012 folder: JPEG images, palette masks, split lists, XML for the first image only."""
    (root / "ImageSets" / "Segmentation").mkdir(parents=True)
    (root / "SegmentationClass").mkdir()
    k = 0
    for split, ids in VOC_IDS.items():
        (root / "ImageSets" / "Segmentation" / f"{split}.txt").write_text("\n".join(ids) + "\n")
        for i in ids:
            solid(root / "JPEGImages" / f"{i}.jpg", k)
            voc_mask(k).save(root / "SegmentationClass" / f"{i}.png")
            k += 1
    (root / "Annotations").mkdir()
    objects = [("dog", 0, 0, 4, 4), ("person", 1, 1, 9, 8), ("cat", 0, 0, 3, 3)]
    xml = "".join(f"<object><name>{n}</name><bndbox><xmin>{a}</xmin><ymin>{b}</ymin><xmax>{c}</xmax>"
                  f"<ymax>{d}</ymax></bndbox></object>" for n, a, b, c, d in objects)
    (root / "Annotations" / f"{VOC_IDS['train'][0]}.xml").write_text(f"<annotation>{xml}</annotation>")
    return root


def make_frames(root: Path) -> Path:
    """root/clipA/ (frames 1..11, names unpadded), root/clipB/ (3 frames), root/empty/."""
    k = 0
    for video, count in (("clipA", 11), ("clipB", 3)):
        for f in range(count):
            solid(root / video / f"frame{f + 1}.png", k)
            k += 1
    (root / "empty").mkdir()
    return root


def _solid_array(n: int, side: int) -> np.ndarray:
    """uint8 (n, side, side, 3): image k is the solid colour(k)."""
    return np.stack([np.broadcast_to(np.uint8(colour(k)), (side, side, 3)) for k in range(n)])


ARRAY_TARGETS = np.array([3, 1, 4, 1, 5])


def make_array_dataset(kind: str, root: Path) -> Path:
    """Five solid-colour training images (targets ``ARRAY_TARGETS``) in ``kind``'s distributed layout
    (cifar10: one image per data batch; idx: grey levels, read back as grey RGB)."""
    import gzip
    import pickle
    images = _solid_array(5, {"cifar10": 32, "cifar100": 32, "stl10": 96, "idx": 28}[kind])
    rows = images.transpose(0, 3, 1, 2).reshape(5, -1)                  # CIFAR rows: R, G, B planes
    root.mkdir(parents=True)
    if kind == "cifar10":
        for i in range(5):
            with open(root / f"data_batch_{i + 1}", "wb") as f:
                pickle.dump({b"data": rows[i:i + 1], b"labels": [int(ARRAY_TARGETS[i])]}, f, protocol=2)
    elif kind == "cifar100":
        with open(root / "train", "wb") as f:
            pickle.dump({b"data": rows, b"fine_labels": ARRAY_TARGETS.tolist()}, f, protocol=2)
        with open(root / "meta", "wb") as f:
            pickle.dump({b"fine_label_names": [f"f{i}".encode() for i in range(100)]}, f, protocol=2)
    elif kind == "stl10":
        images.transpose(0, 3, 2, 1).tofile(root / "train_X.bin")
        (ARRAY_TARGETS + 1).astype(np.uint8).tofile(root / "train_y.bin")
    else:
        for name, array in (("train-images-idx3-ubyte.gz", images[..., 0]), ("train-labels-idx1-ubyte.gz",
                                                                              ARRAY_TARGETS.astype(np.uint8))):
            header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
            (root / name).write_bytes(gzip.compress(header + np.ascontiguousarray(array).tobytes()))
    return root


def build(kind: str, tmp_path: Path, cache: bool = True) -> Built:
    """Make a tiny dataset of ``kind`` under ``tmp_path`` and open it."""
    if kind == "synthetic":
        root = write_fake_dataset(tmp_path / "synth", n=12, size=SIZE)
        src = SyntheticSource(root)
        return Built(src, np.asarray(src.dataset.images), src.dataset.labels["class"].to_numpy(), 0, root)
    if kind == "imagefolder":
        root = make_imagefolder(tmp_path / "folder")
        src = ImageFolderSource(root, SIZE, split="train", cache=cache)
        return Built(src, solid_expected(6), np.array([0, 0, 1, 1, 1, 2]), 0, root)
    if kind == "coco":
        path = make_coco(tmp_path / "coco")
        src = CocoSource(path, path.parent / "images", SIZE, cache=cache)
        return Built(src, solid_expected(4), np.array([0, 1, -1, 0]), 0, path)
    if kind == "voc":
        root = make_voc(tmp_path / "VOC2012")
        src = VocSource(root, SIZE, cache=cache)
        return Built(src, solid_expected(3), np.array([14, -1, -1]), 4, root)
    if kind == "frames":
        root = make_frames(tmp_path / "frames")
        src = VideoFramesSource(root, SIZE, cache=cache)
        return Built(src, solid_expected(14), np.array([0] * 11 + [1] * 3), 0, root)
    if kind in ARRAY_KINDS:
        root = make_array_dataset(kind, tmp_path / kind)
        from imagedata.formats import READERS
        expected = _solid_array(5, SIZE)
        if kind == "idx":
            expected = np.repeat(expected[..., :1], 3, axis=3)
        return Built(READERS[kind](root, SIZE, None), expected, ARRAY_TARGETS, 0, root)
    raise AssertionError(kind)


ARRAY_KINDS = ["cifar10", "cifar100", "stl10", "idx"]
FILE_KINDS = ["imagefolder", "coco", "voc", "frames"]
KINDS = ["synthetic", *FILE_KINDS, *ARRAY_KINDS]


def as_hwc(images: torch.Tensor) -> np.ndarray:
    return images.permute(0, 2, 3, 1).numpy()
