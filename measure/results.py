"""Results store: one SQLite row per metric value, with its provenance (docs/architecture.md, "Results store").

Every evaluation writes its numbers here; reports read them back as a pandas frame. A row is::

    id, run_id, ckpt_sha256, task, dataset, split, metric, value (REAL), seed (INTEGER or NULL),
    eval_config (canonical JSON: sorted keys, no spaces), created (ISO 8601, UTC)

Beside the results, a ``runs`` table keeps how each checkpoint was pretrained: one row per
(run_id, ckpt_sha256) with the checkpoint's full resolved pretraining config (``meta.config``,
canonical JSON), written by every evaluation (``record_run``) and read back by ``runs()``; the reports
use it to tell apart runs that differ only in settings the run id does not name
(``--aug_cfg.fill=blur``). A run id's rows are those of its current checkpoint: ``record_run``
removes what an earlier checkpoint of the same run left (a run retrained after a default
changed). Stores made before the table existed open as they are (the table is added on open) and
read as having no configs.

The database runs in WAL mode, so readers never block the writer. Each ``add`` / ``replace`` is
one ``BEGIN IMMEDIATE`` transaction (all rows or none) that waits up to ``BUSY_TIMEOUT_S`` for
other writers, so any number of processes can write at once and lose nothing. A connection is
opened per operation: a ``ResultsStore`` is only a path, safe to pickle into worker processes.
WAL needs a local filesystem (not NFS).

    python -m measure.results results/results.sqlite [--csv results.csv]

prints a summary per (task, dataset, split, metric) and optionally exports every row as CSV.
"""
from __future__ import annotations

import argparse
import io
import json
import logging
import math
import numbers
import sqlite3
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fsio import write_text_atomic

FORMAT = "sslbench-results"
SCHEMA_VERSION = 1
BUSY_TIMEOUT_S = 60.0
log = logging.getLogger("measure.results")

COLUMNS = ("id", "run_id", "ckpt_sha256", "task", "dataset", "split", "metric", "value", "seed",
           "eval_config", "created")
TEXT_FIELDS = ("run_id", "ckpt_sha256", "task", "dataset", "split", "metric")
# (ckpt, task, dataset, split, eval_config): the rows that ``replace`` swaps out together
REPLACE_KEY = ("ckpt_sha256", "task", "dataset", "split", "eval_config")
_POSITION = {column: i for i, column in enumerate(COLUMNS[1:])}  # column -> index in a ``_row`` tuple

