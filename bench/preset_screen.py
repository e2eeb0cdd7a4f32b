"""The cpu-preset screen: which backbone and view size separate SSL from random init per CPU-minute.

    .venv/bin/python bench/preset_screen.py --data data/shapes64-heldout [--arms small-w16-32,...]
                                            [--methods random,simclr,...] [--log bench/screen/screen.log]

For every arm (backbone, its kwargs, view size) and method it pretrains with ``--preset cpu`` (the
method's cpu settings included) on ``--data``, times the run, and probes the frozen features with
``bench/linear_probe.py`` (the suite's linear probe at C = 1; 5000 train / 2000 test images, read
at the view size). Each finished (arm, method) is one JSON line appended to ``--results``
(default ``bench/screen/results.jsonl``, kept in the repository); a rerun skips what is there and resumes
a pretraining stopped mid-way, so the screen continues where it stopped. Long: run it in the background with its log in a file.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

ARMS: dict[str, dict] = {
    # the current cpu preset: torchvision's standard stem on 32-px views (8x8 after the stem, 1x1 layer4)
    "std-r18-32": {"backbone.kwargs": {}, "aug_cfg.out_size": 32},
    # the small stem (3x3 stride-1 conv, no max-pool) at three widths on 32-px views
    "small-w16-32": {"backbone.kwargs": {"small_stem": True, "width": 16}, "aug_cfg.out_size": 32},
    "small-w32-32": {"backbone.kwargs": {"small_stem": True, "width": 32}, "aug_cfg.out_size": 32},
    "small-w64-32": {"backbone.kwargs": {"small_stem": True, "width": 64}, "aug_cfg.out_size": 32},
    # the standard stem on 64-px views (the images' own size)
    "std-r18-64": {"backbone.kwargs": {}, "aug_cfg.out_size": 64},
}
METHODS = ("random", "simclr", "supervised", "mocov2", "byol")


def done(results: Path) -> set[tuple[str, str]]:
    if not results.exists():
        return set()
    rows = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
    return {(r["arm"], r["method"]) for r in rows}


def run(arm: str, method: str, data: Path, runs: Path) -> dict:
    """Pretrain one (arm, method), probe it; the JSON line of the result."""
    settings = ARMS[arm]
    args = [sys.executable, "-m", "pretrain", "--method", method, "--preset", "cpu", "--data", str(data), "--quiet",
            "--resume",                                     # a run stopped mid-way continues from resume.pt
            f"--train.out={runs / arm}", "--train.tensorboard=false",
            f"--backbone.kwargs={json.dumps(settings['backbone.kwargs'])}",
            f"--aug_cfg.out_size={settings['aug_cfg.out_size']}"]
    t0 = time.time()
    done_ = subprocess.run(args, cwd=ROOT, capture_output=True, text=True)
    train_s = time.time() - t0
    if done_.returncode != 0:
        return {"arm": arm, "method": method, "error": done_.stderr.strip().splitlines()[-1:], "train_s": train_s}
    ckpt = Path(done_.stdout.strip().splitlines()[-1])
    from linear_probe import probe

    t1 = time.time()
    acc = probe(ckpt, data)
    return {"arm": arm, "method": method, "ckpt": str(ckpt), "train_s": round(train_s, 1),
            "probe_s": round(time.time() - t1, 1), "probe_top1": round(acc, 2), **settings,
            "date": time.strftime("%Y-%m-%d")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--arms", default=",".join(ARMS))
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--runs", type=Path, default=ROOT / "runs" / "screen")
    ap.add_argument("--results", type=Path, default=ROOT / "bench" / "screen" / "results.jsonl")
    a = ap.parse_args(argv)
    arms, methods = a.arms.split(","), a.methods.split(",")
    bad = [x for x in arms if x not in ARMS]
    if bad:
        sys.exit(f"unknown arm(s) {', '.join(bad)}; valid: {', '.join(ARMS)}")
    todo = [(arm, m) for arm in arms for m in methods if (arm, m) not in done(a.results)]
    a.results.parent.mkdir(parents=True, exist_ok=True)
    start = time.time()
    for i, (arm, method) in enumerate(todo):
        elapsed = time.time() - start
        eta = f"{elapsed / i * (len(todo) - i) / 60:.0f} min" if i else "after the first run"
        print(f"[{i + 1}/{len(todo)}] {arm} {method} (elapsed {elapsed / 60:.0f} min, ETA {eta})", flush=True)
        row = run(arm, method, a.data, a.runs)
        print(f"    {json.dumps(row)}", flush=True)
        with open(a.results, "a") as f:                     # one complete line per finished run
            f.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
