"""Tests of synthetic.loaders: every source format, format detection, BatchLoader."""
from __future__ import annotations

import gc
import json
import pickle
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fakes import CLASSES, write_fake_dataset
from synthetic import loaders
from synthetic.loaders import (BatchLoader, CocoSource, ImageFolderSource, ImageSource, SyntheticSource,
                               VideoFramesSource, VocSource, as_torch_dataset, open_source)

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
    raise AssertionError(kind)


KINDS = ["synthetic", "imagefolder", "coco", "voc", "frames"]
FILE_KINDS = KINDS[1:]


@pytest.fixture(params=KINDS)
def built(request: pytest.FixtureRequest, tmp_path: Path) -> Built:
    return build(request.param, tmp_path)


def as_hwc(images: torch.Tensor) -> np.ndarray:
    return images.permute(0, 2, 3, 1).numpy()


# --------------------------------------------------------------------------------------------
# Sources


def test_source_reads_requested_order_and_pixels(built: Built) -> None:
    src = built.source
    n = len(src)
    assert isinstance(src, ImageSource)
    assert n == len(built.expected) and src.image_size == SIZE
    idx = np.array([n - 1, 0, n // 2, 0, 1])
    images = src.read(idx)
    assert images.dtype == torch.uint8 and images.shape == (5, 3, SIZE, SIZE)
    got = as_hwc(images).astype(int)
    assert np.abs(got - built.expected[idx].astype(int)).max() <= built.tolerance
    assert src.targets.dtype == np.int64 and src.targets.shape == (n,)
    np.testing.assert_array_equal(src.targets, built.targets)
    assert all(0 <= t < len(src.classes) for t in src.targets if t != -1)
    assert src.read(np.array([], dtype=np.int64)).shape == (0, 3, SIZE, SIZE)


def test_source_rejects_bad_indices(built: Built) -> None:
    with pytest.raises(IndexError, match="out of range"):
        built.source.read(np.array([0, len(built.source)]))
    with pytest.raises(IndexError):
        built.source.read(np.array([-1]))


def test_sources_pickle_without_copying_pixels(built: Built) -> None:
    src = built.source
    src.read(np.arange(len(src)))
    clone = pickle.loads(pickle.dumps(src))
    assert len(pickle.dumps(src)) < 20_000
    assert torch.equal(clone.read(np.arange(len(src))), src.read(np.arange(len(src))))


@pytest.mark.parametrize("kind", FILE_KINDS)
@pytest.mark.parametrize("cache", [True, False])
def test_file_cache_decodes_each_image_once(kind: str, cache: bool, tmp_path: Path) -> None:
    src = build(kind, tmp_path, cache=cache).source
    calls = []
    decode = src.files.decode
    src.files.decode = lambda p: calls.append(p) or decode(p)
    first = src.read(np.array([1, 0, 1]))
    assert len(calls) == 2  # the repeat is decoded once
    second = src.read(np.array([0, 1]))
    assert torch.equal(second, first[[1, 0]])
    assert len(calls) == (2 if cache else 4)


def test_resize_is_shorter_side_then_centre_crop(tmp_path: Path) -> None:
    wide = np.zeros((10, 30, 3), dtype=np.uint8)
    wide[:, :10], wide[:, 10:20], wide[:, 20:] = (255, 0, 0), (0, 255, 0), (0, 0, 255)
    tall = np.ascontiguousarray(wide.transpose(1, 0, 2))
    for name, arr in (("wide", wide), ("tall", tall)):
        (tmp_path / "c" / name).mkdir(parents=True)
        Image.fromarray(arr).save(tmp_path / "c" / name / "x.png")
    src = ImageFolderSource(tmp_path / "c", 10)
    images = as_hwc(src.read(np.array([0, 1])))
    assert (images == np.uint8([0, 255, 0])).all()
    small = as_hwc(ImageFolderSource(tmp_path / "c", 5).read(np.array([0, 1])))
    assert (small[:, 1:4, 1:4] == np.uint8([0, 255, 0])).all()


def test_grey_and_rgba_images_come_back_rgb(tmp_path: Path) -> None:
    (tmp_path / "a" / "grey").mkdir(parents=True)
    (tmp_path / "a" / "rgba").mkdir()
    Image.new("L", (9, 9), 77).save(tmp_path / "a" / "grey" / "g.png")
    Image.new("RGBA", (9, 9), (1, 2, 3, 4)).save(tmp_path / "a" / "rgba" / "r.png")
    images = as_hwc(ImageFolderSource(tmp_path / "a", 4).read(np.array([0, 1])))
    assert (images[0] == 77).all() and (images[1] == np.uint8([1, 2, 3])).all()


def test_corrupt_file_error_names_it(tmp_path: Path) -> None:
    (tmp_path / "a" / "x").mkdir(parents=True)
    (tmp_path / "a" / "x" / "bad.png").write_bytes(b"not a png")
    with pytest.raises(OSError, match="bad.png"):
        ImageFolderSource(tmp_path / "a", 4).read(np.array([0]))


def test_synthetic_split_exposes_dataset(tmp_path: Path) -> None:
    root = write_fake_dataset(tmp_path / "s", n=12, size=SIZE)
    src = SyntheticSource(root, split="val")
    np.testing.assert_array_equal(src.indices, np.arange(1, 12, 3))
    assert src.classes == CLASSES
    np.testing.assert_array_equal(src.targets, src.dataset.labels["class"].to_numpy()[src.indices])
    images = src.read(np.array([3, 0]))
    np.testing.assert_array_equal(as_hwc(images), src.dataset.images[[10, 1]])
    with pytest.raises(ValueError, match="no images in split 'nope'"):
        SyntheticSource(root, split="nope")


def test_imagefolder_splits_share_classes(tmp_path: Path) -> None:
    root = make_imagefolder(tmp_path / "f")
    val = ImageFolderSource(root, SIZE, split="val")
    assert val.classes == ["ant", "bee", "cat"]
    np.testing.assert_array_equal(val.targets, [0, 2, 2])
    assert [p.name for p in val.paths] == ["img0.png", "img0.png", "img1.png"]
    with pytest.raises(ValueError, match="test"):
        ImageFolderSource(root, SIZE, split="test")


def test_coco_annotations_per_image(tmp_path: Path) -> None:
    src = CocoSource(make_coco(tmp_path / "c"), tmp_path / "c" / "images", SIZE)
    assert src.classes == ["cat", "dog"] and src.category_ids == [3, 7]
    np.testing.assert_array_equal(src.image_ids, [10, 11, 12, 13])
    assert [len(a) for a in src.annotations] == [2, 1, 0, 1]
    assert src.annotations[0][1]["id"] == 2


def test_voc_masks_follow_the_images(tmp_path: Path) -> None:
    src = VocSource(make_voc(tmp_path / "v"), 5, split="train")
    masks = src.read_masks(np.array([2, 0]))
    assert masks.dtype == torch.uint8 and masks.shape == (2, 5, 5)
    # 12x10 mask: centre crop is columns 1..10, left half (cols < 6) is the class
    expected = np.zeros((10, 10), dtype=np.uint8)
    expected[:, :5] = 1
    expected[0] = 255
    small = np.asarray(Image.fromarray(expected).resize((5, 5), Image.Resampling.NEAREST))
    np.testing.assert_array_equal(masks[1].numpy(), small)
    np.testing.assert_array_equal(masks[0].numpy(), np.where(small == 1, 3, small))
    val = VocSource(tmp_path / "v", 5, split="val")
    assert len(val) == 1
    np.testing.assert_array_equal(val.read_masks(np.array([0]))[0].numpy(), np.where(small == 1, 4, small))
    with pytest.raises(ValueError, match="no VOC split 'test'.*'train', 'val'"):
        VocSource(tmp_path / "v", 5, split="test")


def test_frames_order_ids_and_pairs(tmp_path: Path) -> None:
    src = VideoFramesSource(make_frames(tmp_path / "fr"), SIZE)
    assert src.classes == ["clipA", "clipB"]
    assert [p.name for p in src.paths[:3]] == ["frame1.png", "frame2.png", "frame3.png"]
    assert src.paths[10].name == "frame11.png"
    np.testing.assert_array_equal(src.frame_ids, list(range(11)) + [0, 1, 2])
    np.testing.assert_array_equal(src.video_ids, src.targets)
    for gap in (1, 3):
        pairs = src.pairs(gap, np.random.default_rng(0))
        assert pairs.shape == (14, 2) and pairs.dtype == np.int64
        np.testing.assert_array_equal(pairs[:, 0], np.arange(14))
        assert (src.video_ids[pairs[:, 0]] == src.video_ids[pairs[:, 1]]).all()
        gaps = np.abs(src.frame_ids[pairs[:, 0]] - src.frame_ids[pairs[:, 1]])
        assert (gaps >= 1).all() and (gaps <= gap).all()
    np.testing.assert_array_equal(src.pairs(2, 5), src.pairs(2, 5))
    draws = np.stack([src.pairs(3, s)[5, 1] for s in range(200)])
    assert set(draws) == {2, 3, 4, 6, 7, 8}
    np.testing.assert_array_equal(src.pairs(0, 0)[:, 1], np.arange(14))


# --------------------------------------------------------------------------------------------
# Format detection


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
    assert "16" in one_line_error(lambda: open_source(root, 16))
    folder = make_imagefolder(tmp_path / "f")
    assert "image_size" in one_line_error(lambda: open_source(folder, split="train"))
    assert "format" in one_line_error(lambda: open_source(folder, SIZE, format="tfrecord"))
    assert "no video frames" in one_line_error(lambda: open_source(tmp_path / "s", SIZE, format="frames"))


# --------------------------------------------------------------------------------------------
# BatchLoader


class ListSource:
    """An in-memory source: image i is filled with i; optionally fails reading index ``fail``."""

    def __init__(self, n: int, fail: int | None = None) -> None:
        self.n, self.fail = n, fail
        self.targets = np.arange(n, dtype=np.int64) % 3
        self.classes = ["a", "b", "c"]
        self.image_size = 2

    def __len__(self) -> int:
        return self.n

    def read(self, indices: np.ndarray) -> torch.Tensor:
        if self.fail is not None and self.fail in indices:
            raise RuntimeError(f"cannot read {self.fail}")
        return torch.from_numpy(np.asarray(indices, dtype=np.uint8)).view(-1, 1, 1, 1).expand(-1, 3, 2, 2)


def epoch_indices(loader: BatchLoader) -> list[int]:
    out = []
    for images, targets, indices in loader:
        assert images.dtype == torch.uint8 and targets.dtype == indices.dtype == torch.int64
        assert (images[:, 0, 0, 0].long() == indices).all()
        assert (targets == indices % 3).all()
        out += indices.tolist()
    return out


@pytest.mark.parametrize("prefetch", [0, 2])
def test_loader_covers_every_index_once(prefetch: int) -> None:
    loader = BatchLoader(ListSource(10), 3, drop_last=False, prefetch=prefetch)
    assert len(loader) == 4
    assert sorted(epoch_indices(loader)) == list(range(10))
    dropped = BatchLoader(ListSource(10), 3, drop_last=True, prefetch=prefetch)
    got = epoch_indices(dropped)
    assert len(dropped) == 3 and len(got) == 9 and len(set(got)) == 9
    ordered = BatchLoader(ListSource(10), 4, shuffle=False, drop_last=False, prefetch=prefetch)
    assert epoch_indices(ordered) == list(range(10))


def test_loader_shuffles_per_epoch_deterministically() -> None:
    a, b = (BatchLoader(ListSource(50), 7, seed=1, drop_last=False) for _ in range(2))
    first = epoch_indices(a)
    assert first == epoch_indices(b) == epoch_indices(a)  # same seed, same epoch
    a.set_epoch(1)
    second = epoch_indices(a)
    assert second != first and sorted(second) == sorted(first)
    b.set_epoch(1)
    assert epoch_indices(b) == second
    assert epoch_indices(BatchLoader(ListSource(50), 7, seed=2, drop_last=False)) != first
    assert first != sorted(first)


def test_loader_index_subset() -> None:
    loader = BatchLoader(ListSource(20), 4, drop_last=False, indices=np.arange(5, 15))
    assert len(loader) == 3 and sorted(epoch_indices(loader)) == list(range(5, 15))


@pytest.mark.parametrize("prefetch", [0, 1, 3])
def test_loader_reraises_source_errors(prefetch: int) -> None:
    loader = BatchLoader(ListSource(12, fail=7), 4, shuffle=False, prefetch=prefetch)
    it = iter(loader)
    next(it)
    with pytest.raises(RuntimeError, match="cannot read 7"):
        next(it)
    assert not prefetch_threads()


def prefetch_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "sslbench-prefetch" and t.is_alive()]


def test_loader_thread_stops_when_dropped_or_done() -> None:
    loader = BatchLoader(ListSource(100), 2, prefetch=2)
    it = iter(loader)
    next(it)
    assert prefetch_threads()
    del it
    gc.collect()
    assert not prefetch_threads()
    list(loader)
    assert not prefetch_threads()


def test_loader_over_a_real_source(built: Built) -> None:
    loader = BatchLoader(built.source, 3, drop_last=False, seed=4)
    seen = []
    for images, targets, indices in loader:
        assert images.shape[1:] == (3, SIZE, SIZE)
        np.testing.assert_array_equal(targets.numpy(), built.targets[indices.numpy()])
        got = as_hwc(images).astype(int)
        assert np.abs(got - built.expected[indices.numpy()].astype(int)).max() <= built.tolerance
        seen += indices.tolist()
    assert sorted(seen) == list(range(len(built.source)))


def test_loader_argument_checks() -> None:
    with pytest.raises(ValueError):
        BatchLoader(ListSource(3), 0)
    with pytest.raises(IndexError):
        BatchLoader(ListSource(3), 1, indices=np.array([3]))
    if not torch.cuda.is_available():
        with pytest.warns(UserWarning, match="pin_memory"):
            BatchLoader(ListSource(3), 1, pin_memory=True)


def test_as_torch_dataset_with_dataloader(tmp_path: Path) -> None:
    src = SyntheticSource(write_fake_dataset(tmp_path / "s", n=6, size=SIZE))
    ds = as_torch_dataset(src)
    image, target = ds[4]
    assert image.shape == (3, SIZE, SIZE) and target == src.targets[4]
    dl = torch.utils.data.DataLoader(ds, batch_size=4, shuffle=False)
    images, targets = next(iter(dl))
    assert images.shape == (4, 3, SIZE, SIZE) and images.dtype == torch.uint8
    np.testing.assert_array_equal(as_hwc(images), src.dataset.images[:4])
    np.testing.assert_array_equal(targets.numpy(), src.targets[:4])


def test_shared_decode_pool_is_one_pool() -> None:
    assert loaders.decode_executor() is loaders.decode_executor()


# --------------------------------------------------------------------------------------------
# Our own exports read back


def test_exports_read_back_like_the_dataset(tmp_path: Path) -> None:
    exports = pytest.importorskip("synthetic.exports")
    pytest.importorskip("pycocotools")
    root = write_fake_dataset(tmp_path / "ds", n=12, size=SIZE, objects_per_image=2, seed=1)
    syn = SyntheticSource(root, split="train")
    ds = syn.dataset
    out = exports.export(ds, ["coco", "voc", "imagefolder", "frames"])

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
