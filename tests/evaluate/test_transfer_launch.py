"""The multi-process launcher's own pieces (the end-to-end runs are in the framework tests)."""
from __future__ import annotations

from pathlib import Path

import torch.distributed as dist

from evaluate.transfer.launch import close_worker


def test_close_worker_leaves_the_group_and_is_a_no_op_outside_one(tmp_path: Path) -> None:
    close_worker()                                                     # no group: nothing to do
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    assert dist.is_initialized()
    close_worker()
    assert not dist.is_initialized()
