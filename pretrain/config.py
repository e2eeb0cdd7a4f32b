"""Pretraining configuration: nested dataclasses, CLI overrides, presets, run ids.

Overrides use dotted paths: ``--optim.lr=0.1 --data.batch_size=128 --method_cfg.temperature=0.2
--aug_cfg.crop_scale=[0.2,1.0] --backbone.kwargs.small_stem=true`` (values parsed as YAML).
``method_cfg`` / ``aug_cfg`` are checked against the method's / policy's own config dataclass
when the run is built, so a misspelt key is an error that lists the valid keys.
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .runid import RunId

COCO_TRAIN = "coco/annotations/instances_train2017.json"     # a full run's COCO, under the datasets root


@dataclass
class DataConfig:
    path: str = "data/shapes64-heldout"
    split: str = "train"
    image_size: int = 0            # 0: the dataset's own size (synthetic); required for image files
    batch_size: int = 256          # global batch (all processes together)
    stats_images: int = 2048       # images used to measure the mean / std recorded in ckpt.pt
    pair_gap: int = 3              # temporal methods: frames at most this far apart form a pair
    prefetch: int = 2
    workers: int = 0               # > 0: decode in that many DataLoader worker processes (full: 8 a GPU)
    pin_memory: bool = False       # pinned host batches for asynchronous copies to the GPU


@dataclass
class BackboneConfig:
    name: str = "resnet18"
    kwargs: dict = field(default_factory=dict)


@dataclass
class OptimConfig:
    name: str = "sgd"              # sgd | adamw | lars
    lr: float = 0.3                # base learning rate for a batch of 256 (scaled linearly)
    weight_decay: float = 1e-4
    momentum: float = 0.9
    warmup_frac: float = 0.05      # linear warm-up over this fraction of the steps
    schedule: str = "cosine"       # cosine | constant
    clip_grad: float = 0.0         # max gradient norm, 0 = off
    lars_eta: float = 0.001        # LARS trust coefficient (0.001 in the papers; 0.02 for short CIFAR-size runs)


@dataclass
class TrainConfig:
    epochs: float = 10.0
    steps: int = 0                 # > 0 overrides epochs
    seed: int = 0
    amp: str = "auto"              # auto: bf16/fp16 on CUDA, bf16 on CPUs with native bf16; off | bf16 | fp16
    channels_last: bool = True     # NHWC weights and views: faster convolutions (oneDNN on CPU, tensor cores)
    device: str = "auto"           # auto | cpu | cuda
    log_every: int = 10
    ckpt_every: int = 100          # steps between atomic checkpoints (ckpt.pt + resume.pt)
    out: str = "runs"
    tensorboard: bool = True
    export: str = "default"        # branch written to ckpt.pt: default (the method's) | online | momentum
    aug_device: str = "cpu"        # cpu | train: run the batched augmentations on the training device


@dataclass
class Config:
    method: str = "simclr"
    aug: str = "default"
    preset: str = "cpu"
    data: DataConfig = field(default_factory=DataConfig)
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    method_cfg: dict = field(default_factory=dict)
    aug_cfg: dict = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# Fields that do not change what is trained (left out of the run id's hash).
NON_SEMANTIC = {("train", "log_every"), ("train", "ckpt_every"), ("train", "out"), ("train", "tensorboard"),
                ("train", "device"), ("data", "prefetch"), ("data", "workers"), ("data", "pin_memory"),
                ("train", "aug_device")}

# Presets: overrides applied before the user's. `cpu` shows real signal in minutes on 2 cores;
# `full` holds the papers' ImageNet settings for GPUs (same code path).
PRESETS: dict[str, dict[str, Any]] = {
    # cpu: a ResNet-18 with the small stem (3x3 stride-1 conv, no max-pool: layer4 is 4x4 on 32-px views)
    # at width 16, chosen by the preset screen (bench/RESULTS.md "The cpu-preset screen"): the largest
    # SSL-minus-random gap and spread between methods per CPU-minute of the arms screened.
    "cpu": {"backbone.name": "resnet18", "backbone.kwargs": {"small_stem": True, "width": 16},
            "data.batch_size": 128, "train.epochs": 15, "optim.name": "sgd",
            "optim.lr": 0.6, "optim.weight_decay": 5e-4, "aug": "mild", "aug_cfg.out_size": 32},
    "full": {"backbone.name": "resnet50", "data.batch_size": 256, "train.epochs": 200, "optim.name": "sgd",
             "optim.lr": 0.03, "optim.weight_decay": 1e-4, "data.path": "data/imagenet", "data.image_size": 224,
             "data.split": "train", "data.stats_images": 10000,
             # the GPU data path: decoding in 8 worker processes a GPU, pinned batches, augmentations on the GPU
             "data.workers": 8, "data.pin_memory": True, "train.aug_device": "train"},
    "test": {"backbone.name": "tiny", "data.batch_size": 16, "train.steps": 4, "train.log_every": 1,
             "train.ckpt_every": 2, "optim.lr": 0.05, "data.stats_images": 64},
}
# Per-method settings of the papers, applied on top of a preset (full: the ImageNet recipes).
METHOD_PRESETS: dict[tuple[str, str], dict[str, Any]] = {
    # full: each method's ImageNet recipe as its authors released it (commit and file in brackets; warmup_frac
    # is the stated warm-up epochs over the epochs). LARS lr is per 256 images, scaled linearly like every lr here.
    # SimCLR (google-research/simclr @7fd0c80, README and run.py): LARS 0.3 x batch/256, wd 1e-6, batch 4096,
    # 10 warm-up epochs, temperature 0.1; 1000 epochs for the paper's ResNet-50 comparisons (arXiv 2002.05709 sec. 6)
    ("full", "simclr"): {"optim.name": "lars", "optim.lr": 0.3, "optim.weight_decay": 1e-6, "data.batch_size": 4096,
                         "train.epochs": 1000, "optim.warmup_frac": 0.01, "method_cfg.temperature": 0.1},
    # BYOL (deepmind-research byol/configs/byol.py, the 1000-epoch row): LARS base lr 0.2, wd 1.5e-6, tau_base
    # 0.996, batch 4096 (main_loop.py), 10 warm-up epochs, projector 4096 -> 256
    ("full", "byol"): {"optim.name": "lars", "optim.lr": 0.2, "optim.weight_decay": 1.5e-6, "data.batch_size": 4096,
                       "train.epochs": 1000, "optim.warmup_frac": 0.01, "aug": "byol",
                       "method_cfg.base_momentum": 0.996},
    # MoCo v2 (facebookresearch/moco @78b69ca, main_moco.py and README "MoCo v2"): K 65536, m 0.999, T 0.2, the
    # one-directional loss, SGD lr 0.03 at batch 256, wd 1e-4, 200 epochs, cosine (the preset's own)
    ("full", "mocov2"): {"method_cfg.queue_size": 65536, "method_cfg.momentum": 0.999, "method_cfg.temperature": 0.2,
                         "method_cfg.symmetric": False, "optim.warmup_frac": 0.0},
    # SimSiam (facebookresearch/simsiam main_simsiam.py, README): SGD 0.05 x batch/256, batch 512, wd 1e-4, 100 epochs
    ("full", "simsiam"): {"optim.lr": 0.05, "optim.weight_decay": 1e-4, "data.batch_size": 512, "train.epochs": 100,
                          "optim.warmup_frac": 0.0},
    # SwAV (facebookresearch/swav scripts/swav_800ep_pretrain.sh): LARS base lr 4.8 at batch 4096 (= 0.3 per 256),
    # wd 1e-6, 800 epochs, 10 warm-up epochs, 3000 prototypes frozen for 313 iterations, epsilon 0.05, 3 Sinkhorn
    # iterations, temperature 0.1, 2x224 + 6x96 crops. No queue: the authors' batch-4096 runs use none
    # (queue_length 0); their queue (3840) is for batch 256.
    ("full", "swav"): {"optim.name": "lars", "optim.lr": 0.3, "optim.weight_decay": 1e-6, "data.batch_size": 4096,
                       "train.epochs": 800, "optim.warmup_frac": 10 / 800, "aug": "multicrop",
                       "method_cfg.prototypes": 3000, "method_cfg.freeze_prototypes_steps": 313, "aug_cfg.n_local": 6},
    # PIRL (facebookresearch/vissl configs/config/pretrain/pirl/pirl_jigsaw_4node_resnet50.yaml; arXiv 1912.01991
    # sec. 4.1): 32000 negatives, T 0.07, lambda 0.5, memory momentum 0.5, SGD 0.03 x batch/256 at batch 1024,
    # wd 1e-4, cosine; 200 epochs (vissl's epochs_200 override; the yaml's own 800)
    ("full", "pirl"): {"method_cfg.num_negatives": 32000, "method_cfg.temperature": 0.07, "method_cfg.lam": 0.5,
                       "method_cfg.bank_momentum": 0.5, "data.batch_size": 1024, "optim.lr": 0.03,
                       "optim.warmup_frac": 0.0},
    # SlotCon (CVMI-Lab/SlotCon scripts/slotcon_coco_r50_800ep.sh): COCO train2017, LARS base lr 1.0 per 256,
    # batch 512, wd 1e-5, 800 epochs, 5 warm-up epochs, 256 prototypes, hidden 4096, out 256, teacher momentum
    # 0.99, temperatures 0.07 / 0.1, group loss weight 0.5
    ("full", "slotcon"): {"optim.name": "lars", "optim.lr": 1.0, "optim.weight_decay": 1e-5, "data.batch_size": 512,
                          "train.epochs": 800, "optim.warmup_frac": 5 / 800, "data.path": "data/" + COCO_TRAIN,
                          "data.split": "", "method_cfg.num_prototypes": 256, "method_cfg.dim_hidden": 4096,
                          "method_cfg.dim_out": 256},
    # MoCo v3, ResNet-50 (facebookresearch/moco-v3 main_moco.py defaults, CONFIG.md 100 epochs): LARS 0.6 x
    # batch/256, wd 1e-6, batch 4096, T 1.0, m 0.99 raised to 1 by a cosine, 10 warm-up epochs
    ("full", "mocov3"): {"optim.name": "lars", "optim.lr": 0.6, "optim.weight_decay": 1e-6, "data.batch_size": 4096,
                         "train.epochs": 100, "optim.warmup_frac": 0.1, "method_cfg.temperature": 1.0,
                         "method_cfg.base_momentum": 0.99},
    # DINO, ResNet-50 (facebookresearch/dino README, the ResNet-50 command; main_dino.py): SGD 0.03 x batch/256,
    # batch 512, wd 1e-4, 100 epochs, 10 warm-up epochs, out_dim 65536, teacher temperature 0.04, momentum 0.996
    ("full", "dino"): {"optim.lr": 0.03, "optim.weight_decay": 1e-4, "data.batch_size": 512, "train.epochs": 100,
                       "optim.warmup_frac": 0.1, "method_cfg.out_dim": 65536, "method_cfg.teacher_temp": 0.04,
                       "method_cfg.base_momentum": 0.996},
    # cpu: the short-run settings that learn within the preset's budget (docs/pretrain.md, "It learns").
    # MoCo v2 / BYOL export the EMA teacher there: after so few steps it probes 1-2 points higher.
    # MoCo v2 keeps NCHW: its shuffling BN reshapes every BN input, a copy for NHWC (15% slower steps).
    ("cpu", "mocov2"): {"optim.lr": 0.6, "method_cfg.proj_bn": True, "method_cfg.queue_size": 1024,
                        "train.epochs": 20, "train.export": "momentum", "train.channels_last": False},
    # SimCLR on the small stem: 15 epochs 64.05 (386-397 s alone), 30 epochs 71.1 (786 s; bench/RESULTS.md)
    ("cpu", "simclr"): {"train.epochs": 30},
    # BYOL's target must move faster in so few updates (docs/pretrain.md): at 10 epochs tau_base 0.99 probes
    # 41.85, 0.98 46.0, 0.96 49.4, 0.94 49.0; with 0.96, 15 epochs 52.8, 20 epochs 53.2 (bench/RESULTS.md,
    # "BYOL's target momentum")
    ("cpu", "byol"): {"optim.lr": 0.2, "data.batch_size": 64, "train.export": "momentum", "train.epochs": 15,
                      "method_cfg.base_momentum": 0.96},
    ("cpu", "simsiam"): {"optim.lr": 0.1},
    # cross-entropy at the contrastive lr 0.6 trains to 40% train accuracy in 10 epochs; 0.1: 53%
    ("cpu", "supervised"): {"optim.lr": 0.1},
}


YAML11_WORDS = {"yes", "no", "on", "off", "y", "n"}    # booleans in YAML 1.1, plain words here
FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def parse_value(text: str) -> Any:
    """A CLI value as YAML (numbers, lists, dicts, true / false); words like ``off`` stay strings."""
    if text.strip().lower() in YAML11_WORDS:
        return text
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str) and FLOAT.fullmatch(value.strip()):   # YAML 1.1 reads 1e-5 (no dot) as a string
        return float(value)
    return value


def set_path(cfg: Config, path: str, value: Any) -> None:
    """Set a dotted path on the config (dict fields accept new keys; dataclass fields must exist)."""
    parts = path.split(".")
    obj: Any = cfg
    for i, key in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(obj, dict):
            if last:
                obj[key] = value
            else:
                obj = obj.setdefault(key, {})
            continue
        names = [f.name for f in dataclasses.fields(obj)]
        if key not in names:
            where = ".".join(parts[:i]) or "config"
            raise ValueError(f"unknown setting {path!r}: {where} has {', '.join(names)}")
        if last:
            current = getattr(obj, key)
            if dataclasses.is_dataclass(current) or isinstance(current, dict) and not isinstance(value, dict):
                raise ValueError(f"setting {path!r} is a section; set one of its keys, e.g. {path}.<key>=...")
            setattr(obj, key, _coerce(current, value, path))
        else:
            obj = getattr(obj, key)


def _coerce(current: Any, value: Any, path: str) -> Any:
    if isinstance(current, bool) or current is None or isinstance(current, (dict, list)):
        return value
    if isinstance(current, float) and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(current, int) and isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(current, str) and isinstance(value, (str, int, float)):
        return str(value)
    raise ValueError(f"setting {path!r}: expected a {type(current).__name__}, got {value!r}")


def build_config(method: str, aug: str | None, preset: str, overrides: dict[str, Any]) -> Config:
    """Defaults, then the preset, then the method's preset, then the user's overrides."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; valid presets: {', '.join(PRESETS)}")
    cfg = Config(method=method, preset=preset)
    for path, value in {**PRESETS[preset], **METHOD_PRESETS.get((preset, method), {})}.items():
        set_path(cfg, path, copy.deepcopy(value))          # a preset's dicts are never shared with a config
    if aug is not None:
        cfg.aug = aug
    for path, value in overrides.items():
        set_path(cfg, path, value)
    return cfg


