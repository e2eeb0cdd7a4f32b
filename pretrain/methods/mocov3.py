"""MoCo v3 (Chen, Xie & He, "An Empirical Study of Training Self-Supervised Vision Transformers",
ICCV 2021)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..distributed import gather, is_distributed
from ..ema import cosine_momentum, ema_update, make_teacher
from ..heads import mlp
from ..losses.distillation import mocov3_contrastive
from ..views import Views
from .base import Method, MethodContext


@dataclass
class Config:
    """MoCo v3's settings; the defaults are the paper's (sec. 3, appendix A; moco-v3 moco/builder.py):
    hidden 4096, output 256, BN on every hidden layer; for a ViT a 3-layer projector and a 2-layer
    predictor, both ending in an affine-free BN (``MoCo_ViT``); for a ResNet a 2-layer projector
    ending in that BN and a 2-layer predictor without it (``MoCo_ResNet``): ``proj_layers`` 0 and
    ``pred_last_bn`` None choose by the backbone; temperature 0.2; the momentum encoder's
    momentum 0.99 raised to 1 on a cosine schedule. (The authors' output layers have no bias
    either; here a Linear without a BN after it keeps its bias.)"""

    proj_hidden: int = 4096
    proj_dim: int = 256
    proj_layers: int = 0
    pred_last_bn: bool | None = None
    pred_hidden: int = 4096
    temperature: float = 0.2
    base_momentum: float = 0.99


class MoCoV3(Method):
    """MoCo v3: base encoder = backbone + projector + predictor, momentum encoder = EMA of backbone +
    projector; no queue: the keys are the other view's batch (gathered over processes).

    Shapes: x1, x2 (B, 3, h, w) -> backbone (B, d) -> projector (B, proj_dim) -> predictor q (B,
    proj_dim); keys k (B, proj_dim) from the momentum encoder. Loss (Algorithm 1):
    ctr(q1, k2) + ctr(q2, k1), each the cross-entropy of q k^T / T scaled by 2T. Logs ``loss``,
    ``momentum``. ``exported = "online"`` (the base encoder, as the authors evaluate).
    """

    Config = Config
    exported = "online"
    momentum_attr = "momentum_backbone"

    def __init__(self, backbone: nn.Module, cfg: Config, ctx: MethodContext) -> None:
        super().__init__(backbone, cfg, ctx)
        vit = hasattr(backbone, "patch_embed")
        layers = cfg.proj_layers or (3 if vit else 2)
        pred_last_bn = vit if cfg.pred_last_bn is None else cfg.pred_last_bn
        self.projector = mlp(backbone.num_features, cfg.proj_hidden, cfg.proj_dim, layers, last_bn=True)
        self.predictor = mlp(cfg.proj_dim, cfg.pred_hidden, cfg.proj_dim, 2, last_bn=pred_last_bn)
        self.momentum_backbone = make_teacher(self.backbone)
        self.momentum_projector = make_teacher(self.projector)
        self.momentum = cfg.base_momentum

    @torch.no_grad()
    def keys(self, x: torch.Tensor) -> torch.Tensor:
        return self.momentum_projector(self.encode(x, self.momentum_backbone))

    def loss(self, views: Views) -> tuple[torch.Tensor, dict[str, float]]:
        x1, x2 = views.views[:2]
        q1, q2 = (self.predictor(self.projector(self.encode(x))).float() for x in (x1, x2))
        k1, k2 = self.keys(x1).float(), self.keys(x2).float()
        offset = 0
        if is_distributed():
            import torch.distributed as dist
            offset = dist.get_rank() * q1.shape[0]
        t = self.cfg.temperature
        loss = mocov3_contrastive(q1, gather(k2), t, offset) + mocov3_contrastive(q2, gather(k1), t, offset)
        return loss, {"loss": loss.item(), "momentum": self.momentum}

    def after_step(self, progress: float) -> None:
        self.momentum = cosine_momentum(self.cfg.base_momentum, progress)
        ema_update(self.momentum_backbone, self.backbone, self.momentum)
        ema_update(self.momentum_projector, self.projector, self.momentum)
