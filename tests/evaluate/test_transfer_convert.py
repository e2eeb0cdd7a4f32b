"""Checkpoint -> Detectron2 / mmseg weights: every backbone key loads, and the frameworks' own
ResNets compute the same features as the sslbench backbone (evaluate.transfer.convert)."""
from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from evaluate.transfer import convert as TC
from evaluate.transfer.__main__ import main as transfer_main
from pretrain.checkpoint import load_backbone

DEPTH_NAMES = {18: "resnet18", 50: "resnet50"}


@pytest.fixture(scope="module", params=[18, 50], ids=["resnet18", "resnet50"])
def resnet_ckpt(request, eval_data: Path, tmp_path_factory: pytest.TempPathFactory, make_ckpt) -> tuple[int, Path]:
    out = tmp_path_factory.mktemp("runs")
    return request.param, make_ckpt("random", eval_data, out, **{"backbone.name": DEPTH_NAMES[request.param]})


def _input() -> torch.Tensor:
    return torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))


def _ours(ckpt: Path) -> torch.Tensor:
    model, _ = load_backbone(ckpt)
    with torch.no_grad():
        return model.forward_features(_input())


def test_detectron2_resnet_loads_every_key_and_computes_the_same_features(resnet_ckpt, tmp_path: Path) -> None:
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.config import get_cfg
    from detectron2.layers import ShapeSpec
    from detectron2.modeling.backbone.resnet import build_resnet_backbone

    depth, ckpt = resnet_ckpt
    pkl = TC.convert(ckpt, "detectron2", tmp_path / "d2.pkl")
    with open(pkl, "rb") as f:
        payload = pickle.load(f)
    assert payload["matching_heuristics"] is True
    cfg = get_cfg()
    cfg.MODEL.RESNETS.DEPTH = depth
    cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = 64 if depth == 18 else 256
    cfg.MODEL.RESNETS.NORM = "BN"
    cfg.MODEL.RESNETS.STRIDE_IN_1X1 = False          # torchvision puts the stride in the 3x3 conv
    cfg.MODEL.RESNETS.OUT_FEATURES = ["res5"]
    cfg.MODEL.BACKBONE.FREEZE_AT = 0
    d2 = build_resnet_backbone(cfg, ShapeSpec(channels=3)).eval()
    expected = {k for k in d2.state_dict() if not k.endswith("num_batches_tracked")}
    assert set(payload["model"]) == expected                          # no missing, no unexpected key
    DetectionCheckpointer(d2).load(str(pkl))
    with torch.no_grad():
        theirs = d2(_input())["res5"]
    torch.testing.assert_close(theirs, _ours(ckpt), rtol=1e-4, atol=1e-4)


def test_mmseg_resnet_loads_strictly_and_computes_the_same_features(resnet_ckpt, tmp_path: Path) -> None:
    from mmengine.runner import load_checkpoint
    from mmseg.models.backbones import ResNet

    depth, ckpt = resnet_ckpt
    path = TC.convert(ckpt, "mmseg", tmp_path / "mmseg.pth")
    mm = ResNet(depth=depth, style="pytorch")
    mm.eval()                                                           # mmseg's train() returns None
    load_checkpoint(mm, str(path), map_location="cpu", strict=True)
    with torch.no_grad():
        theirs = mm(_input())[-1]
    torch.testing.assert_close(theirs, _ours(ckpt), rtol=1e-4, atol=1e-4)


def test_name_mapping_examples() -> None:
    assert TC.detectron2_name("conv1.weight") == "stem.conv1.weight"
    assert TC.detectron2_name("bn1.running_var") == "stem.conv1.norm.running_var"
    assert TC.detectron2_name("layer1.0.bn2.bias") == "res2.0.conv2.norm.bias"
    assert TC.detectron2_name("layer4.0.downsample.0.weight") == "res5.0.shortcut.weight"
    assert TC.detectron2_name("layer4.0.downsample.1.weight") == "res5.0.shortcut.norm.weight"
    with pytest.raises(TC.ConvertError, match="unexpected ResNet key 'fc.weight'"):
        TC.detectron2_name("fc.weight")


@pytest.mark.parametrize("backbone,overrides,match", [
    ("tiny", {}, "takes resnet18, resnet50 only"),
    ("resnet18", {"backbone.kwargs": {"small_stem": True}}, "small_stem=true"),
    ("resnet18", {"backbone.kwargs": {"width": 16}}, "at width 16: the frameworks' ResNets have the standard widths"),
])
def test_backbones_the_frameworks_cannot_build_fail_in_one_line(backbone, overrides, match, eval_data: Path,
                                                                tmp_path: Path, make_ckpt, capsys) -> None:
    ckpt = make_ckpt("random", eval_data, tmp_path / "runs", **{"backbone.name": backbone, **overrides})
    out = tmp_path / "out.pkl"
    out.write_bytes(b"kept")
    assert transfer_main(["convert", str(ckpt), "--to", "detectron2", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and match in err
    assert out.read_bytes() == b"kept"                                 # nothing already written is lost


def test_cli_rejects_unknown_target_and_foreign_file(tmp_path: Path, capsys) -> None:
    foreign = tmp_path / "x.pt"
    torch.save({"weights": 1}, foreign)
    assert transfer_main(["convert", str(foreign), "--to", "caffe"]) == 2
    assert "valid targets: detectron2, mmseg" in capsys.readouterr().err
    assert transfer_main(["convert", str(foreign), "--to", "mmseg"]) == 2
    assert "unknown checkpoint layout" in capsys.readouterr().err          # neither ours nor a known format
