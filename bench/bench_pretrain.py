"""Benchmark: SimCLR pretraining throughput against its limit and against a lightly-style peer.

    .venv/bin/python bench/bench_pretrain.py [--sizes 32,64] [--batch 256] [--steps 6] [--json OUT]

For each image size (ResNet-18, the `cpu` preset's backbone, batch 256, two views):
- bare: forward + backward + SGD of the backbone alone on 2 x batch random images (the limit);
- ours: steps/s of `pretrain.trainer.train` (data loading, batched augmentation, projector,
  NT-Xent, optimiser) on a generated shapes64 dataset, timed between steps after a warm-up, in
  float32 (`--train.amp=off`, the like-for-like figure) and with the default `--train.amp=auto`
  (bf16 autocast on CPUs with native bf16);
- lightly: the same SimCLR (torchvision ResNet-18, lightly's SimCLRProjectionHead, NTXentLoss,
  SimCLRTransform on PIL images, torch DataLoader with 2 workers) — the usual style;
and reports overhead = ours / bare (target >= 0.85) and ours / lightly (target >= 1.5).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torchvision  # noqa: E402

from pretrain import config as C  # noqa: E402
from pretrain import trainer as T  # noqa: E402
from synthetic.generate import generate  # noqa: E402
from synthetic.dataset import open_dataset  # noqa: E402


def bare_rate(size: int, batch: int, steps: int) -> float:
    """Steps/s of ResNet-18 forward + backward + SGD on 2 * batch images (two views)."""
    model = T.build_backbone("resnet18")
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.rand(2 * batch, 3, size, size)

    def step() -> None:
        opt.zero_grad()
        model(x).square().mean().backward()
        opt.step()

    step()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    return steps / (time.perf_counter() - t)


def ours_rate(data: Path, out: Path, batch: int, steps: int, amp: str, warmup: int = 2) -> float:
    stamps: list[float] = []
    cfg = C.build_config("simclr", "default", "cpu", {
        "data.path": str(data), "data.batch_size": batch, "train.steps": steps + warmup, "train.out": str(out),
        "train.tensorboard": False, "train.ckpt_every": 10_000, "train.log_every": 10_000, "train.amp": amp})
    T.train(cfg, progress=False, after_step=lambda s: stamps.append(time.perf_counter()))
    return steps / (stamps[-1] - stamps[warmup - 1])


def lightly_rate(data: Path, size: int, batch: int, steps: int, warmup: int = 2) -> float:
    from lightly.loss import NTXentLoss
    from lightly.models.modules import SimCLRProjectionHead
    from lightly.transforms import SimCLRTransform
    from PIL import Image

    images = np.asarray(open_dataset(data).images)

    class PilDataset(torch.utils.data.Dataset):
        def __init__(self) -> None:
            self.t = SimCLRTransform(input_size=size, cj_strength=0.5, min_scale=0.2, gaussian_blur=0.0)

        def __len__(self) -> int:
            return len(images)

        def __getitem__(self, i: int):
            return self.t(Image.fromarray(images[i]))

    loader = torch.utils.data.DataLoader(PilDataset(), batch_size=batch, shuffle=True, num_workers=2,
                                         drop_last=True, persistent_workers=True)
    backbone = torchvision.models.resnet18()
    backbone.fc = torch.nn.Identity()
    head = SimCLRProjectionHead(512, 2048, 128)
    crit = NTXentLoss(temperature=0.5)
    opt = torch.optim.SGD(list(backbone.parameters()) + list(head.parameters()), lr=0.3, momentum=0.9)
    stamps = []
    it = iter(loader)
    for _ in range(steps + warmup):
        try:
            x0, x1 = next(it)
        except StopIteration:
            it = iter(loader)
            x0, x1 = next(it)
        loss = crit(head(backbone(x0)), head(backbone(x1)))
        opt.zero_grad()
        loss.backward()
        opt.step()
        stamps.append(time.perf_counter())
    return steps / (stamps[-1] - stamps[warmup - 1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="32,64")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--images", type=int, default=4096)
    ap.add_argument("--no-lightly", action="store_true")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    torch.set_num_threads(2)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in (int(s) for s in a.sizes.split(",")):
            data = generate("shapes64", a.images, 0, Path(tmp) / f"shapes{size}", size=size, progress=False)
            row = {"size": size, "batch": a.batch, "bare_steps_per_s": bare_rate(size, a.batch, a.steps),
                   "ours_steps_per_s": ours_rate(data, Path(tmp) / "runs", a.batch, a.steps, "off"),
                   "ours_auto_amp_steps_per_s": ours_rate(data, Path(tmp) / "runs-amp", a.batch, a.steps, "auto"),
                   "cpu_bf16": T.cpu_has_bf16()}
            row["overhead_ratio"] = row["ours_steps_per_s"] / row["bare_steps_per_s"]
            if not a.no_lightly:
                row["lightly_steps_per_s"] = lightly_rate(data, size, a.batch, a.steps)
                row["ours_over_lightly"] = row["ours_steps_per_s"] / row["lightly_steps_per_s"]
                row["ours_auto_amp_over_lightly"] = row["ours_auto_amp_steps_per_s"] / row["lightly_steps_per_s"]
            rows.append(row)
            print({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}, flush=True)
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
