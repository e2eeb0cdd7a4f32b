"""Supervised baseline: a linear classifier trained with the labels."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..views import Views
from .base import Method, MethodContext


@dataclass
class Config:
    """Cross-entropy with a linear classifier on pooled features (the standard supervised
    pretraining, e.g. He et al., "Deep Residual Learning for Image Recognition", CVPR 2016).
    label_smoothing: 0 (none), also for small CPU runs; use_second_view: also train on views[1]."""

    label_smoothing: float = 0.0
    use_second_view: bool = True


class Supervised(Method):
    """Supervised baseline (He et al., CVPR 2016, recipe; labels from the data layer).

    views[0] (and views[1] if present and use_second_view) (B, 3, H, W) -> backbone (B, F) ->
    linear (B, num_classes) -> cross-entropy with views.targets (B,); rows with target -1 (no label)
    are ignored; a batch with no labelled row raises ValueError. Logs the training accuracy.
    """

    Config = Config
    needs = frozenset({"labels"})

    def __init__(self, backbone: nn.Module, cfg: Config, ctx: MethodContext) -> None:
        super().__init__(backbone, cfg, ctx)
        self.classifier = nn.Linear(backbone.num_features, ctx.num_classes)

    def loss(self, views: Views) -> tuple[torch.Tensor, dict[str, float]]:
        if views.targets is None or not bool((views.targets >= 0).any()):
            raise ValueError("Supervised needs class labels, but every target in the batch is -1 (or missing): "
                             "the dataset has no labels")
        xs = views.views[:2] if self.cfg.use_second_view else views.views[:1]
        logits = torch.cat([self.classifier(self.encode(x)) for x in xs])
        targets = views.targets.to(logits.device).long().repeat(len(xs))
        loss = F.cross_entropy(logits, targets, ignore_index=-1, label_smoothing=self.cfg.label_smoothing)
        keep = targets >= 0
        acc = (logits.argmax(1)[keep] == targets[keep]).float().mean().item()
        return loss, {"acc": acc}
