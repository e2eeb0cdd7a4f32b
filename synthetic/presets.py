"""Dataset presets: which factors are sampled, which are fixed, and how images are grouped.

A preset is a frozen dataclass; ``PRESETS`` is the registry used by ``synthetic.generate``.

- ``shapes64``: object-centric, one object per 64-px image, 10 classes x 5 instances, every
  factor random (texture, colour, viewpoint, lighting, scale/position, occluders in 20% of
  images) on a plain background of random colour. The default for pretraining and probes.
- ``shapes64-clutter``: the same with noise / texture backgrounds too: the background becomes
  an instance cue that contrastive methods latch onto (the setting of the saliency studies).
- ``<preset>-heldout`` (``shapes64-heldout``, ``shapes64-clutter-heldout``, ``tcvl-XXXX-heldout``):
  the preset with held-out instances (``heldout``): 20 meshes per class, split by mesh
  (``split_by="instance"``, splits 0.7 / 0.1 / 0.2), so the test split shows objects never seen
  in training. The cpu reproduction plans render these.
- ``tcvl-XXXX`` (``tcvl-0000`` ... ``tcvl-1111``, the 12 variants of Newell & Deng, "How Useful
  is Self-Supervised Pretraining for Visual Tasks?", CVPR 2020): the four flags switch texture,
  colour, viewpoint and lighting between fixed and random; background, scale and position are
  fixed, so two images of one class and instance in ``tcvl-0000`` are identical.
- ``scenes``: scene-centric 128-px images with 2-6 objects at different depths (so they
  occlude each other), everything random; for detection, segmentation and SlotCon.
- ``video``: clips of 8 frames of 1-2 objects under continuous viewpoint and lighting change
  with a moving occluder, per-frame boxes (region tracks); for temporal contrastive learning.
- ``probe-*``: invariance probe sets (Purushwalkam & Gupta, NeurIPS 2020): each set shows one
  object and varies only one factor: ``probe-occlusion`` (occluded fraction 0 ... 0.75),
  ``probe-viewpoint`` (azimuth sweep on even sets, elevation sweep on odd sets),
  ``probe-illum-dir``, ``probe-illum-color``, ``probe-instance`` (every instance of a class at
  one viewpoint) and ``probe-instance-viewpoint`` (instances and viewpoints both vary). Every
  object is rendered in one neutral material (grey, untextured) on one plain grey background
  under one light (``neutral``, no texture, fixed lighting) across the whole probe dataset, so
  between sets only the object (class, instance) and its base pose differ. With appearance drawn
  once per set instead, a network that codes colour or texture fires alike on every image of a
  set whatever the factor does, and looks invariant to it (random init scored more
  viewpoint-invariant than supervised training that way).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from .meshes import SHAPE_NAMES

TCVL_VARIANTS: tuple[str, ...] = ("0000", "1000", "0100", "0010", "0001", "1100", "0110", "0101",
                                  "0111", "1110", "1011", "1111")
PROBES: tuple[str, ...] = ("occlusion", "viewpoint", "illum-dir", "illum-color", "instance", "instance-viewpoint")


@dataclass(frozen=True)
class Preset:
    """How a dataset is sampled. ``unit`` is what ``--n`` counts: images, clips or probe sets."""

    name: str
    size: int = 64
    classes: tuple[str, ...] = SHAPE_NAMES
    instances: int = 5
    unit: str = "image"                       # image | clip | set
    objects: tuple[int, int] = (1, 1)         # objects per image, inclusive range
    texture: bool = True                      # random procedural texture (else plain)
    colour: bool = True                       # random colour (else the class colour)
    viewpoint: bool = True                    # random azimuth / elevation / roll (else canonical)
    lighting: bool = True                     # random direction / intensity / colour (else fixed)
    backgrounds: tuple[str, ...] = ("plain", "noise", "texture")  # sampled among; "photo" with --backgrounds
    random_background_colour: bool = True
    scale: tuple[float, float] = (0.8, 1.2)
    jitter: float = 0.12                      # max offset of the object centre, fraction of the half-image
    occluder_prob: float = 0.2
    frames: int = 8                           # video: frames per clip
    set_size: int = 8                         # probe: images per set
    probe: str | None = None
    splits: tuple[float, float, float] = (0.8, 0.1, 0.1)
    split_by: str = "image"                   # image: each unit drawn; instance: whole meshes per split
    neutral: bool = False                     # every object in one grey material (overrides colour)
    fov: float = 40.0
    distance: float = 4.0
    exports: tuple[str, ...] = field(default=())

    def images_per_unit(self) -> int:
        return {"image": 1, "clip": self.frames, "set": self.set_size}[self.unit]

    def to_dict(self) -> dict:
        """The preset's fields; ``split_by`` only where it is not the default, so that the presets
        that existed before it keep their argument hashes (and their datasets stay up to date)."""
        d = dataclasses.asdict(self)
        if d["split_by"] == "image":
            del d["split_by"]
        if not d["neutral"]:                  # likewise ``neutral`` (added after them)
            del d["neutral"]
        return d


# held-out instances: 20 meshes per class, of which 14 train, 2 val and 4 test, so the test split
# shows objects never seen in training (2 / 10 of the images: n = 12 500 gives >= 2500 to test)
HELDOUT: dict = {"instances": 20, "splits": (0.7, 0.1, 0.2), "split_by": "instance"}


def heldout(p: Preset) -> Preset:
    """``p`` with held-out instances (``HELDOUT``), named ``<name>-heldout``."""
    return dataclasses.replace(p, name=f"{p.name}-heldout", **HELDOUT)


def _tcvl(flags: str) -> Preset:
    tex, col, view, light = (f == "1" for f in flags)
    return Preset(name=f"tcvl-{flags}", texture=tex, colour=col, viewpoint=view, lighting=light,
                  backgrounds=("plain",), random_background_colour=False, scale=(1.0, 1.0),
                  jitter=0.0, occluder_prob=0.0)


def _probe(kind: str) -> Preset:
    size = 5 if kind.startswith("instance") else 8
    return Preset(name=f"probe-{kind}", unit="set", probe=kind, set_size=size, occluder_prob=0.0,
                  scale=(1.0, 1.0), jitter=0.0, splits=(0.0, 0.0, 1.0), neutral=True, texture=False,
                  lighting=False, backgrounds=("plain",), random_background_colour=False)


_SHAPES64 = Preset(name="shapes64", backgrounds=("plain",))
_CLUTTER = Preset(name="shapes64-clutter")
PRESETS: dict[str, Preset] = {
    "shapes64": _SHAPES64,
    "shapes64-clutter": _CLUTTER,
    "shapes64-heldout": heldout(_SHAPES64),
    "shapes64-clutter-heldout": heldout(_CLUTTER),
    **{f"tcvl-{f}": _tcvl(f) for f in TCVL_VARIANTS},
    **{f"tcvl-{f}-heldout": heldout(_tcvl(f)) for f in TCVL_VARIANTS},
    "scenes": Preset(name="scenes", size=128, objects=(2, 6), scale=(0.45, 0.9), occluder_prob=0.1,
                     exports=("coco", "voc")),
    "video": Preset(name="video", unit="clip", objects=(1, 2), scale=(0.55, 0.85), occluder_prob=1.0,
                    exports=()),
    **{f"probe-{k}": _probe(k) for k in PROBES},
}


def get_preset(name: str) -> Preset:
    """The preset called ``name``; an unknown name raises an error listing the valid ones."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; valid presets: {', '.join(PRESETS)}")
    return PRESETS[name]