def parse_overrides(args: list[str]) -> dict[str, Any]:
    """``['--optim.lr=0.1', '--train.amp', 'off']`` -> {'optim.lr': 0.1, 'train.amp': 'off'}."""
    out: dict[str, Any] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--") or len(arg) < 3:
            raise ValueError(f"unexpected argument {arg!r}; settings look like --optim.lr=0.1")
        key, eq, val = arg[2:].partition("=")
        if not eq:
            if i + 1 >= len(args):
                raise ValueError(f"setting --{key} needs a value")
            val, i = args[i + 1], i + 1
        out[key] = parse_value(val)
        i += 1
    return out


def semantic_dict(cfg: Config) -> dict[str, Any]:
    d = cfg.to_dict()
    for section, key in NON_SEMANTIC:
        d[section].pop(key, None)
    d["data"]["path"] = str(Path(d["data"]["path"]).resolve())
    return d


def config_hash(cfg: Config) -> str:
    blob = json.dumps(semantic_dict(cfg), sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:8]


def run_id(cfg: Config, dataset: str) -> str:
    """``{method}-{aug}-{backbone}-{dataset}-s{seed}-{hash8(config)}`` (``pretrain.runid.RunId``)."""
    return RunId(cfg.method, cfg.aug, backbone_token(cfg.backbone), dataset, cfg.train.seed, config_hash(cfg)).format()


def backbone_token(backbone: BackboneConfig) -> str:
    """The backbone's name in a run id: its registry name, or ``timm_<model>`` for a timm model (dashes
    become underscores: the id's fields are dash-separated)."""
    if backbone.name == "timm" and backbone.kwargs.get("model"):
        return "timm_" + str(backbone.kwargs["model"]).replace("-", "_")
    return backbone.name


def config_from_dict(d: dict[str, Any]) -> Config:
    return Config(method=d["method"], aug=d["aug"], preset=d["preset"], data=DataConfig(**d["data"]),
                  backbone=BackboneConfig(**d["backbone"]), optim=OptimConfig(**d["optim"]),
                  train=TrainConfig(**d["train"]), method_cfg=dict(d["method_cfg"]), aug_cfg=dict(d["aug_cfg"]))


def diff(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys where two config dicts differ."""
    out = []
    for k in sorted(set(a) | set(b)):
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += diff(va, vb, f"{prefix}{k}.")
        elif va != vb:
            out.append(f"{prefix}{k} ({va!r} vs {vb!r})")
    return out


def plain(value: Any) -> Any:
    """``value`` with tuples made lists, recursively (what JSON and the results store hold)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value
