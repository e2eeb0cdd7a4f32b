"""Behaviour fingerprint of the harness: what a refactor must leave unchanged.

    python bench/equivalence.py --json bench/out/equivalence.json            # record
    python bench/equivalence.py --compare bench/out/equivalence.json         # record again and diff

It only drives the command lines (``python -m synthetic.generate``, ``python -m pretrain``,
``python -m pretrain.saliency``, ``python -m evaluate.suite``), so the same script measures the code
before and after a change of its internals:

1. a small shapes64 dataset (400 images at 32 px; and a video one for the temporal method),
   generated with a fixed seed;
2. a fixed-seed pretraining of every registered method (``--preset test``, ``STEPS`` steps, tiny
   backbone) and of every registered augmentation policy under SimCLR (the saliency policies
   with a precomputed RC saliency cache); each checkpoint's backbone weights are hashed (SHA-256
   over the state dict's names, dtypes, shapes and bytes, in key order);
3. ``python -m evaluate.suite`` on the SimCLR checkpoint with every default task (frozen-feature,
   finetuning, pose and dense, shortened); every stored metric value (task, dataset, split, metric,
   seed) is recorded.

``--compare REF`` exits 1 and lists every weight hash or metric that differs from REF.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
STEPS = 24
SUITE_TASKS = "linear,knn,clustering,finetune,pose,depth,segmentation,unsup_seg"
VIDEO_METHODS = ("temporal",)
METHOD_ARGS = {"vae": ("--optim.lr=0.005",)}     # the test preset's lr 0.05 makes the VAE diverge within STEPS
ENV = {**os.environ, "OMP_NUM_THREADS": "2", "PYTHONHASHSEED": "0"}


def sh(*args: str, cwd: Path = ROOT) -> str:
    """Run ``python args...`` in the project root; its stdout (a failure prints its stderr and stops)."""
    done = subprocess.run([sys.executable, *args], cwd=cwd, env=ENV, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"equivalence: `python {' '.join(args)}` failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout


def registries() -> dict[str, list[str]]:
    """``python -m pretrain --list``: {"methods": [...], "augmentations": [...], ...}."""
    out = {}
    for line in sh("-m", "pretrain", "--list").splitlines():
        key, _, names = line.partition(":")
        out[key.strip()] = names.split()
    return out


def weights_sha256(ckpt: Path) -> str:
    """SHA-256 over the backbone state dict (names, dtypes, shapes, bytes) of a checkpoint."""
    sd = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    h = hashlib.sha256()
    for name in sorted(sd):
        t = sd[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def pretrain(method: str, aug: str, data: Path, runs: Path, *extra: str) -> Path:
    out = sh("-m", "pretrain", "--method", method, "--aug", aug, "--preset", "test", "--data", str(data),
             "--quiet", f"--train.steps={STEPS}", f"--train.out={runs}", "--train.tensorboard=false", *extra)
    return Path(out.strip().splitlines()[-1])


def suite_rows(ckpt: Path, data: Path, work: Path) -> dict[str, float]:
    store = work / "results.sqlite"
    sh("-m", "evaluate.suite", str(ckpt), "--data", str(data), "--tasks", SUITE_TASKS, "--store", str(store),
       "--cache", str(work / "features"), "--sizes", "20,40", "--finetune-max-steps", "20", "--dense-steps", "5")
    con = sqlite3.connect(store)
    rows = con.execute("SELECT task, dataset, split, metric, seed, value FROM results").fetchall()
    con.close()
    return {f"{t}|{Path(d).name}|{s}|{m}|{seed}": v for t, d, s, m, seed, v in sorted(rows, key=str)}


def record(work: Path) -> dict:
    t0 = time.time()
    shapes, video = work / "shapes", work / "video"
    sh("-m", "synthetic.generate", "--preset", "shapes64", "--n", "400", "--seed", "0", "--size", "32",
       "--workers", "1", "--out", str(shapes))
    sh("-m", "synthetic.generate", "--preset", "video", "--n", "8", "--seed", "0", "--size", "32",
       "--workers", "1", "--out", str(video))
    sh("-m", "pretrain.saliency", "precompute", "--data", str(shapes), "--algo", "rc", "--workers", "1")
    reg = registries()
    weights: dict[str, str] = {}
    for method in reg["methods"]:
        data = video if method in VIDEO_METHODS else shapes
        ckpt = pretrain(method, "default", data, work / "runs", *METHOD_ARGS.get(method, ()))
        weights[f"method={method}"] = weights_sha256(ckpt)
        print(f"  {method}: {weights[f'method={method}'][:16]}", flush=True)
    for aug in reg["augmentations"]:
        ckpt = pretrain("simclr", aug, shapes, work / "runs", "--aug_cfg.saliency=rc"
                        if aug.startswith("sal-mask") else "--train.seed=0")
        weights[f"simclr aug={aug}"] = weights_sha256(ckpt)
        print(f"  simclr {aug}: {weights[f'simclr aug={aug}'][:16]}", flush=True)
    ckpt = pretrain("simclr", "default", shapes, work / "runs")
    metrics = suite_rows(ckpt, shapes, work)
    print(f"  suite: {len(metrics)} values", flush=True)
    return {"steps": STEPS, "weights": weights, "suite": metrics, "seconds": round(time.time() - t0, 1)}


def differences(ref: dict, now: dict) -> list[str]:
    out = []
    for part in ("weights", "suite"):
        for key in sorted(set(ref[part]) | set(now[part])):
            a, b = ref[part].get(key), now[part].get(key)
            if a != b:
                out.append(f"{part}: {key}: {a} -> {b}")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", type=Path, help="write the fingerprint here")
    ap.add_argument("--compare", type=Path, help="a fingerprint to compare with (exit 1 on any difference)")
    ap.add_argument("--work", type=Path, help="working folder (default: a temporary one)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        now = record(work)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(now, indent=1, sort_keys=True))
    print(f"equivalence: {len(now['weights'])} checkpoints, {len(now['suite'])} metric values, {now['seconds']} s")
    if args.compare:
        diff = differences(json.loads(args.compare.read_text()), now)
        print("\n".join(diff) if diff else "equivalence: identical to " + str(args.compare))
        return 1 if diff else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
