"""The suite's segmentation tasks on real layouts: VOC's SegmentationClass masks and COCO's polygons
as semantic masks (0 background, c + 1 class c, 255 void), void pixels left out of the metrics."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from evaluate import suite
from evaluate.dense import confusion
from imagedata.formats import open_source
from measure.results import ResultsStore

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "imagedata"))
from image_layouts import make_voc  # noqa: E402


def test_void_pixels_are_left_out_of_the_confusion_table() -> None:
    labels = np.array([[0, 1, 255], [1, 1, 255]])
    pred = np.array([[0, 1, 1], [0, 1, 0]])
    table = confusion(pred, labels, 2)
    assert table.sum() == 4 and table[1, 1] == 2 and table[1, 0] == 1


def test_coco_polygons_become_semantic_masks_cropped_like_the_images(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    Image.new("RGB", (20, 10), (9, 9, 9)).save(tmp_path / "images" / "a.png")
    square = [5.0, 0.0, 10.0, 0.0, 10.0, 10.0, 5.0, 10.0]                       # x 5..10, full height
    data = {"images": [{"id": 1, "file_name": "a.png", "width": 20, "height": 10}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 7, "segmentation": [square], "area": 50.0,
                             "bbox": [5, 0, 5, 10], "iscrowd": 0}],
            "categories": [{"id": 3, "name": "cat"}, {"id": 7, "name": "dog"}]}
    (tmp_path / "annotations.json").write_text(json.dumps(data))
    src = open_source(tmp_path / "annotations.json", 10)
    mask = src.read_masks(np.array([0]))[0].numpy()
    # the centre crop keeps x 5..15 of the 20-px-wide image: the square is its left half; dog = class 1 -> 2
    assert mask.shape == (10, 10) and set(np.unique(mask)) == {0, 2}
    assert (mask[:, :4] == 2).all() and (mask[:, 6:] == 0).all()


def test_the_suite_segments_a_voc_folder_with_its_split_names(tiny_ckpt: Path, tmp_path: Path) -> None:
    root = make_voc(tmp_path / "voc")
    store = tmp_path / "r.sqlite"
    assert suite.main([str(tiny_ckpt), "--data", str(root), "--tasks", "segmentation,unsup_seg", "--train-split",
                       "train", "--test-split", "val", "--image-size", "16", "--dense-steps", "3", "--store",
                       str(store), "--cache", str(tmp_path / "features")]) == 0
    frame = ResultsStore(store).query()
    assert {"segmentation", "unsup_seg"} <= set(frame["task"]) and set(frame["split"]) == {"val"}
    assert frame["value"].notna().all()
