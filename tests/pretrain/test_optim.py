"""Optimiser parameter groups: weight decay on kernels only, per-module learning-rate multipliers."""
from __future__ import annotations

import pytest
from torch import nn

from pretrain.config import OptimConfig
from pretrain.optim import build_optimizer, param_groups


class Net(nn.Module):
    def __init__(self, mult: float) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8))
        self.predictor = nn.Linear(8, 8)
        self.mult = mult

    def lr_multipliers(self) -> dict[str, float]:
        return {"predictor": self.mult}


def test_groups_split_decay_and_multiplier() -> None:
    net = Net(10.0)
    groups = param_groups(net, 0.1, net.lr_multipliers())
    by_key = {(g["lars"], g["lr_mult"]): {id(p) for p in g["params"]} for g in groups}
    assert by_key[(True, 1.0)] == {id(net.backbone[0].weight)}
    assert by_key[(True, 10.0)] == {id(net.predictor.weight)}
    assert by_key[(False, 10.0)] == {id(net.predictor.bias)}
    assert by_key[(False, 1.0)] == {id(p) for p in (net.backbone[0].bias, *net.backbone[1].parameters())}
    assert all(g["weight_decay"] == (0.1 if g["lars"] else 0.0) for g in groups)
    assert sum(len(g["params"]) for g in groups) == len(list(net.parameters()))


def test_no_multiplier_keeps_the_two_classic_groups() -> None:
    """Without multipliers the groups (and so an older resume.pt's optimiser state) are unchanged."""
    groups = param_groups(Net(1.0), 0.1, {"predictor": 1.0})
    assert [(g["lars"], g["lr_mult"]) for g in groups] == [(True, 1.0), (False, 1.0)]


@pytest.mark.parametrize("name", ["sgd", "adamw", "lars"])
def test_optimiser_scales_the_group_lr(name: str) -> None:
    opt = build_optimizer(Net(10.0), OptimConfig(name=name, lr=0.2), batch_size=128)
    lrs = sorted({round(g["lr"], 12) for g in opt.param_groups})
    assert lrs == [0.1, 1.0]
    assert all("lr_mult" not in g for g in opt.param_groups)
