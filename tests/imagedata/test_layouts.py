"""The papers' dataset layouts: every fixture is read back by this project's own reader of that
layout, ``check`` passes on a fixture and names the first missing path otherwise."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from imagedata.benchmarks import load_benchmark
from imagedata.formats import detect_format, open_source
from imagedata.frames import VideoFramesSource
from imagedata.layouts import LAYOUTS, DatasetLayoutError, check_layout, main, write_layouts

# layout -> (path under the datasets root, split, the reader's format, images of that split)
READS = {
    "imagenet": ("imagenet", "val", "imagefolder", 12),
    "imagenet-100": ("imagenet-100", "train", "imagefolder", 24),
    "coco": ("coco/annotations/instances_val2017.json", None, "coco", 6),
    "voc": ("VOCdevkit/VOC2012", "train", "voc", 3),
    "trackingnet": ("trackingnet", "train", "frames", 24),
    "got10k": ("got10k", "train", "frames", 24),
    "caltech101": ("caltech101/101_ObjectCategories", None, "imagefolder", 18),
    "cifar10": ("cifar-10-batches-py", "train", "cifar10", 50),
}
BENCHMARKS = {"aloi": ("aloi-viewpoint", "aloi-illum-color", "aloi-illum-dir"), "pascal3d": ("pascal3d-viewpoint",),
              "got10k": ("got10k-occlusion",)}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_layouts(tmp_path_factory.mktemp("datasets"))


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_every_fixture_is_in_its_layout(root: Path, name: str) -> None:
    check_layout(name, root)
    assert all((root / rel).exists() for rel in LAYOUTS[name].required)


@pytest.mark.parametrize("name", list(READS))
def test_the_fixture_reads_with_the_layouts_reader(root: Path, name: str) -> None:
    rel, split, fmt, n = READS[name]
    assert detect_format(root / rel, split) == fmt
    source = open_source(root / rel, 32, split)
    assert len(source) == n
    x = source.read(np.arange(2))
    assert tuple(x.shape) == (2, 3, 32, 32)


@pytest.mark.parametrize("name,bench", [(n, b) for n, bs in BENCHMARKS.items() for b in bs])
def test_the_benchmark_fixtures_load_as_probe_sets(root: Path, name: str, bench: str) -> None:
    ps = load_benchmark(bench, root / name)
    assert ps.meta["kept"] >= 2 and len(ps) >= 6


def test_coco_fixture_lists_the_80_categories_detectron2_asserts(root: Path) -> None:
    import json
    data = json.loads((root / "coco/annotations/instances_train2017.json").read_text())
    assert len(data["categories"]) == 80 and data["categories"][-1] == {"id": 90, "name": "toothbrush",
                                                                        "supercategory": "thing"}


def test_tracked_boxes_follow_the_crop_of_the_frames(root: Path) -> None:
    src = open_source(root / "trackingnet", 64, "train")
    assert isinstance(src, VideoFramesSource)
    boxes = src.boxes(np.array([0, 1]))
    # frame 0 of video 0: x,y,w,h = 4,8,30,26 in an 80x64 frame; centre square x from 8, scale 1
    np.testing.assert_allclose(boxes[0], [0, 8, 26, 34])
    np.testing.assert_allclose(boxes[1], [0, 8, 29, 34])


def test_a_missing_file_is_one_line_naming_it_and_the_layout(tmp_path: Path) -> None:
    write_layouts(tmp_path, ["coco"])
    (tmp_path / "coco/annotations/instances_val2017.json").unlink()
    with pytest.raises(DatasetLayoutError) as e:
        check_layout("coco", tmp_path)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(str(tmp_path / "coco/annotations/instances_val2017.json"))
    assert "COCO 2017" in msg


def test_cli_check_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["check", "imagenet", "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "imagenet/train: missing" in err
    assert main(["check", "--root", str(tmp_path), "nonesuch"]) == 2
    assert "unknown dataset layout 'nonesuch'" in capsys.readouterr().err
