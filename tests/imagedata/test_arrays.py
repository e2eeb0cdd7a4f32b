"""Array datasets in their distributed layouts: CIFAR-10 / CIFAR-100 python batches (read by an
unpickler that admits only arrays, lists and bytes), STL-10 binaries, MNIST-style IDX files."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from imagedata.arrays import ArraysOnlyUnpickler
from imagedata.formats import detect_format, open_source

from array_layouts import LAYOUTS, make_cifar10, make_idx, make_stl10


def _hwc(images: np.ndarray) -> np.ndarray:
    return images if images.ndim == 4 and images.shape[-1] == 3 else images.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)


@pytest.mark.parametrize("fmt", sorted(LAYOUTS))
def test_each_layout_is_detected_and_read_exactly(fmt: str, tmp_path: Path) -> None:
    make, sub = LAYOUTS[fmt]
    expected = make(tmp_path)
    for root in (tmp_path, tmp_path / sub):        # the parent folder or the distributed folder itself
        if fmt == "idx" and root == tmp_path:
            continue
        assert detect_format(root) == fmt
        for split, (images, labels) in expected.items():
            src = open_source(root, split=split)
            assert len(src) == len(labels) and np.array_equal(src.targets, labels)
            got = src.read(np.arange(len(src))).permute(0, 2, 3, 1).numpy()
            assert np.array_equal(got, _hwc(images)), split


def test_array_images_are_resized_on_read(tmp_path: Path) -> None:
    make_cifar10(tmp_path)
    src = open_source(tmp_path, 64, split="test")
    assert tuple(src.read(np.array([0, 1])).shape) == (2, 3, 64, 64) and src.image_size == 64


@pytest.mark.parametrize("fmt", sorted(LAYOUTS))
def test_a_split_that_does_not_exist_lists_the_splits(fmt: str, tmp_path: Path) -> None:
    LAYOUTS[fmt][0](tmp_path)
    root = tmp_path / LAYOUTS[fmt][1]
    with pytest.raises(ValueError, match=r"has no split 'val'; splits: train, test"):
        open_source(root, split="val")


def test_class_names_come_from_the_meta_files(tmp_path: Path) -> None:
    make_cifar10(tmp_path / "a")
    make_stl10(tmp_path / "b")
    make_idx(tmp_path / "c")
    assert open_source(tmp_path / "a", split="train").classes[:2] == ["c0", "c1"]
    assert open_source(tmp_path / "b", split="train").classes[:2] == ["s0", "s1"]
    assert open_source(tmp_path / "c" / "fashion-mnist", split="train").classes[0] == "T-shirt/top"


class Planted:
    def __reduce__(self):
        return (print, ("code ran",))


def test_a_cifar_batch_with_a_foreign_global_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    make_cifar10(tmp_path)
    with open(tmp_path / "cifar-10-batches-py" / "test_batch", "wb") as f:
        pickle.dump({b"data": Planted(), b"labels": [0]}, f, protocol=2)
    with pytest.raises(ValueError, match=r"test_batch: not a readable CIFAR batch "
                                         r"\(refused global (__builtin__|builtins).print"):
        open_source(tmp_path, split="test")
    assert "code ran" not in capsys.readouterr().out


def test_the_unpickler_admits_numpy_arrays(tmp_path: Path) -> None:
    path = tmp_path / "a.pkl"
    with open(path, "wb") as f:
        pickle.dump({"x": np.arange(6, dtype=np.uint8).reshape(2, 3)}, f, protocol=2)
    with open(path, "rb") as f:
        assert np.array_equal(ArraysOnlyUnpickler(f, encoding="bytes").load()["x"], np.arange(6).reshape(2, 3))
