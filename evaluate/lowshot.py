"""Low-shot linear probes: k labelled images per class, several class-balanced draws (pure functions).

Where random features are weakest: with 1, 10 or 100 labels per class a linear classifier can only
use directions that already separate the classes, so the gap between a learnt representation and
random init is widest here (the low-shot evaluations of Goyal et al., "Scaling and Benchmarking
Self-Supervised Visual Representation Learning", ICCV 2019, and of Assran et al., "Masked Siamese
Networks", ECCV 2022: 1 / 2 / 5 images per class on ImageNet, several draws).

Protocol: the features are standardised with the mean and std of the whole training split (label
free, so one k-shot draw does not estimate them from k images per class); for each k and each draw
d, ``balanced_subset`` picks k training images of every class with seed d, and a multinomial
logistic regression at a fixed C (``evaluate.linear``; no held-out search: one image per class
leaves nothing to hold out) is scored on the whole test split. The draws are evaluation seeds: a
report averages them inside one pretraining before it compares pretrainings.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from imagedata.subsets import balanced_subset

from .linear import LinearConfig, linear_probe


@dataclass(frozen=True)
class LowShotConfig:
    """shots: labelled training images per class; draws: class-balanced draws per size (seeds 0 ..
    draws - 1); c: the fixed inverse L2 strength of the probe (scikit-learn's C)."""

    shots: tuple[int, ...] = (1, 10, 100)
    draws: int = 5
    c: float = 1.0


def check_config(cfg: LowShotConfig) -> None:
    """ValueError naming the setting for non-positive sizes or draws."""
    if not cfg.shots or min(cfg.shots) < 1:
        raise ValueError(f"low-shot sizes must be positive labels per class, got {list(cfg.shots)}")
    if cfg.draws < 1:
        raise ValueError(f"low-shot draws must be at least 1, got {cfg.draws}")
    if cfg.c <= 0:
        raise ValueError(f"low-shot C must be positive, got {cfg.c}")


def smallest_class(targets: np.ndarray) -> tuple[int, int]:
    """(class, count) of the labelled class (targets >= 0) with the fewest examples."""
    labels, counts = np.unique(targets[targets >= 0], return_counts=True)
    if labels.size < 2:
        raise ValueError(f"low-shot probes need at least 2 labelled classes, got {labels.size}")
    i = int(np.argmin(counts))
    return int(labels[i]), int(counts[i])


def per_class_draw(targets: np.ndarray, shots: int, seed: int) -> np.ndarray:
    """Sorted indices of exactly ``shots`` labelled examples of every class, drawn with ``seed``;
    ValueError if some class has fewer."""
    label, count = smallest_class(targets)
    if shots > count:
        raise ValueError(f"low-shot size {shots} labels per class exceeds the smallest class "
                         f"(class {label} has {count} labelled training images)")
    classes = np.unique(targets[targets >= 0]).size
    return balanced_subset(targets, shots * classes, seed)


def _standardised(train_x: np.ndarray, test_x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean, std = train_x.mean(0), train_x.std(0)
    std = np.where(std > 0, std, 1.0)
    return (train_x - mean) / std, (test_x - mean) / std


def low_shot_probe(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
                   cfg: LowShotConfig = LowShotConfig()) -> dict[int, list[float]]:
    """Top-1 accuracy (%) on the test split per size k (labels per class) and draw: {k: [draw 0, ...]}.

    train_x (N, D) / train_y (N,) with -1 for unlabelled rows (ignored); test_x (M, D) / test_y (M,).
    ValueError if a size exceeds the smallest class (see :func:`per_class_draw`).
    """
    check_config(cfg)
    train_x, test_x = _standardised(np.asarray(train_x, np.float32), np.asarray(test_x, np.float32))
    train_y, test_y = np.asarray(train_y), np.asarray(test_y)
    probe = LinearConfig(c_grid=(cfg.c,), standardize=False)
    out: dict[int, list[float]] = {}
    for k in cfg.shots:
        out[k] = []
        for draw in range(cfg.draws):
            rows = per_class_draw(train_y, k, draw)
            out[k].append(float(linear_probe(train_x[rows], train_y[rows], test_x, test_y, probe)["top1"]))
    return out
