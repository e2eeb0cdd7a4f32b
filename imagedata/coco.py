"""The images of a COCO annotation file as an image source."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from imagedata.source import FileSource, require_image_size


class CocoSource(FileSource):
    """The images of a COCO annotation file (``images`` in file order).

    Attributes:
        classes: category names in ascending category id; ``category_ids[c]`` is the COCO id.
        targets: int64 ``(N,)`` class of each image's largest annotation (by ``area``), -1 if none.
        image_ids: int64 ``(N,)`` COCO image ids.
        annotations: ``annotations[i]`` is the list of annotation dicts of image ``i``.
        images: the ``images`` entries of the json, one per source index.
    """

    def __init__(self, annotation_json: Path | str, image_dir: Path | str, image_size: int,
                 cache: bool = True) -> None:
        self.annotation_json = Path(annotation_json)
        self.image_dir = Path(image_dir)
        try:
            data = json.loads(self.annotation_json.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"{self.annotation_json}: cannot read COCO annotations ({e})") from e
        if not isinstance(data, dict) or not isinstance(data.get("images"), list):
            raise ValueError(f"{self.annotation_json}: not a COCO annotation file (no 'images' list)")
        if not data["images"]:
            raise ValueError(f"{self.annotation_json}: COCO file lists no images")
        categories = sorted(data.get("categories", []), key=lambda c: c["id"])
        self.category_ids = [int(c["id"]) for c in categories]
        self.classes = [str(c.get("name", c["id"])) for c in categories]
        self.images: list[dict[str, Any]] = data["images"]
        self.image_ids = np.asarray([im["id"] for im in self.images], dtype=np.int64)
        position = {int(i): k for k, i in enumerate(self.image_ids)}
        self.annotations: list[list[dict[str, Any]]] = [[] for _ in self.images]
        for ann in data.get("annotations", []):
            k = position.get(int(ann["image_id"]))
            if k is not None:
                self.annotations[k].append(ann)
        class_of = {cid: c for c, cid in enumerate(self.category_ids)}
        self.targets = np.asarray([self._largest_class(a, class_of) for a in self.annotations],
                                  dtype=np.int64)
        self._init_files([self.image_dir / im["file_name"] for im in self.images], image_size, cache)

    def semantic_mask(self, k: int) -> np.ndarray:
        """uint8 (S, S) semantic mask of image ``k`` (0 background, ``c + 1`` class ``c``, 255 crowd
        regions), cropped and resized (nearest) exactly as ``read`` crops and resizes the image;
        larger annotations are drawn first so that smaller ones stay visible."""
        from PIL import Image
        from pycocotools import mask as mask_utils

        from imagedata.decode import center_box
        im = self.images[k]
        h, w = int(im["height"]), int(im["width"])
        out = np.zeros((h, w), dtype=np.uint8)
        class_of = {cid: c for c, cid in enumerate(self.category_ids)}
        for ann in sorted(self.annotations[k], key=lambda a: -float(a.get("area", 0))):
            seg = ann.get("segmentation")
            if not seg or int(ann["category_id"]) not in class_of:
                continue
            rles = (mask_utils.frPyObjects(seg, h, w) if isinstance(seg, list) else
                    mask_utils.frPyObjects(seg, h, w) if isinstance(seg.get("counts"), list) else seg)
            m = mask_utils.decode(rles)
            m = m.max(axis=2) if m.ndim == 3 else m
            out[m > 0] = 255 if ann.get("iscrowd") else class_of[int(ann["category_id"])] + 1
        size = int(self.image_size)
        if (w, h) != (size, size):
            out = np.asarray(Image.fromarray(out).resize((size, size), Image.Resampling.NEAREST, box=center_box(w, h)))
        return out

    @property
    def has_masks(self) -> bool:
        """Whether any annotation has a ``segmentation`` (a boxes-only file has no masks)."""
        return any(a.get("segmentation") for anns in self.annotations for a in anns)

    def read_masks(self, indices: np.ndarray) -> "torch.Tensor":
        """uint8 ``(B, S, S)`` semantic masks of images ``indices`` (see :meth:`semantic_mask`)."""
        import torch

        from imagedata.source import as_index_array
        return torch.from_numpy(np.stack([self.semantic_mask(int(k)) for k in as_index_array(indices, len(self))]))

    @staticmethod
    def _largest_class(anns: list[dict[str, Any]], class_of: dict[int, int]) -> int:
        """Class index of the annotation with the largest area (box area if ``area`` is absent)."""
        def area(a: dict[str, Any]) -> float:
            if "area" in a:
                return float(a["area"])
            box = a.get("bbox") or [0, 0, 0, 0]
            return float(box[2]) * float(box[3])

        if not anns:
            return -1
        return class_of.get(int(max(anns, key=area)["category_id"]), -1)


def coco_image_dir(annotation_json: Path) -> Path | None:
    """Guess the image folder of a COCO json: ``images/`` beside it, or the standard layout
    (``annotations/instances_val2017.json`` -> ``val2017/`` or ``images/val2017/``)."""
    split = annotation_json.stem.split("_")[-1]
    up = annotation_json.parent.parent
    for candidate in (annotation_json.parent / "images", up / split, up / "images" / split,
                      up / "images"):
        if candidate.is_dir():
            return candidate
    return None


def open_coco(path: Path, image_size: int | None, split: str | None = None, *,
              cache: bool = True, image_dir: Path | None = None) -> CocoSource:
    """Open a COCO annotation file. A COCO file is one split, so ``split`` must be None;
    ``image_dir`` defaults to :func:`coco_image_dir`'s guess."""
    size = require_image_size(path, "coco", image_size)
    if split is not None:
        raise ValueError(f"{path}: a COCO file is one split; open that split's json instead")
    folder = image_dir if image_dir is not None else coco_image_dir(path)
    if folder is None or not folder.is_dir():
        raise ValueError(f"{path}: no image folder found for this COCO file "
                         f"({folder or 'images/ beside it'}); pass image_dir")
    return CocoSource(path, folder, size, cache=cache)
