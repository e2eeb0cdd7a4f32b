"""The reproduced papers, one module each: its claims (``SPEC``, a ``reports.compare.PaperSpec``)
and its reproduction plan (``plan(lay, scale)``, the ``reports.reproduce.Step``s at ``cpu`` or
``full`` scale).

    spec = get_paper("saliency-masking")          # compare(frame, spec), report(frame, spec)
    steps_of = get_plan("saliency-masking")       # reproduce.run("saliency-masking", steps_of, "cpu")

``PAPERS`` (name -> claims) and ``PLANS`` (name -> plan) hold the same names, in the order of
``MODULES``: the ``--paper`` names of ``python -m reports compare`` / ``reproduce`` and of
``make reproduce PAPER=...``. A new paper is a module here with ``SPEC`` and ``plan``, added to
``MODULES``.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from ..compare import PaperSpec
from ..reproduce import SCALES, Layout, Plan, Step
from . import invariance, saliency_aug, saliency_masking, slotcon, utility

MODULES: tuple[ModuleType, ...] = (saliency_aug, saliency_masking, invariance, slotcon, utility)
# pretraining arguments that never make two runs different arms (reports.data.IGNORED_SETTINGS reads them so)
_NOT_SETTINGS = ("train.seed", "train.out")


def planned_settings(steps_of: Plan) -> frozenset[str]:
    """The settings a plan varies on purpose: every ``--section.key=value`` its pretraining steps
    pass, at either scale, transfers included (``train.epochs``, ``aug_cfg.fill``, ``backbone.kwargs``,
    ...). Runs of one
    arm that differ in any other setting are not pooled by ``reports.compare``."""
    keys = set()
    for scale in SCALES:
        for step in steps_of(Layout(Path("plan"), transfer=True), scale):
            if step.module == "pretrain":
                keys |= {a[2:].partition("=")[0] for a in step.args if a.startswith("--") and "." in a.partition("=")[0]}
    return frozenset(keys - set(_NOT_SETTINGS))


PAPERS: dict[str, PaperSpec] = {m.SPEC.name: dataclasses.replace(m.SPEC, planned=planned_settings(m.plan))
                                for m in MODULES}
PLANS: dict[str, Plan] = {m.SPEC.name: m.plan for m in MODULES}
# what a smoke plan keeps of a full plan's steps besides its first pretraining seed (``reports.smoke``)
SMOKE_KEEPS: dict[str, Callable[[Step], bool]] = {m.SPEC.name: getattr(m, "smoke_keeps", lambda step: True)
                                                   for m in MODULES}
# the papers' datasets each full plan reads (``imagedata.layouts`` names), checked before it starts
DATASETS: dict[str, tuple[str, ...]] = {m.SPEC.name: m.FULL_DATASETS for m in MODULES}


def _check(name: str) -> None:
    if name not in PAPERS:
        raise ValueError(f"unknown paper {name!r}; valid: {', '.join(PAPERS)}")


def get_paper(name: str) -> PaperSpec:
    """The claims of the paper ``name``; an unknown name raises ValueError listing the valid ones."""
    _check(name)
    return PAPERS[name]


def get_plan(name: str) -> Plan:
    """The reproduction plan of the paper ``name``; an unknown name raises ValueError listing the valid ones."""
    _check(name)
    return PLANS[name]


__all__ = ["DATASETS", "MODULES", "SMOKE_KEEPS", "PAPERS", "PLANS", "get_paper", "get_plan", "planned_settings"]
