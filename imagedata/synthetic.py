"""Our synthetic datasets (:mod:`synthetic.dataset` folders) as an image source.

The images are memory-mapped: a batch is one fancy index on the array, with no per-image Python
work and no decoding.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

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
    """

    def __init__(self, root: Path | str, split: str = "all") -> None:
        self.root = Path(root)
        self.split = split
        self.dataset = open_dataset(self.root)
        self.indices = np.asarray(self.dataset.split_indices(split), dtype=np.int64)
        self.classes: list[str] = self.dataset.classes
        self.image_size: int | None = int(self.dataset.images.shape[1])
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
        return channels_first(batch)

    def __getstate__(self) -> dict[str, Any]:
        """Pickle by path (the memmaps are reopened, never copied, e.g. into DataLoader workers)."""
        return {"root": self.root, "split": self.split}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["root"], state["split"])

    def __repr__(self) -> str:
        return f"SyntheticSource({str(self.root)!r}, split={self.split!r}, n={len(self)})"


def open_synthetic(path: Path, image_size: int | None = None, split: str | None = None, *,
                   cache: bool = True, image_dir: Path | None = None) -> SyntheticSource:
    """Open a synthetic dataset folder (``split`` default "all"). ``image_size``, if given, must be
    the dataset's own size: synthetic images are not resized. ``cache`` and ``image_dir`` do not
    apply (the images are memory-mapped)."""
    source = SyntheticSource(path, split or "all")
    if image_size is not None and image_size != source.image_size:
        raise ValueError(f"{path}: synthetic images are {source.image_size} px, asked for "
                         f"{image_size}; resize in the model's transform or regenerate")
    return source
