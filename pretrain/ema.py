"""Exponential moving averages of networks (BYOL / MoCo / SlotCon teachers)."""
from __future__ import annotations

import copy
import math

import torch
from torch import nn


def make_teacher(online: nn.Module) -> nn.Module:
    """A frozen copy of ``online`` to be updated only by ``ema_update``."""
    teacher = copy.deepcopy(online)
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


@torch.no_grad()
def ema_update(teacher: nn.Module, online: nn.Module, momentum: float) -> None:
    """teacher <- momentum * teacher + (1 - momentum) * online, for parameters; buffers (BN
    statistics) are copied."""
    for t, o in zip(teacher.parameters(), online.parameters()):
        t.mul_(momentum).add_(o.detach(), alpha=1 - momentum)
    for t, o in zip(teacher.buffers(), online.buffers()):
        t.copy_(o)


def cosine_momentum(base: float, progress: float) -> float:
    """BYOL's schedule (Grill et al. 2020, sec. 3.2): 1 - (1 - base) (cos(pi p) + 1) / 2."""
    return 1 - (1 - base) * (math.cos(math.pi * min(max(progress, 0.0), 1.0)) + 1) / 2
