"""Command line: export a synthetic dataset to COCO / VOC / ImageFolder / frame folders.

    python -m synthetic.export DIR --to coco,voc [--overwrite]

Writes ``DIR/exports/<kind>/`` for each kind (see ``synthetic.exports``) and prints one line per
export. Bad input (no such folder, not a dataset, unknown kind) prints one ``error: ...`` line to
stderr and exits with status 2; a failure to write (disk full, permissions) exits with status 1.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from synthetic import exports
from synthetic.store import DatasetError, open_dataset


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(prog="python -m synthetic.export", description=__doc__.split("\n")[0])
    parser.add_argument("dir", type=Path, help="dataset folder made by `python -m synthetic.generate`")
    parser.add_argument("--to", required=True,
                        help=f"comma-separated export kinds: {', '.join(exports.EXPORTERS)}")
    parser.add_argument("--overwrite", action="store_true", help="rebuild exports that already exist")
    return parser.parse_args(argv)


def run(root: Path, kinds: list[str], overwrite: bool) -> None:
    """Open the dataset at ``root`` and write the requested exports, reporting each on stdout."""
    kinds = exports.check_kinds(kinds)
    if not root.is_dir():
        raise DatasetError(f"{root}: no such folder")
    ds = open_dataset(root)
    for kind in kinds:
        skipped = not overwrite and exports.is_complete(ds, kind)
        path = exports.EXPORTERS[kind](ds, overwrite=overwrite)
        print(f"{kind}: {path}" + (" (already there; --overwrite rebuilds it)" if skipped else ""))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = parse_args(argv)
    kinds = [k.strip() for k in args.to.split(",") if k.strip()]
    try:
        run(args.dir, kinds, args.overwrite)
    except (DatasetError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # disk full, permissions: not bad input, but no traceback either
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
