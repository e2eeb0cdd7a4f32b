"""CMC: Contrastive Multiview Coding on the L and ab channels of Lab."""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from ..colour import rgb_to_lab
from ..losses.pretext import cmc_loss
from ..views import Views
from .base import Method, MethodContext


@dataclass
class Config:
    """Tian, Krishnan & Isola (ECCV 2020), sec. 3 / 4.1: dim 128, temperature 0.07. The paper
    contrasts against 16384 memory-bank negatives with NCE; here the other images of the batch are
    the negatives (softmax InfoNCE), for small CPU runs and large ones alike."""

    dim: int = 128
    temperature: float = 0.07


def split_lab(rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """RGB in [0, 1] (B, 3, H, W) -> (L view, ab view), each (B, 3, H, W):
    L view = L / 100 replicated to 3 channels (a grey image in [0, 1]);
    ab view = (a / 128, b / 128, 0) (roughly in [-1, 1], the third channel zero)."""
    lab = rgb_to_lab(rgb)
    l_view = (lab[:, :1] / 100.0).expand(-1, 3, -1, -1).contiguous()
    ab_view = torch.cat([lab[:, 1:] / 128.0, torch.zeros_like(lab[:, :1])], 1)
    return l_view, ab_view


class CMC(Method):
    """CMC (Tian, Krishnan & Isola, "Contrastive Multiview Coding", ECCV 2020), two views: L and ab.

    views[0] (B, 3, H, W) RGB in [0, 1] -> Lab. Two encoders of the same architecture:
    - L encoder = ``self.backbone``, fed L / 100 replicated to 3 channels and normalised with the
      data mean / std like any image (``encode``): (B, F) -> linear head (B, 128);
    - ab encoder = a deep copy of the backbone (its own weights), fed (a / 128, b / 128, 0) without
      mean / std normalisation (already centred): (B, F) -> linear head (B, 128).
    Both encoders keep the standard 3-channel stem (the paper splits ResNet widths in two
    1- / 2-channel halves instead), so the exported network loads like any other backbone.
    Loss: cmc_loss (L -> ab plus ab -> L, in-batch negatives, temperature 0.07).

    Export: the L encoder (``backbone_for_export`` returns ``self.backbone``). It was trained on
    grey-like input (three equal channels); downstream it gets normalised RGB, which is close to
    but not the same as its training input, i.e. it sees colour only through luminance-like input.
    """

    Config = Config

    def __init__(self, backbone: nn.Module, cfg: Config, ctx: MethodContext) -> None:
        super().__init__(backbone, cfg, ctx)
        self.ab_backbone = copy.deepcopy(backbone)
        self.head_l = nn.Linear(backbone.num_features, cfg.dim)
        self.head_ab = nn.Linear(backbone.num_features, cfg.dim)

    def loss(self, views: Views) -> tuple[torch.Tensor, dict[str, float]]:
        l_view, ab_view = split_lab(views.views[0])
        z_l = self.head_l(self.encode(l_view))
        z_ab = self.head_ab(self.ab_backbone(ab_view))
        l_to_ab, ab_to_l = cmc_loss(z_l, z_ab, self.cfg.temperature)
        return l_to_ab + ab_to_l, {"loss_l_ab": l_to_ab.item(), "loss_ab_l": ab_to_l.item()}

    def backbone_for_export(self) -> nn.Module:
        return self.backbone
