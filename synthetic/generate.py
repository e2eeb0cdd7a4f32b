"""Generate a synthetic dataset: ``python -m synthetic.generate --preset shapes64 --n 20000 --seed 0 --out DIR``.

Images are rendered in fixed chunks of 256 by a pool of worker processes that write straight
into the memory-mapped arrays of a temporary folder; the folder is renamed into place only when
complete. Generating again with the same arguments is a no-op; other arguments into an existing
dataset folder are an error unless ``--overwrite``.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import logging
import multiprocessing as mp
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from . import dataset, rng
from .presets import PRESETS, Preset, get_preset
from .scenes import CANONICAL_VIEW, FIXED_LIGHT, POSE_BINS, render, sample
from .shading import BACKGROUNDS, TEXTURES

GENERATOR_VERSION = "1.0"
CHUNK_IMAGES = 256
SPLITS = ("train", "val", "test")
PHOTO_SIZE = 256
log = logging.getLogger("synthetic.generate")


# --------------------------------------------------------------------------- inputs
def load_photos(folder: Path | None) -> tuple[torch.Tensor | None, str | None]:
    """Background photos from a folder -> ((P, 3, 256, 256) float in [0, 1], sha256 of their bytes)."""
    if folder is None:
        return None, None
    from PIL import Image

    folder = Path(folder)
    files = sorted(f for f in folder.iterdir() if f.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp")) \
        if folder.is_dir() else []
    if not files:
        raise ValueError(f"--backgrounds {folder}: expected a folder with .png/.jpg photos, found none")
    digest = hashlib.sha256()
    out = []
    for f in files:
        digest.update(f.read_bytes())
        img = Image.open(f).convert("RGB").resize((PHOTO_SIZE, PHOTO_SIZE), Image.BILINEAR)
        out.append(torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).float() / 255)
    return torch.stack(out), digest.hexdigest()[:16]


def resolve_preset(name: str, size: int | None, instances: int | None, photos: bool) -> Preset:
    p = get_preset(name)
    changes: dict[str, Any] = {}
    if size is not None:
        if size < 16 or size > 1024:
            raise ValueError(f"--size {size}: expected an image size between 16 and 1024 pixels")
        changes["size"] = size
    if instances is not None:
        if instances < 1 or instances > 50:
            raise ValueError(f"--instances {instances}: expected 1..50 instances per class")
        changes["instances"] = instances
    if photos and "photo" not in p.backgrounds:
        changes["backgrounds"] = (*p.backgrounds, "photo")
    return dataclasses.replace(p, **changes)


def factor_definitions(p: Preset) -> dict[str, dict]:
    """What each recorded factor means and whether this preset samples it."""
    return {
        "class": {"values": list(p.classes), "varied": True},
        "instance": {"values": list(range(p.instances)), "varied": True,
                     "description": "shape parameters of the class (synthetic.meshes.instance_params)"},
        "texture": {"values": list(TEXTURES), "varied": p.texture, "fixed": "none"},
        "colour": {"varied": p.colour, "fixed": "class colour (synthetic.scenes.class_colors)",
                   "columns": ["color_r", "color_g", "color_b"]},
        "viewpoint": {"varied": p.viewpoint, "columns": ["azimuth", "elevation", "roll"], "unit": "deg",
                      "fixed": list(CANONICAL_VIEW), "range": [[0, 360], [-30, 90], [-20, 20]]},
        "pose_bin": {"values": list(POSE_BINS), "description": "top if elevation >= 60 else azimuth quadrant"},
        "lighting": {"varied": p.lighting, "fixed": list(FIXED_LIGHT),
                     "columns": ["light_azimuth", "light_elevation", "light_intensity", "light_ambient",
                                 "light_r", "light_g", "light_b"]},
        "background": {"values": list(p.backgrounds), "all": list(BACKGROUNDS),
                       "varied": len(p.backgrounds) > 1 or p.random_background_colour},
        "scale_position": {"varied": p.scale[0] != p.scale[1] or p.jitter > 0, "scale": list(p.scale),
                           "jitter": p.jitter, "columns": ["scale", "tx", "ty", "tz"]},
        "occluder": {"probability": p.occluder_prob, "columns": ["occluder", "occluded_frac"]},
    }


# --------------------------------------------------------------------------- workers
def _chunks(p: Preset, n: int) -> list[np.ndarray]:
    per = max(1, CHUNK_IMAGES // p.images_per_unit())
    return [np.arange(s, min(s + per, n)) for s in range(0, n, per)]


def _init_worker() -> None:
    torch.set_num_threads(1)


_PHOTOS: torch.Tensor | None = None


def _render_chunk(p: Preset, seed: int, units: np.ndarray, folder: str) -> tuple[dict, dict]:
    """Render one chunk of units and write its images into the folder's arrays."""
    spec = sample(p, seed, units)
    arrays, image_cols, obj_cols = render(spec, p, _PHOTOS)
    lo, hi = int(spec.index.min()), int(spec.index.max()) + 1
    assert hi - lo == len(spec.index), "chunk images must be contiguous"
    for name, arr in arrays.items():
        mm = np.load(Path(folder) / f"{name}.npy", mmap_mode="r+")
        mm[lo:hi] = arr
        mm.flush()
        del mm
    return image_cols, obj_cols


