"""``python -m pretrain --method byol [--aug default] [--preset cpu] [--data DIR] [--optim.lr=0.1 ...]``.

Trains a self-supervised model and exports ``runs/<run_id>/ckpt.pt`` (backbone only,
self-describing) with ``resume.pt``, ``config.json``, ``log.jsonl`` and TensorBoard scalars
beside it. ``--list`` prints the registered methods, augmentation policies, backbones, presets.
Under ``torchrun --nproc_per_node N -m pretrain ...`` it trains with DDP.
"""
from __future__ import annotations

import argparse
import logging
import sys

from . import config as C


def list_registries() -> str:
    from .backbones import BACKBONES
    from .methods import METHODS
    from .augment import AUGMENTATIONS

    return "\n".join([f"methods:       {' '.join(METHODS)}", f"augmentations: {' '.join(AUGMENTATIONS)}",
                      f"backbones:     {' '.join(BACKBONES)}", f"presets:       {' '.join(C.PRESETS)}"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pretrain", description=__doc__.split("\n")[0])
    ap.add_argument("--method", help="registry name (see --list)")
    ap.add_argument("--aug", default=None, help="augmentation policy (default: the method preset's, else 'default')")
    ap.add_argument("--preset", default="cpu", help=f"one of {', '.join(C.PRESETS)}")
    ap.add_argument("--data", default=None, help="dataset folder (same as --data.path=...)")
    ap.add_argument("--resume", action="store_true",
                    help="continue this config's partial run from resume.pt; a run whose checkpoint recorded other "
                         "resolved settings than this version gives its config is retrained from step 0 (logged)")
    ap.add_argument("--overwrite", action="store_true", help="start this config's run again from step 0")
    ap.add_argument("--list", action="store_true", help="print the registries and exit")
    ap.add_argument("--quiet", action="store_true")
    args, rest = ap.parse_known_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s")
    if args.list:
        print(list_registries())
        return 0
    from .distributed import close_distributed
    from .trainer import TrainingDiverged, train

    try:
        if not args.method:
            raise ValueError("--method is required (see --list)")
        overrides = C.parse_overrides(rest)
        if args.data is not None:
            overrides["data.path"] = args.data
        cfg = C.build_config(args.method, args.aug, args.preset, overrides)
        run_dir = train(cfg, resume=args.resume, overwrite=args.overwrite, progress=not args.quiet)
    except TrainingDiverged as e:
        print(f"error: {e}", file=sys.stderr)
        close_distributed(synchronise=False)
        return 3
    except (ValueError, OSError) as e:
        print(f"error: {str(e).splitlines()[0] if str(e) else type(e).__name__}", file=sys.stderr)
        return 2
    close_distributed()
    print(run_dir / "ckpt.pt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
