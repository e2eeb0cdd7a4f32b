"""Optimisers (SGD, AdamW, LARS) and the warm-up + cosine learning-rate schedule."""
from __future__ import annotations

import math

import torch
from torch import nn

from .config import OptimConfig


class LARS(torch.optim.Optimizer):
    """LARS (You et al., "Large Batch Training of Convolutional Networks", 2017) as used by
    SimCLR / BYOL: SGD with momentum whose update of each weight tensor is scaled by the trust
    ratio eta * ||w|| / ||g + wd w||. Groups with ``lars=False`` (biases, norms) skip both the
    adaptation and weight decay."""

    def __init__(self, params, lr: float, momentum: float = 0.9, weight_decay: float = 0.0, eta: float = 0.001):
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay, eta=eta, lars=True))

    @torch.no_grad()
    def step(self, closure=None):  # noqa: D102
        for g in self.param_groups:
            for p in g["params"]:
                if p.grad is None:
                    continue
                d = p.grad
                if g["lars"]:
                    d = d.add(p, alpha=g["weight_decay"])
                    wn, dn = torch.norm(p), torch.norm(d)
                    trust = torch.where((wn > 0) & (dn > 0), g["eta"] * wn / dn, torch.ones_like(wn))
                    d = d.mul(trust)
                buf = self.state[p].setdefault("mu", torch.zeros_like(p))
                buf.mul_(g["momentum"]).add_(d)
                p.add_(buf, alpha=-g["lr"])


def param_groups(model: nn.Module, weight_decay: float, lr_mult: dict[str, float] | None = None) -> list[dict]:
    """Weight decay (and LARS adaptation) on weight matrices / kernels only, not biases or norms.

    ``lr_mult`` maps a top-level submodule name to a learning-rate multiplier (stored as the
    group's ``lr_mult``); parameters of other modules get 1. Empty groups are left out."""
    lr_mult = lr_mult or {}
    groups: dict[tuple[bool, float], list] = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            mult = float(lr_mult.get(name.split(".", 1)[0], 1.0))
            groups.setdefault((p.ndim > 1, mult), []).append(p)
    return [{"params": ps, "weight_decay": weight_decay if decay else 0.0, "lars": decay, "lr_mult": mult}
            for (decay, mult), ps in sorted(groups.items(), key=lambda kv: (not kv[0][0], kv[0][1]))]


def build_optimizer(model: nn.Module, cfg: OptimConfig, batch_size: int) -> torch.optim.Optimizer:
    """The optimiser at the linearly scaled learning rate lr * batch / 256."""
    lr = cfg.lr * batch_size / 256
    mult = model.lr_multipliers() if hasattr(model, "lr_multipliers") else {}
    groups = param_groups(model, cfg.weight_decay, mult)
    for g in groups:
        g["lr"] = lr * g.pop("lr_mult")
    if cfg.name == "sgd":
        for g in groups:
            g.pop("lars")
        return torch.optim.SGD(groups, lr=lr, momentum=cfg.momentum)
    if cfg.name == "adamw":
        for g in groups:
            g.pop("lars")
        return torch.optim.AdamW(groups, lr=lr)
    if cfg.name == "lars":
        return LARS(groups, lr=lr, momentum=cfg.momentum, eta=cfg.lars_eta)
    raise ValueError(f"unknown optimiser {cfg.name!r}; valid: sgd, adamw, lars")


def lr_factor(step: int, total: int, warmup_frac: float, schedule: str) -> float:
    """Multiplier of the base lr at ``step``: linear warm-up, then cosine decay to 0 (or constant)."""
    warm = int(round(warmup_frac * total))
    if step < warm:
        return (step + 1) / warm
    if schedule == "constant":
        return 1.0
    if schedule != "cosine":
        raise ValueError(f"unknown schedule {schedule!r}; valid: cosine, constant")
    t = (step - warm) / max(total - warm, 1)
    return 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))
