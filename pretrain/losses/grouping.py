"""Semantic-grouping losses of SlotCon (pure functions).

Wen, Zhao, Liu, Qi & Xiao, "Self-Supervised Visual Representation Learning with Semantic
Grouping", NeurIPS 2022 (sec. 3.1-3.2). Assignments are rows of (N, K) logits: N pixels (or
slots), K prototypes. Collectives (the DDP all-reduce of the centre, the all-gather of the slot
keys) are left to the caller.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def semantic_grouping(features: torch.Tensor, prototypes: torch.Tensor, temperature: float = 0.07,
                      eps: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor]:
    """Soft assignment of pixels to prototypes and attentive pooling into slots (eqs. 1, 3).

    features: (B, D, h, w) projected dense features; prototypes: (K, D). Returns
    ``slots`` (B, K, D): per prototype the average of the features weighted by the pixels'
    assignment to it (softmax over the K prototypes at ``temperature``, then normalised over the
    h*w pixels), and ``logits`` (B, K, h, w): the cosine similarities (the grouping loss divides
    them by its own temperatures).
    """
    logits = torch.einsum("kd,bdhw->bkhw", F.normalize(prototypes, dim=1), F.normalize(features, dim=1))
    attn = (logits / temperature).softmax(dim=1) + eps
    attn = attn / attn.sum(dim=(2, 3), keepdim=True)
    return torch.einsum("bdhw,bkhw->bkd", features, attn), logits


def teacher_assignments(logits: torch.Tensor, center: torch.Tensor, temperature: float = 0.07) -> torch.Tensor:
    """DINO-style centred and sharpened teacher probabilities: softmax((logits - center) / T).

    logits: (N, K); center: (1, K). Equals the teacher side of lightly's ``DINOLoss``.
    """
    return F.softmax((logits - center) / temperature, dim=-1)


def batch_center(logits: torch.Tensor) -> torch.Tensor:
    """(N, K) teacher logits -> (1, K) their mean (all-reduce it under DDP before ``ema_center``)."""
    return logits.detach().mean(0, keepdim=True)


def ema_center(center: torch.Tensor, batch: torch.Tensor, momentum: float = 0.9) -> torch.Tensor:
    """The centre's moving average: momentum * center + (1 - momentum) * batch (DINO, eq. 4)."""
    return center * momentum + batch * (1 - momentum)


def grouping_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, center: torch.Tensor,
                  student_temp: float = 0.1, teacher_temp: float = 0.07,
                  weight: torch.Tensor | None = None) -> torch.Tensor:
    """Grouping loss (eq. 2): cross-entropy between the teacher's centred assignments of one view
    and the student's assignments of the other, at the same (aligned) pixel.

    student_logits, teacher_logits: (N, K) rows of the same N pixels; center: (1, K); weight:
    optional (N,) per-row weight (0 masks a row out, e.g. pixels of pairs whose crops do not
    overlap). Returns the weighted mean over rows, 0 (with a graph) when every weight is 0.
    """
    target = teacher_assignments(teacher_logits.detach(), center, teacher_temp)
    ce = -(target * F.log_softmax(student_logits / student_temp, dim=-1)).sum(-1)
    if weight is None:
        return ce.mean()
    return (ce * weight).sum() / weight.sum().clamp_min(1.0)


def slot_contrastive(queries: torch.Tensor, keys: torch.Tensor, pos_index: torch.Tensor,
                     key_mask: torch.Tensor, temperature: float = 0.2) -> torch.Tensor:
    """Slot contrastive loss (eq. 5): InfoNCE between the student's (predicted) slots of one view
    and the teacher's slots of the other; the same image and prototype is the positive, every
    other kept teacher slot a negative.

    queries: (N, D) predictions of the kept student slots; keys: (M, D) all teacher slots
    flattened (M = B * K, gathered over ranks under DDP); key_mask: (M,) bool, the teacher slots
    that are kept (their prototype owns at least one pixel); pos_index: (N,) each query's index
    into the M keys (whose mask must be True). Scaled by 2 * temperature as in the authors' code.
    """
    q = F.normalize(queries, dim=1)
    k = F.normalize(keys.detach()[key_mask], dim=1)
    labels = key_mask.long().cumsum(0)[pos_index] - 1
    return F.cross_entropy(q @ k.T / temperature, labels) * (2 * temperature)
