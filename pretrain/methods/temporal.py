"""Temporal: MoCo whose positive pairs are two frames of a video (or one tracked object in both)."""
from __future__ import annotations

from dataclasses import dataclass

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


class Temporal(Method):
    """Temporal contrastive learning of Purushwalkam & Gupta, "Demystifying Contrastive
    Self-Supervised Learning: Invariances, Augmentations and Dataset Biases", NeurIPS 2020
    (sec. 5): MoCo v2 where the positive of a frame is another frame of the same video
    (``mode="frames"``), or, with region tracking, the crop of the same tracked object in the
    other frame (``mode="regions"``).

    The augmentation policy does the pairing and cropping: views[0] (B, 3, h, w) is frame t
    augmented (in region mode, the tracked object's crop), views[1] frame t + k. Query encoder
    q = normalize(head(backbone(views[0]))) (B, 128); key encoder an EMA copy (constant
    momentum), k from views[1]; negatives a queue (queue_size, 128) of past keys (0: the other
    keys of the batch). Loss: ``info_nce`` at T = 0.2 (symmetrised over the two frames if
    ``symmetric``). Exports the query backbone. Shuffling BN emulated in ``bn_splits`` groups
    (``pretrain.batchnorm``). Under DDP the keys are all-gathered into the queue, which
    ``after_step`` updates (training mode only).
    """

    @dataclass
    class Config:
        mode: str = "frames"         # "frames" (two frames) | "regions" (a tracked object in two frames)
        dim_hidden: int = 2048       # MoCo v2 head hidden width (paper 2048)
        dim_out: int = 128           # paper 128
        momentum: float = 0.99       # key encoder EMA; paper (MoCo v2) 0.999, 0.99 for short runs
        queue_size: int = 4096       # negatives; paper (MoCo v2) 65536; 0 = in-batch negatives
        temperature: float = 0.2     # paper 0.2
        symmetric: bool = False      # paper: asymmetric (MoCo v2)
        bn_splits: int = 8           # shuffling BN on one process, as in mocov2 (1 = off)

    needs = frozenset({"pairs"})
    momentum_attr = "key_backbone"

    @classmethod
    def data_needs(cls, cfg: "Temporal.Config") -> frozenset[str]:
        return frozenset({"pairs", "regions"}) if cfg.mode == "regions" else frozenset({"pairs"})

    def __init__(self, backbone: nn.Module, cfg: "Temporal.Config", ctx: MethodContext) -> None:
        super().__init__(backbone, cfg, ctx)
        if cfg.mode not in ("frames", "regions"):
            raise ValueError(f"temporal: unknown mode {cfg.mode!r}; valid modes: frames, regions")
        self.needs = self.data_needs(cfg)
        self.head = mlp(backbone.num_features, cfg.dim_hidden, cfg.dim_out, bn=False)
        self.key_backbone = make_teacher(backbone)
        self.key_head = make_teacher(self.head)
        self.register_buffer("queue", F.normalize(torch.randn(cfg.queue_size, cfg.dim_out), dim=1))
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))
        self._pending: torch.Tensor | None = None

    def embed(self, x: torch.Tensor, key: bool = False) -> torch.Tensor:
        """(B, 3, h, w) in [0, 1] -> L2-normalised (B, dim_out) query (or key) embeddings."""
        bb, head = (self.key_backbone, self.key_head) if key else (self.backbone, self.head)
        z = grouped_forward(lambda c: head(self.encode(c, bb)), x, self.cfg.bn_splits, (bb, head), shuffle=key)
        return F.normalize(z, dim=1)

    def loss(self, views: Views) -> tuple[torch.Tensor, dict[str, float]]:
        pairs = ((0, 1), (1, 0)) if self.cfg.symmetric else ((0, 1),)
        queue = self.queue.clone().detach() if self.cfg.queue_size > 0 else None
        losses, keys = [], []
        for a, b in pairs:
            q = self.embed(views.views[a])
            with torch.no_grad():
                k = self.embed(views.views[b], key=True)
            losses.append(info_nce(q, k.to(q.dtype), None if queue is None else queue.to(q.dtype),
                                   self.cfg.temperature))
            keys.append(k)
        self._pending = torch.cat(keys) if self.training else None
        loss = sum(losses) / len(losses)
        return loss, {"loss": loss.item(), "pos_cos": (q.detach() * k).sum(1).mean().item()}

    @torch.no_grad()
    def after_step(self, progress: float) -> None:
        ema_update(self.key_backbone, self.backbone, self.cfg.momentum)
        ema_update(self.key_head, self.head, self.cfg.momentum)
        if self._pending is not None and self.cfg.queue_size > 0:
            self._enqueue(self._pending)
        self._pending = None

    def _enqueue(self, keys: torch.Tensor) -> None:
        """Write the newest keys (gathered over DDP ranks) at the pointer, wrapping around."""
        keys = gather(keys)
        keys = keys[-self.cfg.queue_size:]
        idx = (self.queue_ptr + torch.arange(len(keys), device=keys.device)) % self.cfg.queue_size
        self.queue[idx] = keys.to(self.queue)
        self.queue_ptr.copy_((self.queue_ptr + len(keys)) % self.cfg.queue_size)
