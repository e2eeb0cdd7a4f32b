"""A run's fully resolved configuration: every setting of its method and augmentation policy.

``Config.method_cfg`` / ``aug_cfg`` hold only the settings given on the command line (they are what
the run id hashes). What ``ckpt.pt`` and the results store record is resolved: each section holds
every field of the method's / policy's config dataclass, the policy's registry preset and the
defaults included, so that the reports tell runs apart without knowing any default.

A checkpoint written before configs were resolved is resolved with today's defaults when the
suite records it (a setting whose default has changed since then reads today's value).
"""
from __future__ import annotations

import dataclasses
import logging
from typing import Any

from .augment import AUGMENTATIONS
from .config import plain
from .methods import METHODS

log = logging.getLogger("pretrain.resolve")


def method_settings(method: str, given: dict[str, Any]) -> dict[str, Any]:
    """Every field of ``method``'s config with ``given`` applied; ValueError for unknown names / keys."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}")
    return plain(dataclasses.asdict(METHODS[method].Config(**given)))


def aug_settings(aug: str, given: dict[str, Any]) -> dict[str, Any]:
    """Every field of policy ``aug``'s config: its registry preset, then ``given``."""
    if aug not in AUGMENTATIONS:
        raise ValueError(f"unknown augmentation policy {aug!r}")
    make = AUGMENTATIONS[aug]
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in {**make.preset, **given}.items()}
    return plain(dataclasses.asdict(make.config_type(**values)))


def resolve_config(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` (a ``Config.to_dict()``) with ``method_cfg`` and ``aug_cfg`` resolved. A section
    that cannot be resolved (a method or key this version does not know) is kept as given."""
    out = dict(config)
    for key, resolve, name in (("method_cfg", method_settings, config.get("method")),
                               ("aug_cfg", aug_settings, config.get("aug"))):
        if name is None:
            continue
        try:
            out[key] = resolve(str(name), dict(config.get(key) or {}))
        except (ValueError, TypeError) as e:
            log.warning("config section %s of %s kept as given: %s", key, name, e)
    return out
