"""Linear probe of a checkpoint's frozen pooled features on a synthetic dataset (class labels).

    .venv/bin/python bench/linear_probe.py DATA CKPT [--train 5000] [--test 2000] [--size N] [--json OUT]

The suite's own linear probe (``evaluate.linear.linear_probe``: multinomial logistic regression,
L-BFGS, standardised features) at a fixed C = 1 (scikit-learn's default, what this check has always
used) on the train split, top-1 accuracy on the test split. Images are read at the checkpoint's pretraining view size (the cpu
preset's 32 px for 64-px shapes64), the resolution its features were learnt at (Touvron et al.,
"Fixing the train-test resolution discrepancy", 2019); ``--size N`` resizes to N px instead,
``--size 0`` keeps the stored size. (The evaluation suite's own linear probe lives in evaluate/.)
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from evaluate.linear import LinearConfig, linear_probe  # noqa: E402
from imagedata.formats import open_source  # noqa: E402
from pretrain.checkpoint import CheckpointMeta, load_backbone  # noqa: E402

PROBE = LinearConfig(c_grid=(1.0,), max_iter=3000)   # one C: scikit-learn's LogisticRegression() default


@torch.no_grad()
def features(model: torch.nn.Module, meta: CheckpointMeta, data: Path, split: str, n: int,
             size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    src = open_source(data, split=split)
    idx = np.arange(min(n, len(src)))
    mean = torch.tensor(meta.data.mean).view(1, 3, 1, 1)
    std = torch.tensor(meta.data.std).view(1, 3, 1, 1)

    def batch(rows: np.ndarray) -> torch.Tensor:
        x = src.read(rows).float() / 255
        if size and size != x.shape[-1]:
            x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", antialias=True)
        return (x - mean) / std
    out = [model(batch(idx[s:s + 500])) for s in range(0, len(idx), 500)]
    return torch.cat(out).numpy(), src.targets[idx]


def view_size(meta: CheckpointMeta) -> int:
    """The side of the views a checkpoint was pretrained on (``CheckpointMeta.view_size``)."""
    return meta.view_size


def probe(ckpt: Path, data: Path, n_train: int = 5000, n_test: int = 2000, size: int | None = None) -> float:
    """Test accuracy (%) of a logistic regression on the frozen features; images resized to
    ``size`` px (None: the checkpoint's :func:`view_size`; 0: as stored)."""
    model, meta = load_backbone(ckpt)
    size = view_size(meta) if size is None else size
    xtr, ytr = features(model, meta, data, "train", n_train, size)
    xte, yte = features(model, meta, data, "test", n_test, size)
    return float(linear_probe(xtr, ytr, xte, yte, PROBE)["top1"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data", type=Path)
    ap.add_argument("ckpt", type=Path)
    ap.add_argument("--train", type=int, default=5000)
    ap.add_argument("--test", type=int, default=2000)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--size", type=int, help="resize images to this many pixels first (default: the checkpoint's "
                    "pretraining view size; 0: as stored)")
    a = ap.parse_args()
    acc = probe(a.ckpt, a.data, a.train, a.test, a.size)
    size = a.size if a.size is not None else view_size(load_backbone(a.ckpt)[1])
    row = {"ckpt": str(a.ckpt), "data": str(a.data), "size": size or "stored", "linear_probe_top1": round(acc, 2)}
    print(row)
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(row))


if __name__ == "__main__":
    main()
