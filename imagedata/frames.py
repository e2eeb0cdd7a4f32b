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
        if split == "train" and not base.is_dir() and any(self.root.glob("TRAIN_*/frames")):
            base = self.root                  # TrackingNet: the TRAIN_<k> chunks are its training split
        if not base.is_dir():
            raise ValueError(f"{base}: no such folder; expected folders of video frames")
        self.classes, paths, videos, frames = [], [], [], []
        self.box_files: list[Path | None] = []
        for folder in video_folders(base):
            files = sorted((p for p in folder.iterdir() if p.is_file() and is_image(p, FRAME_EXTENSIONS)),
                           key=lambda p: natural_key(p.name))
            if files:
                videos += [len(self.classes)] * len(files)
                frames += range(len(files))
                self.classes.append(folder.name)
                self.box_files.append(box_file(folder))
                paths += files
        if not paths:
            raise ValueError(f"{base}: no video frames; expected <video>/<frame>.{{jpg,png}}")
        self.video_ids = np.asarray(videos, dtype=np.int64)
        self.frame_ids = np.asarray(frames, dtype=np.int64)
        self.targets = self.video_ids
        self._init_files(paths, image_size, cache)

    def boxes(self, index: np.ndarray) -> np.ndarray:
        """float ``(len(index), 4)`` tracked-object boxes (x0, y0, x1, y1) of frames ``index`` in the
        pixels of the frames as read (centre square, ``image_size``), from the video's box file
        (TrackingNet ``anno/<video>.txt``, GOT-10k ``groundtruth.txt``: one ``x,y,w,h`` line per
        frame). ValueError naming the video when it has none or too few lines."""
        from PIL import Image

        from imagedata.decode import center_box
        out = np.zeros((len(index), 4), dtype=np.float32)
        for k, i in enumerate(np.asarray(index, dtype=np.int64)):
            v, f = int(self.video_ids[i]), int(self.frame_ids[i])
            rows = self._box_rows(v)
            if f >= len(rows):
                raise ValueError(f"{self.box_files[v]}: {len(rows)} boxes, but video {self.classes[v]} has frame {f}")
            with Image.open(self.paths[i]) as im:
                x0c, y0c, x1c, _ = center_box(*im.size)
            scale = self.image_size / (x1c - x0c)
            x, y, w, h = rows[f]
            out[k] = [(x - x0c) * scale, (y - y0c) * scale, (x + w - x0c) * scale, (y + h - y0c) * scale]
        return np.clip(out, 0, self.image_size)

    def _box_rows(self, video: int) -> np.ndarray:
        cache = self.__dict__.setdefault("_rows", {})
        if video not in cache:
            path = self.box_files[video]
            if path is None:
                raise ValueError(f"video {self.classes[video]}: no box file (TrackingNet anno/<video>.txt or "
                                 "GOT-10k groundtruth.txt); tracked regions need one")
            try:
                cache[video] = np.loadtxt(path, delimiter=",", ndmin=2, dtype=np.float32)
            except ValueError as e:
                raise ValueError(f"{path}: expected one x,y,w,h line per frame ({e})") from e
        return cache[video]

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


def video_folders(base: Path) -> list[Path]:
    """The video folders under ``base``: its subfolders, or, for TrackingNet's layout
    (``TRAIN_<k>/frames/<video>/``), the videos of every chunk in chunk order."""
    chunks = sorted((p / "frames" for p in base.glob("TRAIN_*") if (p / "frames").is_dir()),
                    key=lambda p: natural_key(p.parent.name))
    return [v for c in chunks for v in subfolders(c)] if chunks else subfolders(base)


def box_file(video: Path) -> Path | None:
    """A video's tracked-object boxes: GOT-10k's ``<video>/groundtruth.txt`` or TrackingNet's
    ``TRAIN_<k>/anno/<video>.txt``; None if neither exists."""
    for path in (video / "groundtruth.txt", video.parent.parent / "anno" / f"{video.name}.txt"):
        if path.is_file():
            return path
    return None


def is_video_layout(path: Path) -> bool:
    """Whether ``path`` is TrackingNet (``TRAIN_<k>/frames``) or a GOT-10k split (``list.txt`` and
    video folders with ``groundtruth.txt``): frames, never an ImageFolder."""
    if any((p / "frames").is_dir() for p in path.glob("TRAIN_*")):
        return True
    return (path / "list.txt").is_file() and any((v / "groundtruth.txt").is_file() for v in subfolders(path)[:5])


def open_frames(path: Path, image_size: int | None, split: str | None = None, *,
                cache: bool = True, image_dir: Path | None = None) -> VideoFramesSource:
    """Open folders of video frames; ``split`` is a subfolder of ``path``. Never detected (the
    layout looks like an ImageFolder): ask for it with ``format="frames"``. ``image_dir`` does not
    apply."""
    return VideoFramesSource(path, require_image_size(path, "frames", image_size), split, cache=cache)
