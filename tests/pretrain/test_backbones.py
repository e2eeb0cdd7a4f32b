"""Backbone contract, over the whole registry: pooled output, last-stage map, stage pyramid."""
from __future__ import annotations

import pytest
import torch
import torchvision

from pretrain.backbones import BACKBONES, build_backbone, check_image_size

# (name, kwargs, image size, strides of forward_stages)
CASES = [
    ("resnet18", {}, 64, [4, 8, 16, 32]),
    ("resnet18", {"small_stem": True}, 32, [1, 2, 4, 8]),
    ("resnet34", {}, 64, [4, 8, 16, 32]),
    ("resnet50", {}, 64, [4, 8, 16, 32]),
    ("resnet101", {}, 64, [4, 8, 16, 32]),
    ("resnet152", {}, 64, [4, 8, 16, 32]),
    ("resnet9", {}, 32, [1, 2, 4, 8]),
    ("tiny", {}, 16, [1, 2]),
    ("timm", {"model": "vit_tiny_patch16_224", "depth": 2}, 64, [16, 16]),
    ("timm", {"model": "resnet18"}, 64, [2, 4, 8, 16, 32]),
    ("timm", {"model": "convnext_atto"}, 64, [4, 8, 16, 32]),
]
# pooled = the mean of the last map, except where timm pools otherwise (a ViT's CLS token,
# ConvNeXt's norm after the pool)
MEAN_POOLED = {"vit_tiny_patch16_224": False, "convnext_atto": False}


def test_cases_cover_the_registry():
    assert {c[0] for c in CASES} == set(BACKBONES)


@pytest.mark.parametrize("name,kwargs,size,strides", CASES,
                         ids=[f"{c[0]}-{c[1].get('model', 'small' if c[1] else '')}" for c in CASES])
def test_contract(name, kwargs, size, strides):
    torch.manual_seed(0)
    model = build_backbone(name, **kwargs).eval()
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        pooled, last, stages = model(x), model.forward_features(x), model.forward_stages(x)
    assert pooled.shape == (2, model.num_features)
    assert last.shape[:2] == (2, model.num_features)
    assert [size // s.shape[-1] for s in stages] == strides
    assert torch.equal(stages[-1], last)
    if MEAN_POOLED.get(kwargs.get("model", ""), True):
        torch.testing.assert_close(pooled, last.mean((2, 3)))


def test_a_timm_vit_pools_its_cls_token_and_maps_its_patch_tokens() -> None:
    import timm
    torch.manual_seed(0)
    ours = build_backbone("timm", model="vit_tiny_patch16_224", depth=2).eval()
    theirs = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=0, depth=2,
                               dynamic_img_size=True).eval()
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        tokens = theirs.forward_features(x)                              # (2, 1 + 16, 192), final norm applied
        torch.testing.assert_close(ours(x), tokens[:, 0])
        torch.testing.assert_close(ours.forward_features(x), tokens[:, 1:].transpose(1, 2).reshape(2, 192, 4, 4))


def test_timm_backbones_never_download_and_name_unknown_models() -> None:
    with pytest.raises(ValueError, match="never download"):
        build_backbone("timm", model="resnet18", pretrained=True)
    with pytest.raises(ValueError, match="unknown timm model 'vit_smal_patch16_224'; closest: vit_small_patch16_224"):
        build_backbone("timm", model="vit_smal_patch16_224")


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_torchvision_state_dict_loads_as_is(name):
    ours = build_backbone(name)
    theirs = getattr(torchvision.models, name)()
    missing, unexpected = theirs.load_state_dict(ours.state_dict(), strict=False)
    assert set(missing) == {"fc.weight", "fc.bias"} and not unexpected


def test_too_small_image_names_the_backbone_and_the_fix():
    with pytest.raises(ValueError, match="resnet18.*at least 32 px.*small_stem"):
        check_image_size(build_backbone("resnet18"), "resnet18", 16)


@pytest.mark.parametrize("width", [16, 32])
def test_a_narrower_resnet18_keeps_torchvisions_keys_and_scales_every_stage(width: int) -> None:
    from pretrain.backbones import build_backbone

    narrow, full = build_backbone("resnet18", small_stem=True, width=width), build_backbone("resnet18", small_stem=True)
    assert list(narrow.state_dict()) == list(full.state_dict()) and narrow.num_features == 8 * width
    x = torch.randn(2, 3, 32, 32)
    assert [t.shape[1] for t in narrow.forward_stages(x)] == [width, 2 * width, 4 * width, 8 * width]
    assert narrow(x).shape == (2, 8 * width)
    with pytest.raises(ValueError, match="ResNet width 0"):
        build_backbone("resnet18", width=0)


def test_the_cpu_preset_backbone_keeps_a_4x4_map_on_its_views() -> None:
    """The cpu preset's ResNet-18 (small stem, width 16) on its 32-px views: layer4 is 4 x 4, so
    dense methods (SlotCon) group 16 positions per view rather than one."""
    from pretrain import config as C

    cfg = C.build_config("simclr", None, "cpu", {})
    model = build_backbone(cfg.backbone.name, **cfg.backbone.kwargs)
    size = cfg.aug_cfg["out_size"]
    fmap = model.forward_features(torch.zeros(2, 3, size, size))
    assert cfg.backbone.kwargs == {"small_stem": True, "width": 16} and size == 32
    assert fmap.shape == (2, model.num_features, 4, 4) and model.num_features == 128
