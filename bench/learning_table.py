"""The learning check's table: each method's probe beside the silhouette floor, the random
backbone and the supervised ceiling, as points over random and the fraction of the random ->
supervised gap it closes.

    .venv/bin/python bench/learning_table.py [bench/out]     (after bench/learning.sh)

Reads ``learning-<method>.json`` (bench/linear_probe.py at the view size), ``learning-floor.txt``
(``python -m evaluate.floor``) and ``learning-times.tsv`` (method, train seconds, checkpoint; written
by bench/learning.sh); prints a Markdown table.
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
    times = train_times(out / "learning-times.tsv")
    lines = [f"silhouette floor: {found.group(1) if found else 'not measured'}; random {random:.2f}; "
             f"supervised {'not measured' if ceiling is None else f'{ceiling:.2f}'}", "",
             "| method | train s | top-1 | over random | gap closed |", "|---|---|---|---|---|"]
    for method, acc in probes.items():
        closed = f"{(acc - random) / (ceiling - random):.2f}" if ceiling is not None and ceiling > random else "n/a"
        lines.append(f"| {method} | {times.get(method, '')} | {acc:.2f} | {acc - random:+.2f} | {closed} |")
    return "\n".join(lines)


def train_times(path: Path) -> dict[str, str]:
    """Method -> training seconds from bench/learning.sh's tab-separated log (empty if absent)."""
    if not path.exists():
        return {}
    rows = (line.split("\t") for line in path.read_text().splitlines() if line.strip())
    return {row[0]: row[1] for row in rows if len(row) >= 2}


if __name__ == "__main__":
    print(table(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("bench/out")))
