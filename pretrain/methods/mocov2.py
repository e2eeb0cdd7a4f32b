"""MoCo v2 (He, Fan, Wu, Xie, Girshick, "Momentum Contrast for Unsupervised Visual
Representation Learning", CVPR 2020; Chen, Fan, Girshick, He, "Improved Baselines with
Momentum Contrastive Learning", arXiv:2003.04297)."""
from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..batchnorm import grouped_forward
from ..distributed import gather
from ..ema import ema_update, make_teacher
from ..heads import mlp
from ..losses.contrastive import info_nce
from ..views import Views
from .base import Method, MethodContext


@dataclass
class Config:
    """MoCo v2's settings.

    queue_size: K negatives (paper 65536 for ImageNet; default 4096 for small data sets: the
    queue should stay well below the data set size or it holds stale keys of the same images);
    momentum: constant key-encoder momentum (paper 0.999 at ~5k steps/epoch; default 0.99 for
    short runs); temperature: 0.2 (MoCo v2); proj_hidden / proj_dim: the v2 MLP head without BN
    (2048 -> 128); symmetric: also contrast views[1]'s queries with views[0]'s keys and average
    the two losses (as in the MoCo CIFAR demo and MoCo v3; the paper's v2 is asymmetric) -- not
    when a policy masks only one of the two views (``Views.masked``): then the loss is the
    asymmetric one, so that the masked view stays on its branch (``directions``; the resolved
    config records ``symmetric: false``);
    bn_splits: shuffling BN on one process (``pretrain.batchnorm``): queries and keys run in this
    many BN groups, the keys shuffled first (the paper shuffles across 8 GPUs; 1 turns it off).
    Without it the key encoder's batch statistics leak the positive and the features degrade.
    proj_bn: BN in the projection MLP's hidden layer (off in the paper's v2 head).
    hard_negative_alpha: weight alpha of hard-negative logits alpha * q.t / T (masking paper).
    """

    queue_size: int = 4096
    momentum: float = 0.99
    temperature: float = 0.2
    proj_hidden: int = 2048
    proj_dim: int = 128
    symmetric: bool = True
    bn_splits: int = 8
    proj_bn: bool = False
    hard_negative_alpha: float = 1.0


def one_sided(masked: Collection[int]) -> bool:
    """Whether exactly one of the two global views (0: query, 1: key) is masked."""
    return len({0, 1} & set(masked)) == 1


def directions(symmetric: bool, masked: Collection[int]) -> tuple[tuple[int, int], ...]:
    """(query view, key view) index pairs the loss contrasts: (0, 1), and (1, 0) too when
    ``symmetric`` and the masking (``Views.masked``) is not one-sided.

    Chen et al. (WACV 2024, arXiv 2309.12757) mask one branch of an asymmetric MoCo v2: with the
    query view masked (their choice) the key encoder never encodes it -- the positive key is
    always the unmasked view -- and with the key view masked the query encoder never sees it
    (authors' ``moco/builder.py`` ``forward``: one direction, ``im_q`` masked, ``im_k`` not).
    The symmetric loss would hand the masked view to the other branch as well.
    """
    if symmetric and not one_sided(masked):
        return ((0, 1), (1, 0))
    return ((0, 1),)


