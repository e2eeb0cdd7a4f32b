"""Finetuning label-efficiency curves: pretrained backbone vs the same architecture from scratch.

Newell & Deng, "How Useful is Self-Supervised Pretraining for Visual Tasks?", CVPR 2020 (arXiv
2003.14323): for a sweep of labelled-set sizes and several seeds, finetune the pretrained backbone
(all layers) with a fresh linear classifier, and train the same architecture from a random
initialisation with the same schedule; the two curves give the label savings
(``evaluate.utility``).

- Labelled subsets are class-balanced and nested: for one seed, the 100-image subset is inside
  the 250-image one, so the curve moves only with the size.
- The from-scratch curve reaches further than the finetuned one (sec. 3: the utility at n labels
  is the number of labels scratch needs to match the pretrained accuracy at n, over n, minus 1, so
  the scratch curve must be measured where it can reach that accuracy): besides ``sizes`` it is
  trained at ``scratch_factors`` times the largest size and at ``scratch_sizes``
  (:func:`scratch_label_counts`). Measured only up to the largest finetuned size, the utility there
  is <= 0 or not measurable by construction.
- The schedule depends only on the subset size: ``steps(n) = max(ceil(epochs * n / batch),
  min_steps)`` SGD steps (momentum 0.9, nesterov) with a linear warm-up and a cosine decay, for
  pretrained and scratch alike: a fixed number of epochs with a floor, so that no size is cut
  short. ``max_steps`` (0: none) is an opt-in ceiling for quick runs: recorded in the stored
  eval config with the steps of every size (:func:`step_plan`), and warned about where it cuts.
- Augmentation is batched on tensors: a random resized crop (scale ``crop_scale``) and a flip.

    curves = label_efficiency("runs/x/ckpt.pt", "data/shapes64", FinetuneConfig(sizes=(100, 1000)))
    curves["pretrained"][100]  -> [acc seed 0, acc seed 1]   (percent, test split)
    curves["scratch"][2000]    -> scratch only: 2 x the largest size (``scratch_factors``)
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
from imagedata.subsets import balanced_subset, stratified_subset
from measure.features import FeatureError, check_fits
from pretrain.augment.ops import hflip, random_resized_crop
from pretrain.augment.input_transforms import InputTransformed, with_input_transform
from pretrain.backbones import build_backbone
from pretrain.checkpoint import load_backbone

log = logging.getLogger(__name__)

ALL = 0  # a label count of 0: the whole labelled training split


@dataclass
class FinetuneConfig:
    """Label-efficiency settings. ``sizes``: labelled training images per finetuning run (0 = the
    whole split); ``scratch_factors``: the from-scratch curve also runs at these multiples of the
    largest size (each > 1; capped at the split), and at ``scratch_sizes`` (0 = the whole split);
    ``epochs`` / ``min_steps``: the schedule (:func:`schedule_steps`); ``schedule``: a key of
    ``SCHEDULES`` ("epochs": those settings; "newell-deng": the utility paper's own); ``max_steps``: an opt-in
    ceiling on steps per run (0 = none); ``target``: a ``labels.csv`` column of integer classes
    (``class`` or ``pose_bin``)."""

    sizes: tuple[int, ...] = (100, 500, 1000)
    scratch_factors: tuple[float, ...] = (2.0,)   # utility at the largest size measured up to 1 (docs/evaluate.md)
    scratch_sizes: tuple[int, ...] = ()
    seeds: tuple[int, ...] = (0, 1)
    epochs: float = 20.0
    min_steps: int = 100
    schedule: str = "epochs"
    max_steps: int = 0
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
    skip_unreadable: bool = False
    device: str = "cpu"


def check_config(cfg: FinetuneConfig) -> None:
    """ValueError naming the setting when ``cfg`` cannot give a label-efficiency curve."""
    if not cfg.sizes or not cfg.seeds:
        raise ValueError("finetune: sizes and seeds must be non-empty")
    if any(f <= 1 for f in cfg.scratch_factors):
        raise ValueError(f"finetune: scratch_factors {list(cfg.scratch_factors)}: each must be > 1 (the scratch "
                         "curve extends beyond the largest finetuned size)")
    if cfg.schedule not in SCHEDULES:
        raise ValueError(f"finetune: unknown schedule {cfg.schedule!r}; valid: {', '.join(SCHEDULES)}")
    if cfg.epochs <= 0 or cfg.min_steps < 1 or cfg.max_steps < 0 or cfg.batch_size < 1:
        raise ValueError(f"finetune: need epochs > 0, min_steps >= 1, max_steps >= 0 (0: no ceiling), batch_size "
                         f">= 1; got {cfg.epochs}, {cfg.min_steps}, {cfg.max_steps}, {cfg.batch_size}")


def _resolve(n: int, available: int | None) -> int:
    """A configured label count as run: 0 or more than ``available`` labelled images -> all of them
    (``ALL`` while ``available`` is unknown)."""
    if available is None:
        return max(n, ALL)
    return available if n <= 0 or n > available else n


def _ascending(counts: set[int]) -> list[int]:
    return sorted(counts, key=lambda n: (n == ALL, n))          # ALL (the whole split) is the largest


def pretrained_label_counts(cfg: FinetuneConfig, available: int | None = None) -> list[int]:
    """The finetuned curve's label counts, ascending (``available``: labelled training images;
    None keeps 0 as ``ALL``)."""
    return _ascending({_resolve(n, available) for n in cfg.sizes})


def scratch_label_counts(cfg: FinetuneConfig, available: int | None = None) -> list[int]:
    """The from-scratch curve's label counts, ascending: the finetuned ones, ``ceil(f * largest)``
    for each ``f`` in ``scratch_factors`` and ``scratch_sizes``, each capped at the split (Newell &
    Deng, CVPR 2020, sec. 3: the scratch curve must reach the pretrained accuracy to measure the
    labels it needs)."""
    counts = pretrained_label_counts(cfg, available)
    top = counts[-1]
    extra = [ALL if top == ALL else math.ceil(f * top) for f in cfg.scratch_factors] + list(cfg.scratch_sizes)
    return _ascending(set(counts) | {_resolve(n, available) for n in extra})


def epoch_steps(n: int, cfg: FinetuneConfig) -> int:
    """``epochs`` passes over ``n`` images at ``batch_size``, at least ``min_steps``."""
    return max(math.ceil(cfg.epochs * n / cfg.batch_size), cfg.min_steps)


def newell_deng_steps(n: int, cfg: FinetuneConfig) -> int:
    """The finetuning length of Newell & Deng (arXiv 2003.14323; princeton-vl/selfstudy): 200
    "epochs" below 20 000 labels, 600 from there (``config/grid_search.py``), an epoch being the
    labelled subset tiled to at least 10 000 samples (20 000 for 4000 labels) and at most 50 000
    (``datasets/base.py``, ``util/data.py``): a fixed schedule, not early stopping. Steps at
    ``batch_size``, at least ``min_steps``."""
    epochs = 200 if n < 20000 else 600
    per_epoch = min(max(n, 20000 if n == 4000 else 10000), 50000)
    return max(math.ceil(epochs * per_epoch / cfg.batch_size), cfg.min_steps)


# finetuning schedules by name: SGD steps for n labelled images
SCHEDULES = {"epochs": epoch_steps, "newell-deng": newell_deng_steps}


def _uncapped_steps(n: int, cfg: FinetuneConfig) -> int:
    return SCHEDULES[cfg.schedule](n, cfg)


def schedule_steps(n: int, cfg: FinetuneConfig) -> int:
    """SGD steps for ``n`` labelled images: ``epochs`` passes at ``batch_size``, at least
    ``min_steps``; at most ``max_steps`` only where that opt-in ceiling is set (> 0)."""
    steps = _uncapped_steps(n, cfg)
    return min(steps, cfg.max_steps) if cfg.max_steps > 0 else steps


def epochs_run(n: int, cfg: FinetuneConfig) -> float:
    """Passes over ``n`` labelled images that ``schedule_steps(n)`` makes."""
    return schedule_steps(n, cfg) * min(cfg.batch_size, n) / n


def step_plan(cfg: FinetuneConfig, available: int | None = None) -> dict[str, dict[str, int | None]]:
    """SGD steps per label count of each curve, ``{"pretrained": {"100": 100, ...}, "scratch":
    {...}}`` (keys are text, as in a stored eval config); the whole split (``ALL``, while
    ``available`` is unknown) is ``"all": None``, its steps being epochs x its size / batch."""
    def steps(counts: list[int]) -> dict[str, int | None]:
        return {("all" if n == ALL else str(n)): (None if n == ALL else schedule_steps(n, cfg)) for n in counts}
    return {"pretrained": steps(pretrained_label_counts(cfg, available)),
            "scratch": steps(scratch_label_counts(cfg, available))}


def _warn_plan(cfg: FinetuneConfig, kinds: tuple[str, ...], available: int) -> None:
    """Say where the opt-in ceiling cuts a schedule and where the scratch curve cannot reach beyond
    the finetuned one (the largest size is the whole split)."""
    counts = scratch_label_counts(cfg, available) if "scratch" in kinds else pretrained_label_counts(cfg, available)
    cut = [n for n in counts if schedule_steps(n, cfg) < _uncapped_steps(n, cfg)]
    if cut:
        log.warning("finetune: max_steps=%d cuts the schedule at %s labels (%s epochs instead of %g)", cfg.max_steps,
                    ", ".join(map(str, cut)), ", ".join(f"{epochs_run(n, cfg):.2f}" for n in cut), cfg.epochs)
    top = pretrained_label_counts(cfg, available)[-1]
    if "scratch" in kinds and scratch_label_counts(cfg, available)[-1] <= top:
        log.warning("finetune: the scratch curve ends at the largest finetuned size (%d labels, of %d): the utility "
                    "there can only be a bound", top, available)


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


def _split(data: Path | str, split: str, column: str, limit: int = 0, image_size: int | None = None,
           skip_unreadable: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images and int64 targets of the labelled images of a split (``limit`` of them drawn
    class-stratified with seed 0: the same test set for every checkpoint)."""
    source = open_source(data, image_size=image_size, split=split, skip_unreadable=skip_unreadable)
    y = _targets(source, column)
    keep = np.flatnonzero(y >= 0)
    if limit:
        keep = keep[stratified_subset(y[keep], limit, seed=0)]
    if keep.size == 0:
        raise FeatureError(f"{data}: split {split!r} has no {column!r} labels")
    return source.read(keep), torch.from_numpy(y[keep])


