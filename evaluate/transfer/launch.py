"""Multi-process (multi-GPU) transfer runs: one process per GPU started by ``torchrun``.

``torchrun`` (PyTorch's launcher, the one behind mmseg's ``tools/dist_train.sh``) starts
``python -m evaluate.transfer.worker`` once per GPU; every worker joins the process group (NCCL on
GPUs, gloo on CPU), trains its framework's config with the framework's own distributed machinery
(Detectron2: DDP + its sharded samplers and gathered evaluators, as in its ``launch``; mmseg:
mmengine's Runner with ``launcher="pytorch"``), and rank 0 writes the metrics to a JSON file that
the parent reads back. A worker that diverges writes the reason instead, so the parent raises the
same ``TrainingDiverged`` as a one-process run.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from fsio import write_json_atomic

from .errors import TrainingDiverged, TransferError

DIVERGED = 3          # a worker's exit code when training diverged


def check_devices(num_gpus: int, device: str) -> None:
    """Refuse a process count the machine cannot give: ``num_gpus`` CUDA devices for ``cuda``."""
    if num_gpus < 1:
        raise TransferError(f"--num-gpus {num_gpus}: expected 1 or more")
    if device.startswith("cuda"):
        import torch

        found = torch.cuda.device_count()
        if found < num_gpus:
            raise TransferError(f"--num-gpus {num_gpus} with --device cuda: this machine has {found} CUDA device(s)")


def spawn(framework: str, config: Path, metrics: Path, nprocs: int, extra: list[str] | None = None) -> dict[str, float]:
    """Run ``evaluate.transfer.worker`` in ``nprocs`` processes under torchrun; return rank 0's metrics."""
    metrics.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nprocs}",
           "-m", "evaluate.transfer.worker", framework, str(config), str(metrics), *(extra or [])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2]),
                                                        os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(cmd, env=env)
    result = json.loads(metrics.read_text()) if metrics.exists() else {}
    if "diverged" in result:
        raise TrainingDiverged(result["diverged"])
    if proc.returncode != 0 or "metrics" not in result:
        raise TransferError(f"{framework} with {nprocs} processes failed (exit {proc.returncode}); "
                            f"see the log above and {config.parent}")
    return {k: float(v) for k, v in result["metrics"].items()}


def init_worker() -> tuple[int, int, int, str]:
    """Join torchrun's process group: (rank, local_rank, world, device)."""
    import torch
    import torch.distributed as dist

    rank, local, world = (int(os.environ[k]) for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE"))
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(local)
    dist.init_process_group("nccl" if cuda else "gloo")
    return rank, local, world, f"cuda:{local}" if cuda else "cpu"


def write_result(path: Path, result: dict[str, Any]) -> None:
    """Write a worker's result JSON atomically."""
    write_json_atomic(path, result, indent=None)
