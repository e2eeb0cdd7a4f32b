"""Frozen features, extracted once per (checkpoint, dataset, split, layer) and cached on disk.

The cache key is made of content hashes: the sha256 of the checkpoint file, a fingerprint of the
dataset (a synthetic dataset's generation-argument hash, or the names, sizes and modification
times of an image folder's files), the split, the layer, the number of images and this module's
``VERSION``. Every frozen-feature protocol (linear, kNN, clustering, invariance) reads a
:class:`FeatureSet` through :func:`extract`; a warm cache costs one ``np.load``.

    fs = extract("runs/x/ckpt.pt", "data/shapes64", "train")     # (N, D) float32 + targets
    fs.features, fs.targets, fs.indices

Layers (``LAYERS``): ``pool`` -- the backbone's pooled output (what a linear probe reads), float32
(N, D); ``dense`` -- the multi-scale pyramid of stage maps (dense heads, unsupervised
segmentation): every stage of ``forward_stages`` with stride >= 4 (ResNet-18 at 64 px: 16, 8, 4
and 2 px maps), or the last stage alone when none is that coarse, each flattened and concatenated
to (N, sum C_i * h_i * w_i) float16; the (C, h, w) of each stage are stored with it
(``FeatureSet.shapes``) and ``dense_maps`` turns the row back into the list of (N, C_i, h_i, w_i).
"""
from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from fsio import atomic_path, file_sha256
from imagedata.formats import open_source
from imagedata.subsets import stratified_subset
from imagedata.synthetic import SyntheticSource
from pretrain.backbones import check_image_size
from pretrain.checkpoint import CheckpointMeta, load_backbone

log = logging.getLogger(__name__)
VERSION = 2
DEFAULT_CACHE = Path(os.environ.get("SSLBENCH_CACHE", Path.home() / ".cache" / "sslbench")) / "features"
MIN_DENSE_STRIDE = 4


