"""SwAV (Caron, Misra, Mairal, Goyal, Bojanowski, Joulin, "Unsupervised Learning of Visual
Features by Contrasting Cluster Assignments", NeurIPS 2020)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..heads import mlp
from ..losses.clustering import swav_loss
from ..views import Views
from .base import Method, MethodContext


@dataclass
class Config:
    """SwAV's settings.

    proj_hidden / proj_dim: projection head (2048 -> 128, paper sec. 4 / code);
    prototypes: K (paper 3000 for ImageNet; default 100 for small data sets, roughly 10x the
    number of classes as in the paper); temperature: 0.1; epsilon / sinkhorn_iterations: the
    Sinkhorn-Knopp regulariser and iterations (0.05, 3); freeze_prototypes_steps: the prototypes
    get no gradient for the first steps (paper code: 313 iterations = one ImageNet epoch at batch
    4096; default 100 for the small runs, where that is a few epochs).
    """

    proj_hidden: int = 2048
    proj_dim: int = 128
    prototypes: int = 100
    temperature: float = 0.1
    epsilon: float = 0.05
    sinkhorn_iterations: int = 3
    freeze_prototypes_steps: int = 100


class SwAV(Method):
    """SwAV: views x_i (B, 3, h_i, w_i) -> backbone (B, d) -> projector, L2-normalised
    (B, proj_dim) -> scores against the L2-normalised prototypes C (prototypes, proj_dim),
    (B, prototypes). Codes: Sinkhorn-Knopp of each global view's stopped-gradient scores
    (views[0], views[1]); swapped prediction: each global view's codes are predicted from the
    other global view and from every extra (small, multi-crop) view in ``views.views[2:]``
    (``swav_loss``). The prototypes are re-normalised after every step (``after_step``) and get
    no gradient (their ``grad`` stays None, so the optimiser skips them) during the first
    ``freeze_prototypes_steps`` steps. No queue (the paper's queue for small batches is not
    modelled). ``exported = "online"``.
    """

    Config = Config
    exported = "online"

    def __init__(self, backbone: nn.Module, cfg: Config, ctx: MethodContext) -> None:
        super().__init__(backbone, cfg, ctx)
        self.projector = mlp(backbone.num_features, cfg.proj_hidden, cfg.proj_dim)
        self.prototypes = nn.Linear(cfg.proj_dim, cfg.prototypes, bias=False)
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))
        self.normalize_prototypes()

    @torch.no_grad()
    def normalize_prototypes(self) -> None:
        self.prototypes.weight.copy_(F.normalize(self.prototypes.weight, dim=1))

    @property
    def prototypes_frozen(self) -> bool:
        return int(self.steps) < self.cfg.freeze_prototypes_steps

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, h, w) -> (B, prototypes) cosine scores."""
        z = F.normalize(self.projector(self.encode(x)), dim=1)
        w = self.prototypes.weight
        return F.linear(z, w.detach() if self.prototypes_frozen else w)

    def loss(self, views: Views) -> tuple[torch.Tensor, dict[str, float]]:
        scores = [self.scores(v).float() for v in views.views]          # loss in float32 under autocast
        c = self.cfg
        loss = swav_loss(scores[:2], scores[2:], c.temperature, c.epsilon, c.sinkhorn_iterations)
        return loss, {"loss": loss.item(), "prototypes_frozen": float(self.prototypes_frozen)}

    def after_step(self, progress: float) -> None:
        self.steps += 1
        self.normalize_prototypes()
