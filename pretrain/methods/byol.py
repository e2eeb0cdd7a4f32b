"""BYOL (Grill et al., "Bootstrap Your Own Latent: A New Approach to Self-Supervised
Learning", NeurIPS 2020)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..ema import cosine_momentum, ema_update, make_teacher
from ..heads import mlp
from ..losses.contrastive import negative_cosine
from ..views import Views
from .base import Method, MethodContext


@dataclass
class Config:
    """BYOL's settings.

    proj_hidden / proj_dim: projector and predictor MLPs (4096 -> 256, paper sec. 3.3);
    base_momentum: tau_base of the target's cosine schedule tau = 1 - (1 - tau_base)(cos(pi
    progress) + 1) / 2 (paper 0.996 for ImageNet; default 0.99 for the short small-data runs,
    where 0.996 moves the target too slowly; the cpu preset's 3240 updates take 0.96);
    pred_lr_mult: the predictor's learning rate as a multiple of the rest (1 in the paper; a
    faster predictor tracks the optimal one, Tian et al., "Understanding Self-Supervised
    Learning Dynamics without Contrastive Pairs", ICML 2021).
    """

    proj_hidden: int = 4096
    proj_dim: int = 256
    base_momentum: float = 0.99
    pred_lr_mult: float = 1.0


class BYOL(Method):
    """BYOL: online = backbone + projector + predictor, target = EMA of backbone + projector.

    Shapes: x1, x2 (B, 3, h, w) -> backbone (B, d) -> projector (B, proj_dim) -> predictor
    p (B, proj_dim); target z' (B, proj_dim) without gradient. Loss (paper eq. 2): the
    symmetrised L = (2 - 2 cos(p1, z'2)) + (2 - 2 cos(p2, z'1)), in [0, 8], computed as
    4 + 2 (negative_cosine(p1, z'2) + negative_cosine(p2, z'1)): the paper's scale (the sum of
    both directions), i.e. 4x SimSiam's -mean cos (equal gradients up to that factor). Logs
    ``loss`` (that scale) and ``cos`` (the mean cosine over both directions, comparable with
    SimSiam's) and ``momentum``. The target runs with BN in training mode and its momentum
    follows ``cosine_momentum(base_momentum, progress)`` in ``after_step``.
    ``exported = "online"``.
    """

    Config = Config
    exported = "online"
    momentum_attr = "target_backbone"

    def __init__(self, backbone: nn.Module, cfg: Config, ctx: MethodContext) -> None:
        super().__init__(backbone, cfg, ctx)
        self.projector = mlp(backbone.num_features, cfg.proj_hidden, cfg.proj_dim)
        self.predictor = mlp(cfg.proj_dim, cfg.proj_hidden, cfg.proj_dim)
        self.target_backbone = make_teacher(self.backbone)
        self.target_projector = make_teacher(self.projector)
        self.momentum = cfg.base_momentum

    @torch.no_grad()
    def target(self, x: torch.Tensor) -> torch.Tensor:
        return self.target_projector(self.encode(x, self.target_backbone))

    def loss(self, views: Views) -> tuple[torch.Tensor, dict[str, float]]:
        x1, x2 = views.views[:2]
        p1, p2 = (self.predictor(self.projector(self.encode(x))).float() for x in (x1, x2))
        t1, t2 = self.target(x1).float(), self.target(x2).float()    # loss in float32 under autocast
        neg = negative_cosine(p1, t2) + negative_cosine(p2, t1)    # in [-2, 2]
        loss = 4 + 2 * neg
        return loss, {"loss": loss.item(), "cos": -neg.item() / 2, "momentum": self.momentum}

    def lr_multipliers(self) -> dict[str, float]:
        return {"predictor": self.cfg.pred_lr_mult}

    def after_step(self, progress: float) -> None:
        self.momentum = cosine_momentum(self.cfg.base_momentum, progress)
        ema_update(self.target_backbone, self.backbone, self.momentum)
        ema_update(self.target_projector, self.projector, self.momentum)
