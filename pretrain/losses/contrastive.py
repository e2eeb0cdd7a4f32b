"""Instance-contrastive and siamese losses (pure functions)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """NT-Xent of SimCLR (Chen et al., "A Simple Framework for Contrastive Learning of Visual
    Representations", ICML 2020, eq. 1).

    z1, z2: (B, D) projections of two views of the same B images. Each of the 2B rows is
    classified against the other 2B - 1 (its positive is the other view of its image); returns
    the mean cross-entropy over the 2B rows. Matches lightly's ``NTXentLoss`` (no memory bank).
    """
    b = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    logits = z @ z.T / temperature
    logits.fill_diagonal_(float("-inf"))
    target = torch.cat([torch.arange(b, 2 * b), torch.arange(b)]).to(z.device)
    return F.cross_entropy(logits, target)


def negative_cosine(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Negative cosine similarity of BYOL / SimSiam (Grill et al., NeurIPS 2020; Chen & He,
    "Exploring Simple Siamese Representation Learning", CVPR 2021, eq. 1).

    p: (B, D) predictions, z: (B, D) targets (gradient stopped here). Returns -mean cos(p, z).
    """
    return -F.cosine_similarity(p, z.detach(), dim=-1).mean()


def info_nce(q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor | None, temperature: float,
             extra: torch.Tensor | None = None, alpha: float = 1.0) -> torch.Tensor:
    """InfoNCE of MoCo (He et al., "Momentum Contrast for Unsupervised Visual Representation
    Learning", CVPR 2020, eq. 1): q, k (B, D) L2-normalised queries / positive keys, queue
    (K, D) L2-normalised negatives (or None: the other keys of the batch are the negatives).
    Returns the mean cross-entropy with the positive at index 0.

    extra: optional (B, K, D) L2-normalised per-query hard negatives t, added as the logits
    alpha * q.t / temperature (the masking paper's hard negatives, Chen et al., WACV 2024, eq. 3).
    """
    pos = (q * k).sum(1, keepdim=True)
    neg = q @ (k.T if queue is None else queue.T)
    if queue is None:
        neg = neg.masked_fill(torch.eye(q.shape[0], dtype=torch.bool, device=q.device), float("-inf"))
    parts = [pos, neg]
    if extra is not None:
        parts.append(alpha * torch.einsum("bd,bkd->bk", q, extra.to(q.dtype)))
    logits = torch.cat(parts, 1) / temperature
    return F.cross_entropy(logits, torch.zeros(q.shape[0], dtype=torch.long, device=q.device))


def nt_xent_with_negatives(z1: torch.Tensor, z2: torch.Tensor, zneg: torch.Tensor,
                           temperature: float = 0.5, alpha: float = 1.0) -> torch.Tensor:
    """NT-Xent (SimCLR, Chen et al., ICML 2020, eq. 1) with per-image extra negatives.

    z1, z2: (B, D) projections of two views of the same B images; zneg: (B, K, D) projections of
    K extra ("hard") negatives of each image (e.g. the saliency study's background-swapped
    images). Each of the 2B rows is classified against the other 2B - 1 rows plus the K negatives
    of its own image (both views of image i share image i's negatives), with logits
    alpha * z.t / temperature (alpha: the masking paper's hard-negative weight, default 1).
    With K = 0 this is exactly ``nt_xent`` (same logits, same targets).
    """
    b = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    logits = z @ z.T / temperature
    logits.fill_diagonal_(float("-inf"))
    neg = F.normalize(zneg, dim=-1).repeat(2, 1, 1)               # (2B, K, D)
    logits = torch.cat([logits, alpha * torch.einsum("nd,nkd->nk", z, neg) / temperature], 1)
    target = torch.cat([torch.arange(b, 2 * b), torch.arange(b)]).to(z.device)
    return F.cross_entropy(logits, target)


def nt_xent_global(z1: torch.Tensor, z2: torch.Tensor, z1_all: torch.Tensor, z2_all: torch.Tensor, offset: int,
                   temperature: float = 0.5) -> torch.Tensor:
    """NT-Xent for one process of a data-parallel run (SimCLR's global batch, sec. 2.2).

    z1, z2: (b, D) this process's projections; z1_all, z2_all: (B, D) everybody's (gathered, this
    process's rows at ``offset``). The local 2b rows are classified against all 2B candidates, so
    the mean of the per-process losses equals ``nt_xent(z1_all, z2_all)``.
    """
    b, n = z1.shape[0], z1_all.shape[0]
    q = F.normalize(torch.cat([z1, z2]), dim=1)
    k = F.normalize(torch.cat([z1_all, z2_all]), dim=1)
    logits = q @ k.T / temperature
    local = torch.arange(b, device=q.device) + offset
    self_col = torch.cat([local, local + n])
    logits[torch.arange(2 * b, device=q.device), self_col] = float("-inf")
    target = torch.cat([local + n, local])
    return F.cross_entropy(logits, target)
