"""The augmentation registry: policy name -> factory (a plain dict, explicit entries).

``build_policy(name, **overrides)`` builds the policy registered as ``name`` with its config
dataclass's fields overridden; an unknown name lists the valid names, an unknown key the valid keys.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from .policy import Policy
from .saliency import MaskPolicy, SgdPolicy, sgd_only_pipeline
from .standard import ByolPolicy, DefaultPolicy, MulticropPolicy, NonePolicy, PipelinePolicy

PolicyFactory = Callable[..., Policy]


def _factory(cls: type[PipelinePolicy], doc: str, **preset: Any) -> PolicyFactory:
    """A factory ``make(**overrides) -> cls(Config(**preset, **overrides))`` with key checking."""

    def make(**overrides: Any) -> Policy:
        valid = [f.name for f in dataclasses.fields(cls.Config)]
        for key in overrides:
            if key not in valid:
                raise ValueError(f"unknown setting {key!r} for policy {cls.__name__}; valid keys: {', '.join(valid)}")
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in {**preset, **overrides}.items()}
        return cls(cls.Config(**values))

    make.__doc__ = doc
    make.config_type = cls.Config  # type: ignore[attr-defined]
    make.preset = dict(preset)  # type: ignore[attr-defined]
    return make


SALIENCY_POLICIES = ("sgd", "sgd-only", "random-mask", "sal-mask", "sal-mask-hn")
AUGMENTATIONS: dict[str, PolicyFactory] = {
    "default": _factory(DefaultPolicy, "SimCLR / MoCo v2 pipeline, crop scale (0.2, 1)."),
    "mild": _factory(DefaultPolicy, "default with mild cropping, crop scale (0.5, 1).", crop_scale=(0.5, 1.0)),
    "aggressive": _factory(DefaultPolicy, "default with aggressive cropping, crop scale (0.08, 1).",
                           crop_scale=(0.08, 1.0)),
    "byol": _factory(ByolPolicy, "BYOL's asymmetric pair (Grill et al., 2020, table 6)."),
    "multicrop": _factory(MulticropPolicy, "SwAV multi-crop: 2 global + 4 small views."),
    "none": _factory(NonePolicy, "Identical un-augmented views (baselines, debugging)."),
    "sgd": _factory(SgdPolicy, "default + salient-object segmentation (RC saliency, background removed, p 0.5)."),
    "sgd-only": _factory(SgdPolicy, "salient-object segmentation as the only augmentation (p 0.5 per view).",
                         **sgd_only_pipeline()),
    "random-mask": _factory(MaskPolicy, "default + random grid masking of the query, high-pass fill."),
    "sal-mask": _factory(MaskPolicy, "default + saliency-guided masking of the query (SCDA), high-pass fill.",
                         saliency="scda"),
    "sal-mask-hn": _factory(MaskPolicy, "sal-mask + one hard negative (key view, 40-70% of foreground masked).",
                            saliency="scda", hard_negatives=1),
}


def build_policy(name: str, **overrides: Any) -> Policy:
    """The policy registered as ``name`` with its config fields overridden by ``overrides``.

    Raises ValueError listing the valid names for an unknown name, and naming the key and listing
    the valid keys for an unknown override.
    """
    if name not in AUGMENTATIONS:
        raise ValueError(f"unknown augmentation policy {name!r}; valid names: {', '.join(sorted(AUGMENTATIONS))}")
    return AUGMENTATIONS[name](**overrides)
