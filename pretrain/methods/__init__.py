"""The method registry: registry name -> Method class (explicit imports, a plain dict)."""
from __future__ import annotations

from .base import Method, MethodContext
from .byol import BYOL
from .cmc import CMC
from .dino import DINO
from .mocov2 import MoCoV2
from .mocov3 import MoCoV3
from .pirl import PIRL
from .random_init import RandomInit
from .rotation import Rotation
from .simclr import SimCLR
from .simsiam import SimSiam
from .slotcon import SlotCon
from .supervised import Supervised
from .swav import SwAV
from .temporal import Temporal
from .vae import VAE

METHODS: dict[str, type[Method]] = {
    "simclr": SimCLR,
    "mocov2": MoCoV2,
    "mocov3": MoCoV3,
    "dino": DINO,
    "byol": BYOL,
    "simsiam": SimSiam,
    "swav": SwAV,
    "pirl": PIRL,
    "slotcon": SlotCon,
    "rotation": Rotation,
    "cmc": CMC,
    "vae": VAE,
    "temporal": Temporal,
    "supervised": Supervised,
    "random": RandomInit,
}


def get_method(name: str) -> type[Method]:
    """The method class registered as ``name``; an unknown name lists the valid ones."""
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; valid methods: {', '.join(METHODS)}")
    return METHODS[name]


__all__ = ["METHODS", "Method", "MethodContext", "get_method"]
