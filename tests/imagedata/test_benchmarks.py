"""The invariance benchmarks (GOT-10k, ALOI, PASCAL3D+) as probe sets, on tiny fixtures written in
each dataset's real folder layout."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.io import savemat

from imagedata.aloi import load_aloi_illum_color, load_aloi_illum_dir, load_aloi_viewpoint
from imagedata.benchmarks import BENCHMARKS, load_benchmark
from imagedata.got10k import load_got10k_occlusion
from imagedata.pascal3d import load_pascal3d_viewpoint
from imagedata.probeset import LayoutError, ProbeSet

BG = (0, 0, 255)          # background colour of every fixture image
FG = (255, 0, 0)          # colour painted inside the object box


def paint(path: Path, size: tuple[int, int], box: tuple[int, int, int, int] | None = None,
          bg: tuple[int, int, int] = BG, fg: tuple[int, int, int] = FG) -> None:
    """A ``size`` (w, h) image of colour ``bg`` with ``box`` (x0, y0, x1, y1) painted ``fg``."""
    arr = np.empty((size[1], size[0], 3), dtype=np.uint8)
    arr[:] = bg
    if box is not None:
        x0, y0, x1, y1 = box
        arr[y0:y1, x0:x1] = fg
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, **({"quality": 100, "subsampling": 0}
                                       if path.suffix.lower() in (".jpg", ".jpeg") else {}))


def assert_colour(x: torch.Tensor, colour: tuple[int, int, int], tol: int = 12) -> None:
    want = torch.tensor(colour, dtype=torch.int16).view(3, 1, 1)
    diff = (x.to(torch.int16) - want).abs().max().item()
    assert diff <= tol, f"pixels differ from {colour} by up to {diff}"


# -- GOT-10k --------------------------------------------------------------------------------------

# video -> (class line value, cover per frame, x,y,w,h box per frame)
GOT_VIDEOS = {
    "GOT-10k_Train_000001": ("ambulance car", [8, 8, 6, 4, 4, 4, 2, 8],
                             [(2, 3, 6, 5), (1, 1, 4, 4), (3, 2, 7, 6), (0, 0, 5, 5),
                              (4, 4, 8, 6), (2, 2, 3, 9), (5, 6, 4, 4), (6, 1, 8, 8)]),
    "GOT-10k_Train_000002": ("zebra", [5, 5, 7, 8, 6],                           # range 3: dropped
                             [(1, 1, 4, 4)] * 5),
    "GOT-10k_Train_000003": ("zebra", [0, 4, 4, 0],                              # range 4: kept
                             [(0, 1, 9, 4), (3, 3, 6, 6), (8, 8, 7, 7), (2, 5, 5, 5)]),
}


def write_got(root: Path, videos: dict = GOT_VIDEOS, split: str = "train") -> Path:
    base = root / split
    base.mkdir(parents=True, exist_ok=True)
    (base / "list.txt").write_text("\n".join(videos) + "\n")
    for vid, (cls, cover, boxes) in videos.items():
        vdir = base / vid
        for i, (x, y, w, h) in enumerate(boxes):
            paint(vdir / f"{i + 1:08d}.jpg", (20, 16), (x, y, x + w, y + h))
        (vdir / "groundtruth.txt").write_text(
            "\n".join(f"{x:.4f},{y:.4f},{w:.4f},{h:.4f}" for x, y, w, h in boxes) + "\n")
        (vdir / "cover.label").write_text("\n".join(map(str, cover)) + "\n")
        (vdir / "absence.label").write_text("\n".join("1" if c == 0 else "0" for c in cover) + "\n")
        (vdir / "cut_by_image.label").write_text("\n".join("0" for _ in cover) + "\n")
        (vdir / "meta_info.ini").write_text(
            f"[METAINFO]\nurl: https://example.invalid/{vid}\nobject_class: {cls}\n"
            "motion_class: running\nmajor_class: vehicle\nroot_class: object\n")
    return root


def test_got10k_keeps_videos_by_cover_range(tmp_path: Path) -> None:
    ps = load_benchmark("got10k-occlusion", write_got(tmp_path))
    assert ps.name == "got10k-occlusion" and len(ps) == 6
    assert ps.meta["considered"] == 3 and ps.meta["kept"] == 2
    assert ps.meta["set_names"] == ["GOT-10k_Train_000001", "GOT-10k_Train_000003"]
    np.testing.assert_array_equal(ps.set_ids, [0, 0, 0, 0, 1, 1])
    np.testing.assert_array_equal(ps.factor, [2, 4, 6, 8, 0, 4])        # one row per cover level
    assert ps.meta["classes"] == ["ambulance_car", "zebra"]
    np.testing.assert_array_equal(ps.labels, [0, 0, 0, 0, 1, 1])
    assert ps.set_ids.dtype == ps.labels.dtype == np.int64 and ps.factor.dtype == np.float64


def test_got10k_frames_boxes_and_the_originals_draw(tmp_path: Path) -> None:
    ps = load_got10k_occlusion(write_got(tmp_path))
    frames = ps.meta["frame"]
    # the frame of each row has the row's cover level, its file and its x,y,w,h box
    expected_draw = []
    rng = np.random.RandomState(1992)                    # the original: np.random.seed(1992)
    for s, vid in enumerate(ps.meta["set_names"]):
        _, cover, boxes = GOT_VIDEOS[vid]
        cover = np.array(cover)
        expected_draw += [rng.choice(np.flatnonzero(cover == c)) for c in np.unique(cover)]
        for r in np.flatnonzero(ps.set_ids == s):
            f = frames[r]
            assert cover[f] == ps.factor[r]
            assert ps.images[r] == tmp_path / "train" / vid / f"{f + 1:08d}.jpg"
            x, y, w, h = boxes[f]
            np.testing.assert_allclose(ps.boxes[r], [x, y, x + w, y + h])
    np.testing.assert_array_equal(frames, expected_draw)
    # level 2 and 6 of video 1 have a single frame each
    assert list(frames[:4][[0, 2]]) == [6, 2]
    again = load_got10k_occlusion(tmp_path)
    np.testing.assert_array_equal(again.meta["frame"], frames)


def test_got10k_read_shows_the_box(tmp_path: Path) -> None:
    ps = load_got10k_occlusion(write_got(tmp_path))
    x = ps.read(np.arange(len(ps)), 8)
    assert x.shape == (6, 3, 8, 8) and x.dtype == torch.uint8
    for img in x:
        assert_colour(img, FG, tol=40)
    whole = ProbeSet("whole", ps.images, None, ps.set_ids, ps.labels, ps.factor).read([0], 8)
    assert (whole[0].to(torch.int16)[2] > 200).float().mean() > 0.5     # mostly the blue background


def test_got10k_split_folder_as_root(tmp_path: Path) -> None:
    write_got(tmp_path)
    ps = load_got10k_occlusion(tmp_path / "train")
    assert ps.meta["kept"] == 2 and len(ps) == 6


@pytest.mark.parametrize("name, text, match", [
    ("cover.label", "8\n8\n6\n", "3 lines for 8 frames"),
    ("cover.label", "8\n8\n6\n4\nfour\n4\n2\n8\n", "5: not an integer"),
    ("cover.label", "8\n8\n6\n4\n4\n4\n2\n9\n", "outside 0..8"),
    ("groundtruth.txt", "1,2,3\n", "1: expected 'x,y,w,h'"),
    ("meta_info.ini", "[METAINFO]\nmajor_class: vehicle\n", "object_class"),
])
def test_got10k_malformed_files_name_the_file(tmp_path: Path, name: str, text: str, match: str) -> None:
    write_got(tmp_path)
    bad = tmp_path / "train" / "GOT-10k_Train_000001" / name
    bad.write_text(text)
    with pytest.raises(LayoutError, match=match) as e:
        load_got10k_occlusion(tmp_path)
    assert str(e.value).startswith(str(bad)) and "\n" not in str(e.value)


@pytest.mark.parametrize("missing", ["cover.label", "groundtruth.txt", "00000007.jpg", ""])
def test_got10k_missing_video_files(tmp_path: Path, missing: str) -> None:
    write_got(tmp_path)
    gone = tmp_path / "train" / "GOT-10k_Train_000001" / missing
    if missing:
        gone.unlink()
    else:
        for p in gone.iterdir():
            p.unlink()
        gone.rmdir()
    with pytest.raises(LayoutError) as e:
        load_got10k_occlusion(tmp_path)
    assert str(e.value).startswith(f"{gone}: missing")


# -- ALOI -----------------------------------------------------------------------------------------

OBJECTS = {2: (200, 10, 10), 10: (10, 200, 10)}          # object id -> colour (10 sorts after 2)
ALOI_FILES = {
    "viewpoint": ("aloi_red4_view", ["_r0", "_r5", "_r100", "_r355"], [0, 5, 100, 355]),
    "illum-color": ("aloi_red4_col", ["_i110", "_i250", "_i190"], [110, 190, 250]),
    "illum-dir": ("aloi_red4_ill", ["_l1c1", "_l8c3", "_l1c2", "_l3c1"], [1, 1, 3, 8]),
}


def write_aloi(folder: Path, suffixes: list[str]) -> Path:
    for obj, colour in OBJECTS.items():
        for s in suffixes:
            paint(folder / str(obj) / f"{obj}{s}.png", (24, 18), bg=colour)
    return folder


@pytest.mark.parametrize("kind", list(ALOI_FILES))
def test_aloi_sets_labels_factor(tmp_path: Path, kind: str) -> None:
    tar, suffixes, factors = ALOI_FILES[kind]
    write_aloi(tmp_path / tar / "png4", suffixes)
    (tmp_path / tar / "png4" / "2" / "notes.txt").write_text("not an image")
    ps = load_benchmark(f"aloi-{kind}", tmp_path)
    n = len(suffixes)
    assert ps.name == f"aloi-{kind}" and len(ps) == 2 * n and ps.boxes is None
    np.testing.assert_array_equal(ps.set_ids, [0] * n + [1] * n)
    np.testing.assert_array_equal(ps.labels, ps.set_ids)
    assert ps.meta["classes"] == ps.meta["set_names"] == ["2", "10"]
    assert ps.meta["considered"] == ps.meta["kept"] == 2
    np.testing.assert_array_equal(ps.factor, factors * 2)
    assert all(p.parent.name == ("2" if s == 0 else "10") for p, s in zip(ps.images, ps.set_ids))
    x = ps.read(np.array([0, n]), 6)
    assert x.shape == (2, 3, 6, 6) and x.dtype == torch.uint8
    assert_colour(x[0], OBJECTS[2], tol=0)
    assert_colour(x[1], OBJECTS[10], tol=0)


def test_aloi_illum_dir_cameras(tmp_path: Path) -> None:
    write_aloi(tmp_path / "aloi_red4_ill" / "png4", ALOI_FILES["illum-dir"][1])
    ps = load_aloi_illum_dir(tmp_path)
    np.testing.assert_array_equal(ps.meta["camera"], [1, 2, 1, 3] * 2)
    assert [p.name for p in ps.images[:4]] == ["2_l1c1.png", "2_l1c2.png", "2_l3c1.png", "2_l8c3.png"]


def test_aloi_merged_and_bare_folders(tmp_path: Path) -> None:
    merged = tmp_path / "all"
    write_aloi(merged / "png4", ALOI_FILES["viewpoint"][1] + ALOI_FILES["illum-color"][1])
    view, col = load_aloi_viewpoint(merged), load_aloi_illum_color(merged)
    np.testing.assert_array_equal(view.factor, [0, 5, 100, 355] * 2)
    np.testing.assert_array_equal(col.factor, [110, 190, 250] * 2)
    bare = load_aloi_viewpoint(merged / "png4")                  # the original's data/ALOI_viewpoint
    np.testing.assert_array_equal(bare.factor, view.factor)
    with pytest.raises(LayoutError) as e:                          # no illumination-direction files
        load_aloi_illum_dir(merged)
    assert str(e.value).startswith(str(merged / "png4" / "2" / "2_l<l>c<c>.png"))


# -- PASCAL3D+ ------------------------------------------------------------------------------------

OBJ_DTYPE = [("class", object), ("bbox", object), ("viewpoint", object), ("truncated", object)]


def write_record(path: Path, cls: str, objects: list[tuple[tuple[int, int, int, int], float | None]]) -> None:
    """A PASCAL3D+ annotation: ``record`` struct whose ``objects`` is a 1 x N struct array."""
    objs = np.zeros((1, len(objects)), dtype=OBJ_DTYPE)
    for i, (bbox, az) in enumerate(objects):
        objs[0, i]["class"] = cls
        objs[0, i]["bbox"] = np.array(bbox, dtype=np.float64)
        objs[0, i]["viewpoint"] = (np.zeros((0, 0)) if az is None else
                                   {"azimuth_coarse": float(az), "elevation_coarse": 10.0,
                                    "azimuth": float(az) + 2.5, "elevation": 12.0, "distance": 5.0})
        objs[0, i]["truncated"] = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    savemat(path, {"record": {"filename": path.stem + ".JPEG", "imgsize": np.array([20, 16, 3]),
                              "objects": objs}})


# (class, subset, id) -> list of (bbox x1,y1,x2,y2, azimuth_coarse or None)
PASCAL = {
    ("car", "train", "n01_a"): [((2, 2, 8, 6), 10.0)],                                # bin 0
    ("car", "train", "n01_b"): [((1, 3, 9, 9), 200.0), ((0, 0, 4, 4), 95.0)],         # bin 0 (200 % 180)
    ("car", "train", "n01_x"): [((1, 1, 5, 5), None)],                                # no viewpoint
    ("car", "train", "n01_c"): [((4, 4, 12, 10), 45.0)],                              # bin 1
    ("car", "val", "n01_d"): [((3, 1, 11, 7), 95.0)],                                 # bin 3
    ("chair", "train", "n02_e"): [((0, 0, 6, 6), 0.0)],                               # bin 0
    ("chair", "train", "n02_f"): [((5, 5, 15, 12), 30.0)],                            # bin 1
    ("chair", "val", "n02_g"): [((2, 6, 10, 14), 350.0)],                             # bin 5
    ("chair", "val", "n02_h"): [((6, 2, 14, 10), 170.0)],                             # bin 5
}
PASCAL_VOC = {("car", "2008_000001"): (1, [((9, 9, 12, 12), 30.0), ((2, 4, 10, 12), 300.0)])}  # bin 4


def write_pascal(root: Path, voc: bool = False) -> Path:
    sets = root / "Image_sets"
    sets.mkdir(parents=True)
    lists: dict[tuple[str, str], list[str]] = {(c, s): [] for c in ("car", "chair") for s in ("train", "val")}
    for (cls, subset, stem), objects in PASCAL.items():
        lists[cls, subset].append(stem)
        write_record(root / "Annotations" / f"{cls}_imagenet" / f"{stem}.mat", cls, objects)
        paint(root / "Images" / f"{cls}_imagenet" / f"{stem}.JPEG", (20, 16), objects[0][0])
    for (cls, subset), stems in lists.items():
        (sets / f"{cls}_imagenet_{subset}.txt").write_text("".join(s + "\n" for s in stems))
    if voc:
        for (cls, stem), (k, objects) in PASCAL_VOC.items():
            (sets / f"{cls}_pascal.txt").write_text(f"{stem} {k}\n")
            write_record(root / "Annotations" / f"{cls}_pascal" / f"{stem}.mat", cls, objects)
            paint(root / "Images" / f"{cls}_pascal" / f"{stem}.jpg", (20, 16), objects[k][0])
    return root


def test_pascal3d_viewpoint_sets(tmp_path: Path) -> None:
    ps = load_benchmark("pascal3d-viewpoint", write_pascal(tmp_path))
    stems = [p.stem for p in ps.images]
    assert stems == ["n01_a", "n01_b", "n01_c", "n01_d", "n02_e", "n02_f", "n02_g", "n02_h"]
    # car: bin 0 holds a, b -> sets 0, 1; c (bin 1) and d (bin 3) -> set 0. chair starts at 2.
    np.testing.assert_array_equal(ps.set_ids, [0, 1, 0, 0, 2, 2, 2, 3])
    np.testing.assert_array_equal(ps.meta["azimuth_bin"], [0, 0, 1, 3, 0, 1, 5, 5])
    np.testing.assert_array_equal(ps.factor, [10, 200, 45, 95, 0, 30, 350, 170])
    assert ps.meta["classes"] == ["car", "chair"]
    np.testing.assert_array_equal(ps.labels, [0, 0, 0, 0, 1, 1, 1, 1])
    assert ps.meta["set_names"] == ["car/0", "car/1", "chair/0", "chair/1"]
    assert ps.meta["considered"] == 9 and ps.meta["kept"] == 8 and ps.meta["no_viewpoint"] == 1
    np.testing.assert_allclose(ps.boxes[1], [1, 3, 9, 9])                # object 0 of n01_b
    np.testing.assert_allclose(ps.boxes[5], [5, 5, 15, 12])
    for s in np.unique(ps.set_ids):                                      # one image per bin per set
        rows = ps.set_ids == s
        assert len(np.unique(ps.meta["azimuth_bin"][rows])) == rows.sum()
        assert len(np.unique(ps.labels[rows])) == 1


def test_pascal3d_voc_part_and_read(tmp_path: Path) -> None:
    ps = load_pascal3d_viewpoint(write_pascal(tmp_path, voc=True))
    assert ps.images[4] == tmp_path / "Images" / "car_pascal" / "2008_000001.jpg"
    np.testing.assert_allclose(ps.boxes[4], [2, 4, 10, 12])                # object 1, as listed
    assert ps.factor[4] == 300 and ps.meta["azimuth_bin"][4] == 4 and ps.set_ids[4] == 0
    np.testing.assert_array_equal(ps.set_ids[5:], [2, 2, 2, 3])
    x = ps.read(np.arange(len(ps)), 5)
    assert x.shape == (len(ps), 3, 5, 5) and x.dtype == torch.uint8
    for img in x:
        assert_colour(img, FG, tol=40)


def test_pascal3d_bad_annotation(tmp_path: Path) -> None:
    write_pascal(tmp_path)
    ann = tmp_path / "Annotations" / "chair_imagenet" / "n02_f.mat"
    ann.write_bytes(b"not a mat file")
    with pytest.raises(LayoutError) as e:
        load_pascal3d_viewpoint(tmp_path)
    assert str(e.value).startswith(str(ann)) and "\n" not in str(e.value)
    ann.unlink()
    with pytest.raises(LayoutError) as e:
        load_pascal3d_viewpoint(tmp_path)
    assert str(e.value).startswith(f"{ann}: missing")


# -- layouts and the registry ---------------------------------------------------------------------

EXPECTED = {
    "got10k-occlusion": "train/list.txt",
    "aloi-viewpoint": "aloi_red4_view/png4",
    "aloi-illum-color": "aloi_red4_col/png4",
    "aloi-illum-dir": "aloi_red4_ill/png4",
    "pascal3d-viewpoint": "Image_sets",
}


def test_every_benchmark_has_a_layout_case() -> None:
    assert set(EXPECTED) == set(BENCHMARKS)


# name -> (write a fixture under root, rows it must give)
FIXTURES = {
    "got10k-occlusion": (write_got, 6),
    "aloi-viewpoint": (lambda r: write_aloi(r / "aloi_red4_view" / "png4", ALOI_FILES["viewpoint"][1]), 8),
    "aloi-illum-color": (lambda r: write_aloi(r / "aloi_red4_col" / "png4", ALOI_FILES["illum-color"][1]), 6),
    "aloi-illum-dir": (lambda r: write_aloi(r / "aloi_red4_ill" / "png4", ALOI_FILES["illum-dir"][1]), 8),
    "pascal3d-viewpoint": (write_pascal, 8),
}


def test_every_benchmark_has_a_fixture() -> None:
    assert set(FIXTURES) == set(BENCHMARKS)


@pytest.mark.parametrize("name", list(BENCHMARKS))
def test_every_benchmark_loads_its_layout_at_the_asked_size(tmp_path: Path, name: str) -> None:
    write, rows = FIXTURES[name]
    write(tmp_path)
    ps = load_benchmark(name, tmp_path)
    assert isinstance(ps, ProbeSet) and ps.name == name and len(ps) == rows
    assert ps.meta["kept"] <= ps.meta["considered"] and len(ps.meta["set_names"]) == ps.set_ids.max() + 1
    assert 0 <= ps.labels.min() and ps.labels.max() < len(ps.meta["classes"])
    x = ps.read(np.array([0, len(ps) - 1]), 7)
    assert x.shape == (2, 3, 7, 7) and x.dtype == torch.uint8


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_wrong_layout_names_the_expected_path(tmp_path: Path, name: str) -> None:
    (tmp_path / "stray").mkdir()
    (tmp_path / "stray" / "x.png").write_bytes(b"")
    with pytest.raises(LayoutError) as e:
        load_benchmark(name, tmp_path)
    msg = str(e.value)
    assert msg.startswith(f"{tmp_path / EXPECTED[name]}: missing") and "\n" not in msg
    with pytest.raises(LayoutError, match="missing folder") as e:
        load_benchmark(name, tmp_path / "absent")
    assert str(e.value).startswith(str(tmp_path / "absent"))


@pytest.mark.parametrize("name, make, expected", [
    ("got10k-occlusion", lambda r: write_got(r).joinpath("train", "list.txt").write_text(
        "GOT-10k_Train_000001\nGOT-10k_Train_000099\n"), "train/GOT-10k_Train_000099"),
    ("aloi-viewpoint", lambda r: (r / "aloi_red4_view" / "png4").mkdir(parents=True),
     "aloi_red4_view/png4/<obj>"),
    ("pascal3d-viewpoint", lambda r: (r / "Image_sets").mkdir(), "Image_sets/<cls>_imagenet_train.txt"),
    ("pascal3d-viewpoint", lambda r: (write_pascal(r) / "Image_sets" / "car_imagenet_val.txt").unlink(),
     "Image_sets/car_imagenet_val.txt"),
    ("pascal3d-viewpoint", lambda r: (write_pascal(r) / "Images" / "car_imagenet" / "n01_c.JPEG").unlink(),
     "Images/car_imagenet/n01_c.JPEG"),
])
def test_partial_layouts_name_the_missing_path(tmp_path: Path, name: str, make, expected: str) -> None:
    make(tmp_path)
    with pytest.raises(LayoutError) as e:
        load_benchmark(name, tmp_path)
    assert str(e.value).startswith(f"{tmp_path / expected}:"), str(e.value)


def test_unknown_benchmark_lists_valid_names(tmp_path: Path) -> None:
    with pytest.raises(ValueError) as e:
        load_benchmark("aloi-scale", tmp_path)
    assert not isinstance(e.value, LayoutError)
    for name in BENCHMARKS:
        assert name in str(e.value)


def test_probeset_checks_lengths_and_images() -> None:
    with pytest.raises(ValueError, match="labels"):
        ProbeSet("x", None, None, np.zeros(3), np.zeros(2), np.zeros(3))
    with pytest.raises(ValueError, match="boxes"):
        ProbeSet("x", [Path("a")], np.zeros((1, 3)), np.zeros(1), np.zeros(1), np.zeros(1))
    ps = ProbeSet("x", None, None, np.zeros(2), np.zeros(2), np.zeros(2))
    assert len(ps) == 2 and ps.set_ids.dtype == np.int64
    with pytest.raises(ValueError, match="no image files"):
        ps.read(np.arange(2), 4)


def test_read_degenerate_box(tmp_path: Path) -> None:
    paint(tmp_path / "a.png", (10, 10), (3, 3, 4, 4))
    ps = ProbeSet("x", [tmp_path / "a.png"], np.array([[3.0, 3.0, 3.0, 3.0]]), [0], [0], [0])
    x = ps.read([0], 4)
    assert x.shape == (1, 3, 4, 4)
    assert_colour(x[0], FG, tol=0)


def test_read_resizes_with_antialiasing(tmp_path: Path) -> None:
    checker = (np.indices((16, 16)).sum(0) % 2 * 255).astype(np.uint8)
    Image.fromarray(np.stack([checker] * 3, -1)).save(tmp_path / "c.png")
    ps = ProbeSet("x", [tmp_path / "c.png"], None, [0], [0], [0])
    x = ps.read([0], 4).to(torch.int16)                    # 1-px checkerboard shrunk 4x: flat grey
    assert ((x - 128).abs() <= 16).all(), x[0, 0]
