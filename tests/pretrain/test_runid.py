"""pretrain.runid: the run id formats and parses back for every registered method x augmentation x
backbone, hyphenated names included; what is not a run id does not parse; no torch."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pretrain import config as C
from pretrain.augment import AUGMENTATIONS
from pretrain.backbones import BACKBONES
from pretrain.methods import METHODS
from pretrain.runid import BACKBONE_NAME, PATTERN, RunId

ROOT = Path(__file__).resolve().parents[2]
DATASETS = ("shapes64", "shapes64-clutter", "tcvl-1011", "instances_train2017", "my-long-data-set")


def test_every_backbone_name_is_one_a_parse_cuts_at() -> None:
    assert all(BACKBONE_NAME.match(name) for name in BACKBONES)


@pytest.mark.parametrize("method", list(METHODS))
def test_round_trip_over_the_registries(method: str) -> None:
    for aug in AUGMENTATIONS:
        for backbone in BACKBONES:
            for seed, dataset in enumerate(DATASETS):
                run_id = RunId(method, aug, backbone, dataset, seed * 7, "0123abcd")
                text = run_id.format()
                assert text == f"{method}-{aug}-{backbone}-{dataset}-s{seed * 7}-0123abcd"
                assert RunId.parse(text) == run_id == RunId.try_parse(text)


def test_a_hyphenated_augmentation_is_not_cut_short() -> None:
    parsed = RunId.parse("simclr-sal-mask-hn-resnet18-shapes64-clutter-s2-0a1b2c3d")
    assert (parsed.method, parsed.aug, parsed.backbone, parsed.dataset, parsed.seed, parsed.config_hash) == \
        ("simclr", "sal-mask-hn", "resnet18", "shapes64-clutter", 2, "0a1b2c3d")


def test_an_unknown_backbone_parses_when_no_part_holds_a_hyphen() -> None:
    assert RunId.parse("byol-default-mynet-shapes64-s0-ffffffff").backbone == "mynet"
    assert RunId.try_parse("byol-sal-mask-mynet-shapes64-s0-ffffffff") is None      # ambiguous: where is the cut?


@pytest.mark.parametrize("text", ["scratch-resnet18", "set-abcd1234", "set-0123456789abcdef", "notarun", "",
                                  "simclr-default-s0-0a1b2c3d",                      # no backbone, no dataset
                                  "simclr-default-resnet18-shapes64-s0-0A1B2C3D",    # the hash is lower-case hex
                                  "simclr-default-resnet18-shapes64-s0-0a1b2c3",     # 7 digits
                                  "simclr-default-resnet18-shapes64-0a1b2c3d"])      # no seed
def test_what_is_not_a_run_id(text: str) -> None:
    assert RunId.try_parse(text) is None
    with pytest.raises(ValueError) as err:
        RunId.parse(text)
    assert repr(text) in str(err.value) and PATTERN in str(err.value)


def test_pretrain_config_names_runs_with_it() -> None:
    cfg = C.build_config("mocov2", "sal-mask-hn", "test", {"backbone.name": "tiny", "train.seed": 3})
    text = C.run_id(cfg, "shapes64-clutter")
    assert RunId.parse(text) == RunId("mocov2", "sal-mask-hn", "tiny", "shapes64-clutter", 3, C.config_hash(cfg))
    assert text == RunId.parse(text).format() == str(RunId.parse(text))


def test_importing_it_loads_no_torch() -> None:
    code = ("import sys; import pretrain.runid; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision', 'numpy')]; "
            "sys.exit(f'loaded {bad[:5]}' if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
