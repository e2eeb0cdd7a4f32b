"""How well HC / RC salient-object masks match the objects: IoU against ground-truth masks.

The saliency-as-augmentation paper (arXiv 2210.16776) segments the salient object with a
global-contrast map (Cheng et al., "Global Contrast based Salient Region Detection", TPAMI 2015)
and a threshold rule; a rule that cuts the object badly turns the augmentation into noise. The
synthetic data stores each image's semantic mask (``semantic.npy``: 0 background, c + 1 the
object of class c), so every rule can be scored against it:

* ``adaptive``: ``sal > 2 x mean(sal)`` (Achanta et al. 2009; what ``sgd`` used first);
* ``otsu``: Otsu's threshold of the map quantised to 256 levels;
* ``cut``: SaliencyCut (Cheng et al. 2015, sec. 4): GrabCut from the thresholded map, iterated.

``iou_rows`` gives per (algorithm, rule) the mean IoU with its 95 % CI over images, the fraction
of empty masks and the mean foreground fraction of the masks against the truth's.

    python -m pretrain.saliency iou --data data/shapes64-clutter-heldout --limit 1000
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .masks import saliency_cut, saliency_mask

Rule = Callable[[np.ndarray, np.ndarray], np.ndarray]

RULES: dict[str, Rule] = {
    "adaptive": lambda rgb, sal: saliency_mask(sal, "adaptive"),
    "otsu": lambda rgb, sal: saliency_mask(sal, "otsu"),
    "cut": lambda rgb, sal: saliency_cut(rgb, sal),
}


def mask_iou(pred: np.ndarray, truth: np.ndarray) -> float:
    """Intersection over union of two (H, W) bool masks; 1.0 when both are empty."""
    union = int(np.logical_or(pred, truth).sum())
    return 1.0 if union == 0 else int(np.logical_and(pred, truth).sum()) / union


def mean_ci(values: Sequence[float]) -> tuple[float, float]:
    """Mean and half-width of its normal 95 % CI (1.96 standard errors; 0 for one value)."""
    x = np.asarray(values, dtype=np.float64)
    half = 1.96 * x.std(ddof=1) / math.sqrt(len(x)) if len(x) > 1 else 0.0
    return float(x.mean()), float(half)


def score_rule(rule: str, images: np.ndarray, maps: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    """One rule on a set: uint8 images (N, H, W, 3), saliency maps (N, H, W) in [0, 1], truth
    (N, H, W) bool -> {rule, n, iou, iou_ci, empty, fg, fg_truth} (fractions in [0, 1])."""
    if rule not in RULES:
        raise ValueError(f"unknown threshold rule {rule!r}; valid: {', '.join(RULES)}")
    masks = np.stack([RULES[rule](img, sal) for img, sal in zip(images, maps)])
    iou, ci = mean_ci([mask_iou(m, t) for m, t in zip(masks, truth)])
    return {"rule": rule, "n": len(masks), "iou": iou, "iou_ci": ci,
            "empty": float((~masks.reshape(len(masks), -1).any(1)).mean()),
            "fg": float(masks.mean()), "fg_truth": float(truth.mean())}


def iou_rows(images: np.ndarray, truth: np.ndarray, maps: dict[str, np.ndarray],
             rules: Sequence[str] = tuple(RULES)) -> list[dict[str, Any]]:
    """Every (algorithm, rule): ``maps`` is {algorithm: (N, H, W) saliency} of ``images``."""
    return [{"algo": algo, **score_rule(rule, images, m, truth)} for algo, m in maps.items() for rule in rules]


def table(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as Markdown, IoU in percent with its 95 % CI."""
    out = ["| saliency | rule | images | IoU (95 % CI) | empty masks | mask area | object area |",
           "|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['algo']} | {r['rule']} | {r['n']} | {100 * r['iou']:.1f} +- {100 * r['iou_ci']:.1f} | "
                   f"{100 * r['empty']:.1f} % | {100 * r['fg']:.1f} % | {100 * r['fg_truth']:.1f} % |")
    return "\n".join(out)


__all__ = ["RULES", "iou_rows", "mask_iou", "mean_ci", "score_rule", "table"]
