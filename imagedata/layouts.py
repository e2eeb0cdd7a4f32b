"""The papers' datasets in their real folder layouts: what a full plan checks before it starts, and
tiny fixtures written in the same layouts (``--smoke`` plans and tests).

    python -m imagedata.layouts write --root fixtures imagenet coco voc     # tiny copies, seconds
    python -m imagedata.layouts check --root data imagenet coco             # one line per problem

``LAYOUTS`` maps a name to a :class:`DatasetLayout`: the folder under the datasets root, the paths
that must exist (relative to that root), a one-line description of the layout as its maintainers
distribute it, and a writer of a tiny copy (a few images of 2-3 classes, drawn shapes on a coloured
background, so that every reader, Detectron2 and mmseg included, parses them as the real thing).

The datasets root of a full plan (``data/`` by default) is also Detectron2's
``$DETECTRON2_DATASETS`` and mmseg's ``data/``: ``VOC2007`` / ``VOC2012`` (Detectron2's) sit beside
``VOCdevkit/VOC2012`` (mmseg's); links between them are fine, and the fixture writes links.
"""
from __future__ import annotations

import argparse
import json
import pickle
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SIZE = (80, 64)               # width, height of every fixture image (not square: readers crop)
COLOURS = [(220, 40, 40), (40, 200, 60), (50, 70, 220), (230, 200, 30)]


@dataclass(frozen=True)
class DatasetLayout:
    """One dataset as distributed: ``folder`` under the datasets root, the ``required`` paths
    (relative to the datasets root) a reader opens, ``expected`` (one line: the layout), and
    ``write(root)``, which writes a tiny copy under the datasets root ``root``."""

    folder: str
    required: tuple[str, ...]
    expected: str
    write: Callable[[Path], None]


# ----------------------------------------------------------------------------------- drawing

def _image(path: Path, k: int, box: tuple[int, int, int, int] | None = None, seed: int = 0) -> None:
    """A ``SIZE`` image: class ``k``'s colour as an ellipse in ``box`` (x0, y0, x1, y1) on a noisy
    grey background, JPEG or PNG by suffix."""
    rng = np.random.default_rng([k, seed])
    arr = rng.integers(90, 140, size=(SIZE[1], SIZE[0], 3), dtype=np.uint8)
    img = Image.fromarray(arr)
    box = box or _box(k, seed)
    ImageDraw.Draw(img).ellipse(box, fill=COLOURS[k % len(COLOURS)])
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, quality=95) if path.suffix.lower() in (".jpg", ".jpeg") else img.save(path)


def _box(k: int, seed: int) -> tuple[int, int, int, int]:
    """A box inside ``SIZE`` that moves with ``seed`` (x0, y0, x1, y1)."""
    x0, y0 = 6 + (seed * 7 + k * 5) % 30, 6 + (seed * 5 + k * 3) % 22
    return x0, y0, x0 + 34, y0 + 30


def _mask(path: Path, k: int, seed: int, value: int) -> None:
    """A palette PNG label mask: 0 outside the object of :func:`_image`, ``value`` inside, 255 on its rim."""
    m = Image.new("L", SIZE, 0)
    box = _box(k, seed)
    draw = ImageDraw.Draw(m)
    draw.ellipse(box, fill=255)
    draw.ellipse((box[0] + 1, box[1] + 1, box[2] - 1, box[3] - 1), fill=value)
    m = m.convert("P")
    path.parent.mkdir(parents=True, exist_ok=True)
    m.save(path)


# ---------------------------------------------------------------------------------- writers

WNIDS = ("n01440764", "n01443537", "n01484850")


def write_imagenet(root: Path, folder: str = "imagenet", train: int = 8, val: int = 4) -> None:
    """ImageNet (ILSVRC-2012) as torchvision's ImageFolder: ``train/<wnid>/<wnid>_<k>.JPEG`` and the
    validation images sorted into ``val/<wnid>/ILSVRC2012_val_<8 digits>.JPEG``."""
    n = 0
    for k, wnid in enumerate(WNIDS):
        for i in range(train):
            _image(root / folder / "train" / wnid / f"{wnid}_{i + 1}.JPEG", k, seed=i)
        for i in range(val):
            n += 1
            _image(root / folder / "val" / wnid / f"ILSVRC2012_val_{n:08d}.JPEG", k, seed=100 + i)


def write_imagenet100(root: Path) -> None:
    """ImageNet-100 (CMC's 100-class subset): ImageNet's layout under ``imagenet-100/``."""
    write_imagenet(root, "imagenet-100")