def _assign_splits(p: Preset, seed: int, index: np.ndarray) -> np.ndarray:
    unit = index // p.images_per_unit()
    u = rng.uniform(seed, unit, "split", 1)[:, 0]
    edges = np.cumsum(p.splits)
    return np.asarray(SPLITS)[np.minimum(np.searchsorted(edges, u, side="right"), 2)]


def instance_splits(p: Preset, seed: int) -> np.ndarray:
    """(classes, instances) split index (0 train, 1 val, 2 test) of every mesh: per class, a seeded
    permutation of its instances, the last round(test fraction x instances) to test (at least one),
    the round(val fraction x instances) before them to val, the rest (at least one) to train."""
    out = np.zeros((len(p.classes), p.instances), dtype=np.int64)
    n_test = max(1, round(p.splits[2] * p.instances))
    n_val = round(p.splits[1] * p.instances)
    if n_test + n_val >= p.instances:
        raise ValueError(f"preset {p.name}: {p.instances} instances per class cannot hold {n_val} val and "
                         f"{n_test} test instances and still train on one")
    for c in range(len(p.classes)):
        order = np.random.default_rng([seed, c]).permutation(p.instances)
        out[c, order[p.instances - n_test - n_val:p.instances - n_test]] = 1
        out[c, order[p.instances - n_test:]] = 2
    return out


def _split_column(p: Preset, seed: int, labels: pd.DataFrame) -> np.ndarray:
    """Each image's split: drawn per unit, or (``split_by="instance"``) that of its primary object's mesh."""
    if p.split_by == "image":
        return _assign_splits(p, seed, labels["index"].to_numpy())
    if p.split_by != "instance":
        raise ValueError(f"preset {p.name}: split_by {p.split_by!r}; valid: image, instance")
    table = instance_splits(p, seed)
    return np.asarray(SPLITS)[table[labels["class"].to_numpy(), labels["instance"].to_numpy()]]


