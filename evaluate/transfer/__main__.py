"""``python -m evaluate.transfer convert ckpt.pt --to detectron2|mmseg --out FILE``."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pretrain.checkpoint import CheckpointError

from .convert import TARGETS, ConvertError, convert


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m evaluate.transfer", description=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)
    c = sub.add_parser("convert", help="write a checkpoint's backbone in a framework's weight format")
    c.add_argument("ckpt", type=Path)
    c.add_argument("--to", required=True, help=f"one of: {', '.join(TARGETS)}")
    c.add_argument("--out", type=Path, help="output file (default: beside the checkpoint, <stem>-<to><ext>)")
    a = ap.parse_args(argv)
    out = a.out or a.ckpt.with_name(f"{a.ckpt.stem}-{a.to}{TARGETS.get(a.to, '')}")
    try:
        print(convert(a.ckpt, a.to, out))
    except (ConvertError, CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
