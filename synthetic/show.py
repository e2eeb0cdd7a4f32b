"""Contact sheet of a synthetic dataset: a grid of labelled image tiles in one PNG.

    python -m synthetic.show DIR --out sheet.png [--n 64] [--cols 8] [--split all] [--seed 0] [--masks]

Each tile is an image scaled (nearest neighbour) to about 128 px with a caption: class name and
instance id; azimuth / elevation if labels.csv has them; set id / clip / frame if present, and
the dataset index. Images are picked round-robin over classes (random within a class, fixed by
``--seed``). ``--masks`` draws the objects.csv boxes on top. Bad input prints one
``error: ...`` line to stderr and exits with status 2.
"""
from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFont

from fsio import atomic_path
from synthetic.dataset import DatasetError, SyntheticDataset, open_dataset

TILE = 128  # target tile side in pixels
PAD = 4  # gap between tiles and around the sheet
LINE = 12  # caption line height in pixels
CAPTION_LINES = 3
BACKGROUND = (24, 24, 24)
TEXT = (235, 235, 235)
BOX_COLOURS = [(255, 80, 80), (80, 220, 80), (90, 150, 255), (255, 210, 60), (230, 90, 230),
               (60, 220, 220), (255, 150, 40), (180, 180, 255), (160, 255, 120), (255, 120, 170)]


def pick_images(ds: SyntheticDataset, n: int, split: str = "all", seed: int = 0) -> np.ndarray:
    """Up to ``n`` image indices of ``split``, round-robin over classes in class order.

    Within a class the order is a random permutation fixed by ``seed``.
    """
    idx = ds.split_indices(split)
    classes = ds.labels["class"].to_numpy()[idx]
    rng = np.random.default_rng(seed)
    groups = [rng.permutation(idx[classes == c]) for c in pd.unique(np.sort(classes))]
    picked: list[int] = []
    for rank in range(max((len(g) for g in groups), default=0)):
        picked.extend(int(g[rank]) for g in groups if rank < len(g))
        if len(picked) >= n:
            break
    return np.asarray(picked[:n], dtype=np.int64)


def tile_scale(size: int) -> float:
    """Scale factor bringing an image side of ``size`` pixels to about TILE pixels.

    Small images are enlarged by a whole factor (so nearest-neighbour pixels stay square);
    images larger than TILE are shrunk to exactly TILE.
    """
    return float(max(1, round(TILE / size))) if size <= TILE else TILE / size


def sheet_size(tile_w: int, tile_h: int, count: int, cols: int) -> tuple[int, int]:
    """(width, height) in pixels of a sheet of ``count`` tiles in ``cols`` columns."""
    cols = max(1, min(cols, count))
    rows = math.ceil(count / cols)
    return cols * (tile_w + PAD) + PAD, rows * (tile_h + CAPTION_LINES * LINE + PAD) + PAD


def _fmt(value: Any) -> str:
    """A table value for a caption: numbers rounded to whole units."""
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return str(int(round(float(value))))
    return str(value)


def caption(ds: SyntheticDataset, index: int) -> list[str]:
    """Caption lines of image ``index`` (class / instance, pose, set / clip / frame and index)."""
    row = ds.labels.iloc[index]
    value = row.get("class")
    classes = ds.classes
    name = classes[int(value)] if not pd.isna(value) and 0 <= int(value) < len(classes) else f"class {value}"
    first = f"{name} i{_fmt(row['instance'])}" if "instance" in row and not pd.isna(row["instance"]) else name
    pose = " ".join(f"{label} {_fmt(row[col])}" for col, label in (("azimuth", "az"), ("elevation", "el"))
                    if col in row and not pd.isna(row[col]))
    ids = " ".join(f"{label} {_fmt(row[col])}" for col, label in (("set_id", "set"), ("clip", "clip"),
                                                                   ("frame", "f"))
                   if col in row and not pd.isna(row[col]))
    return [first, pose, f"#{index} {ids}".strip()]


