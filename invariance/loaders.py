"""Probe sets of the invariance study, read from the real benchmarks' own folder layouts.

Purushwalkam & Gupta, "Demystifying Contrastive Self-Supervised Learning: Invariances,
Augmentations and Dataset Biases" (NeurIPS 2020, sec. 3) measure how invariant each neuron is on
*sets* of images that show one object (or one class) while one factor changes: occlusion on GOT-10k,
viewpoint / illumination colour / illumination direction on ALOI, viewpoint on PASCAL3D+. This
module turns each benchmark into a :class:`ProbeSet`: one row per image with the image file, an
optional crop box, the set it belongs to, its class and the value of the varied factor. Which
images form a set follows the authors' feature-extraction scripts (github.com/senthilps8/demystifyssl,
``extract_features/{GOT,ALOI,pascal3d}/*.py``); each loader's docstring says how.

    ps = load_benchmark("aloi-viewpoint", "/data/aloi")
    x = ps.read(np.arange(8), 128)          # (8, 3, 128, 128) uint8

Conventions shared by every loader:

* ``set_ids`` are consecutive from 0 in the order the sets are built; ``labels`` index
  ``meta["classes"]`` (class names, sorted); ``meta["set_names"][s]`` names set ``s``;
  ``meta["considered"]`` / ``meta["kept"]`` count the candidate units (videos, objects, images).
* Sets are never dropped for being small (the score skips and counts sets of fewer than 3 images);
  only rules of the original protocol exclude anything (GOT-10k's cover-range rule).
* Images are read as the original does (``utils.ListDataset``): PIL, RGB, crop the box exactly
  (PIL rounds fractional coordinates; outside the image is black), then resize to ``size x size``
  with PIL's bilinear filter (antialiased when shrinking), as ``transforms.Resize((s, s))``.
* A folder in the wrong layout raises :class:`LayoutError`, one line that starts with the file or
  folder that was expected.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

# -- layout constants (adjust here if a copy is laid out differently) ---------------------------

GOT10K_SPLIT = "train"               # the study uses the GOT-10k training videos
GOT10K_MIN_COVER_RANGE = 4           # keep a video when max(cover) - min(cover) >= this
GOT10K_SEED = 1992                   # the original's np.random.seed for the per-level frame draw
GOT10K_MAX_COVER = 8

# Each ALOI tar (aloi_red4_{view,col,ill}.tar) unpacks to ``png4/<obj>/...``; the first folder is
# one tar unpacked into a folder named after it, the second all three unpacked into ROOT together
# (file names differ per collection, so they can share ``png4``). The original used the red2
# (half-resolution, ``png2``) tars; images are resized anyway, so either works once named here.
# ROOT may also be the object folders' parent itself (the original's ``data/ALOI_viewpoint``).
ALOI_DIRS: dict[str, tuple[str, ...]] = {
    "viewpoint": ("aloi_red4_view/png4", "png4"),
    "illum-color": ("aloi_red4_col/png4", "png4"),
    "illum-dir": ("aloi_red4_ill/png4", "png4"),
}

PASCAL3D_SETS = "Image_sets"
PASCAL3D_IMAGES = "Images"
PASCAL3D_ANNOTATIONS = "Annotations"
PASCAL3D_AZIMUTH_BINS = 6            # (azimuth_coarse % 180) // 30, as the original

GOT_LAYOUT = ("GOT-10k layout: ROOT/train/list.txt and ROOT/train/GOT-10k_Train_NNNNNN/ with "
              "00000001.jpg..., groundtruth.txt, cover.label, meta_info.ini")
ALOI_LAYOUT = ("ALOI layout: ROOT/aloi_red4_view/png4/<obj>/<obj>_r<angle>.png, "
               "ROOT/aloi_red4_col/png4/<obj>/<obj>_i<temp>.png, "
               "ROOT/aloi_red4_ill/png4/<obj>/<obj>_l<l>c<c>.png (or all in ROOT/png4)")
PASCAL_LAYOUT = ("PASCAL3D+ layout: ROOT/Image_sets/<cls>_imagenet_{train,val}.txt, "
                 "ROOT/Images/<cls>_imagenet/<id>.JPEG, ROOT/Annotations/<cls>_imagenet/<id>.mat")


class LayoutError(ValueError):
    """A benchmark folder is not in the expected layout; the message starts with the path expected."""


@dataclass
class ProbeSet:
    """Rows of one invariance benchmark: image (and crop box), set, class and factor value per row.

    ``boxes`` are ``x0, y0, x1, y1`` pixels (None: whole images). ``meta`` holds counts and names
    (see the module docstring) and, per loader, extra per-row arrays it documents.
    """

    name: str
    images: list[Path] | None
    boxes: np.ndarray | None
    set_ids: np.ndarray
    labels: np.ndarray
    factor: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.set_ids = np.asarray(self.set_ids, dtype=np.int64).reshape(-1)
        self.labels = np.asarray(self.labels, dtype=np.int64).reshape(-1)
        self.factor = np.asarray(self.factor, dtype=np.float64).reshape(-1)
        n = len(self.set_ids)
        if len(self.labels) != n or len(self.factor) != n:
            raise ValueError(f"ProbeSet {self.name}: {n} set ids, {len(self.labels)} labels and "
                             f"{len(self.factor)} factor values (must be equal)")
        if self.images is not None:
            self.images = [Path(p) for p in self.images]
            if len(self.images) != n:
                raise ValueError(f"ProbeSet {self.name}: {len(self.images)} images for {n} rows")
        if self.boxes is not None:
            self.boxes = np.asarray(self.boxes, dtype=np.float64)
            if self.boxes.shape != (n, 4):
                raise ValueError(f"ProbeSet {self.name}: boxes must be ({n}, 4), got {self.boxes.shape}")

    def __len__(self) -> int:
        return len(self.set_ids)

    def read(self, idx: np.ndarray | Sequence[int], size: int) -> torch.Tensor:
        """Rows ``idx`` as a (B, 3, size, size) uint8 tensor: RGB, box crop, bilinear resize.

        A box under one pixel wide or high (e.g. a GOT-10k frame where the object is absent) is
        widened to one pixel so that it still yields an image.
        """
        if self.images is None:
            raise ValueError(f"ProbeSet {self.name}: no image files to read")
        if size < 1:
            raise ValueError(f"ProbeSet {self.name}: size must be >= 1, got {size}")
        rows = np.asarray(idx, dtype=np.int64).reshape(-1)
        out = np.empty((len(rows), size, size, 3), dtype=np.uint8)
        for k, i in enumerate(rows):
            with Image.open(self.images[i]) as im:
                img = im.convert("RGB")
            if self.boxes is not None:
                x0, y0, x1, y1 = (round(float(v)) for v in self.boxes[i])
                img = img.crop((x0, y0, max(x1, x0 + 1), max(y1, y0 + 1)))
            out[k] = np.asarray(img.resize((size, size), Image.BILINEAR))
        return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


# -- helpers -----------------------------------------------------------------------------------

def _need(path: Path, layout: str, kind: str = "file") -> Path:
    ok = path.is_dir() if kind == "folder" else path.is_file()
    if not ok:
        raise LayoutError(f"{path}: missing {kind} ({layout})")
    return path


def _lines(path: Path) -> list[str]:
    lines = path.read_text().splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def _root(root: Path | str, layout: str) -> Path:
    return _need(Path(root).expanduser(), layout, "folder")


def _index(names: Sequence[str]) -> tuple[list[str], dict[str, int]]:
    classes = sorted(set(names))
    return classes, {c: i for i, c in enumerate(classes)}


# -- GOT-10k: occlusion ------------------------------------------------------------------------

def _got_boxes(path: Path) -> np.ndarray:
    rows = []
    for n, line in enumerate(_lines(path), 1):
        parts = line.replace(" ", "").split(",")
        try:
            vals = [float(p) for p in parts]
        except ValueError:
            vals = []
        if len(vals) != 4:
            raise LayoutError(f"{path}:{n}: expected 'x,y,w,h', got {line!r} ({GOT_LAYOUT})")
        rows.append(vals)
    if not rows:
        raise LayoutError(f"{path}: empty (one 'x,y,w,h' box per frame; {GOT_LAYOUT})")
    return np.asarray(rows, dtype=np.float64)


def _got_cover(path: Path, frames: int) -> np.ndarray:
    lines = _lines(_need(path, GOT_LAYOUT))
    if len(lines) != frames:
        raise LayoutError(f"{path}: {len(lines)} lines for {frames} frames in groundtruth.txt "
                          "(one cover level per frame)")
    out = np.empty(frames, dtype=np.int64)
    for n, line in enumerate(lines):
        try:
            out[n] = int(line.strip())
        except ValueError:
            raise LayoutError(f"{path}:{n + 1}: not an integer cover level: {line!r}") from None
        if not 0 <= out[n] <= GOT10K_MAX_COVER:
            raise LayoutError(f"{path}:{n + 1}: cover level {out[n]} outside 0..{GOT10K_MAX_COVER}")
    return out


def _got_class(path: Path) -> str:
    for line in _lines(_need(path, GOT_LAYOUT)):
        key, sep, value = line.partition(":")
        if sep and key.strip() == "object_class" and value.strip():
            return value.strip().replace(" ", "_")
    raise LayoutError(f"{path}: no 'object_class: ...' line ({GOT_LAYOUT})")


def load_got10k_occlusion(root: Path | str) -> ProbeSet:
    """GOT-10k (Huang et al., TPAMI 2019) occlusion sets, as in the paper's occlusion study.

    Reads the ``train`` split (``ROOT/train/list.txt``; ROOT may also be the split folder itself,
    the original's ``data/GOT``). Each video listed is one candidate set; following
    ``extract_GOT10k_features.py``: the frames are those of ``groundtruth.txt`` (frame i is
    ``{i:08d}.jpg``), a video is kept when its ``cover.label`` levels span at least
    ``GOT10K_MIN_COVER_RANGE`` (max - min >= 4), and from a kept video one frame per distinct cover
    level is taken, drawn at random as the original does: a ``RandomState(1992)`` stream, one
    ``choice`` per level, levels ascending, over the kept videos in ``list.txt`` order (so the same
    frames as the original for the same list). The image is the ground-truth box cropped exactly
    (``x, y, w, h`` -> ``x, y, x + w, y + h``; no enlargement, as ``utils.ListDataset``).

    set = kept video, label = its ``object_class`` from ``meta_info.ini`` (spaces -> ``_``), factor
    = cover level (0 = fully occluded ... 8 = fully visible). ``meta``: ``considered`` / ``kept``
    videos, ``classes``, ``set_names`` (video folder names), ``frame`` (0-based frame per row).
    """
    base = _root(root, GOT_LAYOUT)
    split = base if (base / "list.txt").is_file() else base / GOT10K_SPLIT
    vids = [v.strip() for v in _lines(_need(split / "list.txt", GOT_LAYOUT)) if v.strip()]
    if not vids:
        raise LayoutError(f"{split / 'list.txt'}: lists no videos ({GOT_LAYOUT})")
    rng = np.random.RandomState(GOT10K_SEED)
    images: list[Path] = []
    boxes, frames, factor, set_ids, names, classes = [], [], [], [], [], []
    for vid in vids:
        vdir = _need(split / vid, GOT_LAYOUT, "folder")
        xywh = _got_boxes(_need(vdir / "groundtruth.txt", GOT_LAYOUT))
        cover = _got_cover(vdir / "cover.label", len(xywh))
        levels = np.unique(cover)
        if levels.max() - levels.min() < GOT10K_MIN_COVER_RANGE:
            continue
        chosen = np.array([rng.choice(np.flatnonzero(cover == c)) for c in levels], dtype=np.int64)
        cls = _got_class(vdir / "meta_info.ini")
        for f in chosen:
            images.append(_need(vdir / f"{f + 1:08d}.jpg", GOT_LAYOUT))
        x, y, w, h = xywh[chosen].T
        boxes.append(np.stack([x, y, x + w, y + h], axis=1))
        frames.append(chosen)
        factor.append(levels.astype(np.float64))
        set_ids.append(np.full(len(chosen), len(names), dtype=np.int64))
        classes.extend([cls] * len(chosen))
        names.append(vid)
    class_names, index = _index(classes)
    return ProbeSet(
        name="got10k-occlusion", images=images,
        boxes=np.concatenate(boxes) if boxes else np.zeros((0, 4)),
        set_ids=np.concatenate(set_ids) if set_ids else np.zeros(0, np.int64),
        labels=np.array([index[c] for c in classes], dtype=np.int64),
        factor=np.concatenate(factor) if factor else np.zeros(0),
        meta={"considered": len(vids), "kept": len(names), "classes": class_names, "set_names": names,
              "frame": np.concatenate(frames) if frames else np.zeros(0, np.int64)})


# -- ALOI: viewpoint, illumination colour, illumination direction ------------------------------

# file-name pattern per collection: (regex on "<obj>_<rest>.png", how to write it in an error)
_ALOI_FILES: dict[str, tuple[str, str]] = {
    "viewpoint": (r"_r(\d+)\.png", "_r<angle>.png"),
    "illum-color": (r"_i(\d+)\.png", "_i<temp>.png"),
    "illum-dir": (r"_l(\d+)c(\d+)\.png", "_l<l>c<c>.png"),
}


def _aloi_dir(root: Path, kind: str) -> Path:
    for sub in ALOI_DIRS[kind]:
        if (root / sub).is_dir():
            return root / sub
    if any(p.is_dir() and p.name.isdigit() for p in root.iterdir()):
        return root
    raise LayoutError(f"{root / ALOI_DIRS[kind][0]}: missing folder ({ALOI_LAYOUT})")


def _load_aloi(root: Path | str, kind: str) -> ProbeSet:
    folder = _aloi_dir(_root(root, ALOI_LAYOUT), kind)
    objects = sorted((p for p in folder.iterdir() if p.is_dir() and p.name.isdigit()),
                     key=lambda p: int(p.name))
    if not objects:
        raise LayoutError(f"{folder}/<obj>: no numbered object folders ({ALOI_LAYOUT})")
    suffix, shown = _ALOI_FILES[kind]
    images: list[Path] = []
    set_ids, factor, camera = [], [], []
    for s, obj in enumerate(objects):
        pattern = re.compile(re.escape(obj.name) + suffix + "$")
        found = []
        for p in obj.iterdir():
            m = pattern.match(p.name)
            if m:
                found.append((tuple(int(g) for g in m.groups()), p))
        if not found:
            raise LayoutError(f"{obj / (obj.name + shown)}: no such files ({ALOI_LAYOUT})")
        found.sort()
        for values, p in found:
            images.append(p)
            set_ids.append(s)
            factor.append(values[0])
            if kind == "illum-dir":
                camera.append(values[1])
    names = [p.name for p in objects]
    meta: dict[str, Any] = {"considered": len(objects), "kept": len(objects), "classes": names,
                            "set_names": names}
    if kind == "illum-dir":
        meta["camera"] = np.asarray(camera, dtype=np.int64)
    set_arr = np.asarray(set_ids, dtype=np.int64)
    return ProbeSet(name=f"aloi-{kind}", images=images, boxes=None, set_ids=set_arr,
                    labels=set_arr.copy(), factor=np.asarray(factor, dtype=np.float64), meta=meta)


def load_aloi_viewpoint(root: Path | str) -> ProbeSet:
    """ALOI (Geusebroek et al., IJCV 2005) viewpoint sets: ``<obj>/<obj>_r<angle>.png``.

    As ``extract_generic_ALOI_features.py``: every image of an object folder, one set per object,
    class = the object (ALOI has no categories; the original stores the object id as the class).
    factor = rotation angle in degrees (0..355 step 5). Whole images, no crop. ``meta["classes"]``
    and ``meta["set_names"]`` are the object ids (folder names), in numeric order. Folders:
    ``ALOI_DIRS["viewpoint"]``.
    """
    return _load_aloi(root, "viewpoint")


def load_aloi_illum_color(root: Path | str) -> ProbeSet:
    """ALOI illumination-colour sets: ``<obj>/<obj>_i<temp>.png``, factor = the ``i`` code
    (110..250, the lamp voltage setting that sets the colour temperature). Sets, classes and
    folders as :func:`load_aloi_viewpoint` (``ALOI_DIRS["illum-color"]``)."""
    return _load_aloi(root, "illum-color")


def load_aloi_illum_dir(root: Path | str) -> ProbeSet:
    """ALOI illumination-direction sets: ``<obj>/<obj>_l<l>c<c>.png``, factor = the light
    configuration ``l`` (1..8). As in the original, every file of the object is used, so a set also
    spans the three cameras ``c`` (1..3), kept per row in ``meta["camera"]``. Sets, classes and
    folders as :func:`load_aloi_viewpoint` (``ALOI_DIRS["illum-dir"]``)."""
    return _load_aloi(root, "illum-dir")


# -- PASCAL3D+: viewpoint ----------------------------------------------------------------------

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
    base = _root(root, PASCAL_LAYOUT)
    sets_dir = _need(base / PASCAL3D_SETS, PASCAL_LAYOUT, "folder")
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
            for line in _lines(_need(sets_dir / f"{cls}_imagenet_{part}.txt", PASCAL_LAYOUT)):
                if line.strip():
                    stem = line.strip()
                    rows.append((base / PASCAL3D_IMAGES / f"{cls}_imagenet" / f"{stem}.JPEG",
                                 base / PASCAL3D_ANNOTATIONS / f"{cls}_imagenet" / f"{stem}.mat", 0))
        pascal_list = sets_dir / f"{cls}_pascal.txt"
        if pascal_list.is_file():
            for n, line in enumerate(_lines(pascal_list), 1):
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
            _need(image, PASCAL_LAYOUT)
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


LOADERS: dict[str, Callable[[Path], ProbeSet]] = {
    "got10k-occlusion": load_got10k_occlusion,
    "aloi-viewpoint": load_aloi_viewpoint,
    "aloi-illum-color": load_aloi_illum_color,
    "aloi-illum-dir": load_aloi_illum_dir,
    "pascal3d-viewpoint": load_pascal3d_viewpoint,
}


def load_benchmark(name: str, root: Path | str) -> ProbeSet:
    """The :class:`ProbeSet` of benchmark ``name`` (a key of :data:`LOADERS`) stored under ``root``."""
    if name not in LOADERS:
        raise ValueError(f"unknown invariance benchmark {name!r}; valid: {', '.join(sorted(LOADERS))}")
    return LOADERS[name](Path(root))
