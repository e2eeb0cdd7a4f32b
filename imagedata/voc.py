"""PASCAL VOC 2012 segmentation (images and label masks) as an image source."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from imagedata.decode import DecodedFiles, MaskDecoder
from imagedata.source import FileSource, as_index_array, read_class_list, require_image_size

VOC_CLASSES = [
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
    "tvmonitor",
]


class VocSource(FileSource):
    """PASCAL VOC 2012 segmentation: ``JPEGImages/<id>.jpg`` + ``SegmentationClass/<id>.png``
    for the ids of ``ImageSets/Segmentation/<split>.txt``.

    Masks use the synthetic datasets' convention: 0 background, ``c + 1`` class ``c`` of
    ``classes`` (given, or read from ``root/classes.txt`` without its leading "background" as our
    exports write it, else VOC's 20 object classes), 255 void. ``targets`` is the class of the
    largest object box of ``Annotations/<id>.xml`` where that file exists, else -1.
    """

    def __init__(self, root: Path | str, image_size: int, split: str = "train", cache: bool = True,
                 classes: Sequence[str] | None = None) -> None:
        self.root = Path(root)
        self.split = split
        listing = self.root / "ImageSets" / "Segmentation" / f"{split}.txt"
        if not listing.is_file():
            have = sorted(p.stem for p in listing.parent.glob("*.txt")) if listing.parent.is_dir() else []
            raise ValueError(f"{self.root}: no VOC split {split!r} ({listing} missing; splits here: {have})")
        self.ids = [line.split()[0] for line in listing.read_text().splitlines() if line.strip()]
        if not self.ids:
            raise ValueError(f"{listing}: lists no images")
        if classes is None:
            classes = read_class_list(self.root / "classes.txt") or ["background", *VOC_CLASSES]
            classes = classes[1:] if classes[0] == "background" else classes
        self.classes = list(classes)
        self.targets = np.asarray([self._box_class(i) for i in self.ids], dtype=np.int64)
        self._init_files([self.root / "JPEGImages" / f"{i}.jpg" for i in self.ids], image_size, cache)
        self.mask_paths = [self.root / "SegmentationClass" / f"{i}.png" for i in self.ids]
        self.masks = DecodedFiles(self.mask_paths, MaskDecoder(self.image_size),
                                  (self.image_size, self.image_size), cache)

    def _box_class(self, image_id: str) -> int:
        """Class of the largest object in ``Annotations/<id>.xml``; -1 without one."""
        path = self.root / "Annotations" / f"{image_id}.xml"
        if not path.is_file():
            return -1
        best, best_area = -1, -1.0
        for obj in ET.parse(path).getroot().iter("object"):
            name, box = obj.findtext("name", "").strip(), obj.find("bndbox")
            if name not in self.classes or box is None:
                continue
            w = float(box.findtext("xmax", "0")) - float(box.findtext("xmin", "0"))
            h = float(box.findtext("ymax", "0")) - float(box.findtext("ymin", "0"))
            if w * h > best_area:
                best, best_area = self.classes.index(name), w * h
        return best

    def read_masks(self, indices: np.ndarray) -> torch.Tensor:
        """uint8 ``(B, S, S)`` label masks, cropped and resized (nearest) exactly like ``read``."""
        return torch.from_numpy(self.masks.gather(as_index_array(indices, len(self))))


def open_voc(path: Path, image_size: int | None, split: str | None = None, *,
             cache: bool = True, image_dir: Path | None = None) -> VocSource:
    """Open a VOC folder (``split`` default "train"). ``image_dir`` does not apply."""
    return VocSource(path, require_image_size(path, "voc", image_size), split or "train", cache=cache)
