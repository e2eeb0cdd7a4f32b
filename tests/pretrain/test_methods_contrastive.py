"""SimCLR, MoCo v2, BYOL, SimSiam, SwAV: training smoke tests and losses against lightly 1.6."""
from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from lightly.loss import NegativeCosineSimilarity, NTXentLoss, SwaVLoss
from lightly.loss.swav_loss import sinkhorn as lightly_sinkhorn

from pretrain.backbones import build_backbone
from pretrain.losses.clustering import sinkhorn, swav_loss
from pretrain.losses.contrastive import (
    info_nce,
    negative_cosine,
    nt_xent,
    nt_xent_with_negatives,
)
from pretrain.methods.base import MethodContext
from pretrain.methods.byol import BYOL
from pretrain.methods.mocov2 import MoCoV2, directions
from pretrain.methods.simclr import SimCLR
from pretrain.methods.simsiam import SimSiam
from pretrain.methods.swav import SwAV
from pretrain.views import Views

B, PX = 8, 16
CTX = MethodContext(mean=(0.5,) * 3, std=(0.25,) * 3, num_classes=4, dataset_size=64, image_size=PX,
                    total_steps=10)
# small heads keep the tests fast; the defaults are checked separately
SMALL = {
    SimCLR: {"proj_hidden": 32, "proj_dim": 16},
    MoCoV2: {"proj_hidden": 32, "proj_dim": 16, "queue_size": 64},
    BYOL: {"proj_hidden": 32, "proj_dim": 16},
    SimSiam: {"proj_hidden": 32, "proj_dim": 32, "pred_hidden": 8},
    SwAV: {"proj_hidden": 32, "proj_dim": 16, "prototypes": 10, "freeze_prototypes_steps": 1},
}


def build(cls, **overrides):
    torch.manual_seed(0)
    cfg = cls.Config(**{**SMALL[cls], **overrides})
    return cls(build_backbone("tiny"), cfg, CTX)


def views(n: int = 2, seed: int = 1, **kw) -> Views:
    g = torch.Generator().manual_seed(seed)
    sizes = [PX, PX] + [8] * (n - 2)
    return Views(views=[torch.rand(B, 3, s, s, generator=g) for s in sizes], **kw)


def train(model, steps: int = 3, make=views):
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1, momentum=0.9)
    losses = []
    for i in range(steps):
        loss, logs = model.loss(make(seed=i))
        opt.zero_grad()
        loss.backward()
        opt.step()
        model.after_step((i + 1) / steps)
        losses.append(loss.item())
        assert isinstance(logs, dict) and all(isinstance(v, float) for v in logs.values())
    return losses


@pytest.mark.parametrize("cls", [SimCLR, MoCoV2, BYOL, SimSiam, SwAV])
def test_method_trains_and_exports(cls):
    model = build(cls)
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    losses = train(model)
    assert all(torch.isfinite(torch.tensor(losses)))
    after = model.backbone.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before if after[k].is_floating_point())
    exported = model.backbone_for_export()
    assert type(exported) is type(build_backbone("tiny"))
    exported.eval()
    with torch.no_grad():
        assert exported(torch.rand(B, 3, PX, PX)).shape == (B, exported.num_features)


@pytest.mark.parametrize("cls", [SimCLR, MoCoV2, BYOL, SimSiam, SwAV])
def test_default_config_builds(cls):
    cfg = cls.Config()
    assert dataclasses.is_dataclass(cfg)
    cls(build_backbone("tiny"), cfg, CTX)


def test_simclr_hard_negatives():
    model = build(SimCLR)
    losses = train(model, 2, lambda seed: views(seed=seed, negatives=torch.rand(B, 3, 3, PX, PX)))
    assert all(torch.isfinite(torch.tensor(losses)))


def test_swav_multicrop_and_prototype_freeze():
    model = build(SwAV, freeze_prototypes_steps=1)
    model.loss(views(4))[0].backward()
    assert model.prototypes.weight.grad is None          # frozen on step 0
    model.after_step(0.5)
    model.zero_grad()
    model.loss(views(4))[0].backward()
    assert model.prototypes.weight.grad is not None and model.prototypes.weight.grad.abs().sum() > 0
    with torch.no_grad():
        model.prototypes.weight.mul_(3)
    model.after_step(1.0)
    assert torch.allclose(model.prototypes.weight.norm(dim=1), torch.ones(10))


