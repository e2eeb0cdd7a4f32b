"""One fixture per foreign checkpoint format: a randomly initialised network saved in the
framework's own key layout, built as the framework builds it (the same module attributes, so the
keys arise from the module tree as they do there), plus the reference backbone whose pooled
features the import must reproduce.

``FIXTURES[format](folder) -> Fixture`` (path of the saved file, the reference backbone in eval mode
giving (B, C) features, the backbone keys' prefix in the file, and the keys the import must drop).
Layouts were read from each framework's code: moco (facebookresearch/moco moco/builder.py,
main_moco.py), mocov3 (facebookresearch/moco-v3 moco/builder.py), swav / deepcluster-v2 / sela-v2
(facebookresearch/swav src/resnet50.py), dino (facebookresearch/dino main_dino.py, utils.py
MultiCropWrapper), pycontrast (HobbitLong/PyContrast), simclr (sthalles/SimCLR models/resnet_simclr.py;
tonylins/simclr-converter), byol (lucidrains/byol-pytorch byol_pytorch.py), barlowtwins
(facebookresearch/barlowtwins main.py), solo-learn (vturrisi/solo-learn solo/methods/base.py), lightly
(lightly's own heads, installed), openmmlab (open-mmlab/mmselfsup models/algorithms/mocov2.py,
mmpretrain models/backbones/vision_transformer.py), vissl (facebookresearch/vissl
vissl/models/trunks/resnext.py, vissl/utils/checkpoint.py).
"""
from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torchvision
from torch import nn

torch.manual_seed(0)


@dataclass
class Fixture:
    path: Path
    reference: nn.Module            # eval mode; (B, 3, H, W) -> (B, C)
    prefix: str                     # the backbone keys' prefix in the file (for tests that edit it)
    weights: tuple[str, ...]        # the entry path of the weights dict in the saved object


def _resnet18(num_classes: int = 1000) -> nn.Module:
    net = torchvision.models.resnet18(num_classes=num_classes)
    with torch.no_grad():            # non-trivial BN statistics, so a lost buffer changes the features
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
    return net


def _reference(net: nn.Module) -> nn.Module:
    ref = copy.deepcopy(net)
    ref.fc = nn.Identity()
    return ref.eval()


