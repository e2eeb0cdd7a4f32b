"""Wall time of the evaluation suite on one checkpoint, and of its frozen-feature part cold vs warm.

    python bench/bench_suite.py CKPT [--data data/shapes64] [--sizes 100,500,2000] [--seeds 0,1] [--json OUT]

Rows (each in a fresh feature cache and results store under a temporary folder):

- ``frozen cold``: linear, kNN and clustering with an empty feature cache (extraction included);
- ``frozen warm``: the same tasks again with ``--force`` (features from the cache, tasks rerun);
- ``finetune``: label-efficiency curves at ``--sizes`` x ``--seeds``, pretrained and from scratch;
- ``whole suite``: the sum (linear, kNN, clustering, finetune) as one user runs it cold.

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


def timed(args: list[str]) -> float:
    start = time.perf_counter()
    if S.main(args) != 0:
        raise SystemExit(f"evaluate.suite {' '.join(args)} failed")
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("ckpt")
    ap.add_argument("--data", default="data/shapes64")
    ap.add_argument("--sizes", default="100,500,2000")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        base = [a.ckpt, "--data", a.data, "--seeds", a.seeds, "--store", f"{tmp}/r.sqlite", "--cache", f"{tmp}/cache"]
        frozen = ["--tasks", "linear,knn,clustering"]
        rows: dict[str, float] = {}
        for name, args in (("frozen cold", base + frozen), ("frozen warm", base + frozen + ["--force"]),
                           ("finetune", base + ["--tasks", "finetune", "--sizes", a.sizes])):
            rows[name] = timed(args)
            print(f"{name}: {rows[name]:.1f} s", flush=True)
    rows["whole suite"] = rows["frozen cold"] + rows["finetune"]
    out = {"ckpt": a.ckpt, "data": a.data, "sizes": a.sizes, "seeds": a.seeds,
           "seconds": {k: round(v, 1) for k, v in rows.items()}}
    print(json.dumps(out, indent=1))
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(out))


if __name__ == "__main__":
    main()
