"""Shuffling BN emulated on one process (pretrain.batchnorm)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from pretrain.batchnorm import grouped_forward, split_batchnorm


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(4, 6), nn.BatchNorm1d(6))


@pytest.mark.parametrize("groups", [2, 4])
def test_split_bn_equals_separate_groups(groups: int) -> None:
    """One pass with split BN == running the net on each group (samples n = g mod G) alone."""
    x = torch.randn(8, 3, 5, 5)
    net, ref = _net(), _net()
    with split_batchnorm(net, groups):
        y = net(x)
    expected = torch.empty_like(y)
    for g in range(groups):
        expected[g::groups] = ref(x[g::groups])
    torch.testing.assert_close(y, expected, rtol=1e-5, atol=1e-5)
    # running statistics: the group statistics averaged == the same EMA updates applied in turn averaged
    means = []
    for g in range(groups):
        r = _net()
        r(x[g::groups])
        means.append(r[1].running_mean)
    torch.testing.assert_close(net[1].running_mean, torch.stack(means).mean(0), rtol=1e-5, atol=1e-6)
    assert int(net[1].num_batches_tracked) == 1
    # the patch is removed afterwards: ordinary BN again
    assert "forward" not in vars(net[1])


def test_grouped_forward_shuffle_unpermutes() -> None:
    """With shuffling, outputs come back in input order; in eval mode they equal a plain forward."""
    net = _net().eval()
    x = torch.randn(8, 3, 5, 5)
    torch.manual_seed(1)
    torch.testing.assert_close(grouped_forward(net, x, 4, (net,), shuffle=True), net(x))


def test_grouped_forward_changes_statistics_in_training() -> None:
    net = _net().train()
    x = torch.randn(8, 3, 5, 5)
    assert not torch.allclose(grouped_forward(net, x, 4, (net,)), _net().train()(x), atol=1e-4)
