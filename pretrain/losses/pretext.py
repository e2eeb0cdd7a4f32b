"""Losses of the pretext-task, memory-bank, multiview and generative methods (pure functions)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def pirl_nce(anchor: torch.Tensor, positive: torch.Tensor, negatives: torch.Tensor, temperature: float = 0.07,
             exclude: torch.Tensor | None = None) -> torch.Tensor:
    """Noise-contrastive estimation loss of PIRL (Misra & van der Maaten, "Self-Supervised Learning
    of Pretext-Invariant Representations", CVPR 2020, eqs. 2-4; the NCE of Wu et al., "Unsupervised
    Feature Learning via Non-Parametric Instance Discrimination", CVPR 2018, eq. 6-8).

    anchor: (B, D) L2-normalised network outputs (f(v_I) or g(v_{I^t})); positive: (B, D) their
    memory-bank rows m_I; negatives: (N, D) bank rows m_{I'} shared by the batch; exclude: optional
    (B, N) bool, True where a negative is the anchor's own image (left out of the sum).

    With s = <u, v> / temperature, the model density is p(v) = exp(s) / Z and the noise density
    is 1 / |D| with N noise samples, so h(u, v) = p / (p + N / |D|). Z = |D| mean_{negatives}
    exp(s) is the Monte-Carlo estimate of the partition function (gradient stopped); then
    log(p |D| / N) = s - log mean exp(s_neg) - log N and |D| cancels. Returns the mean over the
    batch of -log h(anchor, positive) - sum_{negatives} log(1 - h(anchor, negative)).
    """
    n = negatives.shape[0]
    pos = (anchor * positive).sum(1) / temperature                     # (B,)
    neg = anchor @ negatives.T / temperature                           # (B, N)
    log_z = (torch.logsumexp(neg.detach().flatten(), 0) - math.log(neg.numel())).detach()
    shift = log_z + math.log(n)                                        # log(Z N / |D|)
    loss_pos = F.softplus(shift - pos)                                 # -log h(pos)
    loss_neg = F.softplus(neg - shift)                                 # -log(1 - h(neg))
    if exclude is not None:
        loss_neg = loss_neg.masked_fill(exclude, 0.0)
    return (loss_pos + loss_neg.sum(1)).mean()


def rotation_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """RotNet loss (Gidaris et al., "Unsupervised Representation Learning by Predicting Image
    Rotations", ICLR 2018, eq. 1-2): logits (B', 4) over the rotations {0, 90, 180, 270} degrees,
    labels (B',) int64 in [0, 4). Mean cross-entropy."""
    return F.cross_entropy(logits, labels)


def cmc_loss(z_l: torch.Tensor, z_ab: torch.Tensor, temperature: float = 0.07) -> tuple[torch.Tensor, torch.Tensor]:
    """Two-view contrastive loss of CMC (Tian et al., "Contrastive Multiview Coding", ECCV 2020,
    eq. 3-4: L(V1, V2) = L_contrast^{V1,V2} + L_contrast^{V2,V1}), with the other images of the
    batch as negatives (softmax InfoNCE instead of the paper's memory-bank NCE).

    z_l, z_ab: (B, D) projections of the L and ab views of the same B images (normalised here).
    Returns (L anchored on L -> ab, L anchored on ab -> L), each the mean cross-entropy over B rows;
    the CMC objective is their sum.
    """
    z_l, z_ab = F.normalize(z_l, dim=1), F.normalize(z_ab, dim=1)
    logits = z_l @ z_ab.T / temperature                                # (B, B), positives on the diagonal
    target = torch.arange(z_l.shape[0], device=z_l.device)
    return F.cross_entropy(logits, target), F.cross_entropy(logits.T, target)


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag exp(logvar)) || N(0, I)) of Kingma & Welling, "Auto-Encoding Variational
    Bayes", ICLR 2014, appendix B: -1/2 sum(1 + logvar - mu^2 - exp(logvar)). mu, logvar: (B, K);
    returns (B,) summed over the K latent dimensions."""
    return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)


def vae_loss(logits: torch.Tensor, target: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
             beta: float = 1.0, recon: str = "bce") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Negative ELBO of a VAE (Kingma & Welling, ICLR 2014, eq. 10), with beta weighting the KL
    (beta = 1 is the paper's; Higgins et al., ICLR 2017, for beta != 1).

    logits: (B, 3, H, W) decoder outputs before the sigmoid; target: (B, 3, H, W) images in [0, 1];
    mu, logvar: (B, K). recon: "bce" (Bernoulli decoder) or "mse" (Gaussian decoder with unit
    variance, up to constants: sum of squared errors of sigmoid(logits) / 2). Both terms are summed
    per image and averaged over the batch. Returns (total, reconstruction, kl).
    """
    if recon == "bce":
        rec = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    elif recon == "mse":
        rec = 0.5 * (torch.sigmoid(logits) - target).pow(2)
    else:
        raise ValueError(f"unknown reconstruction loss {recon!r}; valid: bce, mse")
    rec = rec.flatten(1).sum(1).mean()
    kl = gaussian_kl(mu, logvar).mean()
    return rec + beta * kl, rec, kl
