"""Finetuning label-efficiency curves (evaluate.finetune)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from evaluate import finetune as FT
from measure.features import FeatureError

FAST = FT.FinetuneConfig(sizes=(20, 40), seeds=(0, 1), min_steps=3, max_steps=3, batch_size=16)


def brute_force_steps(n: int, epochs: float, batch: int, floor: int) -> int:
    """The fewest steps at ``batch`` images each that show ``epochs`` x ``n`` images, at least ``floor``."""
    steps = 0
    while steps * batch < epochs * n:
        steps += 1
    return max(steps, floor)


@pytest.mark.parametrize("n", [1, 10, 63, 64, 100, 320, 500, 2000, 4000, 12_345, 100_000])
def test_schedule_is_a_fixed_number_of_epochs_with_a_floor(n: int) -> None:
    """No ceiling by default: 100 000 labels get 20 epochs (31 250 steps at 64), not 400 steps
    (0.26 epoch); small sets get the 100-step floor."""
    cfg = FT.FinetuneConfig()
    assert cfg.max_steps == 0
    assert FT.schedule_steps(n, cfg) == brute_force_steps(n, cfg.epochs, cfg.batch_size, cfg.min_steps)
    assert FT.epochs_run(n, cfg) >= cfg.epochs


def test_schedule_steps_per_default_size() -> None:
    cfg = FT.FinetuneConfig()
    assert [FT.schedule_steps(n, cfg) for n in (100, 500, 2000, 4000, 100_000)] == [100, 157, 625, 1250, 31_250]
    small = FT.FinetuneConfig(epochs=10, batch_size=50, min_steps=30)
    assert [FT.schedule_steps(n, small) for n in (10, 500, 1000, 10_000)] == [30, 100, 200, 2000]


@pytest.mark.parametrize("n,epochs,samples", [(100, 200, 10_000), (1000, 200, 10_000), (4000, 200, 20_000),
                                               (5000, 200, 10_000), (19_999, 200, 19_999), (20_000, 600, 20_000),
                                               (100_000, 600, 50_000)])
def test_newell_deng_schedule_is_the_papers(n: int, epochs: int, samples: int) -> None:
    """princeton-vl/selfstudy: 200 epochs below 20 000 labels, 600 from there; an epoch is the
    labelled set tiled to >= 10 000 samples (20 000 at 4000 labels), at most 50 000."""
    cfg = FT.FinetuneConfig(schedule="newell-deng", batch_size=512)
    assert FT.schedule_steps(n, cfg) == brute_force_steps(samples, epochs, 512, cfg.min_steps)


def test_an_unknown_schedule_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown schedule 'fast'; valid: epochs, newell-deng"):
        FT.check_config(FT.FinetuneConfig(schedule="fast"))


def test_step_ceiling_is_opt_in_and_warned(tiny_ckpt: Path, eval_data: Path, caplog: pytest.LogCaptureFixture) -> None:
    capped = FT.FinetuneConfig(max_steps=400)
    assert [FT.schedule_steps(n, capped) for n in (100, 2000, 100_000)] == [100, 400, 400]
    assert FT.epochs_run(100_000, capped) == pytest.approx(0.256)
    cfg = FT.FinetuneConfig(sizes=(20,), seeds=(0,), epochs=20, min_steps=3, max_steps=3, batch_size=16)
    FT.label_efficiency(tiny_ckpt, eval_data, cfg, kinds=("pretrained",))
    assert "max_steps=3 cuts the schedule at 20 labels (2.40 epochs instead of 20)" in caplog.text


def test_scratch_curve_extends_beyond_the_largest_size() -> None:
    """Newell & Deng, sec. 3: the scratch curve must reach the pretrained accuracy, so it runs at
    multiples of the largest finetuned size (default 2x), capped at the labelled split."""
    cfg = FT.FinetuneConfig()
    assert FT.pretrained_label_counts(cfg) == [100, 500, 1000]
    assert FT.scratch_label_counts(cfg) == [100, 500, 1000, 2000]
    wide = FT.FinetuneConfig(sizes=(1000, 50, 200), scratch_factors=(2, 4), scratch_sizes=(0,))
    assert FT.scratch_label_counts(wide, available=8673) == [50, 200, 1000, 2000, 4000, 8673]
    assert FT.scratch_label_counts(wide, available=3000) == [50, 200, 1000, 2000, 3000]
    assert FT.scratch_label_counts(wide) == [50, 200, 1000, 2000, 4000, FT.ALL]          # ALL: the whole split
    whole = FT.FinetuneConfig(sizes=(100, 0))
    assert FT.scratch_label_counts(whole, 500) == FT.pretrained_label_counts(whole, 500) == [100, 500]   # no further


@pytest.mark.parametrize("change, match", [({"scratch_factors": (1.0,)}, "each must be > 1"),
                                           ({"sizes": ()}, "non-empty"), ({"max_steps": -1}, "max_steps >= 0")])
def test_bad_configs_are_refused(change: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        FT.check_config(FT.FinetuneConfig(**change))


def test_step_plan_names_the_steps_of_every_size() -> None:
    cfg = FT.FinetuneConfig(sizes=(50, 200, 1000), scratch_factors=(2, 4))
    assert FT.step_plan(cfg) == {"pretrained": {"50": 100, "200": 100, "1000": 313},
                                 "scratch": {"50": 100, "200": 100, "1000": 313, "2000": 625, "4000": 1250}}
    assert FT.step_plan(FT.FinetuneConfig(sizes=(100, 0)))["scratch"] == {"100": 100, "all": None}


@pytest.mark.parametrize("target", ["class", "pose_bin"])
def test_label_efficiency_curves(tiny_ckpt: Path, eval_data: Path, target: str) -> None:
    cfg = FT.FinetuneConfig(**{**FAST.__dict__, "target": target})
    out = FT.label_efficiency(tiny_ckpt, eval_data, cfg)
    assert set(out) == {"pretrained", "scratch"}
    assert sorted(out["pretrained"]) == [20, 40] and sorted(out["scratch"]) == [20, 40, 80]    # scratch: 2x further
    for curve in out.values():
        assert all(len(v) == 2 for v in curve.values())
        assert all(0.0 <= a <= 100.0 for v in curve.values() for a in v)
    again = FT.label_efficiency(tiny_ckpt, eval_data, cfg, kinds=("pretrained",))
    assert again == {"pretrained": out["pretrained"]}                 # seeded: identical numbers


def test_finetuning_trains_every_layer_and_starts_from_the_checkpoint(tiny_ckpt: Path) -> None:
    from pretrain.checkpoint import load_backbone
    backbone, meta = load_backbone(tiny_ckpt)
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    net = FT.Classifier(backbone, 3)
    x = torch.randint(0, 255, (16, 3, 32, 32), dtype=torch.uint8)
    y = torch.arange(16) % 3
    norm = tuple(torch.tensor(v).view(1, 3, 1, 1) for v in (meta.data.mean, meta.data.std))
    FT.train_classifier(net, x, y, norm, FAST, seed=0)
    after = net.backbone.state_dict()
    changed = [k for k, v in after.items() if v.is_floating_point() and not torch.equal(v, before[k])]
    assert len(changed) > len(before) // 2
    assert not net.training


def test_bad_input(tiny_ckpt: Path, eval_data: Path) -> None:
    with pytest.raises(FeatureError, match="no 'nope' labels"):
        FT.label_efficiency(tiny_ckpt, eval_data, FT.FinetuneConfig(**{**FAST.__dict__, "target": "nope"}))
    with pytest.raises(ValueError, match="unknown finetuning kind"):
        FT.label_efficiency(tiny_ckpt, eval_data, FAST, kinds=("imagenet",))


@pytest.mark.slow
def test_a_checkpoint_that_knows_the_task_saves_labels(tmp_path: Path) -> None:
    """Finetuned from a supervised checkpoint of the same classes, 100 labels give far more than the
    same network trained from scratch on them: the finetuning path really starts from the weights."""
    from pretrain import config as C
    from pretrain import trainer as T
    from synthetic.generate import generate
    data = generate("shapes64", 3000, 0, tmp_path / "data", size=32, workers=2, progress=False)
    cfg = C.build_config("supervised", "mild", "cpu", {"data.path": str(data), "train.out": str(tmp_path / "runs"),
                                                       "train.tensorboard": False, "train.epochs": 10,
                                                       "optim.lr": 0.1})
    ckpt = T.train(cfg, progress=False) / "ckpt.pt"
    out = FT.label_efficiency(ckpt, data, FT.FinetuneConfig(sizes=(100,), seeds=(0, 1), lr=0.01))
    assert np.mean(out["pretrained"][100]) > np.mean(out["scratch"][100]) + 10, out


class _Scaled(torch.nn.Module):
    """A fixed random feature map times ``scale``: the pooled-feature scale a method leaves."""

    num_features = 8

    def __init__(self, scale: float) -> None:
        super().__init__()
        self.scale = scale
        self.proj = torch.nn.Linear(3, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * self.proj(x.mean(dim=(2, 3)))


@pytest.mark.parametrize("head_norm", [True, False])
def test_head_norm_makes_the_head_blind_to_the_feature_scale(head_norm: bool) -> None:
    """With the non-affine BN before the head, features 50x smaller give the same (training-mode)
    logits; without it the logits shrink with them."""
    x = 40 * torch.randn(32, 3, 8, 8)                 # pooled features of std ~ 3, then ~ 0.06
    logits = []
    for scale in (1.0, 0.02):
        torch.manual_seed(0)
        logits.append(FT.Classifier(_Scaled(scale), 4, head_norm=head_norm).train()(x))
    assert torch.allclose(logits[0], logits[1], atol=0.05) == head_norm     # BN eps aside
    assert FT.FinetuneConfig().head_norm
