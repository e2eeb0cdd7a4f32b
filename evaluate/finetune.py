"""Finetuning label-efficiency curves: pretrained backbone vs the same architecture from scratch.

Newell & Deng, "How Useful is Self-Supervised Pretraining for Visual Tasks?", CVPR 2020: for a
sweep of labelled-set sizes and several seeds, finetune the pretrained backbone (all layers) with a
fresh linear classifier, and train the same architecture from a random initialisation with the
same schedule; the two curves give the label savings (``evaluate.utility.calc_utility``).

- Labelled subsets are class-balanced and nested: for one seed, the 100-image subset is inside
  the 250-image one, so the curve moves only with the size.
- The schedule depends only on the subset size: ``steps(n) = clip(ceil(epochs * n / batch),
  min_steps, max_steps)`` SGD steps (momentum 0.9, nesterov) with a linear warm-up and a cosine
  decay, for pretrained and scratch alike.
- Augmentation is batched on tensors: a random resized crop (scale ``crop_scale``) and a flip.

    curves = label_efficiency("runs/x/ckpt.pt", "data/shapes64", FinetuneConfig(sizes=(100, 1000)))
    curves["pretrained"][100]  -> [acc seed 0, acc seed 1]   (percent, test split)
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as nnf
from torch import nn
from tqdm import tqdm

from imagedata.formats import open_source
from imagedata.subsets import balanced_subset
from measure.features import FeatureError, check_fits
from pretrain.augment.ops import hflip, random_resized_crop
from pretrain.backbones import build_backbone
from pretrain.checkpoint import load_backbone

log = logging.getLogger(__name__)


@dataclass
class FinetuneConfig:
    """Label-efficiency settings. ``sizes``: labelled training images per run (0 = the whole
    split); ``target``: a ``labels.csv`` column of integer classes (``class`` or ``pose_bin``)."""

    sizes: tuple[int, ...] = (100, 500, 2000)
    seeds: tuple[int, ...] = (0, 1)
    epochs: float = 20.0
    min_steps: int = 100
    max_steps: int = 400
    batch_size: int = 64
    lr: float = 0.05
    weight_decay: float = 5e-4
    warmup_frac: float = 0.05
    crop_scale: tuple[float, float] = (0.6, 1.0)
    test_limit: int = 2000
    target: str = "class"
    head_norm: bool = True
    train_split: str = "train"
    test_split: str = "test"
    device: str = "cpu"


def schedule_steps(n: int, cfg: FinetuneConfig) -> int:
    """SGD steps for ``n`` labelled images: ``epochs`` passes, clipped to [min_steps, max_steps]."""
    steps = math.ceil(cfg.epochs * n / cfg.batch_size)
    return int(min(max(steps, cfg.min_steps), cfg.max_steps or steps))


def _targets(source: Any, column: str) -> np.ndarray:
    """Integer targets of a split: ``class`` from the source, other columns from ``labels.csv``."""
    if column == "class":
        return np.asarray(source.targets, dtype=np.int64)
    labels = getattr(getattr(source, "dataset", None), "labels", None)
    if labels is None or column not in labels:
        raise FeatureError(f"{getattr(source, 'root', source)}: no {column!r} labels (labels.csv column)")
    return labels[column].to_numpy()[source.indices].astype(np.int64)


class Classifier(nn.Module):
    """Backbone (pooled features) + a linear layer: (B, 3, H, W) -> (B, num_classes) logits.

    ``head_norm``: a BatchNorm1d without affine parameters between the pooled features and the
    linear layer (as in MAE's and MoCo v3's linear protocols, He et al. 2022, Chen et al. 2021), so
    the head sees unit-scale features whatever scale a pretraining method left them at; without
    it a backbone whose pooled features are 50x smaller than a random one's (rotation prediction)
    starts from near-zero logits and the comparison measures that scale, not the features."""

    def __init__(self, backbone: nn.Module, num_classes: int, head_norm: bool = True) -> None:
        super().__init__()
        self.backbone = backbone
        self.norm = nn.BatchNorm1d(backbone.num_features, affine=False) if head_norm else nn.Identity()
        self.head = nn.Linear(backbone.num_features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm(self.backbone(x)))


def _lr_at(step: int, total: int, cfg: FinetuneConfig) -> float:
    warm = max(1, int(cfg.warmup_frac * total))
    if step < warm:
        return cfg.lr * (step + 1) / warm
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))


def _augment(x: torch.Tensor, cfg: FinetuneConfig, gen: torch.Generator) -> torch.Tensor:
    """Batched random resized crop (back to the input size) + horizontal flip; x (B, 3, H, W)."""
    x, _ = random_resized_crop(x, x.shape[-1], scale=cfg.crop_scale, gen=gen)
    return hflip(x, 0.5, gen)[0]


def train_classifier(model: Classifier, images: torch.Tensor, targets: torch.Tensor, norm: tuple[torch.Tensor, ...],
                     cfg: FinetuneConfig, seed: int, desc: str = "finetune") -> Classifier:
    """Train every parameter of ``model`` on uint8 ``images`` (N, 3, H, W) with int64 ``targets``
    (N,) for ``schedule_steps(N)`` steps; returns the model in eval mode."""
    gen = torch.Generator().manual_seed(seed)
    total = schedule_steps(len(images), cfg)
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    rest = [p for n, p in model.named_parameters() if p.ndim <= 1]
    opt = torch.optim.SGD([{"params": decay, "weight_decay": cfg.weight_decay}, {"params": rest, "weight_decay": 0.0}],
                          lr=cfg.lr, momentum=0.9, nesterov=True)
    mean, std = norm
    batch = min(cfg.batch_size, len(images))
    model.train()
    perm, pos = torch.randperm(len(images), generator=gen), 0
    for step in tqdm(range(total), desc=desc, leave=False, disable=not log.isEnabledFor(logging.INFO)):
        if pos + batch > len(perm):
            perm, pos = torch.randperm(len(images), generator=gen), 0
        idx = perm[pos:pos + batch]
        pos += batch
        x = _augment(images[idx].to(cfg.device).float().div_(255), cfg, gen)
        loss = nnf.cross_entropy(model((x - mean) / std), targets[idx].to(cfg.device))
        if not torch.isfinite(loss):
            raise FloatingPointError(f"{desc}: loss became {loss.item()} at step {step} of {total}")
        for g in opt.param_groups:
            g["lr"] = _lr_at(step, total, cfg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return model.eval()


@torch.no_grad()
def accuracy(model: nn.Module, images: torch.Tensor, targets: torch.Tensor, norm: tuple[torch.Tensor, ...],
             device: str = "cpu", batch_size: int = 256) -> float:
    """Top-1 accuracy (percent) of ``model`` on uint8 images (N, 3, H, W)."""
    mean, std = norm
    correct = 0
    for s in range(0, len(images), batch_size):
        x = images[s:s + batch_size].to(device).float().div_(255)
        correct += int((model((x - mean) / std).argmax(1).cpu() == targets[s:s + batch_size]).sum())
    return 100.0 * correct / max(1, len(images))


def _split(data: Path | str, split: str, column: str, limit: int = 0,
           image_size: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images and int64 targets of the labelled images of a split (the first ``limit``)."""
    source = open_source(data, image_size=image_size, split=split)
    y = _targets(source, column)
    keep = np.flatnonzero(y >= 0)
    if limit:
        keep = keep[:limit]
    if keep.size == 0:
        raise FeatureError(f"{data}: split {split!r} has no {column!r} labels")
    return source.read(keep), torch.from_numpy(y[keep])


