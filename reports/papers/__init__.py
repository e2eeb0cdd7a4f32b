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

from types import ModuleType

from ..compare import PaperSpec
from ..reproduce import Plan
from . import invariance, saliency_aug, saliency_masking, slotcon, utility

MODULES: tuple[ModuleType, ...] = (saliency_aug, saliency_masking, invariance, slotcon, utility)
PAPERS: dict[str, PaperSpec] = {m.SPEC.name: m.SPEC for m in MODULES}
PLANS: dict[str, Plan] = {m.SPEC.name: m.plan for m in MODULES}


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


__all__ = ["MODULES", "PAPERS", "PLANS", "get_paper", "get_plan"]
