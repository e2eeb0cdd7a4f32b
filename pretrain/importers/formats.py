"""The registry of foreign checkpoint layouts: ``FORMATS``, format name -> :class:`ImportFormat`.

Each format says where the weights sit in the saved object (``entries``), which key prefix holds
the backbone (``backbone``, tried in order), how the framework's backbone names map to this
project's (``rename``), and which key prefixes are the known non-backbone parts that an import
may drop (``drop``: heads, projectors, predictors, prototypes, queues, momentum copies). Any
other key is an error: nothing is dropped silently. The layouts were read from each framework's
own code; ``source`` names it.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from . import keymaps

EXTRACT = ("on a machine where the file's source is trusted, save the weights alone: python -c \"import torch; "
           "torch.save(torch.load('{src}', weights_only=False){path}, 'weights.pth')\", then import weights.pth")


@dataclass(frozen=True)
class ImportFormat:
    """One framework's checkpoint layout.

    entries: paths into the saved object to the weights dict, tried in order (``()``: the object
      itself); nested dicts below it are flattened with ``.`` (VISSL's ``trunk`` / ``heads``).
    backbone: key prefixes of the backbone weights, tried in order; the first with any key wins
      (``""``: every key that is not a known head).
    drop: key prefixes (of the full key) that may be dropped: the format's heads, projectors,
      predictors, prototypes, queues and momentum encoders.
    rename: the framework's backbone name (prefix removed) -> this project's backbone name.
    source: the repository and file the layout was read from.
    """

    name: str
    source: str
    entries: tuple[tuple[str, ...], ...]
    backbone: tuple[str, ...]
    drop: tuple[str, ...]
    rename: Callable[[str], str] = keymaps.same
    mean: tuple[float, float, float] | None = None   # the input normalisation the models expect
    std: tuple[float, float, float] | None = None    # (None: ImageNet's)
    vit_heads: tuple[tuple[int, int], ...] = ()       # (embedding width, attention heads) where not timm's

    def conversion(self, src: str) -> str:
        """What to run on a file of this format that a weights-only load cannot read."""
        path = "".join(f"[{p!r}]" for p in self.entries[0])
        return EXTRACT.format(src=src, path=path)


def _both(*prefixes: str) -> tuple[str, ...]:
    """Each prefix with and without DistributedDataParallel's ``module.``."""
    return tuple(p for q in prefixes for p in (f"module.{q}", q))


_CLASSIFIERS = ("fc.", "head.", "head_dist.", "classifier.", "head.fc.")

FORMATS: dict[str, ImportFormat] = {f.name: f for f in (
    ImportFormat("torchvision", "pytorch/vision torchvision/models/resnet.py (state_dict of the model)",
                 ((), ("state_dict",), ("model",)), ("",), ("fc.",)),
    ImportFormat("timm", "huggingface/pytorch-image-models timm/models/*.py (state_dict; .safetensors on the Hub)",
                 ((), ("state_dict",), ("model",), ("state_dict_ema",)), ("",), _CLASSIFIERS),
    ImportFormat("moco", "facebookresearch/moco main_moco.py save_checkpoint, moco/builder.py (v1 / v2: encoder_q, "
                 "encoder_k, queue)", (("state_dict",),), _both("encoder_q."),
                 _both("encoder_q.fc.", "encoder_k.", "queue", "queue_ptr")),
    ImportFormat("mocov3", "facebookresearch/moco-v3 main_moco.py, moco/builder.py (base_encoder, momentum_encoder, "
                 "predictor), vits.py (ViT-S with 12 heads)", (("state_dict",),), _both("base_encoder."),
                 _both("base_encoder.fc.", "base_encoder.head.", "momentum_encoder.", "predictor."),
                 vit_heads=((384, 12),)),
    ImportFormat("swav", "facebookresearch/swav main_swav.py, src/resnet50.py (projection_head, prototypes)",
                 ((), ("state_dict",)), ("module.", ""), _both("projection_head.", "prototypes.")),
    ImportFormat("deepcluster-v2", "facebookresearch/swav main_deepclusterv2.py, src/resnet50.py",
                 ((), ("state_dict",)), ("module.", ""), _both("projection_head.", "prototypes.")),
    ImportFormat("sela-v2", "facebookresearch/swav (SeLa-v2 shares SwAV's model, src/resnet50.py)",
                 ((), ("state_dict",)), ("module.", ""), _both("projection_head.", "prototypes.")),
    ImportFormat("dino", "facebookresearch/dino main_dino.py (teacher / student: backbone, head), "
                 "vision_transformer.py; released *_pretrain.pth: the backbone alone",
                 (("teacher",), ()), ("backbone.", "module.backbone.", ""), _both("head.", "backbone.head.")),
    ImportFormat("pycontrast", "HobbitLong/PyContrast learning/contrast_trainer.py save (model: DDP encoder + heads; "
                 "model_ema: the same without module.)", (("model",), ("model_ema",)), ("module.encoder.", "encoder."),
                 _both("head.", "head_jig.")),
    ImportFormat("simclr", "tonylins/simclr-converter convert.py (state_dict: torchvision names + the supervised fc), "
                 "sthalles/SimCLR models/resnet_simclr.py (backbone.*, backbone.fc MLP)", (("state_dict",), ()),
                 ("backbone.", ""), ("fc.", "backbone.fc."), mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0)),
    ImportFormat("simclr-v2", "Separius/SimCLRv2-Pytorch convert.py (resnet: its own module tree, head: the "
                 "contrastive head); selective-kernel (sk1) models are not torchvision ResNets",
                 (("resnet",),), ("",), ("fc.",), keymaps.simclr_v2, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0)),
    ImportFormat("byol", "lucidrains/byol-pytorch byol_pytorch.py (the README's torch.save(resnet.state_dict()); the "
                 "learner: net, online_encoder (the same net + projector), online_predictor, target_encoder)",
                 ((), ("state_dict",)), ("net.", ""),
                 ("online_encoder.", "online_predictor.", "target_encoder.", "net.fc.", "fc.")),
    ImportFormat("barlowtwins", "facebookresearch/barlowtwins main.py (model: backbone, projector, bn); released "
                 "resnet50.pth: the backbone alone", (("model",), ()), ("module.backbone.", "backbone.", ""),
                 _both("projector.", "bn.", "backbone.fc.")),
    ImportFormat("solo-learn", "vturrisi/solo-learn solo/methods/base.py (Lightning state_dict: backbone, projector, "
                 "momentum_backbone, ...)", (("state_dict",),), ("backbone.",),
                 ("projector.", "predictor.", "classifier.", "momentum_backbone.", "momentum_projector.",
                  "momentum_classifier.", "queue", "prototypes.", "backbone.fc.")),
    ImportFormat("lightly", "lightly-ai/lightly examples (backbone = Sequential of a torchvision ResNet's children, "
                 "lightly.models.modules heads)", ((), ("state_dict",), ("model",)), ("backbone.",),
                 ("projection_head.", "prediction_head.", "backbone_momentum.", "projection_head_momentum.",
                  "prototypes.", "teacher_backbone.", "teacher_head.", "student_head."), keymaps.lightly_resnet),
    ImportFormat("openmmlab", "open-mmlab/mmselfsup and mmpretrain, mmengine Runner.save_checkpoint (state_dict: "
                 "backbone, neck, head, momentum copies encoder_k / target_net / momentum_encoder, queue; 0.x: "
                 "encoder_q duplicates backbone + neck)", (("state_dict",),), ("backbone.",),
                 ("neck.", "head.", "target_net.", "momentum_encoder.", "encoder_k.", "encoder_q.", "queue",
                  "queue_ptr", "queue2", "queue2_ptr", "data_preprocessor.", "target_generator."), keymaps.openmmlab),
    ImportFormat("vissl", "facebookresearch/vissl vissl/hooks/log_hooks.py, vissl/models/base_ssl_model.py "
                 "(classy_state_dict.base_model.model: trunk, heads; model-zoo files: model_state_dict)",
                 (("classy_state_dict", "base_model", "model"), ("model_state_dict",)),
                 ("trunk._feature_blocks.", "trunk.base_model._feature_blocks.", "_feature_blocks.", "trunk."),
                 ("heads.",), keymaps.vissl_trunk),
)}

# Other names researchers use for the same layouts.
ALIASES: dict[str, str] = {
    "mocov1": "moco", "mocov2": "moco", "pirl": "pycontrast", "insdis": "pycontrast", "infomin": "pycontrast",
    "mmselfsup": "openmmlab", "mmpretrain": "openmmlab", "deepclusterv2": "deepcluster-v2", "selav2": "sela-v2",
    "barlow-twins": "barlowtwins", "sololearn": "solo-learn", "simclrv2": "simclr-v2", "simclr-v1": "simclr",
}


def get_format(name: str) -> ImportFormat:
    """The format called ``name`` (or one of its aliases); ValueError listing the valid names."""
    key = ALIASES.get(name.lower(), name.lower())
    if key not in FORMATS:
        raise ValueError(f"unknown checkpoint format {name!r}; valid: auto, {', '.join(FORMATS)} "
                         f"(aliases: {', '.join(ALIASES)})")
    return FORMATS[key]
