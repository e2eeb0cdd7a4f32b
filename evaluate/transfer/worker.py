"""One process of a multi-process transfer run (started by ``launch.spawn`` through torchrun):
``python -m evaluate.transfer.worker detectron2|mmseg CONFIG METRICS_JSON [--scenes DIR]``."""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from pretrain.distributed import close_distributed

from .errors import TrainingDiverged
from .launch import DIVERGED, init_worker, write_result


def _detectron2(config: Path, scenes: Path | None) -> dict[str, float]:
    from detectron2.config import get_cfg

    from . import detectron2 as d2

    if scenes is not None:
        d2.register_scenes(scenes)
    cfg = get_cfg()
    cfg.merge_from_file(str(config))
    return d2.train_and_evaluate(cfg)


def _mmseg(config: Path) -> dict[str, float]:
    from mmengine.config import Config

    from . import mmseg

    return mmseg.train_and_evaluate(Config.fromfile(str(config)).to_dict(), launcher="pytorch")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m evaluate.transfer.worker")
    ap.add_argument("framework", choices=("detectron2", "mmseg"))
    ap.add_argument("config", type=Path)
    ap.add_argument("metrics", type=Path)
    ap.add_argument("--scenes", type=Path)
    a = ap.parse_args(argv)
    rank, *_ = init_worker()
    try:
        metrics = _detectron2(a.config, a.scenes) if a.framework == "detectron2" else _mmseg(a.config)
    except TrainingDiverged as e:
        write_result(a.metrics, {"diverged": str(e)})
        close_distributed(synchronise=False)        # the other ranks may be stopping at another step
        return DIVERGED
    if rank == 0:
        write_result(a.metrics, {"metrics": metrics})
    close_distributed()
    return 0


def leave(code: int) -> None:
    """Exit without the interpreter's teardown: the group is closed and the result written, and
    the frameworks' gloo / dataloader threads can abort a process that finalises around them
    ("terminate called without an active exception"), turning a finished run into a failed one."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    leave(main())
