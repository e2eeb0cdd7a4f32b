"""Benchmark: synthetic generation throughput (images/s), end to end through the CLI code path.

    .venv/bin/python bench/bench_generate.py [--preset shapes64] [--n 20000] [--workers N] [--json OUT]

Generates into a temporary folder (arrays, tables, meta; no exports) and reports wall-clock
images per second, plus the single-process render rate of one chunk.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from synthetic.generate import generate  # noqa: E402
from synthetic.presets import get_preset  # noqa: E402
from synthetic.scenes import mesh_bank, render, sample  # noqa: E402


def render_rate(preset: str, repeats: int = 5) -> float:
    """Images/s of sample+render of 256-image chunks in this process, one thread."""
    torch.set_num_threads(1)
    p = get_preset(preset)
    mesh_bank(p.classes, p.instances)
    per = max(1, 256 // p.images_per_unit())
    render(sample(p, 0, np.arange(per)), p)
    t = time.perf_counter()
    for i in range(repeats):
        render(sample(p, 0, np.arange(per * (i + 1), per * (i + 2))), p)
    return repeats * per * p.images_per_unit() / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="shapes64")
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        generate(a.preset, a.n, 0, Path(tmp) / "d", workers=a.workers, progress=False)
        dt = time.perf_counter() - t
    images = a.n * get_preset(a.preset).images_per_unit()
    rows["generate"] = dict(preset=a.preset, images=images, workers=a.workers, seconds=round(dt, 2),
                            images_per_s=round(images / dt, 1))
    rows["render_1proc"] = dict(preset=a.preset, images_per_s=round(render_rate(a.preset), 1))
    rows["machine"] = dict(cpus=os.cpu_count(), python=platform.python_version(), torch=torch.__version__)
    for k, v in rows.items():
        print(f"{k:14s} {v}")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