class DDP(nn.Module):
    """What ``DistributedDataParallel`` adds to the keys: ``module.``."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module


def _mlp(*dims: int, bn: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(dims) - 2:
            layers += ([nn.BatchNorm1d(b)] if bn else []) + [nn.ReLU()]
    return nn.Sequential(*layers)


def torchvision_fixture(folder: Path) -> Fixture:
    net = _resnet18()
    torch.save(net.state_dict(), folder / "resnet18.pth")
    return Fixture(folder / "resnet18.pth", _reference(net), "", ())


def timm_fixture(folder: Path) -> Fixture:
    """A timm ViT-Tiny/16 of two blocks at 64 px saved as the Hub does (safetensors): the importer
    must read its width, depth, heads (3 = 192 / 64) and size from the weights."""
    import timm
    from safetensors.torch import save_file
    net = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=10, depth=2, img_size=64)
    save_file(net.state_dict(), str(folder / "model.safetensors"))
    ref = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=0, depth=2, img_size=64)
    ref.load_state_dict({k: v for k, v in net.state_dict().items() if not k.startswith("head.")})
    return Fixture(folder / "model.safetensors", ref.eval(), "", ())


class MoCo(nn.Module):
    """moco/builder.py: encoder_q / encoder_k (fc an MLP in v2), queue, queue_ptr."""

    def __init__(self, make: Callable[..., nn.Module] = _resnet18, dim: int = 128, k: int = 256) -> None:
        super().__init__()
        self.encoder_q, self.encoder_k = make(num_classes=dim), make(num_classes=dim)
        width = self.encoder_q.fc.weight.shape[1]
        self.encoder_q.fc = nn.Sequential(nn.Linear(width, width), nn.ReLU(), self.encoder_q.fc)
        self.encoder_k.fc = nn.Sequential(nn.Linear(width, width), nn.ReLU(), self.encoder_k.fc)
        self.register_buffer("queue", torch.randn(dim, k))
        self.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long))


def moco_fixture(folder: Path, make: Callable[..., nn.Module] = _resnet18) -> Fixture:
    model = DDP(MoCo(make))
    opt = torch.optim.SGD(model.parameters(), lr=0.03, momentum=0.9)
    torch.save({"epoch": 200, "arch": "resnet18", "state_dict": model.state_dict(), "optimizer": opt.state_dict()},
               folder / "moco_v2_200ep_pretrain.pth.tar")
    return Fixture(folder / "moco_v2_200ep_pretrain.pth.tar", _reference(model.module.encoder_q),
                   "module.encoder_q.", ("state_dict",))


class MoCoV3ResNet(nn.Module):
    """moco-v3 moco/builder.py MoCo_ResNet: base_encoder / momentum_encoder with fc the projector, predictor."""

    def __init__(self) -> None:
        super().__init__()
        self.base_encoder, self.momentum_encoder = _resnet18(), _resnet18()
        for enc in (self.base_encoder, self.momentum_encoder):
            enc.fc = _mlp(512, 256, 64, bn=True)
        self.predictor = _mlp(64, 256, 64, bn=True)


def mocov3_fixture(folder: Path) -> Fixture:
    model = DDP(MoCoV3ResNet())
    torch.save({"epoch": 100, "arch": "resnet18", "state_dict": model.state_dict()}, folder / "r-50-100ep.pth.tar")
    return Fixture(folder / "r-50-100ep.pth.tar", _reference(model.module.base_encoder), "module.base_encoder.",
                   ("state_dict",))


class SwAVResNet(nn.Module):
    """swav src/resnet50.py: the ResNet trunk (no fc), padding, projection_head, prototypes."""

    def __init__(self, multi: int = 1) -> None:
        super().__init__()
        net = _resnet18()
        for name, child in net.named_children():
            if name != "fc":
                self.add_module(name, child)
        self.padding = nn.ConstantPad2d(1, 0.0)
        self.projection_head = _mlp(512, 256, 32, bn=True)
        if multi == 1:
            self.prototypes = nn.Linear(32, 100, bias=False)
        else:                         # DeepCluster-v2: MultiPrototypes (prototypes0, prototypes1, ...)
            self.prototypes = nn.Module()
            for i in range(multi):
                self.prototypes.add_module(f"prototypes{i}", nn.Linear(32, 100, bias=False))

    def reference(self) -> nn.Module:
        net = torchvision.models.resnet18()
        net.load_state_dict({k: v for k, v in self.state_dict().items()
                             if not k.startswith(("projection_head", "prototypes"))}, strict=False)
        return _reference(net)


def swav_fixture(folder: Path, multi: int = 1, name: str = "swav_800ep_pretrain.pth.tar") -> Fixture:
    model = DDP(SwAVResNet(multi))
    torch.save(model.state_dict(), folder / name)     # the released files: the DDP state dict itself
    return Fixture(folder / name, model.module.reference(), "module.", ())


class MultiCropWrapper(nn.Module):
    """dino utils.py MultiCropWrapper: backbone (fc / head set to Identity), head (DINOHead)."""

    def __init__(self, backbone: nn.Module, head: nn.Module) -> None:
        super().__init__()
        backbone.fc, backbone.head = nn.Identity(), nn.Identity()
        self.backbone, self.head = backbone, head


class DINOHead(nn.Module):
    """dino vision_transformer.py DINOHead: mlp, then a weight-normalised last layer."""

    def __init__(self, dim: int, out: int = 256) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(dim, 128), nn.GELU(), nn.Linear(128, 64))
        self.last_layer = nn.utils.parametrizations.weight_norm(nn.Linear(64, out, bias=False))


def dino_vit(depth: int = 12) -> nn.Module:
    import timm
    return timm.create_model("vit_small_patch16_224", pretrained=False, num_classes=0, depth=depth)


def dino_fixture(folder: Path, args: bool = False, vit: bool = False, depth: int = 2) -> Fixture:
    """main_dino.py's checkpoint.pth: student (DDP), teacher, optimizer, epoch, dino_loss (args: an
    argparse.Namespace, left out unless ``args``); ``vit``: a ViT-S/16 of ``depth`` blocks."""
    import argparse
    make = (lambda: dino_vit(depth=depth)) if vit else _resnet18
    dim = 384 if vit else 512
    student = DDP(MultiCropWrapper(make(), DINOHead(dim)))
    teacher = MultiCropWrapper(make(), DINOHead(dim))
    teacher.load_state_dict(student.module.state_dict())
    with torch.no_grad():
        for p in teacher.backbone.parameters():
            p.add_(0.01 * torch.randn_like(p))          # the EMA teacher differs from the student
    save = {"student": student.state_dict(), "teacher": teacher.state_dict(), "epoch": 100,
            "dino_loss": {"center": torch.zeros(1, 256)}}
    if args:
        save["args"] = argparse.Namespace(arch="vit_small" if vit else "resnet18")
    path = folder / "checkpoint.pth"
    torch.save(save, path)
    return Fixture(path, teacher.backbone.eval(), "backbone.", ("teacher",))


class PyContrastModel(nn.Module):
    """PyContrast networks/build_backbone.py (PIRL preset): encoder (its own ResNet: torchvision names,
    no fc), head (Linear, Normalize), head_jig (fc1, fc2)."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = _resnet18()
        del self.encoder.fc
        self.encoder.fc = nn.Identity()
        self.head = nn.Sequential(nn.Linear(512, 128))
        self.head_jig = nn.Module()
        self.head_jig.fc1, self.head_jig.fc2 = nn.Linear(512, 128), nn.Linear(9 * 128, 128)


