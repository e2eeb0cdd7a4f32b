"""Clustering losses (pure functions): SwAV's Sinkhorn-Knopp codes and swapped prediction.

Caron, Misra, Mairal, Goyal, Bojanowski, Joulin, "Unsupervised Learning of Visual Features by
Contrasting Cluster Assignments", NeurIPS 2020 (SwAV), sec. 3.1 and Algorithm 1.
"""
from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


@torch.no_grad()
def sinkhorn(scores: torch.Tensor, epsilon: float = 0.05, iterations: int = 3) -> torch.Tensor:
    """Soft codes Q (B, K) of prototype scores (B, K) by Sinkhorn-Knopp (SwAV, eq. 3 / Alg. 1).

    Q = diag(u) exp(scores / epsilon) diag(v) is made (after ``iterations`` row / column
    normalisations) to have uniform marginals over the K prototypes and the B samples (the
    equipartition constraint); returned rescaled so that each sample's code sums to 1. The
    gradient is stopped. When torch.distributed is initialised the sums run over the samples of
    every process (``all_reduce``), as in the paper, so B is the global batch. The scores are
    shifted by their (global) maximum before ``exp`` for stability; that factor cancels.
    Half-precision scores are computed in float32.
    """
    scores = scores.detach()
    if scores.dtype in (torch.float16, torch.bfloat16):
        scores = scores.float()
    world = dist.get_world_size() if _distributed() else 1
    top = scores.max()
    if world > 1:
        dist.all_reduce(top, op=dist.ReduceOp.MAX)
    q = torch.exp((scores - top) / epsilon).T                      # (K, B)
    total = q.sum()
    if world > 1:
        dist.all_reduce(total)
    q = q / total
    k, b = q.shape[0], q.shape[1] * world
    for _ in range(iterations):
        rows = q.sum(1, keepdim=True)                              # prototype marginals
        if world > 1:
            dist.all_reduce(rows)
        q = q / rows / k
        q = q / q.sum(0, keepdim=True) / b                         # sample marginals
    return (q * b).T


def swapped_prediction(scores: torch.Tensor, codes: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """Cross-entropy -mean_i sum_k codes_ik log softmax(scores_i / temperature)_k (SwAV, eq. 2)."""
    return -(codes * F.log_softmax(scores / temperature, dim=1)).sum(1).mean()


def swav_loss(global_scores: list[torch.Tensor], local_scores: list[torch.Tensor] | None = None,
              temperature: float = 0.1, epsilon: float = 0.05, iterations: int = 3) -> torch.Tensor:
    """SwAV's swapped prediction loss with multi-crop (Caron et al., NeurIPS 2020, eq. 1 and 2).

    global_scores: per global (high resolution) view, (B, K) scores of the L2-normalised
    projections against the L2-normalised prototypes; local_scores: the same for the small
    crops (or None). The codes of each global view i (``sinkhorn`` of its stopped-gradient
    scores) are predicted from every other crop (the other global views and all small crops);
    each code's loss is averaged over those n_crops - 1 predictions, then over the global views.
    Matches lightly's ``SwaVLoss`` (no queue).
    """
    local_scores = list(local_scores or [])
    n_crops = len(global_scores) + len(local_scores)
    total = global_scores[0].new_zeros(())
    for i, s in enumerate(global_scores):
        codes = sinkhorn(s, epsilon, iterations).to(s.dtype)
        others = [t for v, t in enumerate(global_scores) if v != i] + local_scores
        total = total + sum(swapped_prediction(t, codes, temperature) for t in others) / (n_crops - 1)
    return total / len(global_scores)