# COCO 2017's 80 thing categories, (id, name): Detectron2's builtin COCO metadata asserts them all.
COCO_CATEGORIES = tuple(enumerate(
    ("person bicycle car motorcycle airplane bus train truck boat traffic_light fire_hydrant _ stop_sign "
     "parking_meter bench bird cat dog horse sheep cow elephant bear zebra giraffe _ backpack umbrella _ _ "
     "handbag tie suitcase frisbee skis snowboard sports_ball kite baseball_bat baseball_glove skateboard "
     "surfboard tennis_racket bottle _ wine_glass cup fork knife spoon bowl banana apple sandwich orange "
     "broccoli carrot hot_dog pizza donut cake chair couch potted_plant bed _ dining_table _ _ toilet _ tv "
     "laptop mouse remote keyboard cell_phone microwave oven toaster sink refrigerator _ book clock vase "
     "scissors teddy_bear hair_drier toothbrush").split(), start=1))
COCO_THINGS = tuple((i, n.replace("_", " ")) for i, n in COCO_CATEGORIES if n != "_")


def write_coco(root: Path, train: int = 12, val: int = 6) -> None:
    """COCO 2017: ``annotations/instances_{train,val}2017.json`` and ``{train,val}2017/<12-digit id>.jpg``,
    one object per image (box, polygon, area) of the first three categories, all 80 categories listed."""
    base = root / "coco"
    cats = [{"id": i, "name": n, "supercategory": "thing"} for i, n in COCO_THINGS]
    ann_id = 0
    for split, n, offset in (("train2017", train, 0), ("val2017", val, 1000)):
        images, anns = [], []
        for i in range(n):
            k, image_id = i % 3, offset + i + 1
            name = f"{image_id:012d}.jpg"
            _image(base / split / name, k, seed=image_id)
            x0, y0, x1, y1 = _box(k, image_id)
            ann_id += 1
            images.append({"id": image_id, "file_name": name, "width": SIZE[0], "height": SIZE[1]})
            anns.append({"id": ann_id, "image_id": image_id, "category_id": COCO_THINGS[k][0], "iscrowd": 0,
                         "bbox": [x0, y0, x1 - x0, y1 - y0], "area": float((x1 - x0) * (y1 - y0)),
                         "segmentation": [[x0, y0, x1, y0, x1, y1, x0, y1]]})
        out = base / "annotations" / f"instances_{split}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))


def _voc_xml(name: str, k: int, seed: int) -> str:
    from imagedata.voc import VOC_CLASSES            # imports torch: only when VOC is written

    x0, y0, x1, y1 = _box(k, seed)
    return (f"<annotation><filename>{name}.jpg</filename><size><width>{SIZE[0]}</width><height>{SIZE[1]}"
            f"</height><depth>3</depth></size><object><name>{VOC_CLASSES[k]}</name><pose>Unspecified</pose>"
            f"<truncated>0</truncated><difficult>0</difficult><bndbox><xmin>{x0 + 1}</xmin><ymin>{y0 + 1}</ymin>"
            f"<xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object></annotation>")


def write_voc(root: Path, per_split: int = 6) -> None:
    """PASCAL VOC 2007 and 2012 as distributed (``VOCdevkit/VOC20xx/{JPEGImages,Annotations,
    SegmentationClass,ImageSets/{Main,Segmentation}}``), 2012 with the SBD-augmented masks mmseg's
    ``voc12aug`` reads (``SegmentationClassAug``, ``ImageSets/Segmentation/aug.txt``), and
    ``VOC2007`` / ``VOC2012`` links at the root where Detectron2 looks."""
    for year, splits in (("2007", ("trainval", "test")), ("2012", ("trainval",))):
        base = root / "VOCdevkit" / f"VOC{year}"
        ids_of: dict[str, list[str]] = {}
        for s, split in enumerate(splits):
            ids = [f"{year}_{s * 100 + i:06d}" for i in range(per_split)]
            ids_of[split] = ids
            for i, name in enumerate(ids):
                k, seed = i % 3, s * 100 + i
                _image(base / "JPEGImages" / f"{name}.jpg", k, seed=seed)
                (base / "Annotations").mkdir(parents=True, exist_ok=True)
                (base / "Annotations" / f"{name}.xml").write_text(_voc_xml(name, k, seed))
                for masks in ("SegmentationClass", *(("SegmentationClassAug",) if year == "2012" else ())):
                    _mask(base / masks / f"{name}.png", k, seed, k + 1)
        trainval = ids_of["trainval"]
        lists = {"Main": {"trainval": trainval, "train": trainval[::2], "val": trainval[1::2],
                          **({"test": ids_of["test"]} if "test" in ids_of else {})},
                 "Segmentation": {"trainval": trainval, "train": trainval[::2], "val": trainval[1::2],
                                  **({"aug": trainval[::2]} if year == "2012" else {})}}
        for kind, files in lists.items():
            for split, ids in files.items():
                path = base / "ImageSets" / kind / f"{split}.txt"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text("".join(f"{i}\n" for i in ids))
        link = root / f"VOC{year}"
        if not link.exists():
            link.symlink_to(Path("VOCdevkit") / f"VOC{year}", target_is_directory=True)


