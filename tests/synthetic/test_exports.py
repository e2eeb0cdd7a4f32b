"""Exports of a synthetic dataset (synthetic.export: the library and its command line)."""
from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from fakes import write_fake_dataset
from synthetic import export
from synthetic.dataset import DatasetError, open_dataset

REPO = Path(__file__).resolve().parents[2]
# pycocotools' decode (annToMask) trips a NumPy 2 deprecation inside pycocotools itself.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


@pytest.fixture
def ds(tmp_path):
    """A fresh 12-image fake dataset (3 splits, 3 clips of 4 frames, 3 objects per image)."""
    return open_dataset(write_fake_dataset(tmp_path / "ds", n=12, size=32, objects_per_image=3, seed=0))


def test_coco_export_loads_and_matches_masks(ds):
    root = export.export_coco(ds)
    assert root == ds.root / "exports" / "coco"
    visible = ds.objects[ds.objects["area"] > 0]
    assert (ds.objects["area"] == 0).any(), "fixture should include a fully hidden object"
    total = 0
    for split in ("train", "val", "test"):
        with contextlib.redirect_stdout(io.StringIO()):
            coco = COCO(str(root / f"annotations_{split}.json"))
        members = np.flatnonzero(ds.labels["split"] == split)
        assert sorted(coco.getImgIds()) == sorted(int(i) + 1 for i in members)
        assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == ds.classes
        split_objects = visible[visible["image"].isin(members)]
        ann_ids = coco.getAnnIds()
        assert len(ann_ids) == len(split_objects)
        total += len(ann_ids)
        for ann in coco.loadAnns(ann_ids):
            image = ann["image_id"] - 1
            img = coco.loadImgs(ann["image_id"])[0]
            assert (root / "images" / img["file_name"]).is_file()
            mask = coco.annToMask(ann).astype(bool)
            objs = np.unique(ds.instance[image][mask])
            assert len(objs) == 1 and objs[0] > 0
            assert np.array_equal(mask, ds.instance[image] == objs[0])
            row = split_objects[(split_objects["image"] == image) & (split_objects["object"] == objs[0])]
            assert len(row) == 1
            row = row.iloc[0]
            want = mask
            assert ann["area"] == want.sum() == row["area"]
            assert ann["category_id"] == row["class"] + 1 and ann["iscrowd"] == 0
            assert ann["bbox"] == [row["x0"], row["y0"], row["x1"] - row["x0"], row["y1"] - row["y0"]]
    assert total == len(visible)
    png = np.asarray(Image.open(root / "images" / "000005.png"))
    assert np.array_equal(png, ds.images[5])


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_coco_ground_truth_against_itself_has_ap_1(ds, iou_type):
    root = export.export_coco(ds)
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(root / "annotations_train.json"))
        key = "bbox" if iou_type == "bbox" else "segmentation"
        dets = [dict(image_id=a["image_id"], category_id=a["category_id"], score=1.0, **{key: a[key]})
                for a in gt.loadAnns(gt.getAnnIds())]
        evaluator = COCOeval(gt, gt.loadRes(dets), iou_type)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    assert evaluator.stats[0] == pytest.approx(1.0)


def test_coco_export_rejects_box_that_does_not_match_mask(ds):
    ds.objects.loc[ds.objects["area"] > 0, "x1"] += 1
    with pytest.raises(DatasetError, match="does not match"):
        export.export_coco(ds)
    assert not (ds.root / "exports" / "coco").exists()
    assert list((ds.root / "exports").iterdir()) == []  # the staging folder is gone too


def test_voc_export_round_trips_semantic_maps(ds):
    root = export.export_voc(ds)
    for i in range(len(ds)):
        seg = Image.open(root / "SegmentationClass" / f"{i:06d}.png")
        assert seg.mode == "P"
        assert np.array_equal(np.asarray(seg), ds.semantic[i])
        jpg = Image.open(root / "JPEGImages" / f"{i:06d}.jpg")
        assert jpg.format == "JPEG" and jpg.size == (32, 32)
    palette = seg.getpalette()
    assert palette[:9] == [0, 0, 0, 128, 0, 0, 0, 128, 0]  # background, class 0, class 1
    assert palette[255 * 3:256 * 3] == [224, 224, 192]
    assert (root / "classes.txt").read_text().split() == ["background", *ds.classes]
    for split in ("train", "val", "test"):
        listed = (root / "ImageSets" / "Segmentation" / f"{split}.txt").read_text().split()
        assert listed == [f"{i:06d}" for i in np.flatnonzero(ds.labels["split"] == split)]


