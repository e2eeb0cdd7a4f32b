"""Exports of a synthetic dataset to formats other tools read natively, and their command line.

    python -m synthetic.export DIR --to coco,voc [--overwrite]

Every export lives in its own folder ``DIR/exports/<kind>/``:

    coco/         images/{index:06d}.png, annotations_{split}.json (instances with RLE masks)
    voc/          JPEGImages/{index:06d}.jpg, SegmentationClass/{index:06d}.png (palette PNG of
                  the class ids), ImageSets/Segmentation/{split}.txt, classes.txt
    imagefolder/  {split}/{class_name}/{index:06d}.png (torchvision ``ImageFolder``), classes.txt
    frames/       {clip:05d}/{frame:04d}.png and {clip:05d}/boxes.csv (video datasets only)

An export is built in a temporary folder beside its final place and renamed into place when it
is done, with an ``export.json`` manifest tying it to the dataset it came from; a complete export
is left alone unless ``overwrite`` is set.

The command line writes each kind asked for and prints one line per export. Bad input (no such
folder, not a dataset, unknown kind) prints one ``error: ...`` line to stderr and exits with
status 2; a failure to write (disk full, permissions) exits with status 1.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image
from pycocotools import mask as mask_util
from tqdm import tqdm

from fsio import replace_folder, write_json_atomic
from synthetic.dataset import DatasetError, SyntheticDataset, open_dataset

EXPORT_VERSION = 1
MANIFEST = "export.json"
WORKERS = 2
SPLIT_ORDER = ("train", "val", "test")
JPEG_QUALITY = 95


# --------------------------------------------------------------------------- staging and manifest

def export_dir(ds: SyntheticDataset, kind: str) -> Path:
    """Final folder of the ``kind`` export of ``ds``."""
    return Path(ds.root) / "exports" / kind


def _manifest(ds: SyntheticDataset, kind: str) -> dict[str, Any]:
    """What ``export.json`` records: the kind and the dataset the export was made from."""
    return dict(kind=kind, export_version=EXPORT_VERSION, dataset_args_hash=ds.meta.get("args_hash"),
                num_images=len(ds))


def is_complete(ds: SyntheticDataset, kind: str) -> bool:
    """True if ``exports/<kind>`` exists and its manifest matches this dataset."""
    path = export_dir(ds, kind) / MANIFEST
    try:
        found = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    want = _manifest(ds, kind)
    return all(found.get(key) == value for key, value in want.items())


def _stage(ds: SyntheticDataset, kind: str) -> Path:
    """Create the temporary folder an export is built in (beside its final place)."""
    final = export_dir(ds, kind)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{kind}.tmp-"))
    except OSError as e:
        raise DatasetError(f"{final.parent}: cannot write there ({e.strerror})") from e


def _commit(ds: SyntheticDataset, kind: str, tmp: Path) -> Path:
    """Write the manifest into ``tmp`` and rename it into place, replacing an older export."""
    final = export_dir(ds, kind)
    manifest = _manifest(ds, kind) | {"created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    write_json_atomic(tmp / MANIFEST, manifest)
    replacing = final.exists()
    try:
        return replace_folder(tmp, final)
    except OSError:
        if not replacing and is_complete(ds, kind):  # another process finished the same export first
            shutil.rmtree(tmp, ignore_errors=True)
            return final
        raise


def _build(ds: SyntheticDataset, kind: str, overwrite: bool, fill: Callable[[Path], None]) -> Path:
    """Run ``fill(tmp)`` in a staging folder and move it to ``exports/<kind>``.

    A complete export is returned as it is unless ``overwrite``; a failed build leaves nothing.
    """
    if not overwrite and is_complete(ds, kind):
        return export_dir(ds, kind)
    tmp = _stage(ds, kind)
    try:
        fill(tmp)
        return _commit(ds, kind, tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# --------------------------------------------------------------------------- shared helpers

def _image_ids(ds: SyntheticDataset) -> np.ndarray:
    """The ``index`` column of labels.csv, checked to be the row positions 0..N-1."""
    ids = ds.labels["index"].to_numpy()
    if not np.array_equal(ids, np.arange(len(ds))):
        raise DatasetError(f"{ds.root}: labels.csv column 'index' is not 0..{len(ds) - 1} in order")
    return ids


def _splits(ds: SyntheticDataset) -> list[str]:
    """Split names present in labels.csv: train, val, test first, then any other, sorted."""
    present = set(ds.labels["split"].astype(str))
    return [s for s in SPLIT_ORDER if s in present] + sorted(present - set(SPLIT_ORDER))


def _class_name(ds: SyntheticDataset, value: Any, where: str) -> str:
    """Name of class id ``value`` (from a table cell); DatasetError if it is not a valid id."""
    classes = ds.classes
    if pd.isna(value) or not 0 <= int(value) < len(classes):
        raise DatasetError(f"{ds.root}: {where}: class {value!r} is not one of 0..{len(classes) - 1}")
    return classes[int(value)]


def _save_rgb(images: np.ndarray, index: int, path: Path, **save_args: Any) -> None:
    """Save image ``index`` of the (N, H, W, 3) array to ``path`` (format from the suffix)."""
    Image.fromarray(np.ascontiguousarray(images[index])).save(path, **save_args)


def _run_jobs(jobs: Sequence[Callable[[], None]], desc: str) -> None:
    """Run the jobs on a small thread pool (PIL releases the GIL while encoding), with a progress bar."""
    pool = ThreadPoolExecutor(max_workers=WORKERS)
    try:
        futures = [pool.submit(job) for job in jobs]
        with tqdm(total=len(futures), desc=desc, unit="img", disable=None) as bar:
            for future in as_completed(futures):
                future.result()
                bar.update()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _write_lines(path: Path, lines: Sequence[str]) -> None:
    """Write ``lines`` to a text file, one per line."""
    path.write_text("".join(f"{line}\n" for line in lines))


# --------------------------------------------------------------------------- COCO

def _coco_annotation(ds: SyntheticDataset, row: Any, ann_id: int) -> dict[str, Any]:
    """One COCO instance annotation (RLE of the visible mask) for an objects.csv row."""
    image, obj = int(row.image), int(row.object)
    mask = np.asfortranarray(np.asarray(ds.instance[image]) == obj, dtype=np.uint8)
    rle = mask_util.encode(mask)
    area = int(mask_util.area(rle))
    bbox = [int(row.x0), int(row.y0), int(row.x1) - int(row.x0), int(row.y1) - int(row.y0)]
    if area == 0 or not np.array_equal(mask_util.toBbox(rle), bbox):
        raise DatasetError(
            f"{ds.root}: image {image} object {obj}: objects.csv box {bbox} (x, y, w, h) does not match "
            f"the instance mask (box {mask_util.toBbox(rle).astype(int).tolist()}, {area} pixels)")
    rle["counts"] = rle["counts"].decode("ascii")
    return dict(id=ann_id, image_id=image + 1, category_id=int(row.cls) + 1, bbox=bbox, area=area,
                segmentation=rle, iscrowd=0)


def _coco_annotations(ds: SyntheticDataset) -> list[dict[str, Any]]:
    """Annotations of every visible object, ids 1.. in objects.csv order."""
    objects = ds.objects[ds.objects["area"] > 0]
    objects = objects[["image", "object", "class", "x0", "y0", "x1", "y1"]].rename(columns={"class": "cls"})
    out = []
    for row in objects.itertuples(index=False):
        _class_name(ds, row.cls, f"objects.csv image {row.image} object {row.object}")
        out.append(_coco_annotation(ds, row, ann_id=len(out) + 1))
    return out


def _coco_fill(ds: SyntheticDataset, tmp: Path) -> None:
    """Write the COCO images and one annotation file per split into ``tmp``."""
    ids = _image_ids(ds)
    height, width = ds.images.shape[1:3]
    annotations = _coco_annotations(ds)
    categories = [dict(id=c + 1, name=name) for c, name in enumerate(ds.classes)]
    info = dict(description=f"sslbench synthetic dataset {ds.meta.get('preset', '')}".strip(),
                version=str(ds.meta.get("generator_version", "")), args_hash=ds.meta.get("args_hash"))
    splits = ds.labels["split"].astype(str).to_numpy()
    for split in _splits(ds):
        members = set(int(i) for i in ids[splits == split])
        doc = dict(
            info=info, licenses=[], categories=categories,
            images=[dict(id=i + 1, file_name=f"{i:06d}.png", width=int(width), height=int(height))
                    for i in sorted(members)],
            annotations=[a for a in annotations if a["image_id"] - 1 in members])
        with open(tmp / f"annotations_{split}.json", "w") as f:
            json.dump(doc, f, separators=(",", ":"))
    (tmp / "images").mkdir()
    _run_jobs([partial(_save_rgb, ds.images, int(i), tmp / "images" / f"{i:06d}.png") for i in ids], "coco")


def export_coco(ds: SyntheticDataset, overwrite: bool = False) -> Path:
    """Export to COCO: ``exports/coco/images/*.png`` and ``annotations_{split}.json`` per split.

    Image ids are dataset index + 1, category ids class + 1; every visible object is an instance
    annotation whose ``segmentation`` is the COCO RLE of its visible mask. Raises DatasetError if
    an objects.csv box does not match its mask.
    """
    return _build(ds, "coco", overwrite, partial(_coco_fill, ds))


# --------------------------------------------------------------------------- VOC

def voc_palette() -> list[int]:
    """The 256-colour PASCAL VOC palette as a flat [r, g, b, r, g, b, ...] list.

    Bit ``j`` of the three low bits of the label goes to bit ``7 - j`` of red, green and blue,
    then the next three bits go one bit lower, and so on; label 255 comes out as (224, 224, 192).
    """
    palette = []
    for label in range(256):
        rgb = [0, 0, 0]
        for shift in range(8):
            for channel in range(3):
                rgb[channel] |= ((label >> (3 * shift + channel)) & 1) << (7 - shift)
        palette.extend(rgb)
    return palette


def _save_semantic(semantic: np.ndarray, index: int, path: Path, palette: list[int]) -> None:
    """Save semantic map ``index`` as a palette ('P' mode) PNG holding the class ids."""
    image = Image.fromarray(np.ascontiguousarray(semantic[index]))
    image.putpalette(palette)
    image.save(path)


def _voc_fill(ds: SyntheticDataset, tmp: Path) -> None:
    """Write the VOC2012-style folder into ``tmp``."""
    if len(ds.classes) > 254:
        raise DatasetError(f"{ds.root}: {len(ds.classes)} classes do not fit VOC's 8-bit labels (254 at most)")
    ids = _image_ids(ds)
    sets = tmp / "ImageSets" / "Segmentation"
    sets.mkdir(parents=True)
    splits = ds.labels["split"].astype(str).to_numpy()
    for split in _splits(ds):
        _write_lines(sets / f"{split}.txt", [f"{i:06d}" for i in ids[splits == split]])
    _write_lines(tmp / "classes.txt", ["background", *ds.classes])
    (tmp / "JPEGImages").mkdir()
    (tmp / "SegmentationClass").mkdir()
    palette = voc_palette()
    jobs = []
    for i in ids:
        jobs.append(partial(_save_rgb, ds.images, int(i), tmp / "JPEGImages" / f"{i:06d}.jpg",
                            quality=JPEG_QUALITY))
        jobs.append(partial(_save_semantic, ds.semantic, int(i), tmp / "SegmentationClass" / f"{i:06d}.png",
                            palette))
    _run_jobs(jobs, "voc")


def export_voc(ds: SyntheticDataset, overwrite: bool = False) -> Path:
    """Export to a VOC2012-style folder (JPEG images, palette PNG class maps, split lists).

    ``SegmentationClass`` PNGs hold 0 for background and c + 1 for class c, with the VOC colours;
    ``classes.txt`` lists background and the class names in id order.
    """
    return _build(ds, "voc", overwrite, partial(_voc_fill, ds))


# --------------------------------------------------------------------------- ImageFolder

def _folder_name(ds: SyntheticDataset, name: str) -> str:
    """A class name checked to be usable as one folder name."""
    if not name or name in (".", "..") or "/" in name or os.sep in name or "\0" in name:
        raise DatasetError(f"{ds.root}: class name {name!r} cannot be a folder name")
    return name


def _imagefolder_fill(ds: SyntheticDataset, tmp: Path) -> None:
    """Write ``{split}/{class_name}/{index:06d}.png`` into ``tmp``."""
    ids = _image_ids(ds)
    jobs = []
    for i, split, value in zip(ids, ds.labels["split"].astype(str), ds.labels["class"]):
        name = _folder_name(ds, _class_name(ds, value, f"labels.csv image {i}"))
        folder = tmp / _folder_name(ds, split) / name
        folder.mkdir(parents=True, exist_ok=True)
        jobs.append(partial(_save_rgb, ds.images, int(i), folder / f"{i:06d}.png"))
    _write_lines(tmp / "classes.txt", ds.classes)
    _run_jobs(jobs, "imagefolder")


def export_imagefolder(ds: SyntheticDataset, overwrite: bool = False) -> Path:
    """Export to torchvision's ImageFolder layout: ``{split}/{class_name}/{index:06d}.png``.

    The class of an image is its labels.csv ``class``. ImageFolder numbers the class folders
    alphabetically; ``classes.txt`` lists the names in the dataset's own id order.
    """
    return _build(ds, "imagefolder", overwrite, partial(_imagefolder_fill, ds))


# --------------------------------------------------------------------------- video frames

def _clip_frames(ds: SyntheticDataset) -> pd.DataFrame:
    """labels.csv ``index, clip, frame`` as ints; DatasetError if this is not a video dataset."""
    missing = [c for c in ("clip", "frame") if c not in ds.labels.columns]
    if missing:
        raise DatasetError(f"{ds.root}: not a video dataset (labels.csv has no {' / '.join(missing)} "
                           f"column); the frames export needs clips")
    table = ds.labels[["index", "clip", "frame"]]
    if table.isna().any().any():
        raise DatasetError(f"{ds.root}: labels.csv has images without a clip / frame number")
    table = table.astype(int)
    if table.duplicated(["clip", "frame"]).any():
        raise DatasetError(f"{ds.root}: labels.csv repeats a (clip, frame) pair")
    return table


def _frames_fill(ds: SyntheticDataset, tmp: Path) -> None:
    """Write one folder of frame PNGs and a boxes.csv per clip into ``tmp``."""
    _image_ids(ds)
    frames = _clip_frames(ds)
    visible = ds.objects[ds.objects["area"] > 0]
    boxes = visible.merge(frames, left_on="image", right_on="index")
    columns = ["frame", "object", "class", "x0", "y0", "x1", "y1"]
    jobs = []
    for clip, group in frames.groupby("clip"):
        folder = tmp / f"{clip:05d}"
        folder.mkdir()
        clip_boxes = boxes[boxes["clip"] == clip].sort_values(["frame", "object"])
        clip_boxes[columns].to_csv(folder / "boxes.csv", index=False)
        jobs.extend(partial(_save_rgb, ds.images, int(i), folder / f"{f:04d}.png")
                    for i, f in zip(group["index"], group["frame"]))
    _run_jobs(jobs, "frames")


def export_frames(ds: SyntheticDataset, overwrite: bool = False) -> Path:
    """Export a video dataset as ``{clip:05d}/{frame:04d}.png`` plus ``{clip:05d}/boxes.csv``.

    boxes.csv has one row per visible object per frame (columns frame, object, class, x0, y0, x1,
    y1; x1 / y1 exclusive). Raises DatasetError if labels.csv has no ``clip`` / ``frame`` columns.
    """
    return _build(ds, "frames", overwrite, partial(_frames_fill, ds))


# --------------------------------------------------------------------------- dispatch

EXPORTERS: dict[str, Callable[..., Path]] = {
    "coco": export_coco,
    "voc": export_voc,
    "imagefolder": export_imagefolder,
    "frames": export_frames,
}


def check_kinds(kinds: Sequence[str]) -> list[str]:
    """Return ``kinds`` without repeats; ValueError naming the valid kinds if one is unknown."""
    unknown = [k for k in kinds if k not in EXPORTERS]
    if unknown or not kinds:
        what = f"unknown export kind {', '.join(map(repr, unknown))}" if unknown else "no export kind given"
        raise ValueError(f"{what}; valid kinds: {', '.join(EXPORTERS)}")
    return list(dict.fromkeys(kinds))


def export(ds: SyntheticDataset, kinds: Sequence[str], overwrite: bool = False) -> dict[str, Path]:
    """Run the exporters named in ``kinds`` (all checked before any work); return kind -> folder."""
    return {kind: EXPORTERS[kind](ds, overwrite=overwrite) for kind in check_kinds(kinds)}


# --------------------------------------------------------------------------- command line

_CLI_DESCRIPTION = "Export a synthetic dataset to COCO / VOC / ImageFolder / frame folders."


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(prog="python -m synthetic.export", description=_CLI_DESCRIPTION)
    parser.add_argument("dir", type=Path, help="dataset folder made by `python -m synthetic.generate`")
    parser.add_argument("--to", required=True,
                        help=f"comma-separated export kinds: {', '.join(EXPORTERS)}")
    parser.add_argument("--overwrite", action="store_true", help="rebuild exports that already exist")
    return parser.parse_args(argv)


def run(root: Path, kinds: list[str], overwrite: bool) -> None:
    """Open the dataset at ``root`` and write the requested exports, reporting each on stdout."""
    kinds = check_kinds(kinds)
    if not root.is_dir():
        raise DatasetError(f"{root}: no such folder")
    ds = open_dataset(root)
    for kind in kinds:
        skipped = not overwrite and is_complete(ds, kind)
        path = EXPORTERS[kind](ds, overwrite=overwrite)
        print(f"{kind}: {path}" + (" (already there; --overwrite rebuilds it)" if skipped else ""))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = parse_args(argv)
    kinds = [k.strip() for k in args.to.split(",") if k.strip()]
    try:
        run(args.dir, kinds, args.overwrite)
    except (DatasetError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # disk full, permissions: not bad input, but no traceback either
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
