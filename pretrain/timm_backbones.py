"""Any timm model as an sslbench backbone, built with ``pretrained=False`` (nothing is downloaded).

``timm_backbone("vit_small_patch16_224")`` is timm's own module, with timm's own parameter names
(so a timm / DINO / MoCo v3 state dict loads into it unchanged), given the backbone contract of
:mod:`pretrain.backbones` by a mixin class:

- ``forward(x) -> (B, C)``: timm's pre-logits features: the CLS token for a ViT with
  ``global_pool="token"`` (Dosovitskiy et al., ICLR 2021; DINO and MoCo v3 evaluate it), the
  global average pool for ConvNets (timm's ``forward_head(..., pre_logits=True)``);
- ``forward_features(x) -> (B, C, h, w)``: the last stage's map; for a ViT the patch tokens after
  the final norm, prefix (CLS / register) tokens dropped, laid out on the (H / p, W / p) grid;
- ``forward_stages(x)``: timm's ``forward_intermediates`` maps (ViT blocks or ConvNet stages),
  finest first, the last replaced by ``forward_features(x)`` so the contract's last entry holds;
- ``num_features``: the width of ``forward``; ``min_image_size``: the patch size for a ViT, 32 else.

ViTs are built with ``dynamic_img_size=True`` by default: the position embedding is interpolated
for inputs other than the model's native size (identical outputs at the native size), so a
ViT-S/16 can be probed on 64-px images. The classifier is always removed (``num_classes=0``).
"""
from __future__ import annotations

import difflib
from typing import Any

import torch
from torch import nn


class TimmContract:
    """The backbone contract over a timm model (mixed in ahead of the model's own class)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, H, W) -> (B, C)
        return super().forward_head(super().forward_features(x), pre_logits=True)  # type: ignore[misc]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, H, W) -> (B, C, h, w)
        feats = super().forward_features(x)  # type: ignore[misc]
        if feats.dim() == 4:                  # Swin-type models give NHWC maps
            return feats.permute(0, 3, 1, 2) if getattr(self, "output_fmt", "NCHW") == "NHWC" else feats
        prefix = int(getattr(self, "num_prefix_tokens", 0))
        h, w = _grid(self, x)
        tokens = feats[:, prefix:]
        if tokens.shape[1] != h * w:
            raise ValueError(f"timm model gives {tokens.shape[1]} patch tokens for a {tuple(x.shape[-2:])} input, "
                             f"expected {h} x {w}")
        return tokens.transpose(1, 2).reshape(feats.shape[0], feats.shape[2], h, w)

    def forward_stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        if not hasattr(self, "forward_intermediates"):
            return [self.forward_features(x)]
        maps = list(self.forward_intermediates(x, intermediates_only=True))  # type: ignore[attr-defined]
        return maps[:-1] + [self.forward_features(x)]


def _grid(model: nn.Module, x: torch.Tensor) -> tuple[int, int]:
    """The patch grid (H / p, W / p) of a ViT for input x."""
    patch = model.patch_embed.patch_size  # type: ignore[union-attr]
    return x.shape[-2] // patch[0], x.shape[-1] // patch[1]


def timm_names() -> list[str]:
    """Every model name the installed timm can build."""
    import timm
    return list(timm.list_models())


def check_timm_name(model: str) -> None:
    """ValueError naming the closest timm model names for a name timm does not have."""
    names = timm_names()
    if model not in names:
        close = difflib.get_close_matches(model, names, n=5, cutoff=0.5)
        raise ValueError(f"unknown timm model {model!r}; closest: {', '.join(close) or 'none'} "
                         f"({len(names)} models: python -c 'import timm; print(timm.list_models())')")


def timm_backbone(model: str, **kwargs: Any) -> nn.Module:
    """timm model ``model`` (random weights, no classifier) with the sslbench backbone contract.
    ``kwargs`` go to ``timm.create_model`` (e.g. ``img_size``, ``num_heads``, ``drop_path_rate``);
    ``pretrained`` is refused: weights come only from checkpoints."""
    import timm
    if {"pretrained", "pretrained_cfg", "pretrained_cfg_overlay", "checkpoint_path"} & set(kwargs):
        raise ValueError("timm backbones never download weights: import a checkpoint instead "
                         "(python -m evaluate.import_checkpoint FILE --from timm)")
    check_timm_name(model)
    if model.startswith(("vit_", "deit_", "eva", "beit")):
        kwargs.setdefault("dynamic_img_size", True)
    net = timm.create_model(model, pretrained=False, num_classes=0, **kwargs)
    net.__class__ = type(f"Timm{type(net).__name__}", (TimmContract, type(net)), {})
    net.num_features = int(getattr(net, "head_hidden_size", None) or net.num_features)
    patch = getattr(getattr(net, "patch_embed", None), "patch_size", None)
    net.min_image_size = int(max(patch)) if patch else 32
    net.timm_model = model
    return net
