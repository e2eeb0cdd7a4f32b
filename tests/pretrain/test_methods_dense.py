"""SlotCon and Temporal: training steps, overlap alignment, DINO centring (vs lightly), queue."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from pretrain.backbones import build_backbone
from pretrain.losses.grouping import (batch_center, ema_center, grouping_loss, semantic_grouping,
                                      slot_contrastive, teacher_assignments)
from pretrain.methods.base import MethodContext
from pretrain.methods.slotcon import SlotCon, align_to_region, box_intersection, slot_counts
from pretrain.methods.temporal import Temporal
from pretrain.views import Views

CTX = MethodContext(mean=(0.5,) * 3, std=(0.25,) * 3, num_classes=4, dataset_size=64, image_size=32, total_steps=10)
B = 8


def make_views(seed: int = 0) -> Views:
    """Two 32-px views cut from 40-px sources: random crops, plus one disjoint pair and one identical."""
    g = torch.Generator().manual_seed(seed)
    src = torch.rand(B, 3, 40, 40, generator=g)
    boxes = [torch.zeros(B, 4), torch.zeros(B, 4)]
    views = []
    for v in range(2):
        crops = []
        for i in range(B):
            s = int(torch.randint(16, 33, (1,), generator=g))
            x0, y0 = (int(t) for t in torch.randint(0, 40 - s + 1, (2,), generator=g))
            if i == 0:                     # disjoint crops
                s, x0, y0 = 16, (0 if v == 0 else 24), (0 if v == 0 else 24)
            if i == 1:                     # the same crop
                s, x0, y0 = 24, 8, 8
            boxes[v][i] = torch.tensor([x0, y0, x0 + s, y0 + s], dtype=torch.float32)
            crops.append(F.interpolate(src[i:i + 1, :, y0:y0 + s, x0:x0 + s], size=32, mode="bilinear",
                                       align_corners=False))
        views.append(torch.cat(crops).clamp(0, 1))
    return Views(views=views, boxes=boxes, targets=torch.zeros(B, dtype=torch.long), indices=torch.arange(B))


def train(method, steps: int = 3, seed: int = 0):
    opt = torch.optim.SGD([p for p in method.parameters() if p.requires_grad], lr=0.05, momentum=0.9)
    losses = []
    for step in range(steps):
        loss, logs = method.loss(make_views(seed + step))
        assert torch.isfinite(loss) and all(math.isfinite(v) for v in logs.values()), logs
        opt.zero_grad()
        loss.backward()
        opt.step()
        method.after_step((step + 1) / steps)
        losses.append(loss.item())
    return losses


def snapshot(module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def changed(before, module) -> bool:
    return any(not torch.equal(a, b) for a, b in zip(before, module.parameters()))


def small_slotcon() -> SlotCon:
    torch.manual_seed(0)
    return SlotCon(build_backbone("tiny"), SlotCon.Config(num_prototypes=8, dim_hidden=32, dim_out=16), CTX)


def test_slotcon_trains_and_updates_teacher():
    m = small_slotcon()
    student, teacher, center = snapshot(m.backbone), snapshot(m.teacher_backbone), m.center.clone()
    protos = m.teacher_prototypes.weight.clone()
    train(m)
    assert changed(student, m.backbone) and changed(teacher, m.teacher_backbone)
    assert not torch.equal(protos, m.teacher_prototypes.weight) and not torch.equal(center, m.center)
    assert all(not p.requires_grad for p in m.teacher_backbone.parameters())
    out = m.backbone_for_export()(torch.rand(B, 3, 32, 32))
    assert m.backbone_for_export() is m.teacher_backbone and m.exported == "momentum"
    assert out.shape == (B, m.backbone.num_features)


def test_slotcon_on_the_cpu_preset_has_slots_to_contrast():
    """The cpu preset's backbone (small stem, width 16) on its 32-px views: SlotCon groups a 4x4
    map, several prototypes own pixels in both views, and the slot loss is not 0."""
    from pretrain import config as C

    cfg = C.build_config("slotcon", None, "cpu", {})
    torch.manual_seed(0)
    m = SlotCon(build_backbone(cfg.backbone.name, **cfg.backbone.kwargs), SlotCon.Config(**cfg.method_cfg), CTX)
    assert cfg.aug_cfg["out_size"] == 32
    assert m.backbone.forward_features(torch.zeros(1, 3, 32, 32)).shape[-2:] == (4, 4)
    loss, logs = m.loss(make_views())
    assert logs["slot"] > 0 and logs["matched"] >= 2 and logs["slots"] >= logs["matched"]


def test_slot_counts_are_prototypes_owning_pixels_per_view():
    logits = torch.full((2, 4, 1, 3), -1.0)
    logits[0, 0, 0, :2] = 1                                      # image 0: view a owns prototypes 0, 1
    logits[0, 1, 0, 2] = 1
    logits[1, 2, 0, :] = 1                                       # image 1: prototype 2
    other = torch.full((2, 4, 1, 3), -1.0)
    other[0, 1, 0, :] = 1                                        # image 0: view b owns 1 (matched)
    other[1, 3, 0, :] = 1                                        # image 1: 3 (no match)
    assert slot_counts(logits, other) == {"slots": 1.0, "matched": 0.5}


def test_slotcon_refuses_a_map_of_one_pixel():
    m = small_slotcon()
    with pytest.raises(ValueError, match=r"dense map, which is \(1, 1\) on \(2, 2\)-px views"):
        m.loss(Views(views=[torch.rand(B, 3, 2, 2)] * 2, targets=torch.zeros(B, dtype=torch.long),
                     indices=torch.arange(B)))


def test_slotcon_without_overlap_is_finite():
    m = small_slotcon()
    v = make_views()
    v.boxes = [torch.tensor([[0.0, 0, 16, 16]]).repeat(B, 1), torch.tensor([[20.0, 20, 40, 40]]).repeat(B, 1)]
    loss, logs = m.loss(v)
    assert torch.isfinite(loss) and logs["overlap"] == 0.0 and logs["group"] == 0.0
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in m.parameters() if p.grad is not None)


def test_align_same_crop_is_identity_and_views_agree_on_overlap():
    maps = torch.randn(2, 5, 16, 16)
    box = torch.tensor([[8.0, 8, 32, 32], [0, 0, 40, 40]])
    region, valid = box_intersection(box, box)
    assert valid.all() and torch.equal(region, box)
    torch.testing.assert_close(align_to_region(maps, box, region, (16, 16)), maps, rtol=0, atol=1e-6)
    # a linear function of source coordinates sampled at each view's pixel centres: both aligned maps
    # sample it at the same source points (bilinear interpolation is exact on linear functions)
    f = lambda x, y: torch.stack([x + 2 * y, 3 * x - y])  # noqa: E731

    def view_map(b):  # 16 x 16 map of a crop (b: x0 y0 x1 y1)
        xs = b[0] + (torch.arange(16) + 0.5) * (b[2] - b[0]) / 16
        ys = b[1] + (torch.arange(16) + 0.5) * (b[3] - b[1]) / 16
        return f(xs.view(1, -1).expand(16, 16), ys.view(-1, 1).expand(16, 16))

    a, b = torch.tensor([[0.0, 0, 32, 32]]), torch.tensor([[8.0, 4, 40, 36]])
    region, valid = box_intersection(a, b)
    assert valid.all() and torch.equal(region, torch.tensor([[8.0, 4, 32, 32]]))
    ma = align_to_region(view_map(a[0])[None], a, region, (16, 16))
    mb = align_to_region(view_map(b[0])[None], b, region, (16, 16))
    # the outermost aligned pixels fall within half a feature pixel of a crop edge (clamped there)
    torch.testing.assert_close(ma[..., 1:-1, 1:-1], mb[..., 1:-1, 1:-1], rtol=0, atol=1e-4)
    # a horizontally flipped view is un-flipped first
    mf = align_to_region(view_map(b[0])[None].flip(-1), b, region, (16, 16), flip=torch.tensor([True]))
    torch.testing.assert_close(mf, mb)
    _, valid = box_intersection(torch.tensor([[0.0, 0, 10, 10]]), torch.tensor([[10.0, 0, 20, 10]]))
    assert not valid.any()


def test_slotcon_identical_views_align_identically():
    m = small_slotcon().eval()
    v = make_views()
    x = v.views[0]
    _, logits = m.group(x)
    region, _ = box_intersection(v.boxes[0], v.boxes[0])
    a = align_to_region(logits, v.boxes[0], region, logits.shape[-2:])
    b = align_to_region(m.group(x.clone())[1], v.boxes[0].clone(), region, logits.shape[-2:])
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    torch.testing.assert_close(a, logits, rtol=0, atol=1e-5)


def test_centering_matches_lightly():
    lightly_loss = pytest.importorskip("lightly.loss")
    k, n = 8, 50
    torch.manual_seed(0)
    ref = lightly_loss.DINOLoss(output_dim=k, warmup_teacher_temp=0.07, teacher_temp=0.07, student_temp=0.1,
                                center_momentum=0.9)
    center = torch.zeros(1, k)
    for _ in range(3):
        t, s = [torch.randn(n, k) for _ in range(2)], [torch.randn(n, k) for _ in range(2)]
        want_probs = F.softmax((torch.stack(t) - ref.center) / 0.07, dim=-1)
        got_probs = torch.stack([teacher_assignments(x, center, 0.07) for x in t])
        torch.testing.assert_close(got_probs, want_probs, rtol=0, atol=1e-6)
        want = ref(t, s)
        got = (grouping_loss(s[0], t[1], center) + grouping_loss(s[1], t[0], center)) / 2
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)  # a loss of ~14 in float32
        center = ema_center(center, batch_center(torch.cat(t)), 0.9)
        torch.testing.assert_close(center, ref.center.view(1, k), rtol=0, atol=1e-6)


def test_grouping_loss_of_identical_logits_is_the_entropy():
    logits = torch.randn(20, 6)
    p = F.softmax(logits / 0.1, dim=-1)
    entropy = -(p * p.log()).sum(-1).mean()
    got = grouping_loss(logits, logits, torch.zeros(1, 6), student_temp=0.1, teacher_temp=0.1)
    torch.testing.assert_close(got, entropy)
    weight = torch.zeros(20)
    weight[:5] = 1
    torch.testing.assert_close(grouping_loss(logits, logits, torch.zeros(1, 6), 0.1, 0.1, weight),
                               -(p * p.log()).sum(-1)[:5].mean())


def test_semantic_grouping_and_slot_contrastive():
    feats, protos = torch.randn(2, 4, 3, 3), torch.randn(5, 4)
    slots, logits = semantic_grouping(feats, protos, 0.07)
    assert slots.shape == (2, 5, 4) and logits.shape == (2, 5, 3, 3) and logits.abs().max() <= 1 + 1e-6
    # each slot is a convex combination of its image's pixel features
    lo, hi = feats.flatten(2).min(2).values, feats.flatten(2).max(2).values
    assert (slots >= lo[:, None] - 1e-5).all() and (slots <= hi[:, None] + 1e-5).all()
    keys = F.normalize(torch.randn(6, 4), dim=1)
    mask = torch.tensor([True, False, True, True, False, True])
    pos = torch.tensor([0, 3, 5])
    got = slot_contrastive(keys[pos] * 3, keys, pos, mask, 0.2)
    kept = keys[mask]
    want = F.cross_entropy(keys[pos] @ kept.T / 0.2, torch.tensor([0, 2, 3])) * 0.4
    torch.testing.assert_close(got, want)


def small_temporal(**kw) -> Temporal:
    torch.manual_seed(0)
    cfg = Temporal.Config(**{"dim_hidden": 32, "dim_out": 16, "queue_size": 20, **kw})
    return Temporal(build_backbone("tiny"), cfg, CTX)


def test_temporal_trains_queue_advances_and_needs():
    m = small_temporal()
    assert m.needs == frozenset({"pairs"}) and Temporal.needs == frozenset({"pairs"})
    assert small_temporal(mode="regions").needs == frozenset({"pairs", "regions"})
    with pytest.raises(ValueError, match="mode"):
        small_temporal(mode="boxes")
    online, key, queue = snapshot(m.backbone), snapshot(m.key_backbone), m.queue.clone()
    train(m, steps=3)
    assert changed(online, m.backbone) and changed(key, m.key_backbone)
    assert int(m.queue_ptr) == (3 * B) % 20                  # wrapped around
    assert not torch.equal(queue, m.queue)
    torch.testing.assert_close(m.queue.norm(dim=1), torch.ones(20))
    assert m.backbone_for_export() is m.backbone and m.exported == "online"
    assert m.backbone_for_export()(torch.rand(B, 3, 32, 32)).shape == (B, m.backbone.num_features)


def test_temporal_enqueues_the_last_keys():
    m = small_temporal(symmetric=True)
    v = make_views()
    loss, _ = m.loss(v)
    assert torch.isfinite(loss)
    keys = m._pending.clone()
    assert keys.shape == (2 * B, 16)
    m.after_step(0.1)
    torch.testing.assert_close(m.queue[:16], keys)
    assert int(m.queue_ptr) == 16
    in_batch = small_temporal(queue_size=0)
    loss, _ = in_batch.loss(v)
    in_batch.after_step(0.1)
    assert torch.isfinite(loss) and in_batch.queue.shape == (0, 16)