_SCHEMA = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE results (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id TEXT NOT NULL,
        ckpt_sha256 TEXT NOT NULL,
        task TEXT NOT NULL,
        dataset TEXT NOT NULL,
        split TEXT NOT NULL,
        metric TEXT NOT NULL,
        value REAL NOT NULL,
        seed INTEGER,
        eval_config TEXT NOT NULL,
        created TEXT NOT NULL)""",
    "CREATE INDEX results_ckpt_task_dataset ON results (ckpt_sha256, task, dataset)",
)
# Arrays that are not one number (2-D embeddings for the reports): npz bytes, one row per name.
_ARRAYS_SCHEMA = """CREATE TABLE IF NOT EXISTS arrays (
    run_id TEXT NOT NULL, ckpt_sha256 TEXT NOT NULL, task TEXT NOT NULL, dataset TEXT NOT NULL,
    name TEXT NOT NULL, data BLOB NOT NULL, created TEXT NOT NULL,
    PRIMARY KEY (ckpt_sha256, task, dataset, name))"""
# How each checkpoint was pretrained (its meta.config, canonical JSON); added to older stores on open.
_RUNS_SCHEMA = """CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT NOT NULL, ckpt_sha256 TEXT NOT NULL, config TEXT NOT NULL, created TEXT NOT NULL,
    PRIMARY KEY (run_id, ckpt_sha256))"""
RUN_COLUMNS = ("run_id", "ckpt_sha256", "config", "created")
_INSERT = f"INSERT INTO results ({', '.join(COLUMNS[1:])}) VALUES ({', '.join('?' * (len(COLUMNS) - 1))})"


class StoreError(ValueError):
    """A results store file is not an SQLite database, or not one this version of sslbench made."""


@dataclass
class Result:
    """One metric value of one evaluation of one checkpoint."""

    run_id: str
    ckpt_sha256: str
    task: str
    dataset: str
    split: str
    metric: str
    value: float
    seed: int | None = None
    eval_config: dict[str, Any] = field(default_factory=dict)


def eval_config_key(cfg: Mapping[str, Any]) -> str:
    """Canonical JSON of an evaluation config (sorted keys, compact): equal configs, equal keys."""
    if not isinstance(cfg, Mapping):
        raise TypeError(f"eval_config must be a dict, got {type(cfg).__name__}")
    try:
        return json.dumps(cfg, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as e:
        raise ValueError(f"eval_config must be JSON-serialisable with finite numbers: {e}") from e


def config_key(cfg: Mapping[str, Any]) -> str:
    """Canonical JSON of a pretraining config (sorted keys, compact; values JSON cannot hold, e.g.
    paths, as their text). Raises TypeError for a non-dict, ValueError for a non-finite number."""
    if not isinstance(cfg, Mapping):
        raise TypeError(f"config must be a dict, got {type(cfg).__name__}")
    try:
        return json.dumps(cfg, sort_keys=True, separators=(",", ":"), allow_nan=False, default=str)
    except ValueError as e:
        raise ValueError(f"config must hold finite numbers only: {e}") from e


def _plain(value: Any) -> Any:
    """numpy scalars -> Python scalars (sqlite3 binds only the latter)."""
    return value.item() if isinstance(value, np.generic) else value


def _row(result: Result, created: str) -> tuple:
    """Validated INSERT parameters of one result."""
    if not isinstance(result, Result):
        raise TypeError(f"expected measure.results.Result, got {type(result).__name__}")
    for name in TEXT_FIELDS:
        text = getattr(result, name)
        if not isinstance(text, str) or not text:
            raise ValueError(f"metric {result.metric!r}: {name} must be a non-empty string, got {text!r}")
    value = _plain(result.value)
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"metric {result.metric!r} ({result.task}/{result.dataset}/{result.split}): "
                         f"value must be a finite number, got {result.value!r}")
    seed = _plain(result.seed)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
        raise ValueError(f"metric {result.metric!r}: seed must be an int or None, got {result.seed!r}")
    return (result.run_id, result.ckpt_sha256, result.task, result.dataset, result.split, result.metric,
            float(value), None if seed is None else int(seed), eval_config_key(result.eval_config), created)


def _where(filters: Mapping[str, Any]) -> tuple[str, list]:
    """SQL WHERE clause and parameters: ``col = v``; None -> IS NULL; a list/tuple/set -> IN."""
    clauses, params = [], []
    for column, want in filters.items():
        if column not in COLUMNS:
            raise ValueError(f"unknown filter {column!r}; valid columns: {', '.join(COLUMNS)}")
        many = isinstance(want, (list, tuple, set, frozenset))
        values = [_plain(eval_config_key(v) if isinstance(v, Mapping) else v) for v in (want if many else [want])]
        if not many and values[0] is None:
            clauses.append(f"{column} IS NULL")
        else:
            clauses.append(f"{column} IN ({', '.join('?' * len(values))})" if many else f"{column} = ?")
            params += values
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def _frame(rows: list[tuple]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(rows, columns=list(COLUMNS))
    return frame.astype({"id": "int64", "value": "float64", "seed": "Int64"})


def _replace_scopes(rows: list[tuple], key: dict[str, Any], split: str | None) -> list[dict[str, Any]]:
    """The row filters ``replace`` deletes: the named evaluation, or each key found in ``rows``."""
    if all(v is None for v in key.values()) and split is None:
        found = sorted({tuple(row[_POSITION[c]] for c in REPLACE_KEY) for row in rows})
        return [dict(zip(REPLACE_KEY, values)) for values in found]
    missing = [name for name, v in key.items() if v is None]
    if missing:
        raise ValueError(f"replace: pass {', '.join(missing)} too, or none of the evaluation key")
    scope = {**key, "eval_config": eval_config_key(key["eval_config"])}
    if split is not None:
        scope["split"] = split
    for row in rows:
        wrong = [c for c, v in scope.items() if row[_POSITION[c]] != v]
        if wrong:
            raise ValueError(f"replace: metric {row[_POSITION['metric']]!r} has another {', '.join(wrong)} "
                             f"than the evaluation being replaced")
    return [scope]


class ResultsStore:
    """The SQLite results store at ``path`` (created, with its folder, if missing)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._open()
        except StoreError:
            raise
        except (sqlite3.Error, OSError) as e:
            raise StoreError(f"{self.path}: cannot open as an sslbench results store ({e}); "
                             f"expected an SQLite file made by measure.results") from e

    def __repr__(self) -> str:
        return f"ResultsStore({str(self.path)!r})"

    # ------------------------------------------------------------------------------ connection

    def _connect(self) -> sqlite3.Connection:
        # autocommit mode: transactions are explicit; timeout = SQLite's busy timeout for locks
        return sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        con = self._connect()
        try:
            yield con
        finally:
            con.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; the write lock is taken up front, so writers queue, not fail."""
        with self._read() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    def _open(self) -> None:
        """Switch to WAL, then create the schema in an empty file or check an existing one."""
        with self._read() as con:
            try:
                mode = con.execute("PRAGMA journal_mode").fetchone()[0]
            except sqlite3.DatabaseError as e:
                if isinstance(e, sqlite3.OperationalError):  # locked, unreadable: not about the content
                    raise
                raise StoreError(f"{self.path}: not an SQLite database ({e}); "
                                 f"expected a results store made by measure.results") from e
            if mode != "wal" and con.execute("PRAGMA journal_mode = WAL").fetchone()[0] != "wal":
                raise StoreError(f"{self.path}: cannot switch to WAL mode; expected a local, writable file")
        with self._transaction() as con:
            tables = {name for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if not tables:
                self._create(con)
            else:
                self._check(con, tables)
            con.execute(_ARRAYS_SCHEMA)
            con.execute(_RUNS_SCHEMA)

    def _create(self, con: sqlite3.Connection) -> None:
        for statement in _SCHEMA:
            con.execute(statement)
        created = datetime.now(timezone.utc).isoformat(timespec="seconds")
        con.executemany("INSERT INTO meta (key, value) VALUES (?, ?)",
                        [("format", FORMAT), ("schema_version", str(SCHEMA_VERSION)), ("created", created)])

    def _check(self, con: sqlite3.Connection, tables: set[str]) -> None:
        expected = f"expected format {FORMAT!r} schema_version {SCHEMA_VERSION}"
        if "meta" not in tables or "results" not in tables:
            raise StoreError(f"{self.path}: an SQLite database with tables {sorted(tables)}, "
                             f"not a results store; {expected}")
        meta = dict(con.execute("SELECT key, value FROM meta"))
        if meta.get("format") != FORMAT or meta.get("schema_version") != str(SCHEMA_VERSION):
            raise StoreError(f"{self.path}: format {meta.get('format')!r} schema_version "
                             f"{meta.get('schema_version')}; {expected}")
        columns = tuple(row[1] for row in con.execute("PRAGMA table_info(results)"))
        if columns != COLUMNS:
            raise StoreError(f"{self.path}: results table has columns {list(columns)}; expected {list(COLUMNS)}")

    # ----------------------------------------------------------------------------------- arrays

    def put_arrays(self, run_id: str, ckpt_sha256: str, task: str, dataset: str, name: str,
                   **arrays: np.ndarray) -> None:
        """Store named numpy arrays (e.g. an embedding and its labels) as one npz blob, replacing
        any previous blob of the same (checkpoint, task, dataset, name)."""
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        created = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with self._transaction() as con:
            con.execute("INSERT OR REPLACE INTO arrays VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (run_id, ckpt_sha256, task, dataset, name, buf.getvalue(), created))

    def arrays(self, **filters: Any) -> list[dict[str, Any]]:
        """Stored arrays matching equality ``filters`` on run_id / ckpt_sha256 / task / dataset /
        name: dicts with those fields, ``created`` and ``arrays`` (name -> numpy array)."""
        keys = ("run_id", "ckpt_sha256", "task", "dataset", "name")
        bad = [k for k in filters if k not in keys]
        if bad:
            raise ValueError(f"unknown array filter(s) {bad}; valid: {', '.join(keys)}")
        where = " AND ".join(f"{k} = ?" for k in filters) or "1"
        with self._read() as con:
            rows = con.execute(f"SELECT {', '.join(keys)}, created, data FROM arrays WHERE {where} "
                               "ORDER BY created, name", list(filters.values())).fetchall()
        out = []
        for row in rows:
            with np.load(io.BytesIO(row[-1])) as z:
                out.append({**dict(zip(keys + ("created",), row[:-1])), "arrays": {k: z[k] for k in z.files}})
        return out

    # ------------------------------------------------------------------------------------- runs

    def put_run(self, run_id: str, ckpt_sha256: str, config: Mapping[str, Any]) -> None:
        """Record the pretraining ``config`` (a checkpoint's ``meta.config``) of the checkpoint
        ``ckpt_sha256`` of run ``run_id``, replacing any earlier record of that pair (one transaction)."""
        for name, text in (("run_id", run_id), ("ckpt_sha256", ckpt_sha256)):
            if not isinstance(text, str) or not text:
                raise ValueError(f"put_run: {name} must be a non-empty string, got {text!r}")
        row = (run_id, ckpt_sha256, config_key(config), datetime.now(timezone.utc).isoformat(timespec="seconds"))
        with self._transaction() as con:
            con.execute(_RUNS_SCHEMA)
            con.execute("INSERT OR REPLACE INTO runs (run_id, ckpt_sha256, config, created) VALUES (?, ?, ?, ?)", row)

    def record_run(self, run_id: str, ckpt_sha256: str, config: Mapping[str, Any]) -> int:
        """What an evaluation records of the checkpoint it evaluates: its config (``put_run``), after
        removing every record of the same run made from another checkpoint (results, arrays, run
        configs): a run id names one run, whose rows are those of its current ``ckpt.pt`` (a run
        retrained, e.g. by a plan rerun after a default changed, leaves no rows of its old
        weights). Returns the number of result rows removed, and logs it when there are any."""
        with self._transaction() as con:
            stale = con.execute("SELECT COUNT(*), GROUP_CONCAT(DISTINCT ckpt_sha256) FROM results "
                                "WHERE run_id = ? AND ckpt_sha256 != ?", (run_id, ckpt_sha256)).fetchone()
            for table in ("results", "arrays", "runs"):
                con.execute(f"DELETE FROM {table} WHERE run_id = ? AND ckpt_sha256 != ?", (run_id, ckpt_sha256))
        if stale[0]:
            log.warning("%s: removed %d stored values of an earlier checkpoint of this run (sha256 %s); this "
                        "checkpoint (%s) replaces it", run_id, stale[0], ", ".join(s[:12] for s in stale[1].split(",")),
                        ckpt_sha256[:12])
        self.put_run(run_id, ckpt_sha256, config)
        return int(stale[0])

    def runs(self) -> pd.DataFrame:
        """Every recorded run config: columns run_id, ckpt_sha256, config (a dict), created; oldest
        first. Empty for a store without the ``runs`` table (made before it existed)."""
        with self._read() as con:
            found = con.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'runs'").fetchone()
            rows = con.execute(f"SELECT {', '.join(RUN_COLUMNS)} FROM runs ORDER BY created, rowid").fetchall() \
                if found else []
        frame = pd.DataFrame.from_records(rows, columns=list(RUN_COLUMNS))
        frame["config"] = [json.loads(c) for c in frame["config"]]
        return frame

    # ---------------------------------------------------------------------------------- writing

    @staticmethod
    def _rows(results: Iterable[Result]) -> list[tuple]:
        created = datetime.now(timezone.utc).isoformat(timespec="seconds")
        return [_row(r, created) for r in results]

    def add(self, results: Iterable[Result]) -> int:
        """Write ``results`` in one transaction (all or none); returns the number of rows added.

        Every result is validated first: a non-finite value raises ValueError naming the metric
        and nothing is written.
        """
        rows = self._rows(results)
        if rows:
            with self._transaction() as con:
                con.executemany(_INSERT, rows)
        return len(rows)

    def delete(self, *, ckpt_sha256: str, task: str, dataset: str, eval_config: Mapping[str, Any],
               split: str | None = None) -> int:
        """Delete one evaluation's rows (every split unless ``split`` is given); returns the count."""
        filters = {"ckpt_sha256": ckpt_sha256, "task": task, "dataset": dataset,
                   "eval_config": eval_config_key(eval_config)}
        if split is not None:
            filters["split"] = split
        where, params = _where(filters)
        with self._transaction() as con:
            return con.execute(f"DELETE FROM results{where}", params).rowcount

    def replace(self, results: Iterable[Result], *, ckpt_sha256: str | None = None, task: str | None = None,
                dataset: str | None = None, eval_config: Mapping[str, Any] | None = None,
                split: str | None = None) -> tuple[int, int]:
        """Atomically swap an evaluation's old rows for ``results`` (a ``--force`` rerun).

        With the evaluation named (``ckpt_sha256``, ``task``, ``dataset``, ``eval_config`` and
        optionally ``split``), all its rows go, even metrics or splits the rerun no longer
        produces, and every result must belong to it. Without, the rows of each (ckpt, task,
        dataset, split, eval_config) present in ``results`` go. Returns (rows deleted, rows added).
        """
        rows = self._rows(results)
        scopes = _replace_scopes(rows, {"ckpt_sha256": ckpt_sha256, "task": task, "dataset": dataset,
                                        "eval_config": eval_config}, split)
        deleted = 0
        with self._transaction() as con:
            for scope in scopes:
                where, params = _where(scope)
                deleted += con.execute(f"DELETE FROM results{where}", params).rowcount
            con.executemany(_INSERT, rows)
        return deleted, len(rows)

    # ---------------------------------------------------------------------------------- reading

    def query(self, **filters: Any) -> pd.DataFrame:
        """Rows matching every filter (column=value; None matches NULL; a list matches any of its
        values; an ``eval_config`` dict matches its canonical JSON), in insertion order."""
        where, params = _where(filters)
        with self._read() as con:
            rows = con.execute(f"SELECT {', '.join(COLUMNS)} FROM results{where} ORDER BY id", params).fetchall()
        return _frame(rows)

    def has(self, ckpt_sha256: str | None, task: str, dataset: str, eval_config: Mapping[str, Any], *,
            split: str | None = None, run_id: str | None = None) -> bool:
        """Whether any row exists for this checkpoint (by sha256 and/or ``run_id``), task, dataset,
        eval config and, if given, split: lets a suite skip evaluations already done."""
        if ckpt_sha256 is None and run_id is None:
            raise ValueError("has: pass ckpt_sha256 or run_id")
        given = {"ckpt_sha256": ckpt_sha256, "run_id": run_id, "split": split}
        filters = {k: v for k, v in given.items() if v is not None}
        where, params = _where({**filters, "task": task, "dataset": dataset,
                                "eval_config": eval_config_key(eval_config)})
        with self._read() as con:
            return con.execute(f"SELECT 1 FROM results{where} LIMIT 1", params).fetchone() is not None

    def __len__(self) -> int:
        with self._read() as con:
            return con.execute("SELECT COUNT(*) FROM results").fetchone()[0]

    def to_frame(self) -> pd.DataFrame:
        """Every row as a pandas frame (columns ``COLUMNS``; ``seed`` is a nullable Int64)."""
        return self.query()

    def to_csv(self, path: str | Path) -> Path:
        """Export every row to ``path`` as CSV, written atomically; returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, self.to_frame().to_csv(index=False))
        return path

    def summary(self) -> pd.DataFrame:
        """Rows, checkpoints and mean / min / max value per (task, dataset, split, metric)."""
        sql = ("SELECT task, dataset, split, metric, COUNT(*), COUNT(DISTINCT ckpt_sha256), AVG(value), "
               "MIN(value), MAX(value) FROM results GROUP BY task, dataset, split, metric "
               "ORDER BY task, dataset, split, metric")
        with self._read() as con:
            rows = con.execute(sql).fetchall()
        return pd.DataFrame.from_records(rows, columns=["task", "dataset", "split", "metric", "rows",
                                                        "checkpoints", "mean", "min", "max"])


def main(argv: list[str] | None = None) -> int:
    """``python -m measure.results PATH [--csv OUT]``: print a summary, optionally export CSV."""
    parser = argparse.ArgumentParser(prog="python -m measure.results", description=main.__doc__)
    parser.add_argument("path", type=Path, help="results store (SQLite file)")
    parser.add_argument("--csv", type=Path, metavar="OUT", help="also write every row to OUT as CSV")
    args = parser.parse_args(argv)
    if not args.path.is_file():
        print(f"error: {args.path}: no such file; expected a results store", file=sys.stderr)
        return 2
    try:
        store = ResultsStore(args.path)
    except StoreError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    frame = store.to_frame()
    print(f"{args.path}: {len(frame)} rows, {frame['ckpt_sha256'].nunique()} checkpoints, "
          f"{frame['task'].nunique()} tasks")
    if len(frame):
        print(store.summary().to_string(index=False))
    if args.csv is not None:
        print(f"wrote {store.to_csv(args.csv)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
