"""Which reader opens a path: the ``READERS`` registry, format detection and :func:`open_source`.

    source = open_source("data/shapes-20k", split="train")              # synthetic (meta.json)
    source = open_source("coco/annotations/instances_val2017.json", 64)  # COCO (images found beside)
    source = open_source("videos", 64, format="frames")      # plain frame folders are never guessed
"""
from __future__ import annotations

import os
from pathlib import Path
from collections.abc import Callable
from typing import Any, Protocol

from imagedata.arrays import detect_array_format, open_cifar, open_idx, open_stl10
from imagedata.coco import open_coco
from imagedata.frames import is_video_layout, open_frames
from imagedata.imagefolder import open_imagefolder
from imagedata.source import ImageSource, is_image, subfolders, without_unreadable
from imagedata.synthetic import open_synthetic
from imagedata.voc import open_voc


class Reader(Protocol):
    """Opens ``path`` as one format's :class:`ImageSource` (see :func:`open_source` for the arguments)."""

    def __call__(self, path: Path, image_size: int | None, split: str | None = None, *,
                 cache: bool = True, image_dir: Path | None = None) -> ImageSource:
        ...


def _arrays(reader: Callable[..., ImageSource], **fixed: Any) -> Reader:
    """An array-dataset reader with the :class:`Reader` signature (``cache`` / ``image_dir`` do not apply)."""
    def read(path: Path, image_size: int | None, split: str | None = None, *, cache: bool = True,
             image_dir: Path | None = None) -> ImageSource:
        return reader(path, image_size, split, **fixed)
    return read


READERS: dict[str, Reader] = {
    "synthetic": open_synthetic,
    "coco": open_coco,
    "voc": open_voc,
    "imagefolder": open_imagefolder,
    "frames": open_frames,
    "cifar10": _arrays(open_cifar, kind="cifar10"),
    "cifar100": _arrays(open_cifar, kind="cifar100"),
    "stl10": _arrays(open_stl10),
    "idx": _arrays(open_idx),
}
FORMATS = tuple(READERS)
ACCEPTED = ("a synthetic dataset folder (with meta.json), a COCO annotation .json file, "
            "a VOC folder (with JPEGImages/), an ImageFolder (class subfolders of images), "
            "CIFAR-10/100 python batches, STL-10 binaries, MNIST-style IDX files, "
            "or folders of video frames (pass format='frames')")


def _bad_path(path: Path, why: str) -> ValueError:
    return ValueError(f"{path}: {why}; expected {ACCEPTED}")


def _has_class_images(folder: Path) -> bool:
    """Whether some subfolder of ``folder`` holds an image file (directly or deeper)."""
    for sub in subfolders(folder):
        for _, _, filenames in os.walk(sub, followlinks=True):
            if any(is_image(Path(f)) for f in filenames):
                return True
    return False


def detect_format(path: Path | str, split: str | None = None) -> str:
    """The format of ``path``: "frames" only for TrackingNet's and GOT-10k's layouts (plain folders of
    frames look like an ImageFolder: ask for them with ``format="frames"``)."""
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
    if is_video_layout(path) or (split and (path / split).is_dir() and is_video_layout(path / split)):
        return "frames"
    array_format = detect_array_format(path)
    if array_format:
        return array_format
    base = path / split if split else path
    if base.is_dir() and _has_class_images(base):
        return "imagefolder"
    if not any(path.iterdir()):
        raise _bad_path(path, "empty folder")
    raise _bad_path(path, "unknown layout")


def open_source(path: Path | str, image_size: int | None = None, split: str | None = None, *,
                format: str | None = None, image_dir: Path | str | None = None,
                cache: bool = True, skip_unreadable: bool = False) -> ImageSource:
    """Open ``path`` as the right :class:`ImageSource`.

    ``format`` (a key of ``READERS``) skips detection; folders of video frames look like an
    ImageFolder, so they need ``format="frames"``. ``image_size`` is required for the file formats
    and must match a synthetic dataset's own size. ``split`` defaults to "all" (synthetic) and
    "train" (VOC); for ImageFolder / frames it is a subfolder. ``image_dir`` is a COCO file's image
    folder (default: ``images/`` beside the json, or the standard COCO layout).
    ``skip_unreadable``: images that do not decode are left out (every file is decoded once to
    find them; ``source.skipped`` lists them) instead of failing the read that meets them.
    Raises ValueError (one line naming the path and the accepted formats) on anything else.
    """
    path = Path(path)
    if format is None:
        format = detect_format(path, split)
    elif format not in READERS:
        raise ValueError(f"{path}: unknown format {format!r}; expected one of {', '.join(READERS)}")
    elif not path.exists():
        raise _bad_path(path, "no such file or folder")
    source = READERS[format](path, image_size, split, cache=cache,
                             image_dir=Path(image_dir) if image_dir is not None else None)
    return without_unreadable(source) if skip_unreadable else source
