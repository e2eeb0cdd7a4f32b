"""Import a published SSL checkpoint as an sslbench ``ckpt.pt``.

    python -m evaluate.import_checkpoint SRC [--from FORMAT|auto] [--arch NAME|timm/MODEL]
                                         [--arch-arg KEY=VALUE ...] [--image-size N]
                                         [--mean R,G,B --std R,G,B] [--data-name NAME] [--name RUN_ID]
                                         --out ckpt.pt
    python -m evaluate.import_checkpoint --list          # the formats and where each layout comes from

The file is read with ``torch.load(weights_only=True)`` (or safetensors). Only the format's known
heads, projectors, predictors, prototypes, queues and momentum encoders are dropped, and every
dropped key is listed in the new checkpoint's provenance with the source's sha256 and format;
any other missing, unexpected or mis-shaped key stops the import with a line naming it. The
backbone is read from the keys (torchvision ResNets, timm ViTs) unless ``--arch`` names it.
The suite, invariance and transfer commands take a foreign file directly too (imported once,
cached by its sha256).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from measure.checkpoints import arch_args
from pretrain.checkpoint import CheckpointError, read_meta
from pretrain.importers import ALIASES, FORMATS, import_checkpoint
from pretrain.importers.core import DataOverrides


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m evaluate.import_checkpoint", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src", nargs="?", type=Path,
                    help="the foreign checkpoint file (.pth, .pth.tar, .ckpt, .safetensors)")
    ap.add_argument("--from", dest="fmt", default="auto", help=f"auto, or one of: {', '.join(FORMATS)}")
    ap.add_argument("--arch", default=None, help="backbone: a registered name (resnet50, ...) or timm/MODEL "
                    "(default: read from the keys)")
    ap.add_argument("--arch-arg", action="append", default=[], metavar="KEY=VALUE",
                    help="a backbone argument the weights do not show, e.g. num_heads=12 (MoCo v3's ViT-S)")
    ap.add_argument("--image-size", type=int, default=None, help="the resolution the model was trained at "
                    "(default: the ViT's native size, else 224)")
    ap.add_argument("--mean", default=None, help="input normalisation mean in [0, 1] (default ImageNet's)")
    ap.add_argument("--std", default=None, help="input normalisation std in [0, 1] (default ImageNet's)")
    ap.add_argument("--data-name", default="imagenet", help="the pretraining data's name, for the reports")
    ap.add_argument("--name", default=None, help="run id of the imported checkpoint (default FORMAT-FILE-SHA8)")
    ap.add_argument("--out", type=Path, help="where to write the sslbench ckpt.pt")
    ap.add_argument("--list", action="store_true", help="print the formats and exit")
    return ap.parse_args(argv)


def _triple(text: str | None, flag: str) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3:
        raise ValueError(f"{flag} {text!r}: expected three comma-separated numbers in [0, 1]")
    return values


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    if a.list:
        for name, fmt in FORMATS.items():
            aliases = [k for k, v in ALIASES.items() if v == name]
            print(f"{name:16s} {fmt.source}" + (f" (also: {', '.join(aliases)})" if aliases else ""))
        return 0
    if a.src is None or a.out is None:
        print("error: SRC and --out are required (or --list)", file=sys.stderr)
        return 2
    try:
        kwargs = arch_args(a.arch_arg)
        data = DataOverrides(a.data_name, a.image_size, _triple(a.mean, "--mean"), _triple(a.std, "--std"))
        out = import_checkpoint(a.src, a.out, a.fmt, a.arch, kwargs, data, a.name)
    except (CheckpointError, ValueError, OSError) as e:      # OSError: --out cannot be written
        print(f"error: {e}", file=sys.stderr)
        return 2
    meta = read_meta(out)
    prov = meta.provenance
    print(f"{out}: {prov['format']} ({', '.join(prov['matched_formats'])} fit) -> {meta.backbone.name} "
          f"{meta.backbone.kwargs or ''} {meta.backbone.num_features} features; dropped {len(prov['dropped'])} keys "
          f"(listed in its provenance); inputs normalised with mean {list(meta.data.mean)} std {list(meta.data.std)}")
    for what, value in (prov.get("assumed") or {}).items():
        if what == "normalisation" and a.mean is not None:
            continue
        print(f"warning: {what} assumed: {value} (the weights do not show it; --from / --arch-arg / --mean --std "
              "to say otherwise)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
