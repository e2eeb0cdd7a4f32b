"""Run ids: ``{method}-{aug}-{backbone}-{dataset}-s{seed}-{hash8}``, formatted and parsed in one place.

    RunId("mocov2", "sal-mask-hn", "resnet18", "shapes64-clutter", 2, "0123abcd").format()
    # 'mocov2-sal-mask-hn-resnet18-shapes64-clutter-s2-0123abcd'
    RunId.parse("mocov2-sal-mask-hn-resnet18-shapes64-clutter-s2-0123abcd").aug      # 'sal-mask-hn'
    RunId.try_parse("scratch-resnet18")                                              # None

Augmentation names (``sal-mask-hn``) and dataset names (``shapes64-clutter``) may hold hyphens,
so a parse cuts the id at the backbone: the first token after the augmentation that looks like a
backbone name (``BACKBONE_NAME``; every name of ``pretrain.backbones.BACKBONES`` matches it, which
a test checks). An id whose backbone does not look like one still parses when it has exactly the
four parts (no hyphen in the augmentation nor the dataset). Ids that do not follow the pattern
(the suite's finetuning baseline ``scratch-<arch>``, the agreement rows ``set-<hash>``) do not
parse. Standard library only: the torch-free reports read run ids through this module.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

PATTERN = "{method}-{aug}-{backbone}-{dataset}-s{seed}-{hash8}"
# the tail every run id ends with: -s<seed>-<first 8 hex digits of the config hash>
_TAIL = re.compile(r"^(?P<head>.+)-s(?P<seed>\d+)-(?P<hash>[0-9a-f]{8})$")
# the backbone names a parse cuts at: this project's (resnet18, resnet50, resnet9, tiny, timm_<model>) and the
# families foreign checkpoints bring (wide_resnet50_2, resnext50_32x4d, vit_small, convnext_tiny)
BACKBONE_NAME = re.compile(r"^(resnet\d*|wide_resnet\w*|resnext\w*|vit\w*|convnext\w*|tiny|timm\w*)$")


@dataclass(frozen=True)
class RunId:
    """The parts of a pretraining run's id; ``config_hash`` is the config hash's first 8 hex digits."""

    method: str
    aug: str
    backbone: str
    dataset: str
    seed: int
    config_hash: str

    def format(self) -> str:
        """The id as text: ``{method}-{aug}-{backbone}-{dataset}-s{seed}-{hash8}``."""
        return f"{self.method}-{self.aug}-{self.backbone}-{self.dataset}-s{self.seed}-{self.config_hash}"

    def __str__(self) -> str:
        return self.format()

    @classmethod
    def try_parse(cls, text: str) -> RunId | None:
        """The parts of ``text``, or None when it is not a run id (module docstring)."""
        match = _TAIL.match(text)
        if match is None:
            return None
        tokens = match["head"].split("-")
        cut = next((i for i in range(2, len(tokens) - 1) if BACKBONE_NAME.match(tokens[i])), None)
        if cut is None and len(tokens) == 4:            # an unknown backbone name, but no ambiguity
            cut = 2
        if cut is None:
            return None
        return cls(method=tokens[0], aug="-".join(tokens[1:cut]), backbone=tokens[cut],
                   dataset="-".join(tokens[cut + 1:]), seed=int(match["seed"]), config_hash=match["hash"])

    @classmethod
    def parse(cls, text: str) -> RunId:
        """The parts of ``text``; ValueError naming it and the expected pattern when it is not a run id."""
        run_id = cls.try_parse(text)
        if run_id is None:
            raise ValueError(f"{text!r} is not a run id: expected {PATTERN}, cut at a backbone name "
                             f"matching {BACKBONE_NAME.pattern}")
        return run_id


__all__ = ["BACKBONE_NAME", "PATTERN", "RunId"]
