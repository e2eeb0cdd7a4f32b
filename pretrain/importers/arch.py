"""Which backbone a state dict belongs to, read from its keys and shapes.

ResNets (torchvision names): bottleneck or basic blocks, blocks per stage, the stem's kernel and
width -> ``resnet18/34/50/101/152`` with ``small_stem`` / ``width``. ViTs (timm names): embedding
width, depth, patch size, position-embedding length -> ``timm`` with the matching timm model
name. The number of attention heads is not in the weights: it is timm's for that name unless
given (``arch_kwargs``).
"""
from __future__ import annotations

import math
import re
from typing import Any

from torch import Tensor

from ..checkpoint import CheckpointError

_RESNETS = {("basic", (2, 2, 2, 2)): "resnet18", ("basic", (3, 4, 6, 3)): "resnet34",
            ("bottleneck", (3, 4, 6, 3)): "resnet50", ("bottleneck", (3, 4, 23, 3)): "resnet101",
            ("bottleneck", (3, 8, 36, 3)): "resnet152"}
_VIT_SIZES = {(192, 12): "tiny", (384, 12): "small", (768, 12): "base", (1024, 24): "large", (1280, 32): "huge"}


def infer_arch(sd: dict[str, Tensor]) -> tuple[str, dict[str, Any]]:
    """(backbone name, kwargs) for a backbone state dict in this project's names; CheckpointError
    when the keys are neither a torchvision ResNet nor a timm ViT."""
    if "cls_token" in sd and "patch_embed.proj.weight" in sd:
        try:
            return "timm", vit_kwargs(sd)
        except KeyError as e:
            raise CheckpointError(f"a ViT without {e} (a SwiGLU or other variant): pass --arch timm/MODEL") from e
    if "conv1.weight" in sd and "layer1.0.conv1.weight" in sd:
        return resnet_arch(sd)
    first = ", ".join(list(sd)[:4])
    raise CheckpointError(f"cannot tell the architecture from the keys (first: {first}); pass --arch NAME "
                          "(a registered backbone, or timm/MODEL)")


def resnet_arch(sd: dict[str, Tensor]) -> tuple[str, dict[str, Any]]:
    """A torchvision ResNet's name and ``small_stem`` / ``width`` from its keys."""
    block = "bottleneck" if "layer1.0.conv3.weight" in sd else "basic"
    depth = tuple(len({m.group(1) for k in sd if (m := re.match(rf"layer{i}\.(\d+)\.", k))}) for i in range(1, 5))
    name = _RESNETS.get((block, depth))
    if name is None:
        raise CheckpointError(f"a ResNet with {block} blocks {depth} per stage is not a registered backbone "
                              f"(registered: {', '.join(_RESNETS.values())})")
    conv1 = sd["conv1.weight"]
    kwargs: dict[str, Any] = {}
    if conv1.shape[-1] == 3:
        kwargs["small_stem"] = True
    if conv1.shape[0] != 64:
        kwargs["width"] = int(conv1.shape[0])
    return name, kwargs


def vit_kwargs(sd: dict[str, Tensor]) -> dict[str, Any]:
    """timm kwargs of a ViT state dict: the timm model name for (width, depth, patch, size) and
    whatever differs from it (``img_size``; width / depth / mlp ratio for a non-standard ViT)."""
    import timm
    dim = int(sd["cls_token"].shape[-1])
    depth = len({m.group(1) for k in sd if (m := re.match(r"blocks\.(\d+)\.", k))})
    patch = int(sd["patch_embed.proj.weight"].shape[-1])
    prefix = 1 + (int(sd["reg_token"].shape[1]) if "reg_token" in sd else 0)
    tokens = int(sd["pos_embed"].shape[1])
    grid = math.isqrt(tokens - prefix) if math.isqrt(tokens - prefix) ** 2 == tokens - prefix else math.isqrt(tokens)
    size = grid * patch
    kwargs: dict[str, Any] = {}
    name = f"vit_{_VIT_SIZES.get((dim, depth), 'base')}_patch{patch}_224"
    if name not in timm.list_models():
        name = "vit_base_patch16_224"
        kwargs["patch_size"] = patch
    if (dim, depth) not in _VIT_SIZES or name == "vit_base_patch16_224" and dim != 768:
        kwargs.update(embed_dim=dim, depth=depth, num_heads=max(1, dim // 64))
    hidden = int(sd["blocks.0.mlp.fc1.weight"].shape[0])
    if hidden != 4 * dim:
        kwargs["mlp_ratio"] = hidden / dim
    if "blocks.0.attn.qkv.bias" not in sd:
        kwargs["qkv_bias"] = False
    if prefix > 1:
        kwargs["reg_tokens"] = prefix - 1
    if size != 224:
        kwargs["img_size"] = size
    if tokens == grid * grid:                 # the position embedding leaves out the CLS token
        kwargs["no_embed_class"] = True
    return {"model": name, **kwargs}
