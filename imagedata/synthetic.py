"""Our synthetic datasets (:mod:`synthetic.dataset` folders) as an image source.

The images are memory-mapped: a batch is one fancy index on the array, with no per-image Python
work and no decoding. Asked for another size (an evaluation at a checkpoint's training view
size), a batch is resized as a whole, antialiased bilinear like file decoding, and rounded back
to uint8.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from imagedata.source import as_index_array, channels_first
from synthetic.dataset import open_dataset


class SyntheticSource:
    """The images of one split of a :mod:`synthetic.dataset` dataset.

    Index ``i`` of this source is image ``self.indices[i]`` of ``self.dataset``, so masks, depth and
    the label tables are reachable as e.g. ``source.dataset.semantic[source.indices[i]]``.

    Attributes:
        dataset: the opened :class:`synthetic.dataset.SyntheticDataset` (memory-mapped).
        indices: int64 ``(N,)`` dataset indices of the split's images, ascending.
        targets: int64 ``(N,)`` class of each image's primary object (``labels.csv`` ``class``).
        stored_size / image_size: the side of the stored images / of the images ``read`` returns
        (``image_size`` given: resized to it).
    """

    def __init__(self, root: Path | str, split: str = "all", image_size: int | None = None) -> None:
        self.root = Path(root)
        self.split = split
        self.dataset = open_dataset(self.root)
        self.indices = np.asarray(self.dataset.split_indices(split), dtype=np.int64)
        self.classes: list[str] = self.dataset.classes
        self.stored_size = int(self.dataset.images.shape[1])
        if image_size is not None and (not isinstance(image_size, (int, np.integer)) or image_size <= 0):
            raise ValueError(f"{self.root}: image_size must be a positive int, got {image_size!r}")
        self.image_size: int | None = int(image_size or self.stored_size)
        labels = self.dataset.labels
        cls = labels["class"].to_numpy() if "class" in labels else np.full(len(labels), -1)
        self.targets = np.nan_to_num(np.asarray(cls, dtype=np.float64), nan=-1).astype(np.int64)[self.indices]

    def __len__(self) -> int:
        return int(self.indices.size)

    def read(self, indices: np.ndarray) -> torch.Tensor:
        """uint8 ``(B, 3, H, W)``: one fancy-index on the memmap in ascending order, then reordered."""
        rows = self.indices[as_index_array(indices, len(self))]
        order = np.argsort(rows, kind="stable")
        batch = np.asarray(self.dataset.images[rows[order]])
        if not np.array_equal(order, np.arange(order.size)):
            restored = np.empty_like(batch)
            restored[order] = batch
            batch = restored
        return resize_uint8(channels_first(batch), self.image_size)

    def __getstate__(self) -> dict[str, Any]:
        """Pickle by path (the memmaps are reopened, never copied, e.g. into DataLoader workers)."""
        return {"root": self.root, "split": self.split, "image_size": self.image_size}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["root"], state["split"], state.get("image_size"))

    def __repr__(self) -> str:
        size = f", {self.image_size} px" if self.image_size != self.stored_size else ""
        return f"SyntheticSource({str(self.root)!r}, split={self.split!r}, n={len(self)}{size})"


def resize_uint8(images: torch.Tensor, size: int | None) -> torch.Tensor:
    """uint8 (B, 3, H, W) -> (B, 3, size, size), antialiased bilinear, rounded; unchanged at its size."""
    if size is None or tuple(images.shape[-2:]) == (size, size):
        return images
    x = F.interpolate(images.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x.round_().clamp_(0, 255).to(torch.uint8)


def open_synthetic(path: Path, image_size: int | None = None, split: str | None = None, *,
                   cache: bool = True, image_dir: Path | None = None) -> SyntheticSource:
    """Open a synthetic dataset folder (``split`` default "all"), read at ``image_size`` (default:
    the stored size). ``cache`` and ``image_dir`` do not apply (the images are memory-mapped)."""
    return SyntheticSource(path, split or "all", image_size)