def test_imagefolder_export_reads_with_torchvision(ds):
    from torchvision.datasets import ImageFolder

    root = export.export_imagefolder(ds)
    for split in ("train", "val", "test"):
        folder = ImageFolder(str(root / split))
        got = Counter(folder.classes[target] for _, target in folder.samples)
        labels = ds.labels[ds.labels["split"] == split]
        assert got == Counter(ds.classes[c] for c in labels["class"])
        image, _ = folder[0]
        assert image.size == (32, 32)
    assert (root / "classes.txt").read_text().split() == ds.classes


def test_frames_export_writes_clips_and_boxes(ds):
    root = export.export_frames(ds)
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == ["00000", "00001", "00002"]
    for row in ds.labels.itertuples():
        png = root / f"{row.clip:05d}" / f"{row.frame:04d}.png"
        assert np.array_equal(np.asarray(Image.open(png)), ds.images[row.index])
    boxes = pd.read_csv(root / "00001" / "boxes.csv")
    assert list(boxes.columns) == ["frame", "object", "class", "x0", "y0", "x1", "y1"]
    clip_images = ds.labels.loc[ds.labels["clip"] == 1, "index"]
    want = ds.objects[ds.objects["image"].isin(clip_images) & (ds.objects["area"] > 0)]
    assert len(boxes) == len(want)
    assert sorted(boxes["frame"]) == sorted(ds.labels.set_index("index").loc[want["image"], "frame"])
    assert (boxes["x1"] > boxes["x0"]).all() and (boxes["y1"] > boxes["y0"]).all()


def test_frames_export_needs_a_video_dataset(tmp_path):
    root = write_fake_dataset(tmp_path / "still", n=6, size=16)
    labels = pd.read_csv(root / "labels.csv").drop(columns=["clip", "frame"])
    labels.to_csv(root / "labels.csv", index=False)
    with pytest.raises(DatasetError, match="not a video dataset"):
        export.export_frames(open_dataset(root))


def test_rerun_is_a_no_op_and_overwrite_rebuilds(ds):
    root = export.export_coco(ds)
    ann = root / "annotations_val.json"
    before = ann.stat().st_mtime_ns, root.stat().st_ino
    assert export.is_complete(ds, "coco")
    assert export.export_coco(ds) == root
    assert (ann.stat().st_mtime_ns, root.stat().st_ino) == before
    export.export(ds, ["coco"], overwrite=True)
    assert root.stat().st_ino != before[1]
    assert json.loads(ann.read_text())["images"]
    assert [p.name for p in (ds.root / "exports").iterdir()] == ["coco"]  # old copy and staging gone


def test_incomplete_export_folder_is_rebuilt(ds):
    stale = ds.root / "exports" / "voc"
    stale.mkdir(parents=True)
    (stale / "junk.txt").write_text("left over")
    export.export_voc(ds)
    assert not (stale / "junk.txt").exists() and (stale / "classes.txt").is_file()


def test_unknown_kind_raises_before_any_work(ds):
    with pytest.raises(ValueError, match="coco, voc, imagefolder, frames") as info:
        export.export(ds, ["voc", "yolo"])
    assert "'yolo'" in str(info.value)
    assert not (ds.root / "exports").exists()


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "synthetic.export", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


def test_cli_exports_and_reports(ds):
    result = run_cli(str(ds.root), "--to", "imagefolder,voc")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"imagefolder: {ds.root}/exports/imagefolder",
                                          f"voc: {ds.root}/exports/voc"]
    again = run_cli(str(ds.root), "--to", "voc")
    assert again.returncode == 0 and "already there" in again.stdout


@pytest.mark.parametrize("case", ["missing", "not_a_dataset", "unknown_kind"])
def test_cli_bad_input_is_one_line_and_status_2(tmp_path, case):
    root = tmp_path / "data"
    kinds = "coco"
    if case == "not_a_dataset":
        root.mkdir()
        (root / "meta.json").write_text("{}")
    elif case == "unknown_kind":
        root = write_fake_dataset(root, n=3, size=8)
        kinds = "coco,yolo"
    result = run_cli(str(root), "--to", kinds)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
