"""The cpu-preset screen: which backbone and view size separate SSL from random init per CPU-minute.

    .venv/bin/python bench/preset_screen.py --data data/shapes64-heldout [--arms small-w16-32,...]
                                            [--methods random,simclr,...] [--log bench/screen/screen.log]

For every arm (backbone, its kwargs, view size) and method it pretrains with ``--preset cpu`` (the
method's cpu settings included) on ``--data``, times the run, and probes the frozen features with
``bench/linear_probe.py`` (the suite's linear probe at C = 1; 5000 train / 2000 test images, read
at the view size). Each finished (arm, method) is one JSON line appended to ``--results``
(default ``bench/screen/results.jsonl``, kept in the repository); a rerun skips what is there and resumes
a pretraining stopped mid-way, so the screen continues where it stopped. Long: run it in the background with its log in a file.

Equal CPU time: an (arm, method) whose full preset run would take longer than ``--budget-min`` gets
fewer steps. A timing run of ``TIMING_STEPS`` steps measures its seconds per step on this machine
(the trainer's log lines carry wall time), and the run is cut to the steps that fit the budget
(its cosine schedule compressed to them). The line records ``steps``, ``full_steps`` and ``capped``;
a line marked ``overlapped`` (other work shared the machine during its training, not its timing
run) is shown per minute of its budget, steps x seconds per step.
The full step count of a method is its ``small-w16-32`` run's (same data, batch and epochs).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
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
TIMING_STEPS = 40


def full_steps(method: str, results: Path) -> int | None:
    """The method's step count at the full cpu preset, read from its small-w16-32 checkpoint."""
    from pretrain.checkpoint import read_meta

    for r in rows(results):
        if r["arm"] == "small-w16-32" and r["method"] == method and "ckpt" in r:
            return read_meta(Path(r["ckpt"])).train.total_steps
    return None


def step_seconds(arm: str, method: str, data: Path, runs: Path) -> float:
    """Seconds per training step of (arm, method) on this machine, from a short timing run."""
    import tempfile

    with tempfile.TemporaryDirectory(dir=runs) as tmp:
        out = subprocess.run(pretrain_args(arm, method, data, Path(tmp), resume=False) + [
            f"--train.steps={TIMING_STEPS}", "--train.log_every=5", f"--train.ckpt_every={TIMING_STEPS}"],
            cwd=ROOT, capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"timing run {arm} {method} failed: {out.stderr.strip().splitlines()[-1:]}")
        log = [json.loads(line) for line in next(Path(tmp).glob("*/log.jsonl")).read_text().splitlines()]
    first, last = log[1], log[-1]                           # skip the first steps (allocation, warm-up)
    return (last["time"] - first["time"]) / (last["step"] - first["step"])


def pretrain_args(arm: str, method: str, data: Path, out: Path, resume: bool = True) -> list[str]:
    settings = ARMS[arm]
    return [sys.executable, "-m", "pretrain", "--method", method, "--preset", "cpu", "--data", str(data), "--quiet",
            *(["--resume"] if resume else []),              # a run stopped mid-way continues from resume.pt
            f"--train.out={out}", "--train.tensorboard=false",
            f"--backbone.kwargs={json.dumps(settings['backbone.kwargs'])}",
            f"--aug_cfg.out_size={settings['aug_cfg.out_size']}"]


def rows(results: Path) -> list[dict]:
    if not results.exists():
        return []
    return [json.loads(line) for line in results.read_text().splitlines() if line.strip()]


def done(results: Path) -> set[tuple[str, str]]:
    return {(r["arm"], r["method"]) for r in rows(results)}


def budget_steps(arm: str, method: str, data: Path, runs: Path, results: Path, budget_s: float) -> dict:
    """The steps (arm, method) gets within the budget: {} for the full preset, else the cut."""
    full = full_steps(method, results)
    if method == "random" or full is None:
        return {}
    sec = step_seconds(arm, method, data, runs)
    steps = int(budget_s / sec)
    if steps >= full:
        return {"full_steps": full, "step_s": round(sec, 3)}
    return {"steps": steps, "full_steps": full, "step_s": round(sec, 3), "capped": True}