def _frames(folder: Path, k: int, frames: int, video: int) -> list[tuple[int, int, int, int]]:
    """``frames`` JPEG frames of an object moving right; its boxes (x, y, w, h) per frame."""
    boxes = []
    for f in range(frames):
        x0, y0 = 4 + 3 * f, 8 + video % 10
        box = (x0, y0, x0 + 30, y0 + 26)
        _image(folder / f"{f}.jpg", k, box, seed=video * 100 + f)
        boxes.append((x0, y0, 30, 26))
    return boxes


def write_trackingnet(root: Path, videos: int = 4, frames: int = 6) -> None:
    """TrackingNet: ``TRAIN_0/frames/<video>/<i>.jpg`` (from 0) and ``TRAIN_0/anno/<video>.txt``
    (one ``x,y,w,h`` line per frame)."""
    chunk = root / "trackingnet" / "TRAIN_0"
    for v in range(videos):
        name = f"video_{v:04d}"
        boxes = _frames(chunk / "frames" / name, v % 3, frames, v)
        (chunk / "anno").mkdir(parents=True, exist_ok=True)
        (chunk / "anno" / f"{name}.txt").write_text("".join(f"{x},{y},{w},{h}\n" for x, y, w, h in boxes))


def write_got10k(root: Path, videos: int = 3, frames: int = 8) -> None:
    """GOT-10k: ``train/list.txt`` and ``train/GOT-10k_Train_<6 digits>/{00000001.jpg, ...,
    groundtruth.txt, cover.label, absence.label, cut_by_image.label, meta_info.ini}``."""
    base = root / "got10k" / "train"
    names = [f"GOT-10k_Train_{v + 1:06d}" for v in range(videos)]
    for v, name in enumerate(names):
        folder = base / name
        boxes = _frames(folder, v % 3, frames, v)
        for f in range(frames):                       # GOT-10k numbers frames from 1, 8 digits
            (folder / f"{f}.jpg").rename(folder / f"{f + 1:08d}.jpg")
        cover = [(2 + f) % 9 for f in range(frames)]
        (folder / "groundtruth.txt").write_text("".join(f"{x},{y},{w},{h}\n" for x, y, w, h in boxes))
        (folder / "cover.label").write_text("".join(f"{c}\n" for c in cover))
        (folder / "absence.label").write_text("".join("1\n" if c == 0 else "0\n" for c in cover))
        (folder / "cut_by_image.label").write_text("0\n" * frames)
        (folder / "meta_info.ini").write_text(f"[METAINFO]\nobject_class: class{v % 3}\nmotion_class: moving\n"
                                              "major_class: object\nroot_class: object\n")
    (base / "list.txt").write_text("".join(f"{n}\n" for n in names))


def write_aloi(root: Path, objects: int = 3) -> None:
    """ALOI's reduced-resolution collections: ``aloi_red4_view/png4/<obj>/<obj>_r<angle>.png``,
    ``aloi_red4_col/png4/<obj>/<obj>_i<temp>.png``, ``aloi_red4_ill/png4/<obj>/<obj>_l<l>c<c>.png``."""
    collections = {"aloi_red4_view": [f"_r{a}" for a in (0, 5, 10, 15)],
                   "aloi_red4_col": [f"_i{t}" for t in (110, 120, 130)],
                   "aloi_red4_ill": [f"_l{l}c{c}" for l in (1, 2) for c in (1, 2)]}
    for tar, suffixes in collections.items():
        for obj in range(1, objects + 1):
            for i, s in enumerate(suffixes):
                _image(root / "aloi" / tar / "png4" / str(obj) / f"{obj}{s}.png", obj - 1, seed=i)


