"""Projection / prediction heads shared by the methods."""
from __future__ import annotations

from torch import nn


def mlp(in_dim: int, hidden: int, out_dim: int, layers: int = 2, bn: bool = True,
        last_bn: bool = False) -> nn.Sequential:
    """``layers``-layer MLP (Linear [+ BN] + ReLU between layers; optional affine-free BN at the end).

    SimCLR: mlp(d, 2048, 128, 2); MoCo v2: mlp(d, 2048, 128, 2, bn=False); BYOL projector /
    predictor: mlp(d, 4096, 256, 2); SimSiam projector: mlp(d, 2048, 2048, 3, last_bn=True).
    """
    mods: list[nn.Module] = []
    dims = [in_dim] + [hidden] * (layers - 1)
    for a, b in zip(dims[:-1], dims[1:]):
        mods += [nn.Linear(a, b, bias=not bn)] + ([nn.BatchNorm1d(b)] if bn else []) + [nn.ReLU(inplace=True)]
    mods.append(nn.Linear(dims[-1], out_dim, bias=not last_bn))
    if last_bn:
        mods.append(nn.BatchNorm1d(out_dim, affine=False))
    return nn.Sequential(*mods)
