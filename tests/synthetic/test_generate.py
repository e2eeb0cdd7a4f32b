"""Generated datasets: determinism, factor control, geometry, probe structure, bad input."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from synthetic import dataset
from synthetic import generate as gen
from synthetic.presets import PRESETS, PROBES, TCVL_VARIANTS

ROOT = Path(__file__).resolve().parents[2]
DATA_FILES = ("images.npy", "semantic.npy", "instance.npy", "depth.npy", "labels.csv", "objects.csv")


def make(tmp: Path, preset: str, n: int, seed: int = 0, **kw) -> dataset.SyntheticDataset:
    kw.setdefault("workers", 1)
    kw.setdefault("size", 32 if preset != "scenes" else 64)
    out = gen.generate(preset, n, seed, tmp / f"{preset}-{n}-{seed}-{kw['workers']}", progress=False, **kw)
    return dataset.open_dataset(out)


def digest(root: Path) -> dict[str, str]:
    return {f: hashlib.sha256((root / f).read_bytes()).hexdigest() for f in DATA_FILES}


# --------------------------------------------------------------------------- every preset
@pytest.mark.parametrize("preset", list(PRESETS))
def test_every_preset_generates_consistent_geometry(tmp_path: Path, preset: str) -> None:
    ds = make(tmp_path, preset, 3 if PRESETS[preset].unit != "image" else 12)
    assert len(ds) == ds.meta["num_images"] == len(ds.labels)
    sem, inst, depth = np.asarray(ds.semantic), np.asarray(ds.instance), np.asarray(ds.depth, np.float32)
    assert np.array_equal(np.isfinite(depth), sem > 0)          # depth finite exactly on the mask
    assert np.array_equal(sem > 0, inst > 0)
    assert (depth[np.isfinite(depth)] > 0).all()
    for o in ds.objects.itertuples():
        m = inst[o.image] == o.object
        assert m.sum() == o.area
        assert o.footprint >= o.area
        if o.area == 0:
            assert (o.x0, o.y0, o.x1, o.y1) == (-1, -1, -1, -1)
            continue
        ys, xs = np.nonzero(m)                                   # boxes are tight around masks
        assert (o.x0, o.y0, o.x1, o.y1) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
        assert (sem[o.image][m] == getattr(o, "_3") + 1).all()   # semantic class = object class
    assert set(ds.labels["split"]) <= {"train", "val", "test"}
    assert set(ds.labels["pose_bin"]) <= set(range(5))


def test_objects_are_lit_3d_not_flat(tmp_path: Path) -> None:
    ds = make(tmp_path, "tcvl-0000", 10, size=64)
    img, sem = np.asarray(ds.images, np.float32).mean(-1), np.asarray(ds.semantic)
    # Lambertian shading of curved / multi-faced objects: intensity varies over a plain object
    spreads = [img[i][sem[i] > 0].std() for i in range(len(ds))]
    assert np.median(spreads) > 8


# --------------------------------------------------------------------------- determinism
def test_same_seed_same_bytes_any_worker_count(tmp_path: Path) -> None:
    a = make(tmp_path, "shapes64", 300, workers=1)
    b = make(tmp_path, "shapes64", 300, workers=2)
    assert digest(a.root) == digest(b.root)
    c = make(tmp_path, "shapes64", 300, seed=1, workers=1)
    assert digest(a.root)["images.npy"] != digest(c.root)["images.npy"]


def test_prefix_of_a_larger_dataset_is_identical(tmp_path: Path) -> None:
    a, b = make(tmp_path, "shapes64", 40), make(tmp_path, "shapes64", 300)
    assert np.array_equal(np.asarray(a.images), np.asarray(b.images[:40]))


# --------------------------------------------------------------------------- factor control
def test_tcvl_0000_same_class_and_instance_are_identical(tmp_path: Path) -> None:
    ds = make(tmp_path, "tcvl-0000", 120)
    imgs = np.asarray(ds.images)
    groups = ds.labels.groupby(["class", "instance"])["index"].apply(list)
    pairs = [g for g in groups if len(g) > 1]
    assert len(pairs) >= 10
    for g in pairs:
        for i in g[1:]:
            assert np.array_equal(imgs[g[0]], imgs[i])


FACTOR_COLUMNS = {
    "texture": ["texture", "texture_freq"],
    "colour": ["color_r", "color_g", "color_b"],
    "viewpoint": ["azimuth", "elevation", "roll", "pose_bin"],
    "lighting": ["light_azimuth", "light_elevation", "light_intensity", "light_ambient",
                 "light_r", "light_g", "light_b"],
}


@pytest.mark.parametrize("flag", range(4))
def test_turning_one_flag_on_changes_only_that_factor(tmp_path: Path, flag: int) -> None:
    on = "".join("1" if i == flag else "0" for i in range(4))
    base, var = make(tmp_path, "tcvl-0000", 40), make(tmp_path, f"tcvl-{on}", 40)
    name = list(FACTOR_COLUMNS)[flag]
    for factor, cols in FACTOR_COLUMNS.items():
        same = base.labels[cols].equals(var.labels[cols])
        assert same == (factor != name), (factor, name)
    assert base.labels[["class", "instance", "background", "scale", "tx", "ty"]].equals(
        var.labels[["class", "instance", "background", "scale", "tx", "ty"]])
    geometry_same = np.array_equal(np.asarray(base.semantic), np.asarray(var.semantic))
    assert geometry_same == (name != "viewpoint")
    assert not np.array_equal(np.asarray(base.images), np.asarray(var.images))
    if name != "viewpoint":
        assert np.array_equal(np.asarray(base.depth), np.asarray(var.depth))
        bg = np.asarray(base.semantic) == 0                      # pixels off the object are untouched
        assert np.array_equal(np.asarray(base.images)[bg], np.asarray(var.images)[bg])


def test_all_twelve_tcvl_variants_exist() -> None:
    assert len(TCVL_VARIANTS) == 12
    assert all(f"tcvl-{v}" in PRESETS for v in TCVL_VARIANTS)


# --------------------------------------------------------------------------- probe sets
VARIED = {
    "occlusion": ["occluded_frac"],
    "viewpoint": ["azimuth", "elevation"],
    "illum-dir": ["light_azimuth"],
    "illum-color": ["light_r", "light_g", "light_b"],
    "instance": ["instance"],
    "instance-viewpoint": ["instance", "azimuth", "elevation", "roll"],
}
FIXED = ["class", "color_r", "texture", "background", "scale", "tx", "azimuth", "elevation", "roll", "instance",
         "light_azimuth", "light_elevation", "light_r", "light_g", "light_b"]


@pytest.mark.parametrize("probe", PROBES)
def test_probe_sets_vary_only_their_factor(tmp_path: Path, probe: str) -> None:
    ds = make(tmp_path, f"probe-{probe}", 6)
    lab = ds.labels
    sizes = lab.groupby("set_id").size()
    assert len(sizes) == 6 and (sizes >= 3).all()
    for _, s in lab.groupby("set_id"):
        for col in FIXED:
            if col not in VARIED[probe]:
                assert s[col].nunique() == 1, (probe, col)
        assert any(s[c].nunique() > 1 for c in VARIED[probe])
    if probe == "occlusion":
        err = (lab["occluded_frac"] - lab["level_value"]).abs()
        assert err.max() < 0.04                                 # exact up to one column of pixels
        assert (lab.groupby("set_id")["occluded_frac"].apply(lambda x: x.is_monotonic_increasing)).all()
    if probe.startswith("instance"):
        assert (lab.groupby("set_id")["instance"].nunique() == sizes).all()


@pytest.mark.parametrize("probe", PROBES)
def test_probe_appearance_is_one_for_the_whole_dataset(tmp_path: Path, probe: str) -> None:
    """No appearance cue tells the sets apart: one grey untextured material, one plain grey
    background and one light for every image (a set differs from another only by its object)."""
    ds = make(tmp_path, f"probe-{probe}", 6)
    lab = ds.labels
    fixed = ["color_r", "color_g", "color_b", "texture", "background"]
    fixed += [c for c in ("light_azimuth", "light_elevation", "light_r", "light_g", "light_b")
              if c not in VARIED.get(probe, []) and not (probe == "illum-dir" and c == "light_azimuth")]
    for col in (c for c in fixed if c in lab):
        assert lab[col].nunique() == 1, (probe, col)
    back = np.asarray(ds.semantic) == 0                             # background, and the occluder card
    assert np.ptp(np.asarray(ds.images)[back], axis=0).max() <= 1 if probe != "occlusion" else \
        len(np.unique(np.asarray(ds.images)[back], axis=0)) <= 2 + 16  # background, one grey card (antialiased edge)
    assert lab["class"].nunique() > 1


def test_neutral_keeps_the_other_presets_argument_hashes() -> None:
    """``neutral`` is written only where set, so datasets made before it stay up to date."""
    from synthetic.presets import PRESETS

    assert "neutral" not in PRESETS["shapes64-heldout"].to_dict()
    assert PRESETS["probe-viewpoint"].to_dict()["neutral"] is True


def test_video_clips_have_tracks(tmp_path: Path) -> None:
    ds = make(tmp_path, "video", 4)
    lab, obj = ds.labels, ds.objects
    assert (lab.groupby("clip")["frame"].apply(list) == [list(range(8))] * 4).all()
    obj = obj.merge(lab[["index", "clip", "frame"]], left_on="image", right_on="index")
    per_track = obj.groupby(["clip", "object"])
    assert (per_track.size() == 8).all()                        # every object tracked in every frame
    assert (per_track["class"].nunique() == 1).all()
    assert (per_track["azimuth"].nunique() > 1).all()          # continuous viewpoint change
    assert lab["occluder"].ne("none").all()


# --------------------------------------------------------------------------- folder handling
def test_same_arguments_is_a_no_op(tmp_path: Path) -> None:
    ds = make(tmp_path, "shapes64", 8)
    before = {f: os.stat(ds.root / f).st_mtime_ns for f in DATA_FILES}
    make(tmp_path, "shapes64", 8)
    assert before == {f: os.stat(ds.root / f).st_mtime_ns for f in DATA_FILES}


def test_interrupted_run_leaves_no_complete_looking_folder(tmp_path: Path, monkeypatch) -> None:
    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(gen, "render_all", boom)
    with pytest.raises(KeyboardInterrupt):
        gen.generate("shapes64", 8, 0, tmp_path / "d", workers=1, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_failed_overwrite_keeps_the_old_dataset(tmp_path: Path, monkeypatch) -> None:
    ds = make(tmp_path, "shapes64", 8)
    before = digest(ds.root)
    monkeypatch.setattr(gen, "render_all", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("disk full")))
    with pytest.raises(RuntimeError):
        gen.generate("shapes64", 9, 0, ds.root, workers=1, overwrite=True, size=32, progress=False)
    assert digest(ds.root) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [ds.root.name]


def test_overwrite_replaces(tmp_path: Path) -> None:
    ds = make(tmp_path, "shapes64", 8)
    gen.generate("shapes64", 9, 0, ds.root, workers=1, overwrite=True, size=32, progress=False)
    assert len(dataset.open_dataset(ds.root)) == 9


# --------------------------------------------------------------------------- bad input
def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "synthetic.generate", *args, "--quiet", "--workers", "1"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_cli_writes_a_dataset(tmp_path: Path) -> None:
    r = run_cli("--preset", "shapes64", "--n", "5", "--size", "32", "--out", str(tmp_path / "d"))
    assert r.returncode == 0, r.stderr
    assert len(dataset.open_dataset(tmp_path / "d")) == 5


@pytest.mark.parametrize("args, message", [
    (["--preset", "nope", "--n", "4"], "unknown preset 'nope'; valid presets: shapes64"),
    (["--preset", "shapes64", "--n", "0"], "--n 0: expected a positive number"),
    (["--preset", "shapes64", "--n", "-3"], "--n -3: expected a positive number"),
    (["--preset", "shapes64", "--n", "4", "--size", "4"], "--size 4: expected an image size"),
])
def test_cli_bad_arguments(tmp_path: Path, args: list[str], message: str) -> None:
    r = run_cli(*args, "--out", str(tmp_path / "d"))
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith(f"error: {message}")
    assert not (tmp_path / "d").exists()


def test_cli_unwritable_output(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    r = run_cli("--preset", "shapes64", "--n", "4", "--out", str(target / "sub"))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "cannot write there" in r.stderr
    r = run_cli("--preset", "shapes64", "--n", "4", "--out", str(target))
    assert r.returncode == 2 and "not a folder" in r.stderr
    assert target.read_text() == "x"


def test_cli_refuses_other_arguments_and_foreign_folders(tmp_path: Path) -> None:
    ds = make(tmp_path, "shapes64", 8)
    before = digest(ds.root)
    r = run_cli("--preset", "shapes64", "--n", "9", "--size", "32", "--out", str(ds.root))
    assert r.returncode == 2 and "pass --overwrite" in r.stderr
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep")
    r = run_cli("--preset", "shapes64", "--n", "4", "--out", str(foreign), "--overwrite")
    assert r.returncode == 2 and "not an sslbench dataset" in r.stderr
    assert (foreign / "notes.txt").read_text() == "keep"
    assert digest(ds.root) == before


def test_folder_of_another_version_is_refused(tmp_path: Path) -> None:
    ds = make(tmp_path, "shapes64", 8)
    meta = (ds.root / "meta.json").read_text().replace('"format_version": 1', '"format_version": 99')
    (ds.root / "meta.json").write_text(meta)
    r = run_cli("--preset", "shapes64", "--n", "8", "--size", "32", "--out", str(ds.root))
    assert r.returncode == 2 and "format version 99" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    with pytest.raises(dataset.DatasetError, match="format version 99"):
        dataset.open_dataset(ds.root)


def test_scenes_coco_export_validates_with_pycocotools(tmp_path: Path) -> None:
    from pycocotools.coco import COCO
    from pycocotools import mask as mask_util

    ds = make(tmp_path, "scenes", 16, exports=["coco"])
    ann_files = sorted((ds.root / "exports" / "coco").glob("annotations_*.json"))
    assert ann_files
    visible = ds.objects[ds.objects["area"] > 0]
    total = 0
    inst = np.asarray(ds.instance)
    for f in ann_files:
        coco = COCO(str(f))
        for ann in coco.loadAnns(coco.getAnnIds()):
            img = ann["image_id"] - 1
            m = coco.annToMask(ann).astype(bool)
            assert m.sum() == ann["area"]
            assert (inst[img][m] == inst[img][m][0]).all() and inst[img][m][0] > 0
            assert np.allclose(mask_util.toBbox(coco.annToRLE(ann)), ann["bbox"])
        total += len(coco.getAnnIds())
    assert total == len(visible)
    assert (ds.labels["n_objects"] >= 2).all() and (ds.labels["n_objects"] <= 6).all()
    assert (ds.objects["occluded_frac"] > 0.05).any()          # objects occlude one another


def test_photo_backgrounds(tmp_path: Path) -> None:
    from PIL import Image

    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 255, (80, 120, 3), dtype=np.uint8)).save(photos / f"p{i}.png")
    ds = make(tmp_path, "shapes64", 40, backgrounds=photos)
    assert "photo" in ds.meta["factors"]["background"]["values"] and ds.meta["args"]["photos"]
    assert (ds.labels["background"] == "photo").sum() > 3
    (photos / "p0.png").write_bytes((photos / "p1.png").read_bytes())  # other photos: other arguments
    with pytest.raises(dataset.DatasetError, match="other arguments"):
        make(tmp_path, "shapes64", 40, backgrounds=photos)
    r = run_cli("--preset", "shapes64", "--n", "4", "--backgrounds", str(tmp_path / "none"),
                "--out", str(tmp_path / "x"))
    assert r.returncode == 2 and "expected a folder with .png/.jpg photos" in r.stderr


HELDOUT_PRESETS = [name for name in PRESETS if name.endswith("-heldout")]


@pytest.mark.parametrize("name", ["shapes64-heldout", "shapes64-clutter-heldout", "tcvl-0000-heldout"])
def test_held_out_instances_never_meet_across_splits(tmp_path: Path, name: str) -> None:
    """A held-out preset: every mesh (class, instance) is in one split only; each class has test
    meshes; the test split is about its fraction of the images."""
    from synthetic.generate import instance_splits
    from synthetic.presets import get_preset

    root = gen.generate(name, 300, 0, tmp_path / "h", size=16, workers=1, progress=False)
    labels = dataset.open_dataset(root).labels
    splits_of = labels.groupby(["class", "instance"])["split"].nunique()
    assert (splits_of == 1).all()
    test = labels[labels["split"] == "test"]
    assert set(test["class"]) == set(labels["class"]) and 0.1 < len(test) / len(labels) < 0.3
    table = instance_splits(get_preset(name), 0)
    assert table.shape == (10, 20) and [(row == k).sum() for row in table for k in (0, 1, 2)] == [14, 2, 4] * 10
    assert np.array_equal(table, instance_splits(get_preset(name), 0))


@pytest.mark.parametrize("name", HELDOUT_PRESETS)
def test_a_held_out_preset_is_its_base_with_meshes_split(name: str) -> None:
    """``<base>-heldout`` is ``<base>`` with 20 meshes per class split by mesh (0.7 / 0.1 / 0.2),
    nothing else changed; the base itself still splits by image."""
    import dataclasses

    base = PRESETS[name.removesuffix("-heldout")]
    assert PRESETS[name] == dataclasses.replace(base, name=name, instances=20, splits=(0.7, 0.1, 0.2),
                                                split_by="instance")
    assert base.split_by == "image" and base.instances == 5


def test_every_single_object_preset_has_a_held_out_variant() -> None:
    """shapes64, shapes64-clutter and the 12 tcvl variants (what the cpu plans classify)."""
    assert sorted(HELDOUT_PRESETS) == sorted(["shapes64-heldout", "shapes64-clutter-heldout",
                                              *(f"tcvl-{v}-heldout" for v in TCVL_VARIANTS)])


def test_the_older_presets_keep_their_argument_hashes() -> None:
    """A preset that splits by image does not record ``split_by``: datasets made before it stay up to date."""
    from synthetic.presets import PRESETS

    assert all(("split_by" in p.to_dict()) == (p.split_by != "image") for p in PRESETS.values())


def test_too_few_instances_to_hold_out_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="1 instances per class cannot hold 0 val and 1 test instances"):
        gen.generate("shapes64-heldout", 20, 0, tmp_path / "x", size=16, instances=1, workers=1, progress=False)