def write_pascal3d(root: Path, per_class: int = 6) -> None:
    """PASCAL3D+ release 1.1: ``Images/<cls>_imagenet/<id>.JPEG``, ``Annotations/<cls>_imagenet/<id>.mat``
    (a ``record`` struct with ``objects``: class, bbox, viewpoint) and
    ``Image_sets/<cls>_imagenet_{train,val}.txt``."""
    from scipy.io import savemat

    dtype = [("class", object), ("bbox", object), ("viewpoint", object), ("truncated", object)]
    base = root / "pascal3d"
    for k, cls in enumerate(("car", "chair")):
        stems = {"train": [], "val": []}
        for i in range(per_class):
            stem = f"n0{k}_{i:04d}"
            stems["train" if i % 3 else "val"].append(stem)
            x0, y0, x1, y1 = _box(k, i)
            _image(base / "Images" / f"{cls}_imagenet" / f"{stem}.JPEG", k, seed=i)
            objs = np.zeros((1, 1), dtype=dtype)
            objs[0, 0]["class"], objs[0, 0]["truncated"] = cls, 0
            objs[0, 0]["bbox"] = np.array([x0, y0, x1, y1], dtype=np.float64)
            objs[0, 0]["viewpoint"] = {"azimuth_coarse": float(30 * i), "elevation_coarse": 10.0,
                                       "azimuth": float(30 * i), "elevation": 10.0, "distance": 5.0}
            ann = base / "Annotations" / f"{cls}_imagenet" / f"{stem}.mat"
            ann.parent.mkdir(parents=True, exist_ok=True)
            savemat(ann, {"record": {"filename": f"{stem}.JPEG", "imgsize": np.array([SIZE[0], SIZE[1], 3]),
                                     "objects": objs}})
        (base / "Image_sets").mkdir(parents=True, exist_ok=True)
        for subset, ids in stems.items():
            (base / "Image_sets" / f"{cls}_imagenet_{subset}.txt").write_text("".join(f"{s}\n" for s in ids))


def write_caltech101(root: Path, per_class: int = 6) -> None:
    """Caltech-101: ``caltech101/101_ObjectCategories/<class>/image_<4 digits>.jpg``."""
    for k, cls in enumerate(("accordion", "airplanes", "anchor")):
        for i in range(per_class):
            _image(root / "caltech101" / "101_ObjectCategories" / cls / f"image_{i + 1:04d}.jpg", k, seed=i)


def write_flowers102(root: Path, per_class: int = 6) -> None:
    """Oxford Flowers-102: ``flowers102/jpg/image_<5 digits>.jpg``, ``imagelabels.mat`` (``labels``,
    1-based) and ``setid.mat`` (``trnid`` / ``valid`` / ``tstid``, 1-based image numbers)."""
    from scipy.io import savemat

    base = root / "flowers102"
    labels, n = [], 0
    for k in range(3):
        for i in range(per_class):
            n += 1
            _image(base / "jpg" / f"image_{n:05d}.jpg", k, seed=i)
            labels.append(k + 1)
    ids = np.arange(1, n + 1)
    savemat(base / "imagelabels.mat", {"labels": np.array([labels])})
    savemat(base / "setid.mat", {"trnid": np.array([ids[0::3]]), "valid": np.array([ids[1::3]]),
                                 "tstid": np.array([ids[2::3]])})


def write_cifar10(root: Path, per_batch: int = 10) -> None:
    """CIFAR-10, python version: ``cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}``
    (pickled dicts of uint8 rows R, G, B planes and ``labels``)."""
    base = root / "cifar-10-batches-py"
    base.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for b, name in enumerate(names):
        labels = [(b + i) % 10 for i in range(per_batch)]
        rows = rng.integers(0, 255, size=(per_batch, 3 * 32 * 32), dtype=np.uint8)
        with open(base / name, "wb") as f:
            pickle.dump({b"data": rows, b"labels": labels, b"batch_label": name.encode()}, f, protocol=2)
    with open(base / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [f"class{i}".encode() for i in range(10)]}, f, protocol=2)