def run(arm: str, method: str, data: Path, runs: Path, cut: dict) -> dict:
    """Pretrain one (arm, method), probe it; the JSON line of the result."""
    settings = ARMS[arm]
    args = pretrain_args(arm, method, data, runs / arm)
    if cut.get("capped"):
        args.append(f"--train.steps={cut['steps']}")
    t0 = time.time()
    done_ = subprocess.run(args, cwd=ROOT, capture_output=True, text=True)
    train_s = time.time() - t0
    if done_.returncode != 0:
        return {"arm": arm, "method": method, "error": done_.stderr.strip().splitlines()[-1:], "train_s": train_s}
    ckpt = Path(done_.stdout.strip().splitlines()[-1])
    log = (ckpt.parent / "log.jsonl").read_text().splitlines()
    resumed = bool(log) and json.loads(log[0]).get("time", t0) < t0    # its first steps ran before this call
    from linear_probe import probe

    t1 = time.time()
    acc = probe(ckpt, data)
    return {"arm": arm, "method": method, "ckpt": str(ckpt), "train_s": round(train_s, 1),
            "probe_s": round(time.time() - t1, 1), "probe_top1": round(acc, 2), **settings, **cut,
            **({"resumed": True} if resumed else {}), "date": time.strftime("%Y-%m-%d")}


def table(results: Path) -> str:
    """The screen as Markdown: per arm and method the probe, its gain over the arm's random
    backbone, the wall time, and the gain per minute of pretraining."""
    found = rows(results)
    random = {r["arm"]: r["probe_top1"] for r in found if r["method"] == "random" and "probe_top1" in r}
    lines = ["| arm | method | steps | train s | probe top-1 | over random | points / min |", "|---|---|---|---|---|---|---|"]
    for arm in ARMS:
        for r in (r for r in found if r["arm"] == arm):
            if "probe_top1" not in r:
                lines.append(f"| {arm} | {r['method']} | | | failed: {r.get('error')} | | |")
                continue
            gain = r["probe_top1"] - random[arm] if arm in random and r["method"] != "random" else None
            steps = f"{r['steps']} of {r['full_steps']}" if r.get("capped") else str(r.get("full_steps", ""))
            time_ = f"{r['train_s']}" + (" (resumed: partial)" if r.get("resumed") else "")
            minutes = r["train_s"] / 60
            if r.get("overlapped"):                         # not timed alone: its budget from the timing run
                minutes = r["steps"] * r["step_s"] / 60
                time_ += f" (shared machine; budget {r['steps'] * r['step_s']:.0f})"
            per_min = f"{gain / minutes:.2f}" if gain is not None and not r.get("resumed") else ""
            lines.append(f"| {arm} | {r['method']} | {steps} | {time_} | {r['probe_top1']:.2f} | "
                         f"{'' if gain is None else f'{gain:+.2f}'} | {per_min} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path)
    ap.add_argument("--arms", default=",".join(ARMS))
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--runs", type=Path, default=ROOT / "runs" / "screen")
    ap.add_argument("--results", type=Path, default=ROOT / "bench" / "screen" / "results.jsonl")
    ap.add_argument("--budget-min", type=float, default=13.0,
                    help="CPU minutes per pretraining; longer runs are cut to the steps that fit (default 13)")
    ap.add_argument("--table", action="store_true", help="print the results so far as a Markdown table and exit")
    a = ap.parse_args(argv)
    if a.table:
        print(table(a.results))
        return 0
    arms, methods = a.arms.split(","), a.methods.split(",")
    if a.data is None:
        ap.error("--data is required (unless --table)")
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
        cut = budget_steps(arm, method, a.data, a.runs, a.results, a.budget_min * 60)
        if cut.get("capped"):
            print(f"    {cut['step_s']} s/step: {cut['steps']} of {cut['full_steps']} steps fit "
                  f"{a.budget_min:g} min", flush=True)
        row = run(arm, method, a.data, a.runs, cut)
        print(f"    {json.dumps(row)}", flush=True)
        with open(a.results, "a") as f:                     # one complete line per finished run
            f.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
