"""Speed of HC / RC global-contrast saliency against the authors' C++ (CmSaliencyRC) on the golden images.

    python bench/bench_saliency.py                                  # the 4 golden 256-px images
    python bench/bench_saliency.py --repeats 31 --json bench/out/saliency.json
    python bench/bench_saliency.py --golden /path/to/golden/saliency

Single thread: the BLAS/OpenMP pools are limited to one thread before numpy is imported, and OpenCV
to one thread. Each entry is the median of --repeats calls after --warmup calls on the already loaded
image, as the C++ timings were taken (median of 31 calls, one OpenCV thread, 2-vCPU Xeon; copied
from the golden README). The ratio column is ours / C++; a busy machine inflates ours.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pretrain.saliency import hc, rc  # noqa: E402
from results_json import write_results  # noqa: E402

# C++ reference timings in ms (golden README): name -> (HC, RC)
CPP_MS = {"china": (2.26, 21.0), "chelsea": (1.58, 18.4), "astronaut": (2.98, 29.4), "coffee": (1.76, 18.7)}
DEFAULT_GOLDEN = Path(__file__).resolve().parents[1] / "tests" / "golden" / "saliency"


def timed(fn: Callable[[], Any], repeats: int, warmup: int) -> float:
    """Median seconds of fn() over ``repeats`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def load_rgb(golden: Path, name: str) -> np.ndarray:
    """A golden PNG as an (H, W, 3) uint8 RGB array."""
    bgr = cv2.imread(str(golden / f"{name}.png"), cv2.IMREAD_COLOR)
    if bgr is None:
        raise SystemExit(f"error: cannot read {golden / (name + '.png')}")
    return np.ascontiguousarray(bgr[..., ::-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--golden", type=Path, default=DEFAULT_GOLDEN, help="folder with the golden NAME.png files")
    p.add_argument("--names", nargs="+", default=list(CPP_MS), choices=list(CPP_MS))
    p.add_argument("--repeats", type=int, default=15, help="timed calls per measurement (median)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = p.parse_args(argv)
    cv2.setNumThreads(1)          # the saliency code uses no torch

    rows: list[dict[str, Any]] = []
    print(f"{'image':<10} {'size':>9} {'algo':>4} {'ours ms':>8} {'C++ ms':>7} {'ours/C++':>9}")
    for name in args.names:
        rgb = load_rgb(args.golden, name)
        for algo, fn, cpp in (("hc", hc, CPP_MS[name][0]), ("rc", rc, CPP_MS[name][1])):
            ms = timed(lambda: fn(rgb), args.repeats, args.warmup) * 1000
            size = f"{rgb.shape[0]}x{rgb.shape[1]}"
            print(f"{name:<10} {size:>9} {algo:>4} {ms:>8.2f} {cpp:>7.2f} {ms / cpp:>8.2f}x")
            rows.append({"image": name, "height": rgb.shape[0], "width": rgb.shape[1], "algo": algo, "ms": ms,
                         "cpp_ms": cpp, "ratio": ms / cpp})
    if args.json:
        env = {"numpy": np.__version__, "opencv": cv2.__version__, "threads": 1, "repeats": args.repeats,
               "load_avg_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None}
        write_results(args.json, env, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
