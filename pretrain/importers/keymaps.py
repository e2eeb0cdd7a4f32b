"""Parameter-name maps from a framework's backbone names to the names of the sslbench backbone
they load into (torchvision's ResNet names, timm's ViT names). Pure functions of one key.
"""
from __future__ import annotations

import re

# lightly's examples build the backbone as nn.Sequential(*list(torchvision_resnet.children())[:-1]):
# children 0 conv1, 1 bn1, 2 relu, 3 maxpool, 4-7 layer1-4, 8 avgpool (lightly-ai/lightly,
# examples/pytorch/simclr.py and the other examples).
_LIGHTLY_RESNET = {"0": "conv1", "1": "bn1", "4": "layer1", "5": "layer2", "6": "layer3", "7": "layer4"}

# OpenMMLab (mmpretrain / mmselfsup 1.x) VisionTransformer -> timm VisionTransformer
# (mmpretrain/models/backbones/vision_transformer.py; timm/models/vision_transformer.py).
_MM_VIT = [
    (re.compile(r"^layers\.(\d+)\.attn\.gamma1\.weight$"), r"blocks.\1.ls1.gamma"),
    (re.compile(r"^layers\.(\d+)\.ffn\.gamma2\.weight$"), r"blocks.\1.ls2.gamma"),
    (re.compile(r"^patch_embed\.projection\."), "patch_embed.proj."),
    (re.compile(r"^layers\.(\d+)\.ln1\."), r"blocks.\1.norm1."),
    (re.compile(r"^layers\.(\d+)\.ln2\."), r"blocks.\1.norm2."),
    (re.compile(r"^layers\.(\d+)\.attn\."), r"blocks.\1.attn."),
    (re.compile(r"^layers\.(\d+)\.ffn\.layers\.0\.0\."), r"blocks.\1.mlp.fc1."),
    (re.compile(r"^layers\.(\d+)\.ffn\.layers\.1\."), r"blocks.\1.mlp.fc2."),
    (re.compile(r"^ln1\."), "norm."),
    (re.compile(r"^ln2\."), "fc_norm."),
    (re.compile(r"^pre_norm\."), "norm_pre."),
]

# Separius/SimCLRv2-Pytorch resnet.py (selective-kernel-free models): net.0 the stem, net.L (L = 1..4)
# the stages of blocks whose net.{0,2,4} are the convs and net.{1,3,5}.0 their BatchNorms.
_SIMCLR_V2 = [
    (re.compile(r"^net\.0\.0\."), "conv1."),
    (re.compile(r"^net\.0\.1\.0\."), "bn1."),
    (re.compile(r"^net\.([1-4])\.blocks\.(\d+)\.net\.0\."), r"layer\1.\2.conv1."),
    (re.compile(r"^net\.([1-4])\.blocks\.(\d+)\.net\.1\.0\."), r"layer\1.\2.bn1."),
    (re.compile(r"^net\.([1-4])\.blocks\.(\d+)\.net\.2\."), r"layer\1.\2.conv2."),
    (re.compile(r"^net\.([1-4])\.blocks\.(\d+)\.net\.3\.0\."), r"layer\1.\2.bn2."),
    (re.compile(r"^net\.([1-4])\.blocks\.(\d+)\.net\.4\."), r"layer\1.\2.conv3."),
    (re.compile(r"^net\.([1-4])\.blocks\.(\d+)\.net\.5\.0\."), r"layer\1.\2.bn3."),
    (re.compile(r"^net\.([1-4])\.blocks\.(\d+)\.projection\.shortcut\."), r"layer\1.\2.downsample.0."),
    (re.compile(r"^net\.([1-4])\.blocks\.(\d+)\.projection\.bn\.0\."), r"layer\1.\2.downsample.1."),
]


def same(key: str) -> str:
    """The framework uses the backbone's own names."""
    return key


def lightly_resnet(key: str) -> str:
    """``4.0.conv1.weight`` -> ``layer1.0.conv1.weight`` (indices of a Sequential of a torchvision
    ResNet's children); any other index is returned unchanged (and then fails the strict load)."""
    head, _, rest = key.partition(".")
    return f"{_LIGHTLY_RESNET[head]}.{rest}" if head in _LIGHTLY_RESNET and rest else key


def vissl_trunk(key: str) -> str:
    """VISSL's ResNe(X)t trunk: ``_feature_blocks.layer1.0.conv1.weight`` -> ``layer1.0.conv1.weight``
    (facebookresearch/vissl, vissl/models/trunks/resnext.py)."""
    return key.removeprefix("_feature_blocks.")


def _first_match(rules: list[tuple[re.Pattern[str], str]], key: str) -> str:
    for pattern, repl in rules:
        new, n = pattern.subn(repl, key)
        if n:
            return new
    return key


def simclr_v2(key: str) -> str:
    """Separius's SimCLR-v2 port -> torchvision: ``net.2.blocks.0.net.1.0.weight`` -> ``layer2.0.bn1.weight``
    (the same correspondence as ssl-transfer's ``simclr_keys.pkl``)."""
    return _first_match(_SIMCLR_V2, key)


def openmmlab(key: str) -> str:
    """OpenMMLab names: ResNet keys are torchvision's already (mmpretrain ResNet, ``style='pytorch'``);
    ViT keys are mapped to timm's (``layers.3.ffn.layers.0.0.weight`` -> ``blocks.3.mlp.fc1.weight``)."""
    return _first_match(_MM_VIT, key)
