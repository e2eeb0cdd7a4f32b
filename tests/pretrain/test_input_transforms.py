"""pretrain.augment.input_transforms: the registry, the stored spec, the backbone wrapper, and which
augmentation policies declare a transform."""
from __future__ import annotations

import dataclasses

import pytest
import torch
from torchvision.transforms import GaussianBlur

from pretrain.augment import AUGMENTATIONS, build_policy
from pretrain.augment import masking as M
from pretrain.augment.input_transforms import (INPUT_TRANSFORMS, InputTransform, InputTransformed, transform_params,
                                               with_input_transform)
from pretrain.backbones import build_backbone

MEAN, STD = torch.tensor([0.4, 0.5, 0.6]), torch.tensor([0.2, 0.25, 0.3])
PAPER_HIGHPASS = InputTransform("highpass", {"kernel": 11, "sigma": 5.0})
# settings that let a policy build without a checkpoint (SCDA needs one)
POLICY_ARGS = {"sal-mask": {"saliency": "rc"}, "sal-mask-hn": {"saliency": "rc"}}


def normalised(seed: int = 0, side: int = 24) -> torch.Tensor:
    """A normalised batch (2, 3, side, side)."""
    return torch.randn(2, 3, side, side, generator=torch.Generator().manual_seed(seed))


def registered(name: str) -> InputTransform:
    return InputTransform(name, transform_params(name))


@pytest.mark.parametrize("name", sorted(INPUT_TRANSFORMS))
def test_a_transform_maps_normalised_batches_purely(name: str) -> None:
    z = normalised()
    out = registered(name)(z, MEAN, STD)
    assert out.shape == z.shape and out.dtype == z.dtype and torch.isfinite(out).all()
    assert not torch.allclose(out, z)
    assert torch.equal(registered(name)(z, MEAN, STD), out)          # deterministic
    assert torch.equal(z, normalised())                               # input left as it was


@pytest.mark.parametrize("name", sorted(INPUT_TRANSFORMS))
def test_the_stored_spec_round_trips(name: str) -> None:
    t = registered(name)
    assert InputTransform.from_dict(dataclasses.asdict(t)) == t
    assert InputTransform.from_dict(None) is None
    assert str(t).startswith(f"{name}(")


def test_unknown_names_and_settings_are_refused() -> None:
    with pytest.raises(ValueError, match=r"unknown input transform 'sobel'; valid: highpass"):
        InputTransform("sobel")
    with pytest.raises(ValueError, match=r"unknown setting\(s\) radius; valid: kernel, sigma"):
        InputTransform("highpass", {"radius": 3})
    with pytest.raises(ValueError, match="expected"):
        InputTransform.from_dict(["highpass"])


def test_highpass_is_the_authors_filter_after_normalize() -> None:
    """The authors' linear evaluation: Normalize, then ``HighPassFilter(11, 5.0)``, i.e.
    ``z - torchvision GaussianBlur(11, 5.0)(z)`` per image (moco/loader.py, main_lincls.py)."""
    z = normalised(side=32)
    want = torch.stack([zi - GaussianBlur(11, 5.0)(zi) for zi in z])
    torch.testing.assert_close(PAPER_HIGHPASS(z, MEAN, STD), want, atol=1e-5, rtol=0)


def test_highpass_is_what_the_training_views_become_once_normalised() -> None:
    """The mask policy's un-normalised high-pass views, normalised as ``Method.encode`` does, are
    the declared transform of the normalised image: training and evaluation see the same input."""
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    m, s = MEAN.view(1, 3, 1, 1), STD.view(1, 3, 1, 1)
    t = build_policy("random-mask").produces.input_transform
    torch.testing.assert_close((M.high_pass(x, MEAN, STD, **t.params) - m) / s, t((x - m) / s, MEAN, STD))


@pytest.mark.parametrize("aug", sorted(AUGMENTATIONS))
def test_a_policy_declares_the_highpass_exactly_when_its_views_are_high_passed(aug: str) -> None:
    policy = build_policy(aug, **POLICY_ARGS.get(aug, {}))
    high_passed = getattr(policy.config, "fill", None) == "highpass"
    assert policy.produces.input_transform == (PAPER_HIGHPASS if high_passed else None)


@pytest.mark.parametrize("fill", M.MASK_FILLS)
def test_the_mask_policy_declares_a_transform_only_with_the_highpass_fill(fill: str) -> None:
    want = PAPER_HIGHPASS if fill == "highpass" else None
    assert build_policy("random-mask", fill=fill).produces.input_transform == want


@pytest.mark.parametrize("name", sorted(INPUT_TRANSFORMS))
@pytest.mark.parametrize("backbone", ["tiny", "resnet9"])
def test_the_wrapped_backbone_keeps_the_contract_on_transformed_inputs(name: str, backbone: str) -> None:
    torch.manual_seed(0)
    bare = build_backbone(backbone, width=8).eval()
    t = registered(name)
    model = with_input_transform(bare, t, MEAN.tolist(), STD.tolist()).eval()
    assert isinstance(model, InputTransformed) and with_input_transform(bare, None, MEAN, STD) is bare
    assert (model.num_features, model.min_image_size) == (bare.num_features, bare.min_image_size)
    z = normalised(side=16)
    tz = t(z, MEAN, STD)
    with torch.no_grad():
        torch.testing.assert_close(model(z), bare(tz))
        torch.testing.assert_close(model.forward_features(z), bare.forward_features(tz))
        for got, want in zip(model.forward_stages(z), bare.forward_stages(tz), strict=True):
            torch.testing.assert_close(got, want)
        assert not torch.allclose(model(z), bare(z))
    # the weights sit under ``backbone.``: reloading them into a bare backbone fails loudly
    assert set(model.state_dict()) == {f"backbone.{k}" for k in bare.state_dict()}
    assert name in repr(model)
