"""Rank agreement between evaluation protocols.

Ericsson, Gouk, Hospedales, "How Well Do Self-Supervised Models Transfer?", CVPR 2021, compare
protocols by the rank correlation of the models' scores: do linear probing and finetuning order
the pretrained checkpoints the same way? ``spearman`` is Spearman's rho (average ranks for ties,
the same value as ``scipy.stats.spearmanr``); ``linear_finetune_agreement`` applies it to a table
of checkpoints.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

AGREEMENT_COLUMNS = ("checkpoint", "linear_top1", "finetune_top1")


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of a 1-D array; tied values share the mean of the ranks they span."""
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values), dtype=np.float64)
    sorted_values = values[order]
    start = 0
    for end in range(1, len(values) + 1):
        if end == len(values) or sorted_values[end] != sorted_values[start]:
            ranks[order[start:end]] = (start + end + 1) / 2  # mean of ranks start+1 .. end
            start = end
    return ranks


def _as_scores(values: Sequence[float], name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D sequence of scores, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name}: scores must be finite, got {array.tolist()}")
    return array


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman's rank correlation of two paired score lists (ties get average ranks).

    Equals ``scipy.stats.spearmanr(a, b).statistic``: the Pearson correlation of the ranks.
    Returns nan when either list is constant (the correlation is undefined), as scipy does.
    """
    x, y = _as_scores(a, "a"), _as_scores(b, "b")
    if len(x) != len(y):
        raise ValueError(f"spearman: the score lists differ in length ({len(x)} vs {len(y)})")
    if len(x) < 2:
        raise ValueError(f"spearman: needs at least 2 paired scores, got {len(x)}")
    rx, ry = average_ranks(x), average_ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denom = np.sqrt((rx * rx).sum() * (ry * ry).sum())
    if denom == 0:
        return float("nan")
    return float(np.clip((rx * ry).sum() / denom, -1.0, 1.0))


def linear_finetune_agreement(frame: pd.DataFrame) -> float:
    """Rank correlation between linear-probe and finetuning top-1 over checkpoints.

    ``frame`` has one row per (checkpoint, evaluation) with the columns ``checkpoint``,
    ``linear_top1`` and ``finetune_top1``; several rows of one checkpoint (seeds) are averaged
    first. As in Ericsson et al. (CVPR 2021, sec. 4), 1 means both protocols rank the
    checkpoints identically, -1 reversed. Needs at least 2 distinct checkpoints.
    """
    missing = [c for c in AGREEMENT_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"linear_finetune_agreement: missing columns {missing}; "
                         f"expected {list(AGREEMENT_COLUMNS)}, got {list(frame.columns)}")
    per_ckpt = frame.groupby("checkpoint", sort=True)[["linear_top1", "finetune_top1"]].mean()
    unscored = per_ckpt.index[per_ckpt.isna().any(axis=1)].tolist()
    if unscored:
        raise ValueError(f"linear_finetune_agreement: no linear or finetune score for checkpoints {unscored}")
    if len(per_ckpt) < 2:
        raise ValueError(f"linear_finetune_agreement: needs at least 2 checkpoints, got {len(per_ckpt)}")
    return spearman(per_ckpt["linear_top1"].to_numpy(), per_ckpt["finetune_top1"].to_numpy())
