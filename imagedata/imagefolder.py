"""torchvision's ImageFolder layout (``root[/<split>]/<class>/**/<image>``) as an image source."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from imagedata.source import FileSource, images_under, read_class_list, require_image_size, subfolders


class ImageFolderSource(FileSource):
    """torchvision's ImageFolder layout: ``root[/<split>]/<class>/**/<image>``.

    Classes are the sorted subfolder names (every subfolder, so the indices agree between splits
    even where a split lacks a class), unless ``classes`` or a ``root/classes.txt`` (written by
    :mod:`synthetic.export` in the dataset's own class order) gives the order; subfolders missing
    from that list follow it, sorted. Images are sorted by path within each class.
    """

    def __init__(self, root: Path | str, image_size: int, split: str | None = None,
                 cache: bool = True, classes: Sequence[str] | None = None) -> None:
        self.root = Path(root)
        base = self.root / split if split else self.root
        if not base.is_dir():
            here = ", ".join(p.name for p in subfolders(self.root)) if self.root.is_dir() and split else ""
            raise ValueError(f"{base}: no such folder; expected an ImageFolder (class subfolders of images)"
                             + (f"; splits here: {here}" if here else ""))
        listed = list(classes) if classes is not None else read_class_list(self.root / "classes.txt") or []
        self.classes = listed + [p.name for p in subfolders(base) if p.name not in listed]
        paths, targets = [], []
        for c, name in enumerate(self.classes):
            files = images_under(base / name) if (base / name).is_dir() else []
            paths += files
            targets += [c] * len(files)
        if not paths:
            raise ValueError(f"{base}: no images in class subfolders; expected an ImageFolder "
                             f"(<class>/<image>.{{jpg,png,...}})")
        self.targets = np.asarray(targets, dtype=np.int64)
        self._init_files(paths, image_size, cache)


def open_imagefolder(path: Path, image_size: int | None, split: str | None = None, *,
                     cache: bool = True, image_dir: Path | None = None) -> ImageFolderSource:
    """Open an ImageFolder; ``split`` is a subfolder of ``path`` (none: ``path`` itself).
    ``image_dir`` does not apply."""
    return ImageFolderSource(path, require_image_size(path, "imagefolder", image_size), split, cache=cache)
