"""The image sources one by one: pixels, order, targets, caching, pickling, per-format details."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fakes import CLASSES, write_fake_dataset
from image_layouts import (FILE_KINDS, SIZE, Built, as_hwc, build, make_coco, make_frames, make_imagefolder,
                           make_voc)
from imagedata import decode
from imagedata.coco import CocoSource
from imagedata.frames import VideoFramesSource
from imagedata.imagefolder import ImageFolderSource
from imagedata.source import ImageSource
from imagedata.synthetic import SyntheticSource
from imagedata.voc import VocSource


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


def test_shared_decode_pool_is_one_pool() -> None:
    assert decode.decode_executor() is decode.decode_executor()


def test_a_synthetic_source_reads_at_another_size_by_resizing_whole_batches(tmp_path: Path) -> None:
    """At half its stored size a synthetic batch is the antialiased bilinear resize of the stored
    one, rounded to uint8; the feature cache tells the two sizes apart."""
    import torch.nn.functional as F

    from imagedata.synthetic import SyntheticSource
    from measure.features import dataset_fingerprint
    from synthetic.generate import generate

    root = generate("shapes64", 12, 0, tmp_path / "s", size=32, workers=1, progress=False)
    full, half = SyntheticSource(root, "all"), SyntheticSource(root, "all", image_size=16)
    idx = np.array([5, 0, 3])
    expected = F.interpolate(full.read(idx).float(), size=(16, 16), mode="bilinear", antialias=True,
                             align_corners=False).round().clamp(0, 255).to(torch.uint8)
    assert torch.equal(half.read(idx), expected) and half.image_size == 16 and half.stored_size == 32
    assert dataset_fingerprint(full) != dataset_fingerprint(half)
    with pytest.raises(ValueError, match="image_size must be a positive int"):
        SyntheticSource(root, "all", image_size=0)
