"""SimSiam (Chen & He, "Exploring Simple Siamese Representation Learning", CVPR 2021)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..heads import mlp
from ..losses.contrastive import negative_cosine
from ..views import Views
from .base import Method, MethodContext


@dataclass
class Config:
    """SimSiam's settings; the defaults are the paper's ImageNet values (sec. 4 / A), used for
    the small runs too (the paper's CIFAR variant uses a 2-layer projector; not modelled).

    proj_hidden / proj_dim: 3-layer projector f with BN on every layer incl. the output (2048);
    pred_hidden: bottleneck of the 2-layer predictor h (512 -> 2048).
    """

    proj_hidden: int = 2048
    proj_dim: int = 2048
    pred_hidden: int = 512


class SimSiam(Method):
    """SimSiam: x1, x2 (B, 3, h, w) -> backbone (B, d) -> projector z (B, proj_dim) -> predictor
    p (B, proj_dim); loss L = D(p1, sg(z2)) / 2 + D(p2, sg(z1)) / 2 with D the negative cosine
    (paper eq. 1-3), in [-1, 1]. Logs ``loss`` and ``cos`` (= -loss, the mean cosine, comparable
    with BYOL's) and ``z_std`` (the per-dimension std of the normalised z; collapse when ~0,
    paper sec. 4.1, ~1/sqrt(dim) when healthy). ``exported = "online"``.
    """

    Config = Config

    def __init__(self, backbone: nn.Module, cfg: Config, ctx: MethodContext) -> None:
        super().__init__(backbone, cfg, ctx)
        self.projector = mlp(backbone.num_features, cfg.proj_hidden, cfg.proj_dim, 3, last_bn=True)
        self.predictor = mlp(cfg.proj_dim, cfg.pred_hidden, cfg.proj_dim)

    def loss(self, views: Views) -> tuple[torch.Tensor, dict[str, float]]:
        z1, z2 = (self.projector(self.encode(v)) for v in views.views[:2])
        p1, p2 = self.predictor(z1).float(), self.predictor(z2).float()   # loss in float32 under autocast
        z1, z2 = z1.float(), z2.float()
        loss = 0.5 * negative_cosine(p1, z2) + 0.5 * negative_cosine(p2, z1)
        z_std = F.normalize(z1.detach(), dim=1).std(0).mean()
        return loss, {"loss": loss.item(), "cos": -loss.item(), "z_std": z_std.item()}