KINDS = ("pretrained", "scratch")


def label_efficiency(ckpt: Path | str, data: Path | str, cfg: FinetuneConfig | None = None,
                     kinds: tuple[str, ...] = KINDS,
                     image_size: int | None = None) -> dict[str, dict[int, list[float]]]:
    """Test accuracies (percent) per labelled-set size, one per seed, of the finetuned checkpoint
    (``"pretrained"``) and of the same architecture trained from random weights with the same
    schedule (``"scratch"``), for each kind in ``kinds``. Size 0 (or one above the split) is
    reported as the number of labelled images. ``image_size``: decoding size of image-file datasets."""
    cfg = cfg or FinetuneConfig()
    bad = [k for k in kinds if k not in KINDS]
    if bad or not kinds:
        raise ValueError(f"unknown finetuning kind(s) {bad or '(none)'}; valid: {', '.join(KINDS)}")
    model, meta = load_backbone(ckpt)
    train_src = open_source(data, image_size=image_size, split=cfg.train_split)
    check_fits(model, meta, train_src, ckpt, data)
    y_all = _targets(train_src, cfg.target)
    test_x, test_y = _split(data, cfg.test_split, cfg.target, cfg.test_limit, image_size)
    num_classes = int(max(y_all.max(), int(test_y.max())) + 1)
    labelled = np.flatnonzero(y_all >= 0)
    if labelled.size == 0:
        raise FeatureError(f"{data}: split {cfg.train_split!r} has no {cfg.target!r} labels")
    norm = tuple(torch.tensor(v, device=cfg.device).view(1, 3, 1, 1) for v in (meta.data.mean, meta.data.std))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    spec = meta.backbone
    out: dict[str, dict[int, list[float]]] = {k: {} for k in kinds}
    sizes = sorted({labelled.size if size <= 0 or size > labelled.size else size for size in cfg.sizes})
    for n in sizes:
        for seed in cfg.seeds:
            rows = balanced_subset(y_all, n, seed)
            x, y = train_src.read(rows), torch.from_numpy(y_all[rows])
            for kind in out:
                torch.manual_seed(seed)
                backbone = build_backbone(spec.name, **spec.kwargs)
                if kind == "pretrained":
                    backbone.load_state_dict(state, strict=True)
                net = Classifier(backbone, num_classes, cfg.head_norm).to(cfg.device)
                train_classifier(net, x, y, norm, cfg, seed, desc=f"{kind} n={n} seed={seed}")
                acc = accuracy(net, test_x, test_y, norm, cfg.device)
                log.info("%s n=%d seed=%d: %.2f%%", kind, n, seed, acc)
                out[kind].setdefault(n, []).append(acc)
    return out


__all__ = ["KINDS", "FinetuneConfig", "Classifier", "schedule_steps", "train_classifier", "accuracy",
           "label_efficiency"]
