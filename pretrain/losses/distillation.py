"""Losses of the ViT-era methods: DINO's self-distillation and MoCo v3's in-batch contrast.

Pure functions of logits / embeddings; the collectives (gathering keys, all-reducing the centre)
stay in the methods, through ``pretrain.distributed``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def dino_loss(student: list[torch.Tensor], teacher: list[torch.Tensor], center: torch.Tensor,
              student_temp: float = 0.1, teacher_temp: float = 0.04) -> torch.Tensor:
    """DINO's cross-entropy between the centred, sharpened teacher and the student (Caron et al.,
    "Emerging Properties in Self-Supervised Vision Transformers", ICCV 2021, Algorithm 1 and
    ``DINOLoss`` in facebookresearch/dino main_dino.py).

    student: one (B, K) logit tensor per view (global views first, then local ones); teacher: one
    (B, K) per global view; center (1, K). Each teacher view t_i = softmax((g_i - center) /
    teacher_temp) is the target of every student view s_v = log_softmax(s_v / student_temp) with
    v != i; the loss is the mean over those pairs of mean_b sum_k -t_i log s_v.
    """
    targets = [F.softmax((t - center) / teacher_temp, dim=-1).detach() for t in teacher]
    logs = [F.log_softmax(s / student_temp, dim=-1) for s in student]
    total, pairs = student[0].new_zeros(()), 0
    for i, t in enumerate(targets):
        for v, s in enumerate(logs):
            if v == i:
                continue
            total = total + torch.sum(-t * s, dim=-1).mean()
            pairs += 1
    return total / pairs


@torch.no_grad()
def dino_center(center: torch.Tensor, batch_mean: torch.Tensor, momentum: float = 0.9) -> torch.Tensor:
    """The teacher centre's EMA: c <- m c + (1 - m) mean_b g (``DINOLoss.update_center``); batch_mean
    (1, K) is the mean teacher logit over the (global) batch and both global views."""
    return center * momentum + batch_mean * (1 - momentum)


def mocov3_contrastive(q: torch.Tensor, k: torch.Tensor, temperature: float = 0.2, offset: int = 0) -> torch.Tensor:
    """MoCo v3's InfoNCE over the batch (Chen, Xie & He, "An Empirical Study of Training
    Self-Supervised Vision Transformers", ICCV 2021, Algorithm 1; ``MoCo.contrastive_loss`` in
    facebookresearch/moco-v3 moco/builder.py): q (B, D) queries of this process, k (N, D) keys of
    the whole batch (N = B x processes, this process's at ``offset``); both L2-normalised here;
    cross-entropy of q k^T / T against the matching key, scaled by 2T as the authors do."""
    q, k = F.normalize(q, dim=1), F.normalize(k, dim=1)
    logits = q @ k.t() / temperature
    labels = torch.arange(q.shape[0], device=q.device) + offset
    return F.cross_entropy(logits, labels) * (2 * temperature)