def pycontrast_fixture(folder: Path) -> Fixture:
    """contrast_trainer.py save: model (DDP), model_ema (not wrapped), contrast (the memory), epoch."""
    model = DDP(PyContrastModel())
    ema = copy.deepcopy(model.module)
    torch.save({"model": model.state_dict(), "model_ema": ema.state_dict(), "epoch": 200,
                "contrast": {"memory": torch.randn(100, 128)}}, folder / "PIRL.pth")
    return Fixture(folder / "PIRL.pth", model.module.encoder.eval(), "module.encoder.", ("model",))


class ResNetSimCLR(nn.Module):
    """sthalles/SimCLR models/resnet_simclr.py: backbone (a torchvision ResNet) with fc an MLP."""

    def __init__(self, out_dim: int = 128) -> None:
        super().__init__()
        self.backbone = _resnet18(num_classes=out_dim)
        self.backbone.fc = nn.Sequential(nn.Linear(512, 512), nn.ReLU(), self.backbone.fc)


def simclr_fixture(folder: Path) -> Fixture:
    model = ResNetSimCLR()
    torch.save({"epoch": 100, "arch": "resnet18", "state_dict": model.state_dict()}, folder / "checkpoint_0100.pth.tar")
    return Fixture(folder / "checkpoint_0100.pth.tar", _reference(model.backbone), "backbone.", ("state_dict",))


class SimCLRv2Block(nn.Module):
    """Separius/SimCLRv2-Pytorch resnet.py BottleneckBlock (sk0): net = conv, BN(ReLU), conv, BN(ReLU),
    conv, BN; projection = shortcut conv + BN on the first block of a stage."""

    def __init__(self, tv_block: nn.Module) -> None:
        super().__init__()
        bn = lambda m: nn.Sequential(m)                                   # BatchNormRelu: .0 the BatchNorm
        self.net = nn.Sequential(tv_block.conv1, bn(tv_block.bn1), tv_block.conv2, bn(tv_block.bn2),
                                 tv_block.conv3, bn(tv_block.bn3))
        if tv_block.downsample is not None:
            self.projection = nn.Module()
            self.projection.shortcut, self.projection.bn = tv_block.downsample[0], nn.Sequential(tv_block.downsample[1])


