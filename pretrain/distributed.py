"""Process groups and collectives: the one place sslbench talks to ``torch.distributed``.

Under ``torchrun`` every process joins the group (:func:`init_distributed`, gloo on CPU, NCCL on
GPUs) and leaves it before exiting (:func:`close_distributed`). Methods that need keys or
negatives from every process use :func:`gather`; each is a no-op in a single process, so the
same code runs unchanged on one CPU and on many GPUs.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class Dist:
    """This process's place in the group: rank, world size, local rank (its GPU)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def is_distributed() -> bool:
    """Whether a process group with more than one process is running."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def init_distributed(device: str) -> Dist:
    """Join the process group that torchrun set up (gloo on CPU, NCCL on GPUs); 1 process otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def close_distributed(synchronise: bool = True) -> None:
    """Leave the process group before the interpreter exits: wait for every rank (``synchronise``),
    then destroy it. A gloo group left to the interpreter's teardown can abort a process
    ("terminate called without an active exception") after its work is written."""
    if not dist.is_initialized():
        return
    if synchronise:
        dist.barrier()
    dist.destroy_process_group()


def gather(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` (the same shape on every process) along dim 0 from every process, in rank
    order, without gradient (MoCo's queue keys, PIRL's memory, SlotCon's prototypes); ``x`` itself
    in a single process. (N, ...) -> (world * N, ...)."""
    if not is_distributed():
        return x
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts)
