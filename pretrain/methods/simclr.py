"""SimCLR (Chen, Kornblith, Norouzi, Hinton, "A Simple Framework for Contrastive Learning of
Visual Representations", ICML 2020)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from ..heads import mlp
from ..losses.contrastive import nt_xent, nt_xent_global, nt_xent_with_negatives
from ..views import Views
from .base import Method, MethodContext


@dataclass
class Config:
    """SimCLR's settings; the defaults are the paper's and are used for the small runs too.

    proj_hidden / proj_dim: the 2-layer projection head g (2048 -> 128, paper sec. B.9 / fig. 8);
    temperature: tau of NT-Xent (0.5 is the paper's CIFAR-10 / lightly value; 0.1 for ImageNet
    at batch 4096, paper tab. 5); hard_negative_alpha: weight alpha of the hard-negative logits
    alpha * z.t / tau (masking paper: 1 by default, 2 in its runs).
    """

    proj_hidden: int = 2048
    proj_dim: int = 128
    temperature: float = 0.5
    hard_negative_alpha: float = 1.0


class SimCLR(Method):
    """SimCLR: two views x1, x2 (B, 3, h, w) -> backbone (B, d) -> projector (B, proj_dim) ->
    NT-Xent over the 2B projections (views[0], views[1]).

    Hard negatives: if ``views.negatives`` (B, K, 3, h, w) is given, the B*K images are encoded
    and projected by the same network ((B, K, proj_dim)) and added to the negatives of both
    views of their image (``nt_xent_with_negatives``). Under DDP the negatives are the whole
    global batch (``nt_xent_global``). ``exported = "online"`` (the backbone).
    """

    Config = Config
    uses_negatives = True

    def __init__(self, backbone: nn.Module, cfg: Config, ctx: MethodContext) -> None:
        super().__init__(backbone, cfg, ctx)
        self.projector = mlp(backbone.num_features, cfg.proj_hidden, cfg.proj_dim)

    def _global_loss(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        """Negatives from every process's batch (differentiable all_gather), as in the paper."""
        from torch.distributed.nn.functional import all_gather

        z1_all, z2_all = torch.cat(all_gather(z1)), torch.cat(all_gather(z2))
        return nt_xent_global(z1, z2, z1_all, z2_all, dist.get_rank() * z1.shape[0], self.cfg.temperature)

    def project(self, x: torch.Tensor) -> torch.Tensor:
        return self.projector(self.encode(x))

    def loss(self, views: Views) -> tuple[torch.Tensor, dict[str, float]]:
        z1, z2 = self.project(views.views[0]), self.project(views.views[1])
        if views.negatives is None:
            if dist.is_initialized() and dist.get_world_size() > 1:
                loss = self._global_loss(z1, z2)
            else:
                loss = nt_xent(z1, z2, self.cfg.temperature)
            return loss, {"loss": loss.item()}
        b, k = views.negatives.shape[:2]
        zneg = self.project(views.negatives.flatten(0, 1)).view(b, k, -1)
        loss = nt_xent_with_negatives(z1, z2, zneg, self.cfg.temperature, self.cfg.hard_negative_alpha)
        return loss, {"loss": loss.item(), "hard_negatives": float(k)}
