"""Wall time of the evaluation suite on one checkpoint: the default suite task by task, and its
frozen-feature part cold vs warm.

    python bench/bench_suite.py CKPT [--data DATA] [--tasks linear,...] [--json OUT]

Rows (in a fresh feature cache and results store under a temporary folder):

- one row per task of the default suite (``python -m evaluate.suite CKPT``; ``--tasks`` for
  another list), run in the suite's order with the suite's defaults, each after the ones before
  it, so that the first task to need the frozen features pays for their extraction;
- ``whole suite``: their sum, the suite as one user runs it cold;
- ``frozen warm``: linear, kNN and clustering again with ``--force`` (features from the cache).

Run it alone on the machine: a busy machine inflates every figure.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evaluate import suite as S  # noqa: E402
from measure.tasks import default_tasks  # noqa: E402


def timed(args: list[str]) -> float:
    start = time.perf_counter()
    if S.main(args) != 0:
        raise SystemExit(f"evaluate.suite {' '.join(args)} failed")
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("ckpt")
    ap.add_argument("--data", help="dataset (default: the checkpoint's own, as the suite)")
    ap.add_argument("--tasks", help="comma-separated tasks (default: the suite's default list)")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    tasks = a.tasks.split(",") if a.tasks else default_tasks()
    with tempfile.TemporaryDirectory() as tmp:
        base = [a.ckpt, *(["--data", a.data] if a.data else []), "--store", f"{tmp}/r.sqlite", "--cache", f"{tmp}/cache"]
        rows: dict[str, float] = {}
        for task in tasks:
            rows[task] = timed(base + ["--tasks", task])
            print(f"{task}: {rows[task]:.1f} s", flush=True)
        rows["whole suite"] = sum(rows.values())
        frozen = [t for t in ("linear", "knn", "clustering") if t in tasks]
        if frozen:
            rows["frozen warm"] = timed(base + ["--tasks", ",".join(frozen), "--force"])
    logging.shutdown()
    out = {"ckpt": a.ckpt, "data": a.data, "tasks": tasks, "seconds": {k: round(v, 1) for k, v in rows.items()},
           "date": time.strftime("%Y-%m-%d")}
    print(json.dumps(out, indent=1))
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(out))


if __name__ == "__main__":
    main()
