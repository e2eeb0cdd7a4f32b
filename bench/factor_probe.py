"""Which factors a checkpoint's frozen features encode: linear probes for several labels.

    .venv/bin/python bench/factor_probe.py DATA CKPT [CKPT ...]

The linear probe of ``bench/linear_probe.py`` (the suite's ``evaluate.linear``, C = 1) on pooled features (5000 train / 2000 test images of a
synthetic dataset) for the labels class, texture, background and pose_bin; prints one line per
checkpoint. Used to show what a contrastive run latches onto (e.g. the background kind).
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from linear_probe import PROBE, features  # noqa: E402

from evaluate.linear import linear_probe  # noqa: E402
from pretrain.checkpoint import load_backbone  # noqa: E402
from synthetic.dataset import open_dataset  # noqa: E402

LABELS = ("class", "texture", "background", "pose_bin")


def main(data: str, ckpts: list[str]) -> None:
    labels = open_dataset(data).labels
    train = np.flatnonzero(labels["split"] == "train")[:5000]
    test = np.flatnonzero(labels["split"] == "test")[:2000]
    for ckpt in ckpts:
        model, meta = load_backbone(ckpt)
        xtr, _ = features(model, meta, Path(data), "train", 5000)
        xte, _ = features(model, meta, Path(data), "test", 2000)
        acc = {}
        for col in LABELS:
            y = labels[col].to_numpy()
            if len(set(y[train])) < 2:
                continue
            acc[col] = round(float(linear_probe(xtr, y[train], xte, y[test], PROBE)["top1"]), 1)
        print(meta.method, ckpt, acc, flush=True)


if __name__ == "__main__":
    if len(sys.argv) < 3:
        raise SystemExit("usage: bench/factor_probe.py DATA CKPT [CKPT ...]")
    main(sys.argv[1], sys.argv[2:])
