"""GOT-10k (Huang et al., TPAMI 2019) as the occlusion probe set of the invariance study.

See :mod:`imagedata.probeset` for the conventions shared by every benchmark reader.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from imagedata.probeset import LayoutError, ProbeSet, benchmark_root, class_index, need_path, read_lines

# layout constants (adjust here if a copy is laid out differently)
GOT10K_SPLIT = "train"               # the study uses the GOT-10k training videos
GOT10K_MIN_COVER_RANGE = 4           # keep a video when max(cover) - min(cover) >= this
GOT10K_SEED = 1992                   # the original's np.random.seed for the per-level frame draw
GOT10K_MAX_COVER = 8

GOT_LAYOUT = ("GOT-10k layout: ROOT/train/list.txt and ROOT/train/GOT-10k_Train_NNNNNN/ with "
              "00000001.jpg..., groundtruth.txt, cover.label, meta_info.ini")


def _got_boxes(path: Path) -> np.ndarray:
    rows = []
    for n, line in enumerate(read_lines(path), 1):
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
    lines = read_lines(need_path(path, GOT_LAYOUT))
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
    for line in read_lines(need_path(path, GOT_LAYOUT)):
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
    base = benchmark_root(root, GOT_LAYOUT)
    split = base if (base / "list.txt").is_file() else base / GOT10K_SPLIT
    vids = [v.strip() for v in read_lines(need_path(split / "list.txt", GOT_LAYOUT)) if v.strip()]
    if not vids:
        raise LayoutError(f"{split / 'list.txt'}: lists no videos ({GOT_LAYOUT})")
    rng = np.random.RandomState(GOT10K_SEED)
    images: list[Path] = []
    boxes, frames, factor, set_ids, names, classes = [], [], [], [], [], []
    for vid in vids:
        vdir = need_path(split / vid, GOT_LAYOUT, "folder")
        xywh = _got_boxes(need_path(vdir / "groundtruth.txt", GOT_LAYOUT))
        cover = _got_cover(vdir / "cover.label", len(xywh))
        levels = np.unique(cover)
        if levels.max() - levels.min() < GOT10K_MIN_COVER_RANGE:
            continue
        chosen = np.array([rng.choice(np.flatnonzero(cover == c)) for c in levels], dtype=np.int64)
        cls = _got_class(vdir / "meta_info.ini")
        for f in chosen:
            images.append(need_path(vdir / f"{f + 1:08d}.jpg", GOT_LAYOUT))
        x, y, w, h = xywh[chosen].T
        boxes.append(np.stack([x, y, x + w, y + h], axis=1))
        frames.append(chosen)
        factor.append(levels.astype(np.float64))
        set_ids.append(np.full(len(chosen), len(names), dtype=np.int64))
        classes.extend([cls] * len(chosen))
        names.append(vid)
    class_names, index = class_index(classes)
    return ProbeSet(
        name="got10k-occlusion", images=images,
        boxes=np.concatenate(boxes) if boxes else np.zeros((0, 4)),
        set_ids=np.concatenate(set_ids) if set_ids else np.zeros(0, np.int64),
        labels=np.array([index[c] for c in classes], dtype=np.int64),
        factor=np.concatenate(factor) if factor else np.zeros(0),
        meta={"considered": len(vids), "kept": len(names), "classes": class_names, "set_names": names,
              "frame": np.concatenate(frames) if frames else np.zeros(0, np.int64)})
