"""Shuffling BN on one process (MoCo, He et al. 2020, sec. 3.3 "Shuffling BN").

With batch statistics, a query and its positive key normalised in the same BN batch leak
information to each other and the model "cheats" the pretext task (high positive similarity,
poor representation). MoCo shuffles the keys across GPUs; on one process the same effect comes
from normalising groups of the batch separately (as per-GPU BN would) with the keys' order
shuffled before grouping, so that query i and key i are normalised with different samples.

The groups are computed in one pass (every BN layer reshapes (B, C, ...) to (B/G, G*C, ...) and
normalises the G*C channels; sample n belongs to group n mod G), not by running the encoder G
times on small chunks, so the cost is that of one ordinary forward.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn


def _split_bn_forward(bn: nn.modules.batchnorm._BatchNorm, groups: int, x: torch.Tensor) -> torch.Tensor:
    """BN of x (B, C, ...) with separate batch statistics for the samples n = g mod ``groups``.

    Running statistics are updated with the mean over groups of each group's statistics.
    """
    if not bn.training or groups == 1 or x.shape[0] % groups:
        return type(bn).forward(bn, x)
    b, c = x.shape[:2]
    momentum = 0.0 if bn.momentum is None else bn.momentum
    if bn.track_running_stats and bn.num_batches_tracked is not None:
        bn.num_batches_tracked.add_(1)
        if bn.momentum is None:
            momentum = 1.0 / float(bn.num_batches_tracked)
    running_mean = bn.running_mean.repeat(groups) if bn.running_mean is not None else None
    running_var = bn.running_var.repeat(groups) if bn.running_var is not None else None
    weight = bn.weight.repeat(groups) if bn.weight is not None else None
    bias = bn.bias.repeat(groups) if bn.bias is not None else None
    y = F.batch_norm(x.reshape(b // groups, groups * c, *x.shape[2:]), running_mean, running_var,
                     weight, bias, True, momentum, bn.eps)
    if running_mean is not None:
        with torch.no_grad():
            bn.running_mean.copy_(running_mean.view(groups, c).mean(0))
            bn.running_var.copy_(running_var.view(groups, c).mean(0))
    return y.reshape(x.shape)


@contextmanager
def split_batchnorm(module: nn.Module, groups: int) -> Iterator[None]:
    """Within the block, every BatchNorm of ``module`` in training mode normalises ``groups``
    interleaved groups of its batch separately (a batch size not divisible by ``groups`` falls
    back to ordinary BN for that call)."""
    bns = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if groups <= 1 or not bns:
        yield
        return
    for bn in bns:
        bn.forward = lambda x, bn=bn: _split_bn_forward(bn, groups, x)
    try:
        yield
    finally:
        for bn in bns:
            del bn.forward


def grouped_forward(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, groups: int,
                    modules: tuple[nn.Module, ...] = (), shuffle: bool = False) -> torch.Tensor:
    """``fn(x)`` with the BN layers of ``modules`` using ``groups`` separate batch statistics
    (x (B, ...) -> (B, D)); with ``shuffle``, on a random permutation of the batch, un-permuted
    afterwards, so that sample i is grouped with other samples than in an unshuffled pass."""
    groups = max(1, min(groups, x.shape[0] // 2))
    while x.shape[0] % groups:
        groups -= 1
    perm = torch.randperm(x.shape[0], device=x.device) if shuffle else None
    xs = x[perm] if perm is not None else x
    with _all_split(modules, groups):
        out = fn(xs)
    if perm is None:
        return out
    restored = torch.empty_like(out)
    restored[perm] = out
    return restored


@contextmanager
def _all_split(modules: tuple[nn.Module, ...], groups: int) -> Iterator[None]:
    if not modules:
        yield
        return
    with split_batchnorm(modules[0], groups), _all_split(modules[1:], groups):
        yield
