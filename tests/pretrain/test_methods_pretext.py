"""PIRL, RotNet, CMC, VAE, supervised and random baselines: tiny backbone, 16-32 px, a few steps."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pretrain.backbones import build_backbone
from pretrain.colour import rgb_to_lab
from pretrain.losses.pretext import cmc_loss, gaussian_kl, pirl_nce, rotation_loss, vae_loss
from pretrain.methods.base import MethodContext
from pretrain.methods.cmc import CMC, split_lab
from pretrain.methods.pirl import PIRL, assemble_tiles, make_tiles, random_permutations, shuffle_tiles
from pretrain.methods.random_init import RandomInit
from pretrain.methods.rotation import Rotation, rotate_all, rotate_random
from pretrain.methods.supervised import Supervised
from pretrain.methods.vae import VAE, Decoder
from pretrain.views import Views

TRAINED = [PIRL, Rotation, CMC, VAE, Supervised]
B = 8


def ctx(size: int = 16) -> MethodContext:
    return MethodContext(mean=(0.5,) * 3, std=(0.25,) * 3, num_classes=4, dataset_size=64, image_size=size,
                         total_steps=10)


def views(size: int = 16, b: int = B, seed: int = 0) -> Views:
    g = torch.Generator().manual_seed(seed)
    return Views(views=[torch.rand(b, 3, size, size, generator=g) for _ in range(2)],
                 targets=torch.randint(0, 4, (b,), generator=g), indices=torch.randperm(64, generator=g)[:b])


def build(cls, size: int = 16, **cfg):
    torch.manual_seed(0)
    return cls(build_backbone("tiny"), cls.Config(**cfg), ctx(size))


@pytest.mark.parametrize("cls", TRAINED, ids=lambda c: c.__name__)
def test_trains(cls):
    m = build(cls)
    m.train()
    before = [p.detach().clone() for p in m.backbone.parameters()]
    opt = torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9)
    for step in range(3):
        loss, logs = m.loss(views(seed=step))
        assert loss.dim() == 0 and torch.isfinite(loss), (cls.__name__, loss)
        assert all(np.isfinite(v) for v in logs.values()), logs
        opt.zero_grad()
        loss.backward()
        opt.step()
        m.after_step((step + 1) / 3)
    assert any(not torch.equal(a, b) for a, b in zip(before, m.backbone.parameters()))
    net = m.backbone_for_export().eval()
    with torch.no_grad():
        assert net(torch.rand(B, 3, 16, 16)).shape == (B, m.backbone.num_features)


@pytest.mark.parametrize("size", [16, 32])
def test_pirl_sizes(size):
    m = build(PIRL, size)
    assert m.tile_size == max(size // 2, 4)
    loss, _ = m.loss(views(size))
    assert torch.isfinite(loss)
    assert m.jigsaw_features(torch.rand(2, 3, size, size)).shape == (2, 128)


def test_random_baseline():
    m = build(RandomInit)
    assert RandomInit.trains is False
    with pytest.raises(RuntimeError, match="not trained"):
        m.loss(views())
    assert m.backbone_for_export()(torch.rand(2, 3, 16, 16)).shape == (2, m.backbone.num_features)


def test_rgb_to_lab_matches_skimage():
    from skimage.color import rgb2lab
    x = torch.rand(2, 3, 8, 8, dtype=torch.float64)
    x[0, :, 0, 0], x[0, :, 0, 1], x[0, :, 0, 2] = 0.0, 1.0, 0.02   # black, white, the linear segment
    ref = torch.from_numpy(rgb2lab(x.permute(0, 2, 3, 1).numpy())).permute(0, 3, 1, 2)
    assert torch.allclose(rgb_to_lab(x), ref, atol=1e-4, rtol=0)
    assert torch.allclose(rgb_to_lab(x.float()).double(), ref, atol=1e-3, rtol=0)
    with torch.autocast("cpu", dtype=torch.bfloat16):              # not run in bf16 under autocast
        assert torch.allclose(rgb_to_lab(x.float()).double(), ref, atol=1e-3, rtol=0)


def test_split_lab():
    l_view, ab_view = split_lab(torch.full((1, 3, 4, 4), 0.5))     # grey: a = b = 0
    assert torch.allclose(l_view[:, 0], l_view[:, 2]) and 0 < l_view.min() < 1
    assert ab_view.abs().max() < 1e-3


def test_rotations_consistent():
    x = torch.rand(3, 3, 8, 8)
    rot, labels = rotate_all(x)
    assert rot.shape == (12, 3, 8, 8) and labels.tolist() == [0] * 3 + [1] * 3 + [2] * 3 + [3] * 3
    back = torch.stack([torch.rot90(r, -int(k), dims=(1, 2)) for r, k in zip(rot, labels)])
    assert torch.equal(back, x.repeat(4, 1, 1, 1))
    one, lab = rotate_random(x, torch.tensor([1, 2, 3]))
    assert torch.equal(torch.rot90(one[2], -3, dims=(1, 2)), x[2]) and lab.tolist() == [1, 2, 3]
    perfect = F.one_hot(labels, 4).float() * 100
    assert rotation_loss(perfect, labels) < 1e-6
    assert rotation_loss(torch.zeros(12, 4), labels) == pytest.approx(np.log(4), rel=1e-5)


def test_jigsaw_inverse_permutation():
    x = torch.rand(4, 3, 16, 16)
    tiles = make_tiles(x)                                   # 5 px tiles of the centre 15 px
    assert tiles.shape == (4, 9, 3, 5, 5)
    assert torch.equal(assemble_tiles(tiles), x[:, :, :15, :15])
    perm = random_permutations(4, 9)
    assert torch.equal(perm.sort(1).values, torch.arange(9).expand(4, 9))
    shuffled = shuffle_tiles(tiles, perm)
    assert torch.equal(shuffled[1, 0], tiles[1, perm[1, 0]])
    restored = shuffle_tiles(shuffled, perm.argsort(1))
    assert torch.equal(assemble_tiles(restored), x[:, :, :15, :15])


def test_pirl_memory_bank_update():
    m = build(PIRL)
    v = views()
    assert torch.allclose(m.memory.norm(dim=1), torch.ones(64))
    before = m.memory.clone()
    loss, _ = m.loss(v)
    loss.backward()
    assert torch.equal(m.memory, before)                    # updated only after the step
    m.after_step(0.1)
    rows = v.indices
    others = torch.ones(64, dtype=torch.bool)
    others[rows] = False
    assert not torch.isclose(m.memory[rows], before[rows]).all(1).any()
    assert torch.equal(m.memory[others], before[others])
    assert torch.allclose(m.memory.norm(dim=1), torch.ones(64), atol=1e-5)
    assert m.num_negatives == 63
    m.eval()
    m.loss(views(seed=1))
    m.after_step(0.2)                                       # no update in eval mode
    assert torch.equal(m.memory[others], before[others])


def test_pirl_nce_prefers_aligned():
    torch.manual_seed(0)
    neg = F.normalize(torch.randn(32, 16), dim=1)
    q = F.normalize(torch.randn(4, 16), dim=1)
    far = F.normalize(torch.randn(4, 16), dim=1)
    assert pirl_nce(q, q, neg) < pirl_nce(q, far, neg)


def test_cmc_loss_symmetric_and_vae_terms():
    z = torch.randn(6, 8)
    a, b = cmc_loss(z, z.flip(0))
    a2, b2 = cmc_loss(z.flip(0), z)
    assert torch.allclose(a, b2) and torch.allclose(b, a2)
    assert torch.allclose(gaussian_kl(torch.zeros(2, 5), torch.zeros(2, 5)), torch.zeros(2))
    logits = torch.randn(2, 3, 4, 4)
    total, rec, kl = vae_loss(logits, torch.rand(2, 3, 4, 4), torch.ones(2, 5), torch.zeros(2, 5), beta=2.0)
    assert kl.item() == pytest.approx(2.5) and total.item() == pytest.approx(rec.item() + 5.0)


@pytest.mark.parametrize("size", [16, 32, 24, 33])
def test_vae_decoder_size(size):
    assert Decoder(8, size, 8)(torch.randn(2, 8)).shape == (2, 3, size, size)


def test_supervised_labels():
    m = build(Supervised)
    v = views()
    v.targets[:4] = -1
    loss, logs = m.loss(v)
    assert torch.isfinite(loss) and 0 <= logs["acc"] <= 1
    v.targets[:] = -1
    with pytest.raises(ValueError, match="no labels"):
        m.loss(v)
    assert Supervised.needs == frozenset({"labels"}) and PIRL.needs == frozenset({"indices"})
