"""DINO's and MoCo v3's losses: against lightly's DINOLoss (installed by make setup) and against a
per-sample brute force of the authors' formulas (facebookresearch/dino DINOLoss, facebookresearch/
moco-v3 MoCo.contrastive_loss)."""
from __future__ import annotations

import math

import pytest
import torch

from pretrain.losses import dino_center, dino_loss, mocov3_contrastive


def _logits(views: int, b: int = 6, k: int = 10, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(b, k, generator=g, dtype=torch.float64) for _ in range(views)]


@pytest.mark.parametrize("student_views", [2, 4])
def test_dino_loss_matches_lightly(student_views: int) -> None:
    from lightly.loss import DINOLoss
    student, teacher = _logits(student_views, seed=1), _logits(2, seed=2)
    center = 0.1 * torch.randn(1, 10, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    ref = DINOLoss(output_dim=10, warmup_teacher_temp=0.04, teacher_temp=0.04, warmup_teacher_temp_epochs=0,
                   student_temp=0.1, center_momentum=0.9).double()
    ref.center.copy_(center)
    expected = ref(teacher, student, teacher_temp=0.04)
    assert dino_loss(student, teacher, center, 0.1, 0.04).item() == pytest.approx(expected.item(), rel=1e-8)
    assert torch.allclose(dino_center(center, torch.cat(teacher).mean(0, keepdim=True), 0.9), ref.center)


def test_dino_loss_is_the_mean_cross_entropy_over_the_other_views() -> None:
    student, teacher = _logits(3, b=2, k=4, seed=4), _logits(2, b=2, k=4, seed=5)
    center = torch.zeros(1, 4, dtype=torch.float64)
    terms = []
    for i, t in enumerate(teacher):
        for v, s in enumerate(student):
            if v != i:
                for b in range(2):
                    p = torch.softmax(t[b] / 0.04, 0)
                    terms.append(-(p * torch.log_softmax(s[b] / 0.1, 0)).sum())
    assert dino_loss(student, teacher, center).item() == pytest.approx(torch.stack(terms).mean().item(), rel=1e-10)


def test_dino_loss_does_not_send_gradient_to_the_teacher() -> None:
    student = [x.requires_grad_() for x in _logits(2)]
    teacher = [x.requires_grad_() for x in _logits(2, seed=7)]
    dino_loss(student, teacher, torch.zeros(1, 10, dtype=torch.float64)).backward()
    assert all(t.grad is None for t in teacher) and all(s.grad is not None for s in student)


@pytest.mark.parametrize("temperature", [0.2, 1.0])
def test_mocov3_contrastive_matches_the_authors_formula(temperature: float) -> None:
    q, k = _logits(2, b=5, k=8, seed=8)
    qn, kn = q / q.norm(dim=1, keepdim=True), k / k.norm(dim=1, keepdim=True)
    terms = [-math.log(math.exp(qn[i] @ kn[i] / temperature) / sum(math.exp(qn[i] @ kn[j] / temperature)
                                                                    for j in range(5))) for i in range(5)]
    expected = 2 * temperature * sum(terms) / 5
    assert mocov3_contrastive(q, k, temperature).item() == pytest.approx(expected, rel=1e-10)


def test_mocov3_contrastive_uses_its_own_keys_within_a_gathered_batch() -> None:
    q, k = _logits(2, b=4, k=8, seed=9)
    whole = mocov3_contrastive(q, k, 0.2)
    halves = [mocov3_contrastive(q[i:i + 2], k, 0.2, offset=i) for i in (0, 2)]
    assert (sum(halves) / 2).item() == pytest.approx(whole.item(), rel=1e-10)
