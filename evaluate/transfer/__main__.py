"""``python -m evaluate.transfer convert ckpt.pt --to detectron2|mmseg --out FILE`` and
``python -m evaluate.transfer detectron2|mmseg ckpt.pt --protocol NAME [--data DIR] [--iters N] [--batch B]
[--device cpu|cuda] [--num-gpus N] [--store DB]``. ``ckpt.pt`` may be a foreign checkpoint file
(``--from FORMAT``, default auto): it is imported once and cached by its sha256."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from measure.checkpoints import add_import_args, find_checkpoints, import_options
from pretrain.checkpoint import CheckpointError

from .convert import TARGETS, ConvertError, convert
from .errors import TransferError

DEFAULT_STORE = Path("results/results.sqlite")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m evaluate.transfer", description=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)
    c = sub.add_parser("convert", help="write a checkpoint's backbone in a framework's weight format")
    c.add_argument("ckpt", type=Path)
    c.add_argument("--to", required=True, help=f"one of: {', '.join(TARGETS)}")
    c.add_argument("--out", type=Path, help="output file (default: beside the checkpoint, <stem>-<to><ext>)")
    d = sub.add_parser("detectron2", help="train and evaluate a Detectron2 protocol from a checkpoint")
    d.add_argument("ckpt", type=Path)
    d.add_argument("--protocol", default="scenes-r18-fpn")
    d.add_argument("--data", type=Path, default=Path("data/scenes"), help="a synthetic scenes dataset")
    d.add_argument("--iters", type=int, help="training iterations (default: the protocol's)")
    d.add_argument("--batch", type=int, help="images per batch over all GPUs, Detectron2's SOLVER.IMS_PER_BATCH "
                   "(default: the protocol's; the learning rate scales linearly)")
    m = sub.add_parser("mmseg", help="train and evaluate an mmsegmentation protocol from a checkpoint")
    m.add_argument("ckpt", type=Path)
    m.add_argument("--protocol", default="scenes-r18-fcn")
    m.add_argument("--data", type=Path, default=Path("data/scenes"),
                   help="a synthetic dataset with masks; for the paper protocols the root of mmseg's data layout")
    m.add_argument("--iters", type=int, help="training iterations (default: 300 for scenes, else the config's)")
    m.add_argument("--batch", type=int, help="images per GPU, mmseg's train_dataloader.batch_size "
                   "(default: 8 for scenes, else the config's)")
    for p in (c, d, m):
        add_import_args(p)
    for p in (d, m):
        p.add_argument("--lr", type=float, help="base learning rate (default: the protocol's; Detectron2: "
                       "0.02 x batch / 16, mmseg: 0.01)")
        p.add_argument("--device", default="cpu", help="cpu | cuda (the paper protocols need cuda)")
        p.add_argument("--num-gpus", type=int, default=1,
                       help="processes, one per GPU, started with torchrun (on cpu: gloo processes)")
        p.add_argument("--out", type=Path, help="work folder (default: runs/transfer/<protocol>/<checkpoint run>)")
        p.add_argument("--store", type=Path, default=DEFAULT_STORE)
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", datefmt="%H:%M:%S")
    try:
        if a.command == "convert" and a.to not in TARGETS:
            raise ConvertError(f"--to {a.to!r}: valid targets: {', '.join(TARGETS)}")
        found = find_checkpoints([str(a.ckpt)], **import_options(a))    # a foreign file: imported once
        if len(found) != 1:
            raise ValueError(f"{a.ckpt}: {len(found)} checkpoints under this folder; name one ckpt.pt")
        a.ckpt = found[0]
        if a.command == "convert":
            out = a.out or a.ckpt.with_name(f"{a.ckpt.stem}-{a.to}{TARGETS.get(a.to, '')}")
            print(convert(a.ckpt, a.to, out))
        else:
            from . import detectron2, mmseg
            out = a.out or Path("runs/transfer") / a.protocol / a.ckpt.parent.name
            if a.command == "detectron2":
                metrics = detectron2.run(a.ckpt, a.protocol, a.data, out, iters=a.iters, ims_per_batch=a.batch,
                                         lr=a.lr, device=a.device, num_gpus=a.num_gpus, store=a.store)
            else:
                metrics = mmseg.run(a.ckpt, a.protocol, a.data, out, iters=a.iters, batch=a.batch, lr=a.lr,
                                    device=a.device, num_gpus=a.num_gpus, store=a.store)
            print(" ".join(f"{k}={v:.2f}" for k, v in metrics.items()))
    except (ConvertError, CheckpointError, TransferError, OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
