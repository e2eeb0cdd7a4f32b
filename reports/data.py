"""The results store as one pandas frame, with the run id's parts as columns.

    frame = load("results/results.sqlite")     # the store's rows + method, aug, backbone, ...
    runs_table(frame)                          # one line per run: what it was evaluated on
    export(frame, "results.csv")               # or .parquet (needs pyarrow or fastparquet)

A run id is ``{method}-{aug}-{backbone}-{dataset}-s{seed}-{hash8}`` (``pretrain.config.run_id``).
Augmentation names (``sal-mask-hn``) and dataset names (``shapes64-clutter``) may hold hyphens,
so the id is cut at the backbone: the first token after the augmentation that looks like a
backbone name (``BACKBONE``). Ids that do not follow the pattern (the finetuning baseline
``scratch-<arch>``, the agreement rows ``set-<hash>``) get ``method`` = their first token and
NaN for the other parts. This module reads the store only through ``evaluate.store``: no torch.
"""
from __future__ import annotations

import importlib.util
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from evaluate.store import ResultsStore

DEFAULT_DB = Path("results/results.sqlite")
RUN_COLUMNS = ("method", "aug", "backbone", "pretrain_data", "pretrain_seed", "config_hash")
# the tail every run id ends with, and the backbone names that cut the rest apart
_RUN_ID = re.compile(r"^(?P<head>.+)-s(?P<seed>\d+)-(?P<hash>[0-9a-f]{8})$")
BACKBONE = re.compile(r"^(resnet\d*|wide_resnet\w*|resnext\w*|vit\w*|convnext\w*|tiny)$")
EXPORT_FORMATS = (".csv", ".parquet")


def parse_run_id(run_id: str) -> dict[str, object]:
    """The parts of a run id: ``method``, ``aug``, ``backbone``, ``pretrain_data``,
    ``pretrain_seed`` (int) and ``config_hash``; NaN for every part but ``method`` (the first
    token) when the id does not follow ``{method}-{aug}-{backbone}-{dataset}-s{seed}-{hash8}``."""
    first = run_id.split("-", 1)[0]
    unparsed: dict[str, object] = {name: np.nan for name in RUN_COLUMNS}
    unparsed["method"] = first or np.nan
    match = _RUN_ID.match(run_id)
    if match is None:
        return unparsed
    tokens = match["head"].split("-")
    cut = next((i for i in range(2, len(tokens) - 1) if BACKBONE.match(tokens[i])), None)
    if cut is None and len(tokens) == 4:           # an unknown backbone name, but no ambiguity
        cut = 2
    if cut is None:
        return unparsed
    return {"method": tokens[0], "aug": "-".join(tokens[1:cut]), "backbone": tokens[cut],
            "pretrain_data": "-".join(tokens[cut + 1:]), "pretrain_seed": int(match["seed"]),
            "config_hash": match["hash"]}


def with_run_info(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` (store rows with a ``run_id`` column) plus the ``RUN_COLUMNS`` parsed from it;
    ``pretrain_seed`` is a nullable Int64. A new frame; the input is left as it is."""
    ids = pd.unique(frame["run_id"])
    parts = pd.DataFrame([parse_run_id(str(r)) for r in ids], index=ids, columns=list(RUN_COLUMNS))
    out = frame.drop(columns=[c for c in RUN_COLUMNS if c in frame.columns])
    for name in RUN_COLUMNS:
        out[name] = frame["run_id"].map(parts[name]).to_numpy() if len(ids) else np.nan
    out["pretrain_seed"] = pd.array(out["pretrain_seed"], dtype="Int64")
    return out


def load(db: Path | str) -> pd.DataFrame:
    """Every row of the results store ``db`` with the run id's parts (``with_run_info``).

    A missing file raises FileNotFoundError (the store is never created by reading it); a file
    that is not a results store raises ``evaluate.store.StoreError`` (a ValueError)."""
    path = Path(db)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such results store (python -m evaluate.suite writes one)")
    return with_run_info(ResultsStore(path).to_frame())


def runs_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One line per run id: its parts, the tasks and datasets it was evaluated on, and row counts.

    Columns: run_id, method, aug, backbone, pretrain_data, pretrain_seed, tasks (comma-joined),
    datasets (comma-joined), evaluations (``task/dataset:rows``, ``; ``-joined), rows."""
    if "method" not in frame.columns:
        frame = with_run_info(frame)
    columns = ["run_id", "method", "aug", "backbone", "pretrain_data", "pretrain_seed",
               "tasks", "datasets", "evaluations", "rows"]
    lines = []
    for run_id, rows in frame.groupby("run_id", sort=True):
        counts = rows.groupby(["task", "dataset"]).size()
        first = rows.iloc[0]
        lines.append({"run_id": run_id, **{c: first[c] for c in columns[1:6]},
                      "tasks": ", ".join(sorted(rows["task"].unique())),
                      "datasets": ", ".join(sorted(rows["dataset"].unique())),
                      "evaluations": "; ".join(f"{t}/{d}:{n}" for (t, d), n in counts.items()),
                      "rows": len(rows)})
    table = pd.DataFrame(lines, columns=columns)
    table["pretrain_seed"] = pd.array(table["pretrain_seed"], dtype="Int64")
    table["rows"] = table["rows"].astype("int64")
    return table


def write_atomic(path: Path | str, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it into place, so
    that ``path`` is either the old file or the complete new one. Returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text(path: Path | str, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _parquet_engine() -> str | None:
    for engine in ("pyarrow", "fastparquet"):
        if importlib.util.find_spec(engine) is not None:
            return engine
    return None


def export(frame: pd.DataFrame, path: Path | str) -> Path:
    """Write ``frame`` to ``path`` atomically, in the format its suffix names: ``.csv`` (always)
    or ``.parquet`` (with pyarrow or fastparquet installed; otherwise a one-line ValueError).
    Any other suffix raises ValueError listing the valid ones. Returns the path."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return write_atomic(path, lambda tmp: frame.to_csv(tmp, index=False))
    if suffix == ".parquet":
        engine = _parquet_engine()
        if engine is None:
            raise ValueError("parquet export needs pyarrow: pip install pyarrow")
        return write_atomic(path, lambda tmp: frame.to_parquet(tmp, index=False, engine=engine))
    raise ValueError(f"{path}: unknown export format {suffix or '(no suffix)'!r}; "
                     f"valid: {', '.join(EXPORT_FORMATS)}")


__all__ = ["BACKBONE", "DEFAULT_DB", "EXPORT_FORMATS", "RUN_COLUMNS", "export", "load", "parse_run_id",
           "runs_table", "with_run_info", "write_atomic", "write_text"]