LAYOUTS: dict[str, DatasetLayout] = {
    "imagenet": DatasetLayout("imagenet", ("imagenet/train", "imagenet/val"),
                              "ImageNet as ImageFolder: imagenet/train/<wnid>/*.JPEG and imagenet/val/<wnid>/*.JPEG",
                              write_imagenet),
    "imagenet-100": DatasetLayout("imagenet-100", ("imagenet-100/train", "imagenet-100/val"),
                                  "ImageNet-100 as ImageFolder: imagenet-100/{train,val}/<wnid>/*.JPEG",
                                  write_imagenet100),
    "coco": DatasetLayout("coco", ("coco/annotations/instances_train2017.json",
                                   "coco/annotations/instances_val2017.json", "coco/train2017", "coco/val2017"),
                          "COCO 2017: coco/annotations/instances_{train,val}2017.json and coco/{train,val}2017/*.jpg",
                          write_coco),
    "voc": DatasetLayout("VOCdevkit", ("VOC2007/ImageSets/Main/trainval.txt", "VOC2007/ImageSets/Main/test.txt",
                                       "VOC2012/ImageSets/Main/trainval.txt",
                                       "VOCdevkit/VOC2012/ImageSets/Segmentation/aug.txt",
                                       "VOCdevkit/VOC2012/SegmentationClassAug"),
                         "PASCAL VOC: VOCdevkit/VOC2007 and VOC2012 (JPEGImages, Annotations, ImageSets, "
                         "SegmentationClass[Aug]) with VOC2007 / VOC2012 beside VOCdevkit (links are fine)",
                         write_voc),
    "trackingnet": DatasetLayout("trackingnet", ("trackingnet/TRAIN_0/frames", "trackingnet/TRAIN_0/anno"),
                                 "TrackingNet: trackingnet/TRAIN_<k>/frames/<video>/<i>.jpg and "
                                 "trackingnet/TRAIN_<k>/anno/<video>.txt", write_trackingnet),
    "got10k": DatasetLayout("got10k", ("got10k/train/list.txt",),
                            "GOT-10k: got10k/train/list.txt and got10k/train/<video>/{*.jpg, groundtruth.txt, "
                            "cover.label, absence.label}", write_got10k),
    "aloi": DatasetLayout("aloi", ("aloi/aloi_red4_view/png4", "aloi/aloi_red4_col/png4", "aloi/aloi_red4_ill/png4"),
                          "ALOI: aloi/aloi_red4_{view,col,ill}/png4/<obj>/<obj>_<factor>.png", write_aloi),
    "pascal3d": DatasetLayout("pascal3d", ("pascal3d/Image_sets", "pascal3d/Images", "pascal3d/Annotations"),
                              "PASCAL3D+ 1.1: pascal3d/{Images,Annotations}/<cls>_imagenet/ and "
                              "pascal3d/Image_sets/<cls>_imagenet_{train,val}.txt", write_pascal3d),
    "caltech101": DatasetLayout("caltech101", ("caltech101/101_ObjectCategories",),
                                "Caltech-101: caltech101/101_ObjectCategories/<class>/image_*.jpg", write_caltech101),
    "flowers102": DatasetLayout("flowers102", ("flowers102/jpg", "flowers102/imagelabels.mat", "flowers102/setid.mat"),
                                "Flowers-102: flowers102/jpg/image_*.jpg, flowers102/imagelabels.mat, "
                                "flowers102/setid.mat", write_flowers102),
    "cifar10": DatasetLayout("cifar-10-batches-py", ("cifar-10-batches-py/data_batch_1",
                                                     "cifar-10-batches-py/test_batch"),
                             "CIFAR-10 (python): cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}",
                             write_cifar10),
}


class DatasetLayoutError(ValueError):
    """A dataset folder is not in the layout a plan reads."""


def _check_name(name: str) -> DatasetLayout:
    if name not in LAYOUTS:
        raise ValueError(f"unknown dataset layout {name!r}; valid: {', '.join(LAYOUTS)}")
    return LAYOUTS[name]


def check_layout(name: str, root: Path | str) -> None:
    """Raise :class:`DatasetLayoutError` (one line: the first missing path and the layout expected)
    unless dataset ``name`` is in its layout under the datasets root ``root``."""
    layout = _check_name(name)
    for rel in layout.required:
        path = Path(root) / rel
        if not path.exists():
            raise DatasetLayoutError(f"{path}: missing; expected {layout.expected}")


def write_layouts(root: Path | str, names: Sequence[str] = tuple(LAYOUTS)) -> Path:
    """Write tiny fixtures of ``names`` under ``root`` (skipping any already complete); ``root``."""
    root = Path(root)
    for name in names:
        layout = _check_name(name)
        try:
            check_layout(name, root)
        except DatasetLayoutError:
            layout.write(root)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m imagedata.layouts", description=__doc__.split("\n\n")[0])
    ap.add_argument("action", choices=("write", "check"), help="write tiny fixtures, or check real data")
    ap.add_argument("names", nargs="*", help=f"layouts (default: all): {', '.join(LAYOUTS)}")
    ap.add_argument("--root", required=True, help="the datasets root (a full plan's data/)")
    args = ap.parse_intermixed_args(argv)
    try:
        names = args.names or list(LAYOUTS)
        if args.action == "write":
            write_layouts(args.root, names)
            print(f"wrote {', '.join(names)} under {args.root}")
        else:
            for name in names:
                check_layout(name, args.root)
            print(f"{', '.join(names)}: in layout under {args.root}")
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
