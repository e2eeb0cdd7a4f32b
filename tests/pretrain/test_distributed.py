"""pretrain.distributed: joining / leaving the process group and the one gather helper."""
from __future__ import annotations

from pathlib import Path

import torch
import torch.distributed as dist

from pretrain.distributed import close_distributed, gather, is_distributed


def test_close_distributed_leaves_the_group_and_is_a_no_op_outside_one(tmp_path: Path) -> None:
    close_distributed()                                                # no group: nothing to do
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        assert dist.is_initialized()
        close_distributed()
        assert not dist.is_initialized()
    finally:                                                           # never leave a group to later tests
        if dist.is_initialized():
            dist.destroy_process_group()


def test_gather_is_the_identity_in_one_process(tmp_path: Path) -> None:
    x = torch.randn(4, 3)
    assert not is_distributed() and gather(x) is x
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:                                                               # a group of one: still x
        assert not is_distributed() and torch.equal(gather(x), x)
    finally:
        dist.destroy_process_group()