def _fit(draw: ImageDraw.ImageDraw, text: str, font: Any, width: int) -> str:
    """``text`` shortened (with a trailing '~') until it fits in ``width`` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "~", font=font) > width:
        text = text[:-1]
    return text + "~"


def _tile(ds: SyntheticDataset, index: int, scale: float, masks: bool) -> Image.Image:
    """The scaled image ``index``, with its object boxes drawn if ``masks``."""
    image = Image.fromarray(np.ascontiguousarray(ds.images[index]))
    w, h = image.size
    size = (round(w * scale), round(h * scale))
    resample = Image.Resampling.NEAREST if scale >= 1 else Image.Resampling.BOX
    image = image.resize(size, resample)
    if masks:
        draw = ImageDraw.Draw(image)
        objects = ds.objects[(ds.objects["image"] == index) & (ds.objects["area"] > 0)]
        for row in objects.itertuples(index=False):
            colour = BOX_COLOURS[int(row.object) % len(BOX_COLOURS)]
            box = [row.x0 * scale, row.y0 * scale, row.x1 * scale - 1, row.y1 * scale - 1]
            draw.rectangle(box, outline=colour, width=1)
    return image


def render_sheet(ds: SyntheticDataset, indices: Sequence[int], cols: int, masks: bool) -> Image.Image:
    """Lay out the tiles of ``indices`` row by row with their captions."""
    if len(indices) == 0:
        raise DatasetError(f"{ds.root}: no images to show")
    height, width = ds.images.shape[1:3]
    scale = tile_scale(max(height, width))
    tile_w, tile_h = round(width * scale), round(height * scale)
    cols = max(1, min(cols, len(indices)))
    sheet = Image.new("RGB", sheet_size(tile_w, tile_h, len(indices), cols), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for slot, index in enumerate(indices):
        x = PAD + (slot % cols) * (tile_w + PAD)
        y = PAD + (slot // cols) * (tile_h + CAPTION_LINES * LINE + PAD)
        sheet.paste(_tile(ds, int(index), scale, masks), (x, y))
        for line_no, text in enumerate(caption(ds, int(index))):
            draw.text((x, y + tile_h + line_no * LINE), _fit(draw, text, font, tile_w), fill=TEXT, font=font)
    return sheet


def contact_sheet(ds: SyntheticDataset, out: Path, n: int = 64, cols: int = 8, split: str = "all",
                  seed: int = 0, masks: bool = False) -> Path:
    """Write a contact sheet of up to ``n`` images of ``split`` to the PNG ``out`` (atomically)."""
    if n < 1 or cols < 1:
        raise ValueError(f"--n and --cols must be at least 1 (got n={n}, cols={cols})")
    sheet = render_sheet(ds, pick_images(ds, n, split, seed), cols, masks)
    out = Path(out)
    with atomic_path(out) as tmp:
        sheet.save(tmp, format="PNG")
    return out


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(prog="python -m synthetic.show", description=__doc__.split("\n")[0])
    parser.add_argument("dir", type=Path, help="dataset folder made by `python -m synthetic.generate`")
    parser.add_argument("--out", type=Path, required=True, help="PNG file to write")
    parser.add_argument("--n", type=int, default=64, help="number of images (default 64)")
    parser.add_argument("--cols", type=int, default=8, help="tiles per row (default 8)")
    parser.add_argument("--split", default="all", help="train, val, test or all (default)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the image choice (default 0)")
    parser.add_argument("--masks", action="store_true", help="draw the object boxes")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = parse_args(argv)
    try:
        if not args.dir.is_dir():
            raise DatasetError(f"{args.dir}: no such folder")
        out = contact_sheet(open_dataset(args.dir), args.out, n=args.n, cols=args.cols, split=args.split,
                            seed=args.seed, masks=args.masks)
    except (DatasetError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
