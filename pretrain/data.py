"""The pretraining data layer: RawBatches of images, video frame pairs, or tracked regions.

Batches are planned from (seed, epoch): a global batch is a slice of the epoch's permutation
and each of ``world`` processes reads its share ``idx[rank::world]``, so a run is the same for
any number of processes and can resume mid-epoch at any step.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from imagedata.formats import open_source
from imagedata.frames import VideoFramesSource
from imagedata.loader import BatchLoader
from imagedata.source import ImageSource
from imagedata.synthetic import SyntheticSource
from synthetic.presets import PRESETS as DATA_PRESETS

from .config import DataConfig
from .views import RawBatch


class DataError(ValueError):
    """The dataset cannot serve what the method needs."""


@dataclass
class PretrainData:
    source: ImageSource
    name: str
    cfg: DataConfig
    pairs: bool = False
    regions: bool = False
    _partners: list[np.ndarray] | None = None   # per source index: candidate partner indices
    _tracks: dict | None = None                 # (image, object) -> box, for region mode

    @property
    def image_size(self) -> int:
        return int(self.source.image_size)

    @property
    def num_classes(self) -> int:
        return len(self.source.classes)

    def __len__(self) -> int:
        return len(self.source)

    def steps_per_epoch(self) -> int:
        n = len(self.source)
        if n < self.cfg.batch_size:
            raise DataError(f"{self.cfg.path}: {n} images in split {self.cfg.split!r}, fewer than one batch "
                            f"of {self.cfg.batch_size}; lower --data.batch_size")
        return n // self.cfg.batch_size

    def stats(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per-channel mean / std of pixels in [0, 1] over an evenly spaced subset of images."""
        n = min(len(self.source), self.cfg.stats_images)
        idx = np.linspace(0, len(self.source) - 1, n).astype(np.int64)
        x = self.source.read(idx).float().div_(255)
        return tuple(x.mean((0, 2, 3)).tolist()), tuple(x.std((0, 2, 3)).tolist())

    def batches(self, seed: int, epoch: int, start: int, rank: int, world: int) -> Iterator[RawBatch]:
        """RawBatches of this process for ``epoch``, from global batch ``start`` on."""
        loader = BatchLoader(self.source, self.cfg.batch_size, shuffle=True, seed=seed, drop_last=True,
                             prefetch=self.cfg.prefetch, workers=self.cfg.workers,
                             pin_memory=self.cfg.pin_memory and torch.cuda.is_available())
        plan = [b[rank::world] for b in loader.batches(epoch)[start:]]
        rng = np.random.default_rng([seed, epoch, 7])
        partner_plan = [self._pick_partners(b, rng) for b in plan] if self.pairs else None
        it = loader.iter_plan(plan)
        it2 = loader.iter_plan(partner_plan) if partner_plan is not None else None
        for i, (images, targets, index) in enumerate(it):
            batch = RawBatch(images=images, targets=targets, indices=index)
            if it2 is not None:
                batch.pair = next(it2)[0]
                if self.regions:
                    batch.boxes, batch.pair_boxes = self._region_boxes(plan[i], partner_plan[i])
            yield batch

    # ------------------------------------------------------------------ video pairs / regions
    def _pick_partners(self, idx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        cands = [self._partners[i] for i in idx]
        return np.array([c[rng.integers(len(c))] for c in cands], dtype=np.int64)

    def _region_boxes(self, a: np.ndarray, b: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        boxes = [self._tracks[(int(i), int(j))] for i, j in zip(a, b)]
        return (torch.tensor([x[0] for x in boxes], dtype=torch.float32),
                torch.tensor([x[1] for x in boxes], dtype=torch.float32))


def open_pretrain_data(cfg: DataConfig, needs: frozenset[str]) -> PretrainData:
    """Open ``cfg.path`` for a method that needs ``needs`` (labels / pairs / regions)."""
    path = Path(cfg.path)
    if not path.exists():
        preset = path.name if path.name in DATA_PRESETS else "shapes64-heldout"
        raise DataError(f"--data.path {path}: no such dataset; generate one with "
                        f"`python -m synthetic.generate --preset {preset} --n 20000 --out {path}`")
    try:
        split = None if path.is_file() else cfg.split or None   # a COCO file is its own split
        source = open_source(path, cfg.image_size or None, split)
    except (ValueError, OSError) as e:
        raise DataError(str(e).splitlines()[0]) from e
    if source.image_size is None:
        raise DataError(f"--data.path {path}: images of varying size; set --data.image_size")
    name = path.name
    data = PretrainData(source=source, name=name, cfg=cfg, pairs="pairs" in needs, regions="regions" in needs)
    if "labels" in needs and (np.asarray(source.targets) < 0).all():
        raise DataError(f"--data.path {path}: no class labels, but the method needs them")
    if data.pairs:
        _attach_pairs(data, path)
    return data


def _attach_pairs(data: PretrainData, path: Path) -> None:
    """Partner frames (same clip, |frame gap| <= pair_gap) and, for regions, shared visible objects."""
    src = data.source
    if isinstance(src, VideoFramesSource):
        _attach_video_pairs(data, src, path)
        return
    if not isinstance(src, SyntheticSource) or "clip" not in src.dataset.labels:
        raise DataError(f"--data.path {path}: the method needs video frame pairs; expected video frames "
                        "(TrackingNet, GOT-10k) or a dataset made with `--preset video`")
    lab = src.dataset.labels.iloc[src.indices]
    clip, frame = lab["clip"].to_numpy(), lab["frame"].to_numpy()
    objs = src.dataset.objects
    visible = objs[objs["area"] > 0]
    boxes = {(int(r.image), int(r.object)): (r.x0, r.y0, r.x1, r.y1) for r in visible.itertuples()}
    by_image: dict[int, set[int]] = {}
    for (img, obj) in boxes:
        by_image.setdefault(img, set()).add(obj)
    partners, tracks = [], {}
    gap = data.cfg.pair_gap
    for i in range(len(src)):
        same = np.flatnonzero((clip == clip[i]) & (np.abs(frame - frame[i]) <= gap) & (frame != frame[i]))
        if data.regions:
            gi = int(src.indices[i])
            keep = []
            for j in same:
                gj = int(src.indices[j])
                shared = sorted(by_image.get(gi, set()) & by_image.get(gj, set()))
                if shared:
                    obj = shared[0]
                    tracks[(i, int(j))] = (boxes[(gi, obj)], boxes[(gj, obj)])
                    keep.append(j)
            same = np.asarray(keep, dtype=np.int64)
        if same.size == 0:
            same = np.array([i])  # no partner within the gap: the frame pairs with itself
            if data.regions:
                gi = int(src.indices[i])
                objs_i = sorted(by_image.get(gi, set()))
                full = (0, 0, src.image_size, src.image_size)
                b = boxes[(gi, objs_i[0])] if objs_i else full
                tracks[(i, i)] = (b, b)
        partners.append(same)
    data._partners, data._tracks = partners, tracks


def _attach_video_pairs(data: PretrainData, src: VideoFramesSource, path: Path) -> None:
    """Partners of real video frames: the other frames of the video at most ``pair_gap`` away (the
    frame itself where the video has one frame); for regions, the tracked object's box in both
    (the video's box file, :meth:`VideoFramesSource.boxes`)."""
    video, frame = src.video_ids, src.frame_ids
    start = np.arange(len(src)) - frame
    length = np.bincount(video)[video]
    gap = data.cfg.pair_gap
    partners, tracks = [], {}
    boxes = None
    if data.regions:
        try:
            boxes = src.boxes(np.arange(len(src)))
        except ValueError as e:
            raise DataError(f"--data.path {path}: {e}") from e
    for i in range(len(src)):
        lo, hi = max(start[i], i - gap), min(start[i] + length[i] - 1, i + gap)
        same = np.array([j for j in range(lo, hi + 1) if j != i] or [i], dtype=np.int64)
        partners.append(same)
        if boxes is not None:
            for j in same:
                tracks[(i, int(j))] = (tuple(boxes[i]), tuple(boxes[j]))
    data._partners, data._tracks = partners, tracks