def render_all(p: Preset, seed: int, n: int, folder: Path, workers: int,
               photos: torch.Tensor | None, progress: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Render every chunk (in parallel when workers > 1) and return the label tables."""
    global _PHOTOS
    _PHOTOS = photos
    chunks = _chunks(p, n)
    bar = tqdm(total=n * p.images_per_unit(), unit="img", desc=f"render {p.name}", disable=not progress)
    results: list[tuple[dict, dict]] = [None] * len(chunks)  # type: ignore[list-item]
    if workers <= 1:
        _init_worker()
        for i, c in enumerate(chunks):
            results[i] = _render_chunk(p, seed, c, str(folder))
            bar.update(len(results[i][0]["index"]))
    else:
        ctx = mp.get_context("fork")
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker) as ex:
            futures = {ex.submit(_render_chunk, p, seed, c, str(folder)): i for i, c in enumerate(chunks)}
            for fut in _as_completed(futures):
                results[futures[fut]] = fut.result()
                bar.update(len(results[futures[fut]][0]["index"]))
    bar.close()
    labels = pd.concat([pd.DataFrame(r[0]) for r in results], ignore_index=True)
    objects = pd.concat([pd.DataFrame(r[1]) for r in results], ignore_index=True)
    labels.insert(1, "split", _split_column(p, seed, labels))
    return labels, objects


def _as_completed(futures: dict):
    from concurrent.futures import as_completed

    return as_completed(futures)


# --------------------------------------------------------------------------- entry point
def generate(preset: str, n: int, seed: int, out: Path | str, *, workers: int | None = None,
             overwrite: bool = False, size: int | None = None, instances: int | None = None,
             backgrounds: Path | str | None = None, exports: list[str] | None = None,
             progress: bool = True) -> Path:
    """Generate (or find up to date) the dataset at ``out``; returns its path."""
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n <= 0:
        raise ValueError(f"--n {n!r}: expected a positive number of {get_preset(preset).unit}s")
    if seed < 0:
        raise ValueError(f"--seed {seed}: expected a non-negative integer")
    photos, photo_hash = load_photos(Path(backgrounds) if backgrounds else None)
    p = resolve_preset(preset, size, instances, photos is not None)
    out = Path(out)
    args = {"preset": p.to_dict(), "n": int(n), "seed": int(seed), "photos": photo_hash,
            "generator_version": GENERATOR_VERSION}
    h = dataset.args_hash(args)
    kinds = list(p.exports if exports is None else exports)
    if _up_to_date(out, h, overwrite):
        log.info("%s is up to date (same arguments); nothing to do", out)
        _export(out, kinds)
        return out
    num_images = n * p.images_per_unit()
    staged = dataset.stage(out)
    try:
        arrays = staged.create_arrays(num_images, p.size)
        del arrays  # workers reopen the files by path
        t0 = time.time()
        labels, objects = render_all(p, seed, n, staged.tmp, workers or os.cpu_count() or 1, photos, progress)
        meta = dict(format=dataset.FORMAT, format_version=dataset.FORMAT_VERSION, generator_version=GENERATOR_VERSION,
                    preset=p.name, seed=int(seed), n=int(n), unit=p.unit, num_images=num_images, image_size=p.size,
                    classes=list(p.classes), factors=factor_definitions(p), args=args, args_hash=h,
                    splits={s: int((labels["split"] == s).sum()) for s in SPLITS},
                    created=time.strftime("%Y-%m-%dT%H:%M:%S%z"), seconds=round(time.time() - t0, 2))
        staged.commit(meta, labels, objects, overwrite=overwrite)
    except BaseException:
        staged.abort()
        raise
    _export(out, kinds)
    return out


def _up_to_date(out: Path, h: str, overwrite: bool) -> bool:
    """True if ``out`` holds this exact dataset; raise if it holds something we must not replace."""
    if not out.exists():
        return False
    if not out.is_dir():
        raise dataset.DatasetError(f"--out {out}: exists and is not a folder")
    if not (out / "meta.json").exists():
        if any(out.iterdir()):
            raise dataset.DatasetError(f"--out {out}: exists, is not empty and is not an sslbench dataset; "
                                     "choose another folder")
        out.rmdir()
        return False
    try:
        meta = dataset.read_meta(out)
    except dataset.DatasetError:
        if overwrite:
            return False
        raise
    if meta.get("args_hash") == h:
        return True
    if not overwrite:
        raise dataset.DatasetError(f"--out {out}: holds a dataset made with other arguments "
                                 f"(preset {meta.get('preset')}, n {meta.get('n')}, seed {meta.get('seed')}); "
                                 "pass --overwrite to replace it")
    return False


def _export(out: Path, kinds: list[str]) -> None:
    if not kinds:
        return
    from .export import export

    export(dataset.open_dataset(out), kinds)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m synthetic.generate", description=__doc__.split("\n")[0])
    ap.add_argument("--preset", required=True, help=f"one of: {', '.join(PRESETS)}")
    ap.add_argument("--n", type=int, required=True, help="number of units: images, clips (video) or sets (probe-*)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    ap.add_argument("--size", type=int, default=None, help="override the preset's image size")
    ap.add_argument("--instances", type=int, default=None, help="override the instances per class")
    ap.add_argument("--backgrounds", type=Path, default=None, help="folder of photos for 'photo' backgrounds")
    ap.add_argument("--export", default=None, help="comma list of coco,voc,imagefolder,frames (default: the preset's)")
    ap.add_argument("--overwrite", action="store_true")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if a.quiet else logging.INFO, format="%(message)s")
    try:
        if a.workers is not None and a.workers < 1:
            raise ValueError(f"--workers {a.workers}: expected at least 1")
        kinds = None if a.export is None else [k for k in a.export.split(",") if k]
        path = generate(a.preset, a.n, a.seed, a.out, workers=a.workers, overwrite=a.overwrite, size=a.size,
                        instances=a.instances, backgrounds=a.backgrounds, exports=kinds, progress=not a.quiet)
    except (ValueError, dataset.DatasetError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    log.info("wrote %s", path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
