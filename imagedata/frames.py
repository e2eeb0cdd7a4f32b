"""Folders of video frames (``root[/<split>]/<video>/<frame>``) as an image source."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from imagedata.source import FileSource, is_image, natural_key, require_image_size, subfolders

FRAME_EXTENSIONS = (".jpg", ".jpeg", ".png")


class VideoFramesSource(FileSource):
    """Folders of video frames: ``root[/<split>]/<video>/<frame>.{jpg,png}``.

    Frames are ordered by name within a video (numbers compared as numbers, so ``2`` < ``10``).

    Attributes:
        classes: video names; ``targets`` (= ``video_ids``) is each frame's video index.
        video_ids: int64 ``(N,)`` video index of each frame.
        frame_ids: int64 ``(N,)`` position of each frame within its video (0-based).
    """

    def __init__(self, root: Path | str, image_size: int, split: str | None = None,
                 cache: bool = True) -> None:
        self.root = Path(root)
        base = self.root / split if split else self.root
        if not base.is_dir():
            raise ValueError(f"{base}: no such folder; expected folders of video frames")
        self.classes, paths, videos, frames = [], [], [], []
        for folder in subfolders(base):
            files = sorted((p for p in folder.iterdir() if p.is_file() and is_image(p, FRAME_EXTENSIONS)),
                           key=lambda p: natural_key(p.name))
            if files:
                videos += [len(self.classes)] * len(files)
                frames += range(len(files))
                self.classes.append(folder.name)
                paths += files
        if not paths:
            raise ValueError(f"{base}: no video frames; expected <video>/<frame>.{{jpg,png}}")
        self.video_ids = np.asarray(videos, dtype=np.int64)
        self.frame_ids = np.asarray(frames, dtype=np.int64)
        self.targets = self.video_ids
        self._init_files(paths, image_size, cache)

    def pairs(self, max_gap: int, rng: np.random.Generator | int | None = None) -> np.ndarray:
        """int64 ``(N, 2)``: row ``i`` is frame ``i`` and a random other frame of its video at most
        ``max_gap`` frames away (uniform over those; frame ``i`` itself only when there is none)."""
        if max_gap < 0:
            raise ValueError(f"max_gap must be >= 0, got {max_gap}")
        rng = np.random.default_rng(rng)
        i = np.arange(len(self), dtype=np.int64)
        start = i - self.frame_ids                                   # first frame of the video
        end = start + np.bincount(self.video_ids)[self.video_ids]    # one past its last frame
        lo, hi = np.maximum(start, i - max_gap), np.minimum(end - 1, i + max_gap)
        others = hi - lo                                             # candidates other than i
        j = lo + (rng.random(i.size) * others).astype(np.int64)
        j = np.where(others > 0, j + (j >= i), i)
        return np.stack([i, j], axis=1)


def open_frames(path: Path, image_size: int | None, split: str | None = None, *,
                cache: bool = True, image_dir: Path | None = None) -> VideoFramesSource:
    """Open folders of video frames; ``split`` is a subfolder of ``path``. Never detected (the
    layout looks like an ImageFolder): ask for it with ``format="frames"``. ``image_dir`` does not
    apply."""
    return VideoFramesSource(path, require_image_size(path, "frames", image_size), split, cache=cache)
