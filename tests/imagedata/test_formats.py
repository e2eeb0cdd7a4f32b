"""Opening a path: format detection, ``open_source`` over the ``READERS`` registry, our exports read back."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from fakes import CLASSES, write_fake_dataset
from image_layouts import ARRAY_KINDS, KINDS, SIZE, as_hwc, build, make_coco, make_imagefolder
from imagedata.coco import CocoSource
from imagedata.formats import FORMATS, READERS, open_source
from imagedata.imagefolder import ImageFolderSource
from imagedata.source import ImageSource
from imagedata.synthetic import SyntheticSource


# --------------------------------------------------------------------------------------------
# Format detection


def test_every_reader_has_a_fixture() -> None:
    assert set(KINDS) == set(READERS) and FORMATS == tuple(READERS)


@pytest.mark.parametrize("fmt", list(READERS))
def test_every_reader_opens_its_layout_at_the_asked_size(fmt: str, tmp_path: Path) -> None:
    b = build(fmt, tmp_path)
    split = {"imagefolder": "train"}.get(fmt)
    src = READERS[fmt](b.path, SIZE, split)
    assert isinstance(src, ImageSource) and type(src) is type(b.source) and len(src) == len(b.source)
    images = src.read(np.arange(len(src)))
    assert images.dtype == torch.uint8 and images.shape == (len(src), 3, SIZE, SIZE)
    assert np.abs(as_hwc(images).astype(int) - b.expected.astype(int)).max() <= b.tolerance
    np.testing.assert_array_equal(src.targets, b.targets)
    small = READERS[fmt](b.path, 5, split, cache=False)
    assert small.image_size == 5 and small.read(np.array([0, len(small) - 1])).shape == (2, 3, 5, 5)
    if fmt == "synthetic":  # stored at one size: the default, and the size read without one
        assert READERS[fmt](b.path, None, split).image_size == src.stored_size
        return
    if fmt in ARRAY_KINDS:  # arrays of one size: read at their own size without one
        assert READERS[fmt](b.path, None, split).image_size == READERS[fmt](b.path, None, split).native
        return
    assert "pass image_size" in one_line_error(lambda: READERS[fmt](b.path, None, split))


@pytest.mark.parametrize("kind", KINDS)
def test_open_source_detects_format(kind: str, tmp_path: Path) -> None:
    b = build(kind, tmp_path)
    split = {"imagefolder": "train"}.get(kind)
    fmt = "frames" if kind == "frames" else None
    src = open_source(b.path, None if kind == "synthetic" else SIZE, split, format=fmt)
    assert type(src) is type(b.source) and len(src) == len(b.source)
    np.testing.assert_array_equal(src.targets, b.targets)
    if kind == "frames":  # without the hint it is an ImageFolder of one class per video
        assert type(open_source(b.path, SIZE)) is ImageFolderSource


def test_open_source_coco_standard_layout(tmp_path: Path) -> None:
    path = make_coco(tmp_path / "coco")
    (tmp_path / "coco" / "images").rename(tmp_path / "coco" / "val2017")
    (tmp_path / "coco" / "annotations").mkdir()
    path = path.rename(tmp_path / "coco" / "annotations" / "instances_val2017.json")
    src = open_source(path, SIZE)
    assert isinstance(src, CocoSource) and src.image_dir.name == "val2017"


def one_line_error(call) -> str:
    with pytest.raises(ValueError) as info:
        call()
    msg = str(info.value)
    assert "\n" not in msg
    return msg


@pytest.mark.parametrize("case", ["missing", "empty", "unknown-file", "unknown-layout"])
def test_open_source_errors_are_one_clear_line(case: str, tmp_path: Path) -> None:
    path = tmp_path / case
    if case == "empty":
        path.mkdir()
    elif case == "unknown-file":
        path = tmp_path / "x.txt"
        path.write_text("hi")
    elif case == "unknown-layout":
        path.mkdir()
        (path / "readme.txt").write_text("hi")
        (path / "sub").mkdir()
    msg = one_line_error(lambda: open_source(path, SIZE))
    assert msg.startswith(str(path)) and "COCO" in msg and "meta.json" in msg and "frames" in msg


def test_open_source_argument_errors(tmp_path: Path) -> None:
    root = write_fake_dataset(tmp_path / "s", n=3, size=SIZE)
    assert "image_size must be a positive int, got -1" in one_line_error(lambda: open_source(root, -1))
    folder = make_imagefolder(tmp_path / "f")
    assert "image_size" in one_line_error(lambda: open_source(folder, split="train"))
    assert "format" in one_line_error(lambda: open_source(folder, SIZE, format="tfrecord"))
    assert "no video frames" in one_line_error(lambda: open_source(tmp_path / "s", SIZE, format="frames"))


# --------------------------------------------------------------------------------------------
# Our own exports read back


def test_exports_read_back_like_the_dataset(tmp_path: Path) -> None:
    export = pytest.importorskip("synthetic.export")
    pytest.importorskip("pycocotools")
    root = write_fake_dataset(tmp_path / "ds", n=12, size=SIZE, objects_per_image=2, seed=1)
    syn = SyntheticSource(root, split="train")
    ds = syn.dataset
    out = export.export(ds, ["coco", "voc", "imagefolder", "frames"])

    coco = open_source(out["coco"] / "annotations_train.json", SIZE)
    assert coco.classes == CLASSES and len(coco) == len(syn)
    assert torch.equal(coco.read(np.arange(len(coco))), syn.read(np.arange(len(syn))))

    voc = open_source(out["voc"], SIZE, "train")
    assert voc.classes == CLASSES
    np.testing.assert_array_equal(voc.read_masks(np.arange(len(voc))).numpy(), ds.semantic[syn.indices])

    folder = open_source(out["imagefolder"], SIZE, "train")
    assert folder.classes == CLASSES
    order = np.argsort(syn.targets, kind="stable")  # ImageFolder groups by class, index order inside
    np.testing.assert_array_equal(folder.targets, syn.targets[order])
    assert torch.equal(folder.read(np.arange(len(folder))), syn.read(order))

    frames = open_source(out["frames"], SIZE, format="frames")
    every = SyntheticSource(root)
    np.testing.assert_array_equal(frames.video_ids, ds.labels["clip"].to_numpy())
    np.testing.assert_array_equal(frames.frame_ids, ds.labels["frame"].to_numpy())
    assert torch.equal(frames.read(np.arange(12)), every.read(np.arange(12)))
