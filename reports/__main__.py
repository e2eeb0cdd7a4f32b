"""Reports from the results store.

    python -m reports runs    [--db results/results.sqlite]
    python -m reports export  [--db ...] --out FILE.csv|FILE.parquet
    python -m reports compare --paper NAME [--db ...] [--out DIR] [--group-apart]
    python -m reports table   [--db ...] --rows method,aug --cols task [--where task=linear,knn]
                              [--stat std|ci95] [--format md|csv|latex|html] [--out FILE]
    python -m reports build   [--db ...] --out DIR [--stat std|ci95]
    python -m reports reproduce --paper NAME --scale cpu|full [--dry-run]

Bad input (a missing store, an unknown paper or format, a wrong flag) is one line on stderr and
exit status 2. Files are written atomically (a temporary file, then a rename).
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from fsio import write_text_atomic
from measure.results import StoreError

from . import compare as C
from .build import add_build, add_reproduce
from .data import DEFAULT_DB, export, load, runs_table
from .papers import PAPERS, get_paper
from .tables import FORMATS, render, table

Command = Callable[[argparse.Namespace], int]


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit 2) instead of the usage text."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {self.prog}: {message}", file=sys.stderr)
        raise SystemExit(2)


def _db(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", type=Path, default=DEFAULT_DB, help=f"results store (default {DEFAULT_DB})")


# ------------------------------------------------------------------------------------ commands

def cmd_runs(a: argparse.Namespace) -> int:
    """Print one line per run: its parts and what it was evaluated on."""
    table = runs_table(load(a.db))
    print(table.to_string(index=False, max_colwidth=60) if len(table) else f"{a.db}: no runs")
    return 0


def cmd_export(a: argparse.Namespace) -> int:
    """Write every row, with the run-id columns, to a CSV or parquet file."""
    frame = load(a.db)
    print(f"wrote {export(frame, a.out)} ({len(frame)} rows)")
    return 0


def cmd_compare(a: argparse.Namespace) -> int:
    """Print the comparison with a paper as markdown; with --out also write it (md, csv)."""
    spec = get_paper(a.paper)                    # an unknown name fails before the store is read
    frame = load(a.db)
    text = C.report(frame, spec, apart=a.group_apart)
    print(text, end="")
    if a.out is not None:
        numbers, trends = C.compare(frame, spec, apart=a.group_apart)
        for path, content in ((a.out / f"{a.paper}.md", text),
                              (a.out / f"{a.paper}.csv", render(numbers, "csv")),
                              (a.out / f"{a.paper}-trends.csv", render(trends, "csv"))):
            write_text_atomic(path, content)
            print(f"wrote {path}", file=sys.stderr)
    return 0


def _columns(text: str) -> list[str]:
    return [c.strip() for c in text.split(",") if c.strip()]


def _where(items: list[str]) -> dict[str, list[str]]:
    """``["task=linear,knn", "metric=top1"]`` -> ``{"task": ["linear", "knn"], "metric": ["top1"]}``."""
    out: dict[str, list[str]] = {}
    for item in items:
        column, sep, values = item.partition("=")
        if not sep or not column.strip() or not values.strip():
            raise ValueError(f"--where {item!r}: expected COLUMN=VALUE[,VALUE...]")
        out.setdefault(column.strip(), []).extend(_columns(values))
    return out


def cmd_table(a: argparse.Namespace) -> int:
    """Print one table of any grouping (rows x columns, mean ± spread (n) over seeds); --out writes it."""
    where = _where(a.where)
    result = table(load(a.db), _columns(a.rows), _columns(a.cols), where, a.stat)
    text = render(result, a.format)
    if a.out is not None:
        print(f"wrote {write_text_atomic(a.out, text)}", file=sys.stderr)
    print(text, end="" if text.endswith("\n") else "\n")
    return 0


# ----------------------------------------------------------------------------------- subparsers

def add_runs(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("runs", help=cmd_runs.__doc__, description=cmd_runs.__doc__)
    _db(p)
    p.set_defaults(func=cmd_runs)


def add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help=cmd_export.__doc__, description=cmd_export.__doc__)
    _db(p)
    p.add_argument("--out", type=Path, required=True, help="FILE.csv or FILE.parquet (needs pyarrow)")
    p.set_defaults(func=cmd_export)


def add_compare(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help=cmd_compare.__doc__, description=cmd_compare.__doc__)
    p.add_argument("--paper", required=True, help=f"one of {', '.join(PAPERS)}")
    _db(p)
    p.add_argument("--out", type=Path, help="also write DIR/NAME.md, NAME.csv and NAME-trends.csv")
    p.add_argument("--group-apart", action="store_true",
                   help="runs of one arm that differ in a setting the paper's plan does not vary (e.g. from "
                        "before a default changed) are compared apart, each setting a variant of its own "
                        "(default: refuse to pool them, naming the runs and the setting)")
    p.set_defaults(func=cmd_compare)


def add_table(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("table", help=cmd_table.__doc__, description=cmd_table.__doc__)
    _db(p)
    p.add_argument("--rows", required=True, help="row columns, comma-separated (e.g. method,aug)")
    p.add_argument("--cols", default="", help="column columns, comma-separated (e.g. task or labels)")
    p.add_argument("--where", action="append", default=[], metavar="COLUMN=V1[,V2]",
                   help="keep rows whose COLUMN is one of the values (repeatable)")
    p.add_argument("--stat", choices=("std", "ci95"), default="ci95",
                   help="spread shown beside each mean: the 95%% CI half-width (default) or the std")
    p.add_argument("--format", choices=FORMATS, default="md")
    p.add_argument("--out", type=Path, help="also write the table to this file")
    p.set_defaults(func=cmd_table)


# Each subcommand is one ``add_<name>(sub)`` function that registers its subparser and sets
# ``func`` (a ``Command``: namespace -> exit status).
SUBCOMMANDS: tuple[Callable[[argparse._SubParsersAction], None], ...] = (add_runs, add_export, add_compare,
                                                                          add_table, add_build, add_reproduce)


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m reports`` parser, one subparser per entry of ``SUBCOMMANDS``."""
    parser = Parser(prog="python -m reports", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in SUBCOMMANDS:
        add(sub)
    return parser


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; bad input prints one line on stderr and returns 2."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:                     # --help (0) or a usage error (2, already printed)
        return int(e.code or 0)
    try:
        return args.func(args)
    except (FileNotFoundError, StoreError, ValueError, OSError, RuntimeError) as e:
        print(f"error: {_one_line(e)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
