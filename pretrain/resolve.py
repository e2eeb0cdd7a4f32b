"""A run's fully resolved configuration: every setting of its method and augmentation policy.

``Config.method_cfg`` / ``aug_cfg`` hold only the settings given on the command line (they are what
the run id hashes). What ``ckpt.pt`` and the results store record is resolved: each section holds
every field of the method's / policy's config dataclass, the policy's registry preset and the
defaults included, so that the reports tell runs apart without knowing any default. The method
section is what the method runs with the policy's views (``Method.effective_settings``): MoCo v2
on views masked on one side only (the masking paper's ``branch=query`` / ``key``) runs, and
records, ``symmetric: false``.

A checkpoint written before configs were resolved is resolved with today's defaults when the
suite records it (a setting whose default has changed since then reads today's value; likewise a
MoCo v2 checkpoint trained with one-sided masking before MoCo v2 kept the masked view on its
branch reads ``symmetric: false``, although it ran symmetric: its provenance ``git_sha`` tells).
A resolved section written before a setting existed lacks only that setting: it reads the value
that reproduces what the code did then (``LEGACY``), never today's default, so that an old run
and a new one that differ in it are not pooled as one.
"""
from __future__ import annotations

import dataclasses
import logging
from typing import Any

from .augment import AUGMENTATIONS
from .checkpoint import CheckpointMeta
from .config import plain
from .methods import METHODS

log = logging.getLogger("pretrain.resolve")


# settings added after checkpoints recorded resolved sections, with the value that reproduces
# the behaviour before them: the sgd policy drew its two views independently (sgd-only pairs were
# often two copies), the masking fills' noise was N(0, 1) in normalised space
LEGACY: dict[str, dict[str, Any]] = {
    "aug_cfg": {"distinct_pairs": False, "noise_std": 1.0, "hard_noise_std": 1.0},
    "method_cfg": {},
}


def with_legacy(section: str, fields: set[str], stored: dict[str, Any]) -> dict[str, Any]:
    """``stored`` plus the ``LEGACY`` value of each of ``fields`` it lacks, when those are all it
    lacks (a section resolved before they existed); else ``stored`` as it is (given settings only)."""
    missing = fields - set(stored)
    legacy = LEGACY.get(section, {})
    if stored and missing and missing <= set(legacy):
        return {**{k: legacy[k] for k in missing}, **stored}
    return stored


def _fields(section: str, name: str) -> set[str]:
    """The field names of a method's / policy's config dataclass (empty for an unknown name)."""
    kind = METHODS.get(name).Config if section == "method_cfg" and name in METHODS else \
        AUGMENTATIONS[name].config_type if section == "aug_cfg" and name in AUGMENTATIONS else None
    return {f.name for f in dataclasses.fields(kind)} if kind else set()


def method_settings(method: str, given: dict[str, Any]) -> dict[str, Any]:
    """Every field of ``method``'s config with ``given`` applied; ValueError for unknown names / keys."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}")
    return plain(dataclasses.asdict(METHODS[method].Config(**given)))


def _aug_config(aug: str, given: dict[str, Any]) -> Any:
    """Policy ``aug``'s config dataclass: its registry preset, then ``given``."""
    if aug not in AUGMENTATIONS:
        raise ValueError(f"unknown augmentation policy {aug!r}")
    make = AUGMENTATIONS[aug]
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in {**make.preset, **given}.items()}
    return make.config_type(**values)


def aug_settings(aug: str, given: dict[str, Any]) -> dict[str, Any]:
    """Every field of policy ``aug``'s config: its registry preset, then ``given``."""
    return plain(dataclasses.asdict(_aug_config(aug, given)))


def masked_views(aug: str, given: dict[str, Any]) -> tuple[int, ...]:
    """The views policy ``aug`` masks with these settings (``Views.masked``; its config's
    ``masked_views``, none for a policy that does not mask)."""
    return tuple(getattr(_aug_config(aug, given), "masked_views", ()))


def resolve_config(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` (a ``Config.to_dict()``) with ``method_cfg`` and ``aug_cfg`` resolved. A section
    that cannot be resolved (a method or key this version does not know) is kept as given."""
    out, resolved = dict(config), set()
    for key, resolve, name in (("method_cfg", method_settings, config.get("method")),
                               ("aug_cfg", aug_settings, config.get("aug"))):
        if name is None:
            continue
        try:
            stored = with_legacy(key, _fields(key, str(name)), dict(config.get(key) or {}))
            out[key] = resolve(str(name), stored)
            resolved.add(key)
        except (ValueError, TypeError) as e:
            log.warning("config section %s of %s kept as given: %s", key, name, e)
    if resolved == {"method_cfg", "aug_cfg"}:
        masked = masked_views(str(config["aug"]), out["aug_cfg"])
        out["method_cfg"] = METHODS[str(config["method"])].effective_settings(out["method_cfg"], masked)
    return out


def recorded_config(meta: CheckpointMeta) -> dict[str, Any]:
    """What the results store records for a checkpoint (``ResultsStore.put_run``): its config,
    resolved, plus ``input_transform`` ({name, params}) when it has one, for the reports' runs table."""
    out = resolve_config(meta.config)
    if meta.input_transform is not None:
        out["input_transform"] = dataclasses.asdict(meta.input_transform)
    return out
