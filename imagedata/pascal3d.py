"""PASCAL3D+ (Xiang et al., WACV 2014) as the viewpoint probe set of the invariance study.

See :mod:`imagedata.probeset` for the conventions shared by every benchmark reader.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from imagedata.probeset import LayoutError, ProbeSet, benchmark_root, need_path, read_lines

# layout constants (adjust here if a copy is laid out differently)
PASCAL3D_SETS = "Image_sets"
PASCAL3D_IMAGES = "Images"
PASCAL3D_ANNOTATIONS = "Annotations"
PASCAL3D_AZIMUTH_BINS = 6            # (azimuth_coarse % 180) // 30, as the original

PASCAL_LAYOUT = ("PASCAL3D+ layout: ROOT/Image_sets/<cls>_imagenet_{train,val}.txt, "
                 "ROOT/Images/<cls>_imagenet/<id>.JPEG, ROOT/Annotations/<cls>_imagenet/<id>.mat")


def _field(obj: Any, name: str) -> Any:
    return getattr(obj, name, None)


def _scalar(value: Any) -> float | None:
    arr = np.asarray(value, dtype=np.float64).ravel() if value is not None else np.zeros(0)
    return float(arr[0]) if arr.size else None


def _pascal_object(ann: Path, obj_index: int) -> tuple[np.ndarray, float] | None:
    """(x0, y0, x1, y1) box and azimuth_coarse of object ``obj_index`` of a PASCAL3D+ record;
    None when that object has no viewpoint annotation."""
    from scipy.io import loadmat
    from scipy.io.matlab import MatReadError

    try:
        record = loadmat(str(ann), squeeze_me=True, struct_as_record=False)["record"]
    except FileNotFoundError:
        raise LayoutError(f"{ann}: missing file ({PASCAL_LAYOUT})") from None
    except (MatReadError, ValueError, KeyError, TypeError, OSError) as e:
        raise LayoutError(f"{ann}: not a PASCAL3D+ annotation with a 'record' struct "
                          f"({type(e).__name__}: {' '.join(str(e).split())})") from None
    objects = _field(record, "objects")
    objects = np.atleast_1d(np.zeros(0) if objects is None else objects)
    if obj_index >= objects.size:
        raise LayoutError(f"{ann}: has {objects.size} objects, object {obj_index} asked for")
    obj = objects.ravel()[obj_index]
    bbox = _field(obj, "bbox")
    bbox = np.asarray([] if bbox is None else bbox, dtype=np.float64).ravel()
    if bbox.size != 4:
        raise LayoutError(f"{ann}: object {obj_index} has no 4-value bbox")
    azimuth = _scalar(_field(_field(obj, "viewpoint"), "azimuth_coarse"))
    return None if azimuth is None else (bbox, azimuth)


def load_pascal3d_viewpoint(root: Path | str) -> ProbeSet:
    """PASCAL3D+ (Xiang et al., WACV 2014) viewpoint-change sets, as the paper's "viewpoint +
    instance" study (``extract_pascal3d_features.py``, the ``pascal3dimnet_viewpointchange`` data).

    Classes are those with ``Image_sets/<cls>_imagenet_train.txt``. Rows, per class: the ImageNet
    images of ``<cls>_imagenet_train.txt`` then ``_val.txt`` (``Images/<cls>_imagenet/<id>.JPEG``,
    object 0 of ``Annotations/<cls>_imagenet/<id>.mat``), then, when ``Image_sets/<cls>_pascal.txt``
    exists (lines ``<id> <object index>``, the index 0-based as the original uses it), the PASCAL
    images ``Images/<cls>_pascal/<id>.jpg``. Each row's crop is the object's ``bbox``
    (x1, y1, x2, y2, used as is, as the original) and its azimuth bin is
    ``(azimuth_coarse % 180) // 30`` (6 bins). Sets follow the original's counters: within a
    class, the k-th image of every azimuth bin goes to the same set, so a set holds images of one
    class seen from different azimuths (at most one per bin); set ids run on across classes
    (sorted by name). Objects without a viewpoint annotation are skipped
    (``meta["no_viewpoint"]``; the original would stop there).

    label = class, factor = ``azimuth_coarse`` in degrees. ``meta``: ``considered`` / ``kept``
    images, ``classes``, ``set_names`` (``<cls>/<k>``), ``azimuth_bin`` per row.
    """
    base = benchmark_root(root, PASCAL_LAYOUT)
    sets_dir = need_path(base / PASCAL3D_SETS, PASCAL_LAYOUT, "folder")
    train_lists = sorted(sets_dir.glob("*_imagenet_train.txt"))
    if not train_lists:
        raise LayoutError(f"{sets_dir / '<cls>_imagenet_train.txt'}: no such files ({PASCAL_LAYOUT})")
    class_names = sorted({p.name.split("_")[0] for p in train_lists})
    images: list[Path] = []
    boxes, azimuth, labels, set_ids, bins, names = [], [], [], [], [], []
    considered = skipped = 0
    for label, cls in enumerate(class_names):
        rows: list[tuple[Path, Path, int]] = []         # (image, annotation, object index)
        for part in ("train", "val"):
            for line in read_lines(need_path(sets_dir / f"{cls}_imagenet_{part}.txt", PASCAL_LAYOUT)):
                if line.strip():
                    stem = line.strip()
                    rows.append((base / PASCAL3D_IMAGES / f"{cls}_imagenet" / f"{stem}.JPEG",
                                 base / PASCAL3D_ANNOTATIONS / f"{cls}_imagenet" / f"{stem}.mat", 0))
        pascal_list = sets_dir / f"{cls}_pascal.txt"
        if pascal_list.is_file():
            for n, line in enumerate(read_lines(pascal_list), 1):
                parts = line.split()
                if not parts:
                    continue
                if len(parts) != 2 or not parts[1].isdigit():
                    raise LayoutError(f"{pascal_list}:{n}: expected '<id> <object index>', got {line!r}")
                rows.append((base / PASCAL3D_IMAGES / f"{cls}_pascal" / f"{parts[0]}.jpg",
                             base / PASCAL3D_ANNOTATIONS / f"{cls}_pascal" / f"{parts[0]}.mat",
                             int(parts[1])))
        counters = np.zeros(PASCAL3D_AZIMUTH_BINS, dtype=np.int64)
        first = len(names)
        for image, ann, obj_index in rows:
            considered += 1
            got = _pascal_object(ann, obj_index)
            if got is None:
                skipped += 1
                continue
            need_path(image, PASCAL_LAYOUT)
            bbox, az = got
            b = int((az % 180) // 30)
            images.append(image)
            boxes.append(bbox)
            azimuth.append(az)
            labels.append(label)
            bins.append(b)
            set_ids.append(first + counters[b])
            counters[b] += 1
        names.extend(f"{cls}/{k}" for k in range(int(counters.max())))
    return ProbeSet(
        name="pascal3d-viewpoint", images=images,
        boxes=np.asarray(boxes, dtype=np.float64).reshape(-1, 4),
        set_ids=np.asarray(set_ids, dtype=np.int64), labels=np.asarray(labels, dtype=np.int64),
        factor=np.asarray(azimuth, dtype=np.float64),
        meta={"considered": considered, "kept": len(images), "no_viewpoint": skipped,
              "classes": class_names, "set_names": names,
              "azimuth_bin": np.asarray(bins, dtype=np.int64)})
