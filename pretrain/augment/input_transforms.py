"""Input transforms: what every image goes through before the backbone, in pretraining and in
every evaluation, because the backbone was trained on transformed images only.

The masking paper (Chen et al., "Masking Improves Contrastive Self-Supervised Learning for
ConvNets, and Saliency Tells You Where", WACV 2024, arXiv 2309.12757) trains on high-pass views
with its ``highpass`` fill, and its linear evaluation high-passes every train and val image the
same way. In the authors' code (github.com/joycenerd/Saliency-Guided-Masking-for-ConvNets, commit
c6e62b8): ``main_lincls.py`` lines 258-267 (train) and 288-296 (val), for ``--strategy hp``, compose
``ToTensor(), Normalize(ImageNet mean, std), moco.loader.HighPassFilter(kernel_size=11,
sigma=5.0)``: the filter comes *after* Normalize, per image. ``HighPassFilter``
(``moco/loader.py`` lines 68-78) returns ``x - GaussianBlur(kernel_size, sigma)(x)`` (torchvision's
blur: reflect borders); in pretraining ``TwoCropsTransform`` (lines 26-31) also normalises first
and high-passes second. So the transform here works on normalised batches and returns normalised
batches: z -> z - GaussianBlur(z, 11, 5), exactly what the ``highpass`` fill's views become once
``Method.encode`` has normalised them (``masking.high_pass``).

Flow: a policy declares its transform (``Produces.input_transform``), the trainer writes it into
``ckpt.pt`` (``CheckpointMeta.input_transform``), and ``pretrain.checkpoint.load_backbone`` returns
the backbone behind :class:`InputTransformed`, so that every protocol feeding it normalised images
applies it.

Registry (``INPUT_TRANSFORMS``, a plain dict): name -> pure function ``fn(z, mean, std, **params)``
of a normalised batch z (B, 3, H, W) and the data mean / std (3,) -> normalised (B, 3, H, W).
"""
from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from . import masking as M

InputFn = Callable[..., Tensor]


def highpass(z: Tensor, mean: Tensor, std: Tensor, kernel: int = M.HIGH_PASS_KERNEL,
             sigma: float = M.HIGH_PASS_SIGMA) -> Tensor:
    """The masking paper's ``HighPassFilter(kernel_size=11, sigma=5.0)`` after Normalize:
    z (B, 3, H, W) normalised -> z - GaussianBlur(z, kernel, sigma), normalised (mean / std unused)."""
    return M.high_pass_normalised(z, int(kernel), float(sigma))


INPUT_TRANSFORMS: dict[str, InputFn] = {
    "highpass": highpass,
}


def transform_params(name: str) -> dict[str, Any]:
    """The settings of registered transform ``name`` with their defaults (its keyword parameters)."""
    fn = INPUT_TRANSFORMS[name]
    return {p.name: p.default for p in list(inspect.signature(fn).parameters.values())[3:]}


@dataclass(frozen=True)
class InputTransform:
    """A registered input transform and its settings, as ``ckpt.pt`` stores it:
    ``{"name": "highpass", "params": {"kernel": 11, "sigma": 5.0}}``."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.name not in INPUT_TRANSFORMS:
            raise ValueError(f"unknown input transform {self.name!r}; valid: {', '.join(INPUT_TRANSFORMS)}")
        valid = transform_params(self.name)
        bad = [k for k in self.params if k not in valid]
        if bad:
            raise ValueError(f"input transform {self.name!r}: unknown setting(s) {', '.join(bad)}; "
                             f"valid: {', '.join(valid)}")

    def __str__(self) -> str:
        """``highpass(kernel=11, sigma=5.0)``."""
        return f"{self.name}({', '.join(f'{k}={v}' for k, v in sorted(self.params.items()))})"

    def __call__(self, z: Tensor, mean: Tensor, std: Tensor) -> Tensor:
        """The transform of a normalised batch z (B, 3, H, W) -> normalised (B, 3, H, W)."""
        return INPUT_TRANSFORMS[self.name](z, mean, std, **self.params)

    @classmethod
    def from_dict(cls, d: Any) -> "InputTransform | None":
        """``ckpt.pt``'s value -> the transform; None (no transform) for None; ValueError if malformed."""
        if d is None:
            return None
        if not isinstance(d, dict) or not isinstance(d.get("name"), str):
            raise ValueError(f"input_transform {d!r}: expected {{'name': str, 'params': dict}} or None")
        params = d.get("params") or {}
        if not isinstance(params, dict):
            raise ValueError(f"input_transform params {params!r}: expected a dict")
        return cls(d["name"], dict(params))


class InputTransformed(nn.Module):
    """A backbone behind its input transform, with the backbone contract (``num_features``,
    ``min_image_size``, ``forward`` -> (B, C), ``forward_features`` -> (B, C, h, w),
    ``forward_stages``): each normalised input (B, 3, H, W) is transformed, then fed to the backbone.

    Its state_dict keys are the backbone's under ``backbone.`` (mean / std are not saved): code that
    reloads them into a bare backbone fails loudly instead of silently dropping the transform.
    """

    def __init__(self, backbone: nn.Module, transform: InputTransform, mean: Sequence[float],
                 std: Sequence[float]) -> None:
        super().__init__()
        self.backbone = backbone
        self.transform = transform
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32).view(-1), persistent=False)
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32).view(-1), persistent=False)
        self.num_features = backbone.num_features
        self.min_image_size = backbone.min_image_size
        if hasattr(backbone, "small_stem"):
            self.small_stem = backbone.small_stem

    def extra_repr(self) -> str:
        return f"input_transform={self.transform}"

    def transform_input(self, z: Tensor) -> Tensor:
        """The transformed batch: normalised (B, 3, H, W) -> normalised (B, 3, H, W)."""
        return self.transform(z, self.mean, self.std)

    def forward(self, z: Tensor) -> Tensor:
        return self.backbone(self.transform_input(z))

    def forward_features(self, z: Tensor) -> Tensor:
        return self.backbone.forward_features(self.transform_input(z))

    def forward_stages(self, z: Tensor) -> list[Tensor]:
        return self.backbone.forward_stages(self.transform_input(z))


def with_input_transform(backbone: nn.Module, transform: InputTransform | None, mean: Sequence[float],
                         std: Sequence[float]) -> nn.Module:
    """``backbone`` behind ``transform`` (:class:`InputTransformed`); the backbone itself for None."""
    return backbone if transform is None else InputTransformed(backbone, transform, mean, std)


__all__ = ["INPUT_TRANSFORMS", "InputTransform", "InputTransformed", "highpass", "transform_params",
           "with_input_transform"]
