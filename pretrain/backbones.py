"""Backbones: torchvision ResNet-18/34/50/101/152 (their own class), Newell & Deng's ResNet-9, a tiny
ResNet, and any timm model by name (``timm``, ``model="vit_small_patch16_224"``; see
``pretrain.timm_backbones``).

Contract (as timm's): ``num_features``; ``forward_features(x) -> (B, C, h, w)`` the dense feature
map of the last stage (dense methods and probes); ``forward_stages(x)`` the output map of every
stage, finest first (multi-scale dense probes; its last entry is ``forward_features(x)``);
``forward(x) -> (B, C)`` the last stage's global average pool; ``min_image_size``. ResNet-18/50
are ``torchvision.models.ResNet`` instances with ``fc = Identity``, so their state_dict has
torchvision's own keys and loads into ``torchvision.models.resnet18()`` unchanged (only ``fc.*``
is absent).
"""
from __future__ import annotations

from typing import Any, Callable

import torch
import torchvision
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck


class TorchvisionResNet(torchvision.models.ResNet):
    """torchvision's ResNet without its classifier; ``small_stem`` swaps the 7x7/2 conv + max-pool
    for a 3x3/1 conv (the CIFAR-style stem used for 32-64 px images); ``width`` scales every stage
    (64, 128, 256, 512 at the default 64; e.g. 16, 32, 64, 128 at 16), built by torchvision's own
    ``_make_layer`` so the keys stay torchvision's (only the default width loads into
    ``torchvision.models.resnet18``)."""

    def __init__(self, block: type, layers: list[int], small_stem: bool = False, width: int = 64) -> None:
        super().__init__(block, layers)
        if width < 1:
            raise ValueError(f"ResNet width {width}: expected a positive number of channels")
        self.width = width
        if width != 64:
            self.inplanes = width
            self.bn1 = nn.BatchNorm2d(width)
            self.layer1 = self._make_layer(block, width, layers[0])
            self.layer2 = self._make_layer(block, 2 * width, layers[1], stride=2)
            self.layer3 = self._make_layer(block, 4 * width, layers[2], stride=2)
            self.layer4 = self._make_layer(block, 8 * width, layers[3], stride=2)
        self.num_features = 8 * width * block.expansion
        self.small_stem = small_stem
        if small_stem:
            self.conv1 = nn.Conv2d(3, width, kernel_size=3, stride=1, padding=1, bias=False)
            self.maxpool = nn.Identity()
        elif width != 64:
            self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.fc = nn.Identity()
        self.min_image_size = 8 if small_stem else 32
        if width != 64:
            self._init_weights()

    def _init_weights(self) -> None:
        """torchvision's initialisation of the rebuilt layers (kaiming normal convs, unit BN)."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def forward_stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        """layer1..layer4 outputs: strides 4, 8, 16, 32 (1, 2, 4, 8 with the small stem)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        out = []
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = layer(x)
            out.append(x)
        return out

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_stages(x)[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.avgpool(self.forward_features(x)), 1)


def resnet18(small_stem: bool = False, width: int = 64) -> TorchvisionResNet:
    return TorchvisionResNet(BasicBlock, [2, 2, 2, 2], small_stem, width)


def resnet34(small_stem: bool = False, width: int = 64) -> TorchvisionResNet:
    return TorchvisionResNet(BasicBlock, [3, 4, 6, 3], small_stem, width)


def resnet50(small_stem: bool = False, width: int = 64) -> TorchvisionResNet:
    return TorchvisionResNet(Bottleneck, [3, 4, 6, 3], small_stem, width)


def resnet101(small_stem: bool = False, width: int = 64) -> TorchvisionResNet:
    return TorchvisionResNet(Bottleneck, [3, 4, 23, 3], small_stem, width)


def resnet152(small_stem: bool = False, width: int = 64) -> TorchvisionResNet:
    return TorchvisionResNet(Bottleneck, [3, 8, 36, 3], small_stem, width)


def timm(model: str, **kwargs: Any) -> nn.Module:
    """Any timm model by name (``pretrain.timm_backbones``; timm is imported only when one is built)."""
    from .timm_backbones import timm_backbone
    return timm_backbone(model, **kwargs)


def _conv_bn(cin: int, cout: int, pool: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                               nn.ReLU(inplace=True)]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


class Residual(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(_conv_bn(channels, channels), _conv_bn(channels, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResNet9(nn.Module):
    """The 9-layer ResNet (Myrtle's DAWNBench network) used by Newell & Deng, "How Useful is
    Self-Supervised Pretraining for Visual Tasks?" (CVPR 2020): prep 64, then 128 (+residual),
    256, 512 (+residual), with a max-pool after each of the last three stages. (B, 512)."""

    def __init__(self, width: int = 64) -> None:
        super().__init__()
        w = width
        self.prep = _conv_bn(3, w)
        self.layer1 = nn.Sequential(_conv_bn(w, 2 * w, pool=True), Residual(2 * w))
        self.layer2 = _conv_bn(2 * w, 4 * w, pool=True)
        self.layer3 = nn.Sequential(_conv_bn(4 * w, 8 * w, pool=True), Residual(8 * w))
        self.num_features = 8 * w
        self.min_image_size = 8

    def forward_stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        """prep, layer1, layer2, layer3 outputs: strides 1, 2, 4, 8."""
        out = [self.prep(x)]
        for layer in (self.layer1, self.layer2, self.layer3):
            out.append(layer(out[-1]))
        return out

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_stages(x)[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x).mean((2, 3))


class TinyResNet(nn.Module):
    """A two-stage ResNet of BasicBlocks for tests: width w then 2w, (B, 2w)."""

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.stem = _conv_bn(3, width)
        down = nn.Sequential(nn.Conv2d(width, 2 * width, 1, stride=2, bias=False), nn.BatchNorm2d(2 * width))
        self.layer1 = BasicBlock(width, width)
        self.layer2 = BasicBlock(width, 2 * width, stride=2, downsample=down)
        self.num_features = 2 * width
        self.min_image_size = 4

    def forward_stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        """layer1, layer2 outputs: strides 1, 2."""
        x = self.layer1(self.stem(x))
        return [x, self.layer2(x)]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_stages(x)[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x).mean((2, 3))


BACKBONES: dict[str, Callable[..., nn.Module]] = {
    "resnet18": resnet18,
    "resnet34": resnet34,
    "resnet50": resnet50,
    "resnet101": resnet101,
    "resnet152": resnet152,
    "resnet9": ResNet9,
    "tiny": TinyResNet,
    "timm": timm,
}


def build_backbone(name: str, **kwargs) -> nn.Module:
    """Build a registered backbone; an unknown name raises an error listing the valid names."""
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; valid backbones: {', '.join(BACKBONES)}")
    try:
        return BACKBONES[name](**kwargs)
    except TypeError as e:
        raise ValueError(f"backbone {name!r}: bad arguments {kwargs} ({e})") from e


def check_image_size(backbone: nn.Module, name: str, size: int) -> None:
    """Raise a clear error if the backbone cannot take ``size`` x ``size`` images."""
    if size < backbone.min_image_size:
        raise ValueError(f"image size {size}: backbone {name!r} needs at least {backbone.min_image_size} px"
                         + (" (use backbone.small_stem=true for small images)" if hasattr(backbone, "small_stem")
                            and not backbone.small_stem else ""))
