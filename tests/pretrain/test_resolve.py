"""pretrain.resolve: the fully resolved run config that checkpoints and the results store record."""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest

from pretrain import config as C
from pretrain.augment import AUGMENTATIONS
from pretrain.checkpoint import read_meta
from pretrain.methods import METHODS
from pretrain.resolve import aug_settings, method_settings, resolve_config

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reports"))
import stored_configs  # noqa: E402


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_resolves_to_every_field(method: str) -> None:
    fields = {f.name for f in dataclasses.fields(METHODS[method].Config)}
    assert set(method_settings(method, {})) == fields


@pytest.mark.parametrize("aug", sorted(AUGMENTATIONS))
def test_every_policy_resolves_to_every_field_with_its_preset(aug: str) -> None:
    make = AUGMENTATIONS[aug]
    got = aug_settings(aug, {"out_size": 24})
    assert set(got) == {f.name for f in dataclasses.fields(make.config_type)}
    assert got["out_size"] == 24 and all(got[k] == C.plain(v) for k, v in make.preset.items())


@pytest.mark.parametrize("aug", ["default", "mild", "byol", "multicrop", "none", "random-mask", "sgd"])
def test_resolution_matches_the_built_policy(aug: str) -> None:
    """What the run records is the config of the policy it trained with."""
    policy = AUGMENTATIONS[aug](out_size=24)
    assert aug_settings(aug, {"out_size": 24}) == C.plain(dataclasses.asdict(policy.config))


def test_resolution_is_idempotent_and_keeps_what_it_cannot_resolve() -> None:
    cfg = C.build_config("mocov2", "sal-mask-hn", "cpu", {"aug_cfg.saliency": "rc"}).to_dict()
    once = resolve_config(cfg)
    assert once["aug_cfg"]["hard_negatives"] == 1 and once["aug_cfg"]["saliency"] == "rc"
    assert once["method_cfg"]["queue_size"] == 1024 and resolve_config(once) == once
    odd = {**cfg, "method": "gone", "aug_cfg": {"no_such_key": 1}}
    assert resolve_config(odd)["method_cfg"] == cfg["method_cfg"] and resolve_config(odd)["aug_cfg"] == {"no_such_key": 1}


def test_checkpoints_record_the_resolved_config(tiny_ckpt: Path) -> None:
    config = read_meta(tiny_ckpt).config
    assert config == resolve_config(config) and set(config["aug_cfg"]) > {"crop_scale", "flip_p"}


@pytest.mark.parametrize("aug", sorted(stored_configs.AUG_CFG))
def test_the_report_fixtures_hold_the_real_resolved_policy_settings(aug: str) -> None:
    assert stored_configs.AUG_CFG[aug] == aug_settings(aug, {})


@pytest.mark.parametrize("method", sorted(stored_configs.METHOD_CFG))
def test_the_report_fixtures_hold_the_real_resolved_method_settings(method: str) -> None:
    assert stored_configs.METHOD_CFG[method] == method_settings(method, {})


@pytest.mark.parametrize("method", sorted(stored_configs.METHOD_CFG))
@pytest.mark.parametrize("aug", sorted(stored_configs.AUG_CFG))
@pytest.mark.parametrize("branch", ["query", "key", "both"])
def test_the_report_fixtures_resolve_method_and_policy_together(method: str, aug: str, branch: str) -> None:
    given = {"branch": branch} if "branch" in stored_configs.AUG_CFG[aug] else {}
    cfg = resolve_config({"method": method, "aug": aug, "method_cfg": {}, "aug_cfg": given})
    assert stored_configs.resolved(method, aug, aug_cfg=given) == (cfg["method_cfg"], cfg["aug_cfg"])


# --------------------------------------------------------------------------------------------
# what a method runs with the policy's views (Method.effective_settings)


@pytest.mark.parametrize("method", sorted(METHODS))
@pytest.mark.parametrize("masked", [(), (0,), (1,), (0, 1)])
def test_only_moco_changes_its_settings_for_masked_views(method: str, masked: tuple[int, ...]) -> None:
    settings = method_settings(method, {})
    got = METHODS[method].effective_settings(settings, masked)
    if method == "mocov2" and len(masked) == 1:
        assert got == {**settings, "symmetric": False}
    else:
        assert got == settings


@pytest.mark.parametrize("aug, branch, symmetric", [
    ("random-mask", "query", False), ("sal-mask", "key", False), ("sal-mask-hn", "query", False),
    ("random-mask", "both", True), ("default", None, True), ("sgd", None, True),
])
def test_moco_records_the_loss_it_runs(aug: str, branch: str | None, symmetric: bool) -> None:
    """MoCo v2 on views masked on one side runs the asymmetric loss: the resolved config says so."""
    given = {"aug_cfg.branch": branch} if branch else {}
    cfg = resolve_config(C.build_config("mocov2", aug, "cpu", given).to_dict())
    assert cfg["method_cfg"]["symmetric"] is symmetric and resolve_config(cfg) == cfg
    simclr = resolve_config(C.build_config("simclr", aug, "cpu", given).to_dict())
    assert simclr["method_cfg"] == method_settings("simclr", {})


def test_a_masked_moco_checkpoint_records_symmetric_false(shapes_dir: Path, tmp_path: Path) -> None:
    cfg = C.build_config("mocov2", "random-mask", "test", {"data.path": str(shapes_dir), "train.out": str(tmp_path),
                                                            "train.tensorboard": False, "train.steps": 1,
                                                            "aug_cfg.grid": 4})
    from pretrain import trainer as T
    config = read_meta(T.train(cfg, progress=False) / "ckpt.pt").config
    assert config["method_cfg"]["symmetric"] is False and config["aug_cfg"]["branch"] == "query"
    assert config["aug_cfg"]["noise_std"] == 0.18 and config["aug_cfg"]["hard_noise_std"] == 0.14


@pytest.mark.parametrize("aug, field, old, today", [("sgd-only", "distinct_pairs", False, True),
                                                    ("sal-mask", "noise_std", 1.0, 0.18),
                                                    ("sal-mask-hn", "hard_noise_std", 1.0, 0.14)])
def test_a_section_resolved_before_a_setting_existed_reads_its_old_behaviour(aug: str, field: str, old, today) -> None:
    """A checkpoint's resolved section lacking only settings added since reads their LEGACY value
    (what the code did then); given settings alone still resolve with today's defaults."""
    from pretrain.resolve import LEGACY, aug_settings

    full = aug_settings(aug, {})
    assert full[field] == today
    before = {k: v for k, v in full.items() if k not in LEGACY["aug_cfg"]}
    cfg = resolve_config({"method": "simclr", "aug": aug, "method_cfg": {}, "aug_cfg": before})
    assert cfg["aug_cfg"][field] == old
    given = resolve_config({"method": "simclr", "aug": aug, "method_cfg": {}, "aug_cfg": {"grid": 4}
                            if "mask" in aug else {"algo": "hc"}})
    assert given["aug_cfg"][field] == today
