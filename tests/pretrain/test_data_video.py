"""Pretraining data from real video layouts (TrackingNet, GOT-10k) and COCO, as the full plans read them."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from imagedata.layouts import write_layouts
from pretrain.config import DataConfig
from pretrain.data import DataError, open_pretrain_data


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_layouts(tmp_path_factory.mktemp("datasets"), ["trackingnet", "got10k", "coco"])


@pytest.mark.parametrize("path", ["trackingnet", "got10k"])
def test_frame_partners_are_other_frames_of_the_video_within_the_gap(root: Path, path: str) -> None:
    cfg = DataConfig(path=str(root / path), image_size=32, split="train", batch_size=4, pair_gap=2)
    data = open_pretrain_data(cfg, frozenset({"pairs"}))
    video, frame = data.source.video_ids, data.source.frame_ids
    for i, partners in enumerate(data._partners):
        assert len(partners) and i not in partners
        assert (video[partners] == video[i]).all() and (np.abs(frame[partners] - frame[i]) <= 2).all()
    batch = next(data.batches(0, 0, 0, 0, 1))
    assert batch.pair is not None and batch.pair.shape == batch.images.shape


def test_tracked_regions_come_from_the_box_files(root: Path) -> None:
    cfg = DataConfig(path=str(root / "trackingnet"), image_size=64, split="train", batch_size=4, pair_gap=1)
    data = open_pretrain_data(cfg, frozenset({"pairs", "regions"}))
    a, b = data._tracks[(0, 1)]
    np.testing.assert_allclose(a, [0, 8, 26, 34])          # frame 0: x,y,w,h 4,8,30,26 in an 80x64 frame
    np.testing.assert_allclose(b, [0, 8, 29, 34])          # frame 1: moved 3 px right
    batch = next(data.batches(0, 0, 0, 0, 1))
    assert batch.boxes.shape == batch.pair_boxes.shape == (4, 4)


def test_regions_without_box_files_are_refused(root: Path, tmp_path: Path) -> None:
    import shutil
    shutil.copytree(root / "trackingnet", tmp_path / "trackingnet")
    shutil.rmtree(tmp_path / "trackingnet" / "TRAIN_0" / "anno")
    cfg = DataConfig(path=str(tmp_path / "trackingnet"), image_size=32, split="train", batch_size=4)
    with pytest.raises(DataError, match="video video_0000: no box file"):
        open_pretrain_data(cfg, frozenset({"pairs", "regions"}))


@pytest.mark.parametrize("split", ["", "train"])
def test_a_coco_file_is_its_own_split(root: Path, split: str) -> None:
    """The full preset's split (train) or SlotCon's (none) on a COCO annotation file: the file is the split."""
    cfg = DataConfig(path=str(root / "coco/annotations/instances_train2017.json"), image_size=32, split=split,
                     batch_size=4)
    assert len(open_pretrain_data(cfg, frozenset())) == 12