# ---- MoCo queue and key encoder ----

def test_moco_queue_pointer_and_newest_keys():
    model = build(MoCoV2)
    v = views()
    ptr0 = int(model.queue_ptr)
    torch.manual_seed(0)                    # the same shuffling-BN permutation for both key passes
    model.loss(v)
    assert int(model.queue_ptr) == ptr0 + B
    torch.manual_seed(0)
    keys = model.key(v.views[1])
    assert torch.allclose(model.queue[ptr0:ptr0 + B], keys, atol=1e-6)
    assert torch.allclose(model.queue.norm(dim=1), torch.ones(model.queue.shape[0]), atol=1e-5)
    for _ in range(model.queue.shape[0] // B):           # wraps around
        model.loss(v)
    assert int(model.queue_ptr) == ptr0 + B
    model.eval()
    model.loss(v)                                       # evaluation leaves the queue alone
    assert int(model.queue_ptr) == ptr0 + B


@pytest.mark.parametrize("symmetric, masked, expected", [
    (True, (), ((0, 1), (1, 0))), (True, (0, 1), ((0, 1), (1, 0))), (True, (0,), ((0, 1),)), (True, (1,), ((0, 1),)),
    (False, (), ((0, 1),)), (False, (0, 1), ((0, 1),)), (True, (2,), ((0, 1), (1, 0))),
])
def test_moco_directions_keep_a_one_sided_mask_on_its_branch(symmetric, masked, expected):
    """(query view, key view) pairs: a view masked on one side only never changes branch."""
    assert directions(symmetric, masked) == expected


def test_moco_one_sided_masking_is_the_asymmetric_loss():
    """Views masked on one side give exactly the loss of ``symmetric=False`` on the same views."""
    v = views()
    sym, asym = build(MoCoV2), build(MoCoV2, symmetric=False)
    masked = dataclasses.replace(v, masked=(0,))
    torch.manual_seed(3)
    a = sym.loss(masked)[0]
    torch.manual_seed(3)
    b = asym.loss(v)[0]
    torch.testing.assert_close(a, b)


def test_moco_teacher_ema():
    model = build(MoCoV2)
    train(model, 3)
    online = torch.nn.utils.parameters_to_vector(model.backbone.parameters())
    key = torch.nn.utils.parameters_to_vector(model.key_backbone.parameters())
    assert not torch.allclose(online, key)
    assert all(not p.requires_grad for p in model.key_backbone.parameters())
    model.cfg.momentum = 0.0
    model.after_step(1.0)
    assert torch.equal(torch.nn.utils.parameters_to_vector(model.key_backbone.parameters()), online)
    assert torch.equal(torch.nn.utils.parameters_to_vector(model.key_projector.parameters()),
                       torch.nn.utils.parameters_to_vector(model.projector.parameters()))


def test_byol_target_ema():
    model = build(BYOL)
    train(model, 3)
    online = torch.nn.utils.parameters_to_vector(model.backbone.parameters())
    target = torch.nn.utils.parameters_to_vector(model.target_backbone.parameters())
    assert not torch.allclose(online, target)
    assert model.momentum == pytest.approx(1.0)          # cosine schedule reaches 1 at progress 1


# ---- losses against lightly 1.6 ----

def test_nt_xent_with_negatives_reduces_to_nt_xent():
    z1, z2 = torch.randn(B, 16, dtype=torch.float64), torch.randn(B, 16, dtype=torch.float64)
    empty = torch.empty(B, 0, 16, dtype=torch.float64)
    assert torch.equal(nt_xent_with_negatives(z1, z2, empty, 0.5), nt_xent(z1, z2, 0.5))
    neg = torch.randn(B, 3, 16, dtype=torch.float64)
    assert nt_xent_with_negatives(z1, z2, neg, 0.5) > nt_xent(z1, z2, 0.5)


def test_nt_xent_with_negatives_hand_computed():
    z1, z2, neg = torch.randn(4, 8), torch.randn(4, 8), torch.randn(4, 2, 8)
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    n = F.normalize(neg, dim=-1)
    t, total = 0.3, 0.0
    for i in range(8):
        pos = (z[i] @ z[(i + 4) % 8]) / t
        others = [z[i] @ z[j] / t for j in range(8) if j != i] + [z[i] @ n[i % 4, k] / t for k in range(2)]
        total += -(pos - torch.logsumexp(torch.stack(others), 0))
    assert torch.allclose(nt_xent_with_negatives(z1, z2, neg, t), total / 8, atol=1e-5)


def test_info_nce_queue_matches_lightly_memory_bank():
    torch.manual_seed(0)
    q, k, queue = torch.randn(B, 16), torch.randn(B, 16), F.normalize(torch.randn(32, 16), dim=1)
    ref = NTXentLoss(temperature=0.2, memory_bank_size=(32, 16))
    ref.memory_bank.bank = queue.clone()
    expected = ref(q, k)
    got = info_nce(F.normalize(q, dim=1), F.normalize(k, dim=1), queue, 0.2)
    assert torch.allclose(got, expected, atol=1e-6)


def test_negative_cosine_matches_lightly():
    p, z = torch.randn(B, 16, dtype=torch.float64), torch.randn(B, 16, dtype=torch.float64)
    assert torch.allclose(negative_cosine(p, z), NegativeCosineSimilarity()(p, z), atol=1e-12)


def test_sinkhorn_matches_lightly():
    torch.manual_seed(0)
    scores = F.normalize(torch.randn(B, 16, dtype=torch.float64), dim=1) @ \
        F.normalize(torch.randn(10, 16, dtype=torch.float64), dim=1).T
    for eps, it in [(0.05, 3), (0.1, 5)]:
        got = sinkhorn(scores, eps, it)
        assert torch.allclose(got, lightly_sinkhorn(scores.clone(), iterations=it, epsilon=eps), atol=1e-6)
        assert torch.allclose(got.sum(1), torch.ones(B, dtype=torch.float64))


def test_swav_loss_matches_lightly():
    torch.manual_seed(0)
    protos = F.normalize(torch.randn(10, 16, dtype=torch.float64), dim=1)

    def score():
        return F.normalize(torch.randn(B, 16, dtype=torch.float64), dim=1) @ protos.T
    high, low = [score(), score()], [score(), score(), score()]
    ref = SwaVLoss(temperature=0.1, sinkhorn_iterations=3, sinkhorn_epsilon=0.05)
    for lo in ([], low):
        assert torch.allclose(swav_loss(high, lo, 0.1, 0.05, 3), ref(high, lo).squeeze(), atol=1e-6)


# ---- distributed (slow: spawns 2 gloo processes): sinkhorn over 2 processes equals sinkhorn on
# the whole batch, and MoCo's key gather concatenates the ranks in order ----

def _dist_worker(rank: int, port: int, scores: torch.Tensor, keys: torch.Tensor, out: dict) -> None:
    import torch.distributed as dist

    from pretrain.methods.mocov2 import _gather
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        half = scores.shape[0] // 2
        out[f"codes{rank}"] = sinkhorn(scores[rank * half:(rank + 1) * half], 0.05, 3)
        out[f"keys{rank}"] = _gather(keys[rank * half:(rank + 1) * half])
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_sinkhorn_and_key_gather_distributed():
    import socket

    import torch.multiprocessing as mp
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    torch.manual_seed(0)
    scores = F.normalize(torch.randn(B, 16, dtype=torch.float64), dim=1) @ \
        F.normalize(torch.randn(10, 16, dtype=torch.float64), dim=1).T
    keys = torch.randn(B, 4)
    with mp.Manager() as manager:
        out = manager.dict()
        mp.spawn(_dist_worker, args=(port, scores, keys, out), nprocs=2)
        out = dict(out)
    codes = torch.cat([out["codes0"], out["codes1"]])
    assert torch.allclose(codes, sinkhorn(scores, 0.05, 3), atol=1e-10)
    assert torch.equal(out["keys0"], keys) and torch.equal(out["keys1"], keys)
