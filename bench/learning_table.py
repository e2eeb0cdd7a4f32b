"""The learning check's table: each method's probe beside the silhouette floor, the random
backbone and the supervised ceiling, as points over random and the fraction of the random ->
supervised gap it closes.

    .venv/bin/python bench/learning_table.py [bench/out]     (after bench/learning.sh)

Reads ``learning-<method>.json`` (bench/linear_probe.py at the view size) and ``learning-floor.txt``
(``python -m evaluate.floor``); prints a Markdown table.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path


def table(out: Path) -> str:
    probes = {p.stem.removeprefix("learning-"): json.loads(p.read_text())["linear_probe_top1"]
              for p in sorted(out.glob("learning-*.json")) if not p.stem.endswith("-stored")}
    if "random" not in probes:
        raise SystemExit(f"{out}: no learning-random.json; run bench/learning.sh with random first")
    floor_txt = out / "learning-floor.txt"
    found = re.search(r"top-1 ([0-9.]+)", floor_txt.read_text()) if floor_txt.exists() else None
    random, ceiling = probes["random"], probes.get("supervised")
    lines = [f"silhouette floor: {found.group(1) if found else 'not measured'}; random {random:.2f}; "
             f"supervised {'not measured' if ceiling is None else f'{ceiling:.2f}'}", "",
             "| method | top-1 | over random | gap closed |", "|---|---|---|---|"]
    for method, acc in probes.items():
        if method in ("random", "supervised"):
            continue
        closed = f"{(acc - random) / (ceiling - random):.2f}" if ceiling is not None and ceiling > random else "n/a"
        lines.append(f"| {method} | {acc:.2f} | {acc - random:+.2f} | {closed} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("bench/out")))
