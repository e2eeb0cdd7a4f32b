"""`make setup` installed the transfer frameworks and their CPU ops (not just their Python files)."""
from __future__ import annotations

import torch


def test_torchvision_ops_run_on_cpu() -> None:
    import torchvision.ops

    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]], dtype=torch.float32)
    keep = torchvision.ops.nms(boxes, torch.tensor([0.9, 0.8, 0.7]), 0.5)
    assert keep.tolist() == [0, 2]


def test_mmcv_compiled_cpu_ops() -> None:
    import mmcv.ops

    feat = torch.arange(16, dtype=torch.float32).view(1, 1, 4, 4)
    out = mmcv.ops.roi_align(feat, torch.tensor([[0, 0, 0, 4, 4.0]]), (1, 1), 1.0, 2, "avg", True)
    assert torch.allclose(out, feat.mean().view(1, 1, 1, 1), atol=1e-4)
    dets, keep = mmcv.ops.nms(torch.tensor([[0, 0, 10, 10], [1, 1, 10, 10.0]]), torch.tensor([0.9, 0.8]), 0.5)
    assert keep.tolist() == [0]


def test_mmseg_builds_a_segmentor() -> None:
    import mmseg
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules

    register_all_modules()
    model = MODELS.build(dict(
        type="EncoderDecoder",
        data_preprocessor=dict(type="SegDataPreProcessor", mean=[0, 0, 0], std=[1, 1, 1], size=(32, 32)),
        backbone=dict(type="ResNetV1c", depth=18, num_stages=4, out_indices=(3,), norm_cfg=dict(type="BN")),
        decode_head=dict(type="FCNHead", in_channels=512, channels=16, num_convs=1, num_classes=3, in_index=0,
                         norm_cfg=dict(type="BN"), loss_decode=dict(type="CrossEntropyLoss")),
        train_cfg=dict(), test_cfg=dict(mode="whole")))
    model.eval()
    with torch.no_grad():
        out = model(torch.rand(1, 3, 32, 32), mode="tensor")
    assert out.shape == (1, 3, 1, 1) and mmseg.__version__ == "1.2.2"


def test_detectron2_model_zoo_config_runs_on_cpu() -> None:
    from detectron2 import model_zoo
    from detectron2.config import get_cfg
    from detectron2.modeling import build_model

    cfg = get_cfg()
    cfg.merge_from_file(model_zoo.get_config_file("COCO-Detection/faster_rcnn_R_50_FPN_1x.yaml"))
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.RESNETS.DEPTH = 18
    cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = 64
    cfg.MODEL.RESNETS.NORM = cfg.MODEL.FPN.NORM = "BN"
    model = build_model(cfg).eval()
    with torch.no_grad():
        out = model([{"image": torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8).float()}])
    assert "instances" in out[0]


def test_detectron2_missing_extension_raises_clearly() -> None:
    import pytest
    from detectron2._C_missing import _C

    with pytest.raises(ImportError, match="without its C\\+\\+ extension"):
        _C.COCOevalAccumulate
