"""DINO (Caron et al., "Emerging Properties in Self-Supervised Vision Transformers", ICCV 2021)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..distributed import gather
from ..ema import cosine_momentum, ema_update, make_teacher
from ..losses.distillation import dino_center, dino_loss
from ..views import Views
from .base import Method, MethodContext


@dataclass
class Config:
    """DINO's settings; the defaults are the paper's (sec. 3, appendix; facebookresearch/dino
    main_dino.py) except ``out_dim`` (65536 there; a smaller head suits the small runs):

    hidden / bottleneck: the head's 3-layer MLP (GELU, no BN) 2048 -> 256, then L2 normalisation
    and a weight-normalised linear layer to ``out_dim`` prototypes with its norm fixed at 1
    (``norm_last_layer``); student_temp 0.1, teacher_temp 0.04; center_momentum 0.9;
    base_momentum 0.996 for the teacher, raised to 1 on a cosine schedule.
    """

    out_dim: int = 4096
    hidden: int = 2048
    bottleneck: int = 256
    student_temp: float = 0.1
    teacher_temp: float = 0.04
    center_momentum: float = 0.9
    base_momentum: float = 0.996


class DINOHead(nn.Module):
    """x (B, d) -> 3-layer MLP (GELU) -> (B, bottleneck), L2-normalised -> (B, out_dim) through a
    weight-normalised linear layer whose per-prototype norm is fixed at 1."""

    def __init__(self, in_dim: int, out_dim: int, hidden: int, bottleneck: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(),
                                 nn.Linear(hidden, bottleneck))
        for m in self.mlp:
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
        self.prototypes = nn.Parameter(torch.randn(out_dim, bottleneck) * 0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = F.normalize(self.mlp(x), dim=-1)
        return z @ F.normalize(self.prototypes, dim=-1).t()


class DINO(Method):
    """DINO: student = backbone + head, teacher = EMA of both. Views: the first two are global
    (the teacher sees only those), any further ones local (multi-crop).

    Shapes: views x_v (B, 3, h_v, w_v) -> backbone (B, d) -> head (B, out_dim) logits; loss
    ``dino_loss`` over every (teacher global view i, student view v != i) pair, in [0, ln K]-ish
    nats. The teacher's centre (1, out_dim) is an EMA of its mean logit over the global batch.
    Logs ``loss``, ``momentum`` and ``teacher_entropy`` (the mean entropy of the teacher's
    targets: near 0 is collapse to one prototype, near ln K collapse to uniform).
    ``exported = "momentum"`` (the teacher, as the authors evaluate).
    """

    Config = Config
    exported = "momentum"
    momentum_attr = "teacher_backbone"

    def __init__(self, backbone: nn.Module, cfg: Config, ctx: MethodContext) -> None:
        super().__init__(backbone, cfg, ctx)
        self.head = DINOHead(backbone.num_features, cfg.out_dim, cfg.hidden, cfg.bottleneck)
        self.teacher_backbone = make_teacher(self.backbone)
        self.teacher_head = make_teacher(self.head)
        self.register_buffer("center", torch.zeros(1, cfg.out_dim))
        self.momentum = cfg.base_momentum

    def loss(self, views: Views) -> tuple[torch.Tensor, dict[str, float]]:
        student = [self.head(self.encode(v)).float() for v in views.views]
        with torch.no_grad():
            teacher = [self.teacher_head(self.encode(v, self.teacher_backbone)).float() for v in views.views[:2]]
        loss = dino_loss(student, teacher, self.center, self.cfg.student_temp, self.cfg.teacher_temp)
        with torch.no_grad():
            t = F.softmax((teacher[0] - self.center) / self.cfg.teacher_temp, dim=-1)
            entropy = -(t * t.clamp_min(1e-12).log()).sum(-1).mean()
            batch = gather(torch.cat(teacher).mean(0, keepdim=True)).mean(0, keepdim=True)
            self.center.copy_(dino_center(self.center, batch, self.cfg.center_momentum))
        return loss, {"loss": loss.item(), "momentum": self.momentum, "teacher_entropy": entropy.item()}

    def backbone_for_export(self) -> nn.Module:
        return self.teacher_backbone

    def after_step(self, progress: float) -> None:
        self.momentum = cosine_momentum(self.cfg.base_momentum, progress)
        ema_update(self.teacher_backbone, self.backbone, self.momentum)
        ema_update(self.teacher_head, self.head, self.momentum)
