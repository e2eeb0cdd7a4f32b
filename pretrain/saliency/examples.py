"""Saliency examples for the reports: images, their HC and RC maps, the salient-object mask that
``sgd`` cuts from the RC map (its default rule, SaliencyCut: the cached ``rc-cut`` masks), and the
views the saliency policies make of them (``python -m pretrain.saliency examples``).

The views come from the registered policies themselves (``pretrain.augment.build_policy``) on a
batch of the dataset's first images, bound to the dataset as in training (its saliency cache and
pixel statistics), so the report shows what pretraining sees:

- ``sgd-only view`` / ``sgd view``: ``sgd-only`` (the whole image, no other augmentation) and
  ``sgd`` (then the default pipeline) with the object always kept (``seg_p=1``) and the
  background filled black (the saliency-as-augmentation study, Cheng et al. global-contrast RC
  maps);
- ``random-mask`` and ``sal-mask <fill>``: the masked query view of random and saliency-guided
  grid masking with each fill (Chen et al., WACV 2024).

Every array has a leading example axis: uint8 (N, H, W, 3) images, float (N, H, W) maps, bool
(N, H, W) mask, float (N, h, w, 3) views (the highpass views leave [0, 1]).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from fsio import write_bytes_atomic

from ..augment import build_policy
from ..augment.saliency import SaliencyMaps
from ..views import RawBatch

MASK_FILLS = ("highpass", "blur", "mean")


def _views(name: str, batch, data: Path, mean: torch.Tensor, std: torch.Tensor, seed: int, **cfg) -> np.ndarray:
    """The first view of policy ``name`` on ``batch``: float (N, h, w, 3)."""
    policy = build_policy(name, **cfg)
    policy.bind(data, mean, std)
    views = policy(batch, torch.Generator().manual_seed(seed))
    return views.views[0].permute(0, 2, 3, 1).contiguous().numpy()


def saliency_examples(data: Path | str, n: int = 6, seed: int = 0, cache: str | None = None,
                      split: str = "train", image_size: int | None = None) -> dict[str, np.ndarray]:
    """The first ``n`` images of ``data`` (``split``; read at ``image_size``, required for image
    files), their maps and policy views, as ordered columns ``{title: array}`` for
    :func:`reports.plots.saliency_examples`."""
    from imagedata.formats import open_source

    if n < 1:
        raise ValueError(f"saliency examples: n must be at least 1, got {n}")
    data = Path(data)
    source = open_source(data, image_size, split)
    idx = np.arange(min(n, len(source)))
    images = source.read(idx)
    batch = RawBatch(images=images, targets=torch.zeros(len(idx), dtype=torch.long), indices=torch.from_numpy(idx))
    maps = {}
    for algo in ("hc", "rc", "rc-cut"):
        m = SaliencyMaps(algo, None, cache, None)
        m.bind(data)
        maps[algo] = m(images, batch.indices)
    x = images.float().div(255)
    mean, std = x.mean((0, 2, 3)), x.std((0, 2, 3))
    out = {"image": images.permute(0, 2, 3, 1).contiguous().numpy(),
           "HC": maps["hc"][:, 0].numpy(), "RC": maps["rc"][:, 0].numpy(),
           "RC mask": (maps["rc-cut"] > 0.5)[:, 0].numpy()}
    for name in ("sgd-only", "sgd"):
        out[f"{name} view"] = _views(name, batch, data, mean, std, seed, algo="rc", seg_p=1.0, cache=cache)
    out["random-mask"] = _views("random-mask", batch, data, mean, std, seed)
    for fill in MASK_FILLS:
        out[f"sal-mask {fill}"] = _views("sal-mask", batch, data, mean, std, seed, saliency="rc", fill=fill,
                                         cache=cache)
    return out


def write_examples(data: Path | str, out: Path | str, **kwargs) -> Path:
    """:func:`saliency_examples` saved atomically as an npz (columns in order); returns its path."""
    import io

    buffer = io.BytesIO()
    np.savez_compressed(buffer, **saliency_examples(data, **kwargs))
    write_bytes_atomic(out, buffer.getvalue())
    return Path(out)