KINDS = ("pretrained", "scratch")


def _counts_by_kind(cfg: FinetuneConfig, kinds: tuple[str, ...], available: int) -> dict[str, list[int]]:
    return {k: (scratch_label_counts if k == "scratch" else pretrained_label_counts)(cfg, available) for k in kinds}


def label_efficiency(ckpt: Path | str, data: Path | str, cfg: FinetuneConfig | None = None,
                     kinds: tuple[str, ...] = KINDS,
                     image_size: int | None = None) -> dict[str, dict[int, list[float]]]:
    """Test accuracies (percent) per labelled-set size, one per seed, of the finetuned checkpoint
    (``"pretrained"``, at :func:`pretrained_label_counts`) and of the same architecture trained
    from random weights with the same schedule (``"scratch"``, at :func:`scratch_label_counts`:
    beyond the largest finetuned size, Newell & Deng, CVPR 2020, sec. 3), for each kind in
    ``kinds``. Size 0 (or one above the split) is reported as the number of labelled images.
    ``image_size``: decoding size of image-file datasets."""
    cfg = cfg or FinetuneConfig()
    check_config(cfg)
    bad = [k for k in kinds if k not in KINDS]
    if bad or not kinds:
        raise ValueError(f"unknown finetuning kind(s) {bad or '(none)'}; valid: {', '.join(KINDS)}")
    model, meta = load_backbone(ckpt)
    train_src = open_source(data, image_size=image_size, split=cfg.train_split, skip_unreadable=cfg.skip_unreadable)
    check_fits(model, meta, train_src, ckpt, data)
    y_all = _targets(train_src, cfg.target)
    test_x, test_y = _split(data, cfg.test_split, cfg.target, cfg.test_limit, image_size, cfg.skip_unreadable)
    num_classes = int(max(y_all.max(), int(test_y.max())) + 1)
    labelled = np.flatnonzero(y_all >= 0)
    if labelled.size == 0:
        raise FeatureError(f"{data}: split {cfg.train_split!r} has no {cfg.target!r} labels")
    norm = tuple(torch.tensor(v, device=cfg.device).view(1, 3, 1, 1) for v in (meta.data.mean, meta.data.std))
    bare = model.backbone if isinstance(model, InputTransformed) else model
    state = {k: v.clone() for k, v in bare.state_dict().items()}
    spec = meta.backbone
    counts = _counts_by_kind(cfg, kinds, labelled.size)
    _warn_plan(cfg, kinds, labelled.size)
    out: dict[str, dict[int, list[float]]] = {k: {} for k in kinds}
    for n in sorted(set().union(*counts.values())):
        for seed in cfg.seeds:
            rows = balanced_subset(y_all, n, seed)
            x, y = train_src.read(rows), torch.from_numpy(y_all[rows])
            for kind in (k for k in kinds if n in counts[k]):
                torch.manual_seed(seed)
                backbone = build_backbone(spec.name, **spec.kwargs)
                if kind == "pretrained":                   # behind its input transform (scratch: plain images)
                    backbone.load_state_dict(state, strict=True)
                    backbone = with_input_transform(backbone, meta.input_transform, meta.data.mean, meta.data.std)
                net = Classifier(backbone, num_classes, cfg.head_norm).to(cfg.device)
                train_classifier(net, x, y, norm, cfg, seed, desc=f"{kind} n={n} seed={seed}")
                acc = accuracy(net, test_x, test_y, norm, cfg.device)
                log.info("%s n=%d seed=%d (%d steps): %.2f%%", kind, n, seed, schedule_steps(n, cfg), acc)
                out[kind].setdefault(n, []).append(acc)
    return out


__all__ = ["ALL", "KINDS", "FinetuneConfig", "Classifier", "check_config", "pretrained_label_counts",
           "scratch_label_counts", "schedule_steps", "epochs_run", "step_plan", "train_classifier", "accuracy",
           "label_efficiency"]