def simclr_v2_fixture(folder: Path) -> Fixture:
    """convert.py's r50_1x_sk0.pth: {"resnet": the port's ResNet, "head": the contrastive head}."""
    tv = torchvision.models.resnet50()
    with torch.no_grad():
        for m in tv.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    port = nn.Module()
    stem = nn.Sequential(tv.conv1, nn.Sequential(tv.bn1))
    stages = []
    for layer in (tv.layer1, tv.layer2, tv.layer3, tv.layer4):
        stage = nn.Module()
        stage.blocks = nn.Sequential(*[SimCLRv2Block(b) for b in layer])
        stages.append(stage)
    port.net = nn.Sequential(stem, *stages)
    port.fc = tv.fc
    head = nn.Module()
    head.layers = _mlp(2048, 256, 128, bn=True)
    torch.save({"resnet": port.state_dict(), "head": head.state_dict()}, folder / "r50_1x_sk0.pth")
    return Fixture(folder / "r50_1x_sk0.pth", _reference(tv), "", ("resnet",))


class BYOLLearner(nn.Module):
    """lucidrains/byol-pytorch BYOL: net (the user's ResNet, fc included), online_encoder (NetWrapper:
    the same net, projector), online_predictor, target_encoder (a copy of the online encoder)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = _resnet18()
        self.online_encoder = nn.Module()
        self.online_encoder.net = self.net
        self.online_encoder.projector = _mlp(512, 256, 64, bn=True)
        self.online_predictor = _mlp(64, 256, 64, bn=True)
        self.target_encoder = copy.deepcopy(self.online_encoder)


def byol_fixture(folder: Path) -> Fixture:
    model = BYOLLearner()
    torch.save(model.state_dict(), folder / "byol.pt")
    return Fixture(folder / "byol.pt", _reference(model.net), "net.", ())


class BarlowTwins(nn.Module):
    """barlowtwins main.py: backbone (fc Identity), projector, bn (affine-free)."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = _resnet18()
        self.backbone.fc = nn.Identity()
        self.projector = _mlp(512, 256, 256, bn=True)
        self.bn = nn.BatchNorm1d(256, affine=False)


def barlowtwins_fixture(folder: Path) -> Fixture:
    model = DDP(BarlowTwins())
    torch.save({"epoch": 300, "model": model.state_dict()}, folder / "checkpoint.pth")
    return Fixture(folder / "checkpoint.pth", model.module.backbone.eval(), "module.backbone.", ("model",))


