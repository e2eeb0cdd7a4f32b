"""Losses against golden values made by lightly 1.6 (tests/golden/lightly_ntxent.npz, copied from
the project's shared reference data; see its `note` entry for how it was produced)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pretrain.losses import nt_xent, nt_xent_global

GOLDEN = np.load(Path(__file__).resolve().parents[1] / "golden" / "lightly_ntxent.npz")


@pytest.mark.parametrize("temperature, tag", [(0.5, "0p5"), (0.1, "0p1")])
@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
def test_nt_xent_matches_lightly(temperature: float, tag: str, dtype: torch.dtype, tol: float) -> None:
    suffix = "f64" if dtype == torch.float64 else "f32"
    z1 = torch.tensor(GOLDEN["out0"], dtype=dtype, requires_grad=True)
    z2 = torch.tensor(GOLDEN["out1"], dtype=dtype, requires_grad=True)
    loss = nt_xent(z1, z2, temperature)
    loss.backward()
    assert abs(loss.item() - float(GOLDEN[f"loss_T{tag}_{suffix}"])) < tol
    assert np.abs(z1.grad.numpy() - GOLDEN[f"grad_out0_T{tag}_{suffix}"]).max() < tol
    assert np.abs(z2.grad.numpy() - GOLDEN[f"grad_out1_T{tag}_{suffix}"]).max() < tol


def test_global_batch_form_averages_to_nt_xent() -> None:
    z1, z2 = (torch.tensor(GOLDEN[k]) for k in ("out0", "out1"))
    parts = [nt_xent_global(z1[i:i + 4], z2[i:i + 4], z1, z2, i, 0.5) for i in (0, 4)]
    assert abs((sum(parts) / 2).item() - float(GOLDEN["loss_T0p5_f64"])) < 1e-10
