"""The untrained baseline: the backbone as initialised."""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from ..views import Views
from .base import Method, MethodContext


@dataclass
class Config:
    """No settings: the backbone keeps its (seeded) initialisation, for CPU and GPU runs alike."""


class RandomInit(Method):
    """Random-initialisation baseline (the lower bound every SSL paper reports, e.g. Newell & Deng,
    "How Useful is Self-Supervised Pretraining for Visual Tasks?", CVPR 2020).

    No training (``trains = False``): the trainer skips optimisation and exports ``self.backbone``
    as built (seeded), which maps (B, 3, H, W) -> (B, num_features). ``loss`` raises RuntimeError.
    """

    Config = Config
    trains = False

    def __init__(self, backbone: nn.Module, cfg: Config, ctx: MethodContext) -> None:
        super().__init__(backbone, cfg, ctx)

    def loss(self, views: Views):
        raise RuntimeError("the 'random' method has no loss: it is not trained (trains=False); the trainer "
                           "exports its backbone as initialised")
