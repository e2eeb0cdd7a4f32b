"""RotNet: predict which of four rotations was applied to an image."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..losses.pretext import rotation_loss
from ..views import Views
from .base import Method, MethodContext


@dataclass
class Config:
    """Gidaris et al. (ICLR 2018), sec. 2 / 3: the four rotations {0, 90, 180, 270} degrees of
    every image in the same batch (all_rotations=True, the paper's better variant, sec. 3.1 /
    table 2), also for small CPU runs; all_rotations=False draws one rotation per image instead
    (4x cheaper). Head: a linear classifier on pooled features (the paper's NIN conv blocks are
    replaced by the backbone + linear head)."""

    all_rotations: bool = True


def rotate_all(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, C, S, S) -> ((4B, C, S, S), labels (4B,)): block k holds every image rotated by k*90
    degrees counter-clockwise (torch.rot90 on the spatial dims), label k."""
    rotated = torch.cat([torch.rot90(x, k, dims=(2, 3)) for k in range(4)])
    labels = torch.arange(4, device=x.device).repeat_interleave(x.shape[0])
    return rotated, labels


def rotate_random(x: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, C, S, S) -> (rotated (B, C, S, S), labels (B,)): image i rotated by labels[i]*90 degrees
    (labels drawn uniformly if not given); batched with one masked rot90 per rotation."""
    if labels is None:
        labels = torch.randint(0, 4, (x.shape[0],), device=x.device)
    out = x.clone()
    for k in range(1, 4):
        sel = labels == k
        out[sel] = torch.rot90(x[sel], k, dims=(2, 3))
    return out, labels


class Rotation(Method):
    """RotNet (Gidaris, Singh & Komodakis, "Unsupervised Representation Learning by Predicting
    Image Rotations", ICLR 2018).

    views[0] (B, 3, S, S) -> rotated copies (4B, 3, S, S) with labels (4B,) in {0, 1, 2, 3} ->
    backbone (4B, F) -> linear head (4B, 4) logits -> cross-entropy. Logs the rotation accuracy.
    Views must be square (a 90-degree rotation of a non-square view changes its shape).
    """

    Config = Config

    def __init__(self, backbone: nn.Module, cfg: Config, ctx: MethodContext) -> None:
        super().__init__(backbone, cfg, ctx)
        self.head = nn.Linear(backbone.num_features, 4)

    def loss(self, views: Views) -> tuple[torch.Tensor, dict[str, float]]:
        x = views.views[0]
        if x.shape[-1] != x.shape[-2]:
            raise ValueError(f"Rotation needs square views, got {tuple(x.shape[-2:])}")
        x, labels = rotate_all(x) if self.cfg.all_rotations else rotate_random(x)
        logits = self.head(self.encode(x))
        loss = rotation_loss(logits, labels)
        acc = (logits.argmax(1) == labels).float().mean().item()
        return loss, {"rot_acc": acc}
