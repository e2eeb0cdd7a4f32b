"""Pretraining on a timm ViT: SimCLR, MoCo v3 and DINO train a ViT-Tiny (2 blocks, 8-px patches on
32-px views) for the test preset's steps, and the exported checkpoint loads strictly with the
backbone contract (pooled CLS features, patch tokens as the dense map)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pretrain.checkpoint import load_backbone

VIT = {"backbone.name": "timm", "backbone.kwargs": {"model": "vit_tiny_patch16_224", "patch_size": 8, "img_size": 32,
                                                    "depth": 2},
       "optim.name": "adamw", "optim.lr": 1e-3, "optim.weight_decay": 0.05}


@pytest.mark.parametrize("method", ["simclr", "mocov3", "dino"])
def test_a_vit_pretrains_and_exports(method: str, eval_data: Path, tmp_path: Path, make_ckpt) -> None:
    ckpt = make_ckpt(method, eval_data, tmp_path, **VIT)
    model, meta = load_backbone(ckpt)
    assert meta.backbone.name == "timm" and meta.backbone.kwargs["model"] == "vit_tiny_patch16_224"
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert model(x).shape == (2, 192) and model.forward_features(x).shape == (2, 192, 4, 4)
    log = (ckpt.parent / "log.jsonl").read_text().splitlines()
    assert log and all("nan" not in line for line in log)
