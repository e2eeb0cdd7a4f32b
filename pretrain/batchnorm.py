"""Shuffling BN on one process (MoCo, He et al. 2020, sec. 3.3 "Shuffling BN").

With batch statistics, a query and its positive key normalised in the same BN batch leak
information to each other and the model "cheats" the pretext task (high positive similarity,
poor representation). MoCo shuffles the keys across GPUs; on one process the same effect comes
from running the encoder on groups of the batch (as multi-GPU BN would) with the keys' order
shuffled before grouping, so that query i and key i are normalised with different samples.
"""
from __future__ import annotations

from typing import Callable

import torch


def grouped_forward(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, groups: int,
                    shuffle: bool = False) -> torch.Tensor:
    """``fn`` applied to ``groups`` chunks of x (B, ...) separately (own BN statistics each);
    with ``shuffle``, on a random permutation of the batch, un-permuted afterwards. (B, D)."""
    groups = max(1, min(groups, x.shape[0] // 2))
    if groups == 1 and not shuffle:
        return fn(x)
    perm = torch.randperm(x.shape[0], device=x.device) if shuffle else None
    xs = x[perm] if perm is not None else x
    out = torch.cat([fn(c) for c in xs.chunk(groups)])
    if perm is None:
        return out
    restored = torch.empty_like(out)
    restored[perm] = out
    return restored