class MoCoV2(Method):
    """MoCo v2: query encoder = backbone + projector (trained), key encoder = its EMA (frozen,
    ``after_step``); queue: a (queue_size, proj_dim) buffer of L2-normalised keys with a pointer.

    Shapes: views x1, x2 (B, 3, h, w) -> q = normalise(projector(backbone(x))) (B, proj_dim),
    k likewise from the key encoder; loss = InfoNCE(q1, k2, queue) (+ InfoNCE(q2, k1, queue),
    averaged, when ``symmetric`` and the views are not masked on one side only: ``directions``).
    After the loss the B keys k2 (views[1]'s keys, gathered from every process when distributed)
    replace the oldest queue entries (one key per image per step, also when symmetric). The queue
    is only updated in training mode. The key encoder runs with BN in training mode with
    shuffling BN emulated in ``bn_splits`` groups. Hard negatives (``views.negatives``, e.g.
    ``sal-mask-hn``: masked copies of the key view) are encoded by the key encoder, as the
    masking paper's authors do, and added to every direction's logits as alpha * q.t / T.
    ``exported = "online"`` (the query encoder's backbone).
    """

    Config = Config
    uses_negatives = True
    exported = "online"
    momentum_attr = "key_backbone"

    def __init__(self, backbone: nn.Module, cfg: Config, ctx: MethodContext) -> None:
        super().__init__(backbone, cfg, ctx)
        self.projector = mlp(backbone.num_features, cfg.proj_hidden, cfg.proj_dim, bn=cfg.proj_bn)
        self.key_backbone = make_teacher(self.backbone)
        self.key_projector = make_teacher(self.projector)
        self.register_buffer("queue", F.normalize(torch.randn(cfg.queue_size, cfg.proj_dim), dim=1))
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))

    @classmethod
    def effective_settings(cls, settings: dict[str, Any], masked_views: tuple[int, ...]) -> dict[str, Any]:
        """``symmetric`` as it runs: off when only one of the two views is masked (``directions``)."""
        if settings.get("symmetric") and one_sided(masked_views):
            return {**settings, "symmetric": False}
        return settings

    def query(self, x: torch.Tensor) -> torch.Tensor:
        z = grouped_forward(lambda c: self.projector(self.encode(c)), x, self.cfg.bn_splits,
                            (self.backbone, self.projector))
        return F.normalize(z, dim=1)

    @torch.no_grad()
    def key(self, x: torch.Tensor) -> torch.Tensor:
        z = grouped_forward(lambda c: self.key_projector(self.encode(c, self.key_backbone)), x,
                            self.cfg.bn_splits, (self.key_backbone, self.key_projector),
                            shuffle=self.cfg.bn_splits > 1)
        return F.normalize(z, dim=1)

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor) -> None:
        """Write ``keys`` (n, D) over the oldest entries (wrapping around) and advance the pointer."""
        keys = gather(keys.detach()).to(self.queue.dtype)[-self.queue.shape[0]:]
        n, size = keys.shape[0], self.queue.shape[0]
        idx = (self.queue_ptr + torch.arange(n, device=keys.device)) % size
        self.queue[idx] = keys
        self.queue_ptr.copy_((self.queue_ptr + n) % size)

    def hard_negatives(self, views: Views) -> torch.Tensor | None:
        """Key-encoder embeddings (B, K, proj_dim) of ``views.negatives`` (B, K, 3, h, w), or None."""
        if views.negatives is None:
            return None
        b, k = views.negatives.shape[:2]
        return self.key(views.negatives.flatten(0, 1)).view(b, k, -1)

    def loss(self, views: Views) -> tuple[torch.Tensor, dict[str, float]]:
        x1, x2 = views.views[:2]                       # (B, 3, h, w): query view, key view
        q1, k2 = self.query(x1), self.key(x2)          # (B, proj_dim) each
        queue = self.queue.clone().detach()
        hard, alpha, tau = self.hard_negatives(views), self.cfg.hard_negative_alpha, self.cfg.temperature
        loss = info_nce(q1, k2.to(q1.dtype), queue.to(q1.dtype), tau, hard, alpha)
        if len(directions(self.cfg.symmetric, views.masked)) == 2:
            q2, k1 = self.query(x2), self.key(x1)
            loss = 0.5 * (loss + info_nce(q2, k1.to(q2.dtype), queue.to(q2.dtype), tau, hard, alpha))
        if self.training:
            self.enqueue(k2)
        pos = (q1.detach() * k2).sum(1).mean()
        return loss, {"loss": loss.item(), "pos_cos": pos.item()}

    def after_step(self, progress: float) -> None:
        ema_update(self.key_backbone, self.backbone, self.cfg.momentum)
        ema_update(self.key_projector, self.projector, self.cfg.momentum)
