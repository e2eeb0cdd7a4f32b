"""The Method contract shared by every SSL method.

A method is a small ``nn.Module`` built from a backbone and its own config dataclass; its
``loss(views)`` returns ``(loss, logs)``; ``after_step(progress)`` runs after each optimiser
step (EMA teachers, queues); ``backbone_for_export()`` is the network written to ``ckpt.pt``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..views import Views


@dataclass
class MethodContext:
    """What a method may know about the run: the data statistics and sizes."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    num_classes: int
    dataset_size: int
    image_size: int          # side of the training views (the policy's out_size, else the data's)
    total_steps: int


class Method(nn.Module):
    """Base class: holds the backbone and normalises inputs. Subclasses define ``Config`` (a
    dataclass), ``loss``, and optionally ``after_step`` / ``exported``."""

    Config: type = type(None)
    needs: frozenset[str] = frozenset()   # "labels", "pairs", "regions": what the data layer must supply
    exported: str = "online"             # which branch backbone_for_export returns: online | momentum
    momentum_attr: str | None = None     # attribute holding the EMA teacher's backbone, if the method has one
    trains: bool = True                  # False for the untrained `random` baseline
    uses_negatives: bool = False         # whether ``loss`` consumes ``Views.negatives`` (hard negatives)

    def __init__(self, backbone: nn.Module, cfg, ctx: MethodContext) -> None:
        super().__init__()
        self.backbone = backbone
        self.cfg = cfg
        self.ctx = ctx
        self.register_buffer("mean", torch.tensor(ctx.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(ctx.std).view(1, 3, 1, 1), persistent=False)

    @classmethod
    def data_needs(cls, cfg) -> frozenset[str]:
        """What the data layer must supply for a method built with ``cfg`` (default: ``needs``)."""
        return cls.needs

    @classmethod
    def effective_settings(cls, settings: dict[str, Any], masked_views: tuple[int, ...]) -> dict[str, Any]:
        """``settings`` (every field of ``Config``) as the method runs them on Views whose masked
        views (``Views.masked``) are ``masked_views``: what ``pretrain.resolve`` records. Default:
        unchanged (MoCo v2 turns ``symmetric`` off when only one branch is masked)."""
        return settings

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, h, w) in [0, 1] -> normalised with the data mean / std."""
        return (x - self.mean) / self.std

    def encode(self, x: torch.Tensor, backbone: nn.Module | None = None) -> torch.Tensor:
        """Pooled features (B, num_features) of images in [0, 1]."""
        return (backbone or self.backbone)(self.normalize(x))

    def loss(self, views: Views) -> tuple[torch.Tensor, dict[str, float]]:
        raise NotImplementedError

    def forward(self, views: Views) -> tuple[torch.Tensor, dict[str, float]]:
        """``loss`` through ``__call__`` (so DDP's gradient hooks see the step)."""
        return self.loss(views)

    def after_step(self, progress: float) -> None:
        """Called after every optimiser step with progress in [0, 1]."""

    def lr_multipliers(self) -> dict[str, float]:
        """Learning-rate multipliers by submodule name (e.g. ``{"predictor": 10.0}``); default none."""
        return {}

    def backbone_for_export(self) -> nn.Module:
        return self.backbone

    def export_branch(self, branch: str = "default") -> tuple[nn.Module, str]:
        """(backbone, branch name) written to ``ckpt.pt``: ``default`` -> the method's own choice
        (``exported``), ``online`` -> the trained backbone, ``momentum`` -> the EMA teacher's
        backbone (methods with one; e.g. the teacher of a short run, an average of past online
        weights, often probes better). Raises ValueError for an unknown or unavailable branch."""
        if branch == "default":
            return self.backbone_for_export(), self.exported
        if branch == "online":
            return self.backbone, "online"
        if branch == "momentum":
            if self.momentum_attr is None:
                raise ValueError(f"train.export=momentum: {type(self).__name__} has no momentum (EMA) encoder; "
                                 "use default or online")
            return getattr(self, self.momentum_attr), "momentum"
        raise ValueError(f"train.export={branch!r}: expected default, online or momentum")