def pyramid(model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """The stage maps of ``model`` on ``x`` (B, 3, H, W) with stride >= ``MIN_DENSE_STRIDE``, finest
    first; the last stage alone when every stage is finer (small backbones on tiny images)."""
    stages = model.forward_stages(x)
    return [s for s in stages if x.shape[-1] // s.shape[-1] >= MIN_DENSE_STRIDE] or stages[-1:]


LAYERS: dict[str, Callable[[nn.Module, torch.Tensor], torch.Tensor | list[torch.Tensor]]] = {
    "pool": lambda model, x: model(x),
    "dense": pyramid,
}
LAYER_DTYPES = {"pool": np.float32, "dense": np.float16}
STATS = {"forward_batches": 0, "extractions": 0, "cache_hits": 0}   # counters read by tests and the suite


class FeatureError(ValueError):
    """A checkpoint and a dataset that do not fit together, or an unusable split."""


@dataclass
class FeatureSet:
    """Features of one split: ``features`` float32 (N, D), ``targets`` int64 (N,) (-1: no label),
    ``indices`` int64 (N,) positions in the split, ``key`` the cache key, ``cached`` whether they
    came from disk; ``shapes`` (K, 3) int64: the (C, h, w) of each map a ``dense`` row is made of
    (None for ``pool``)."""

    features: np.ndarray
    targets: np.ndarray
    indices: np.ndarray
    key: str
    cached: bool = False
    shapes: np.ndarray | None = None


def dataset_fingerprint(source: Any) -> str:
    """A content fingerprint of an image source: synthetic -> its generation-argument hash;
    file formats -> hash of the (path, size, mtime) of every file, in the source's order, and the
    side the images are decoded at."""
    if isinstance(source, SyntheticSource):
        return f"syn-{source.dataset.meta['args_hash']}-{source.image_size}px"
    paths = getattr(source, "paths", None) or getattr(source, "files", None)
    if not paths:
        raise FeatureError(f"{source!r}: cannot fingerprint this source (no file list)")
    h = hashlib.sha256()
    for p in paths:
        st = Path(p).stat()
        h.update(f"{p}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return f"files-{h.hexdigest()[:16]}-{getattr(source, 'image_size', None)}px"


def feature_key(ckpt_sha: str, data_fp: str, split: str, layer: str, n: int, limited: bool = False) -> str:
    """The cache key of one feature set; a limited split (a class-stratified draw of ``n`` images,
    ``imagedata.subsets.stratified_subset`` with seed 0) is keyed apart from the first-``n`` sets
    that earlier versions cached."""
    blob = f"v{VERSION}|{ckpt_sha}|{data_fp}|{split}|{layer}|{n}{'|stratified-s0' if limited else ''}".encode()
    return hashlib.sha256(blob).hexdigest()[:24]


def _save_atomic(path: Path, **arrays: np.ndarray) -> None:
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez(tmp, **arrays)


def _load(path: Path, key: str) -> FeatureSet | None:
    try:
        with np.load(path) as z:
            shapes = z["shapes"] if "shapes" in z.files else None
            return FeatureSet(z["features"], z["targets"], z["indices"], key, cached=True, shapes=shapes)
    except Exception as e:  # a truncated or foreign file is recomputed, never trusted
        log.warning("feature cache %s unreadable (%s); recomputing", path, type(e).__name__)
        return None


def check_fits(model: nn.Module, meta: CheckpointMeta, source: Any, ckpt: Path | str, data: Path | str) -> None:
    """One clear FeatureError if the backbone cannot take the dataset's images."""
    size = getattr(source, "image_size", None)
    if not size:
        raise FeatureError(f"{data}: image size unknown; pass image_size for file datasets")
    try:
        check_image_size(model, meta.backbone.name, int(size))
    except ValueError as e:
        raise FeatureError(f"{ckpt} on {data}: {e}") from e
    if len(meta.data.mean) != 3:
        raise FeatureError(f"{ckpt}: trained on {len(meta.data.mean)}-channel data, "
                           f"{data} has 3-channel RGB images")


@torch.no_grad()
def compute(model: nn.Module, meta: CheckpointMeta, source: Any, layer: str, n: int | np.ndarray,
            batch_size: int = 256, device: str = "cpu", progress: bool = True, desc: str = "features"
            ) -> tuple[np.ndarray, np.ndarray | None]:
    """Features (N, D) of images ``n`` of ``source`` (an index array, or an int: the first ``n``),
    normalised with the checkpoint's
    mean / std, in the layer's dtype; and the (K, 3) map shapes of a multi-map layer (else None).
    A ``model`` from ``load_backbone`` applies the checkpoint's ``input_transform`` itself."""
    fn = LAYERS[layer]
    mean = torch.tensor(meta.data.mean, device=device).view(1, 3, 1, 1)
    std = torch.tensor(meta.data.std, device=device).view(1, 3, 1, 1)
    out, shapes = [], None
    idx = np.arange(n) if isinstance(n, (int, np.integer)) else np.asarray(n)
    for s in tqdm(range(0, len(idx), batch_size), desc=desc, disable=not progress, leave=False):
        x = source.read(idx[s:s + batch_size]).to(device).float().div_(255)
        y = fn(model, (x - mean) / std)
        if isinstance(y, (list, tuple)):
            shapes = np.array([m.shape[1:] for m in y], dtype=np.int64)
            y = torch.cat([m.flatten(1) for m in y], 1)
        out.append(y.flatten(1).float().cpu().numpy().astype(LAYER_DTYPES[layer]))
        STATS["forward_batches"] += 1
    return np.concatenate(out), shapes


def dense_maps(fs: FeatureSet) -> list[torch.Tensor]:
    """The maps of a ``dense`` FeatureSet: a list of (N, C_i, h_i, w_i) float32, finest first."""
    if fs.shapes is None:
        raise FeatureError("these features carry no map shapes (not the 'dense' layer)")
    sizes = [int(np.prod(s)) for s in fs.shapes]
    if sum(sizes) != fs.features.shape[1]:
        raise FeatureError(f"dense features of width {fs.features.shape[1]} do not hold maps {fs.shapes.tolist()}")
    flat = torch.from_numpy(fs.features.astype(np.float32))
    return [part.reshape(len(flat), *map(int, s)) for part, s in zip(flat.split(sizes, 1), fs.shapes)]


def extract(ckpt: Path | str, data: Path | str, split: str, *, layer: str = "pool", limit: int | None = None,
            cache_dir: Path | str | None = DEFAULT_CACHE, batch_size: int = 256, device: str = "cpu",
            image_size: int | None = None, progress: bool = True, skip_unreadable: bool = False) -> FeatureSet:
    """The :class:`FeatureSet` of ``split`` of ``data`` under checkpoint ``ckpt`` (``limit`` images
    drawn class-stratified with seed 0, their positions in ``indices``; all by default), from the
    cache when present; computed and stored atomically otherwise.

    Raises FeatureError for an unknown layer, an empty split, or a dataset the backbone cannot take;
    CheckpointError (from ``load_backbone``) for a file that is not an sslbench checkpoint.
    """
    if layer not in LAYERS:
        raise FeatureError(f"unknown layer {layer!r}; valid: {', '.join(LAYERS)}")
    source = open_source(data, image_size=image_size, split=split, skip_unreadable=skip_unreadable)
    return extract_source(ckpt, source, dataset_fingerprint(source), split, layer=layer, limit=limit,
                          cache_dir=cache_dir, batch_size=batch_size, device=device, progress=progress, name=str(data))


def extract_source(ckpt: Path | str, source: Any, fingerprint: str, split: str, *, layer: str = "pool",
                   limit: int | None = None, cache_dir: Path | str | None = DEFAULT_CACHE, batch_size: int = 256,
                   device: str = "cpu", progress: bool = True, name: str = "") -> FeatureSet:
    """:func:`extract` for any image source (``read(idx)`` -> (B, 3, H, W) uint8, ``targets``,
    ``image_size``, ``len``) cached under ``fingerprint`` (a content hash of what it reads), e.g.
    the real invariance benchmarks' crops (``invariance.run``)."""
    if layer not in LAYERS:
        raise FeatureError(f"unknown layer {layer!r}; valid: {', '.join(LAYERS)}")
    name = name or fingerprint
    idx = stratified_subset(np.asarray(source.targets), limit, seed=0)
    n = len(idx)
    if n == 0:
        raise FeatureError(f"{name}: split {split!r} is empty")
    key = feature_key(file_sha256(ckpt), fingerprint, split, layer, n, limited=n < len(source))
    path = Path(cache_dir) / f"{key}.npz" if cache_dir is not None else None
    if path is not None and path.exists() and (hit := _load(path, key)) is not None:
        STATS["cache_hits"] += 1
        return hit
    model, meta = load_backbone(ckpt, device=device)
    check_fits(model, meta, source, ckpt, name)
    log.info("extracting %s features of %s/%s (%d images) with %s", layer, name, split, n, ckpt)
    feats, shapes = compute(model, meta, source, layer, idx, batch_size, device, progress, f"features {split}")
    targets = np.asarray(source.targets, dtype=np.int64)[idx]
    idx = idx.astype(np.int64)
    STATS["extractions"] += 1
    if path is not None:
        extra = {} if shapes is None else {"shapes": shapes}
        _save_atomic(path, features=feats, targets=targets, indices=idx, **extra)
    return FeatureSet(feats, targets, idx, key, shapes=shapes)


__all__ = ["FeatureSet", "FeatureError", "LAYERS", "STATS", "extract", "extract_source", "dense_maps", "pyramid",
           "file_sha256",
           "dataset_fingerprint"]