class SoloMethod(nn.Module):
    """solo-learn BaseMomentumMethod: backbone (fc Identity), classifier, projector, momentum copies."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = _resnet18()
        self.backbone.fc = nn.Identity()
        self.classifier = nn.Linear(512, 10)
        self.projector = _mlp(512, 256, 64, bn=True)
        self.predictor = _mlp(64, 256, 64, bn=True)
        self.momentum_backbone = copy.deepcopy(self.backbone)
        self.momentum_projector = copy.deepcopy(self.projector)


def solo_fixture(folder: Path) -> Fixture:
    model = SoloMethod()
    torch.save({"epoch": 400, "global_step": 1000, "pytorch-lightning_version": "2.0.0",
                "state_dict": model.state_dict()}, folder / "byol-400ep.ckpt")
    return Fixture(folder / "byol-400ep.ckpt", model.backbone.eval(), "backbone.", ("state_dict",))


class LightlyBYOL(nn.Module):
    """lightly's BYOL example: backbone = Sequential(*resnet.children()[:-1]) and lightly's heads."""

    def __init__(self) -> None:
        super().__init__()
        from lightly.models.modules import BYOLPredictionHead, BYOLProjectionHead
        self.resnet = _resnet18()
        self.backbone = nn.Sequential(*list(self.resnet.children())[:-1])
        del self.resnet
        self.projection_head = BYOLProjectionHead(512, 256, 64)
        self.prediction_head = BYOLPredictionHead(64, 256, 64)
        self.backbone_momentum = copy.deepcopy(self.backbone)
        self.projection_head_momentum = copy.deepcopy(self.projection_head)


def lightly_fixture(folder: Path) -> Fixture:
    model = LightlyBYOL()
    torch.save(model.state_dict(), folder / "lightly_byol.pth")
    ref = torchvision.models.resnet18()
    names = ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"]
    for i, name in enumerate(names):
        setattr(ref, name, model.backbone[i])
    return Fixture(folder / "lightly_byol.pth", _reference(ref), "backbone.", ())


class MMSelfSupMoCoV2(nn.Module):
    """mmselfsup 1.x MoCoV2: backbone (mmpretrain ResNet: torchvision names, no fc), neck
    (MoCoV2Neck: mlp), head (ContrastiveHead: no weights), momentum_encoder (an EMA of backbone +
    neck: module.0 / module.1, steps), queue, queue_ptr."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = _resnet18()
        del self.backbone.fc
        self.backbone.fc = nn.Identity()
        self.neck = nn.Module()
        self.neck.mlp = _mlp(512, 512, 128)
        self.momentum_encoder = nn.Module()
        self.momentum_encoder.module = nn.Sequential(copy.deepcopy(self.backbone), copy.deepcopy(self.neck))
        self.momentum_encoder.register_buffer("steps", torch.tensor(0))
        self.register_buffer("queue", torch.randn(128, 256))
        self.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long))


def openmmlab_fixture(folder: Path) -> Fixture:
    model = MMSelfSupMoCoV2()
    torch.save({"meta": {"epoch": 200, "mmengine_version": "0.10.7"}, "state_dict": model.state_dict()},
               folder / "mocov2_resnet50_8xb32-coslr-200e_in1k.pth")
    return Fixture(folder / "mocov2_resnet50_8xb32-coslr-200e_in1k.pth", model.backbone.eval(), "backbone.",
                   ("state_dict",))


def vissl_fixture(folder: Path) -> Fixture:
    """VISSL's checkpoint: classy_state_dict.base_model.model.{trunk, heads}, trunk keys under
    ``_feature_blocks.`` (vissl/models/trunks/resnext.py), a linear head (0.clf.0)."""
    net = _resnet18()
    trunk = {f"_feature_blocks.{k}": v for k, v in net.state_dict().items() if not k.startswith("fc.")}
    heads = {"0.clf.0.weight": torch.randn(128, 512), "0.clf.0.bias": torch.randn(128)}
    torch.save({"phase_idx": 10, "iteration": 1000, "type": "checkpoint",
                "classy_state_dict": {"base_model": {"model": {"trunk": trunk, "heads": heads}, "meta": {}},
                                      "loss": {}}},
               folder / "model_final_checkpoint_phase199.torch")
    return Fixture(folder / "model_final_checkpoint_phase199.torch", _reference(net), "trunk._feature_blocks.",
                   ("classy_state_dict", "base_model", "model"))


FIXTURES: dict[str, Callable[[Path], Fixture]] = {
    "torchvision": torchvision_fixture,
    "timm": timm_fixture,
    "moco": moco_fixture,
    "mocov3": mocov3_fixture,
    "swav": swav_fixture,
    "deepcluster-v2": lambda folder: swav_fixture(folder, multi=3, name="deepclusterv2_800ep_pretrain.pth.tar"),
    "sela-v2": lambda folder: swav_fixture(folder, name="selav2_400ep_pretrain.pth.tar"),
    "dino": dino_fixture,
    "pycontrast": pycontrast_fixture,
    "simclr": simclr_fixture,
    "simclr-v2": simclr_v2_fixture,
    "byol": byol_fixture,
    "barlowtwins": barlowtwins_fixture,
    "solo-learn": solo_fixture,
    "lightly": lightly_fixture,
    "openmmlab": openmmlab_fixture,
    "vissl": vissl_fixture,
}
