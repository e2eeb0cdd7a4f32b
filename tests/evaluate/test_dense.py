"""Pose, depth, segmentation and unsupervised segmentation protocols (evaluate.dense)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from evaluate import dense as D


def test_angle_error_wraps() -> None:
    np.testing.assert_allclose(D.angle_error([350, 10, 180, 0], [10, 350, 0, 0]), [20, 20, 180, 0])


def test_pose_metrics_on_features_that_encode_the_pose() -> None:
    rng = np.random.default_rng(0)
    az = rng.uniform(0, 360, 600)
    bins = (((az + 45) % 360) // 90).astype(int)
    good = np.stack([np.sin(np.deg2rad(az)), np.cos(np.deg2rad(az))], 1) + 0.05 * rng.normal(size=(600, 2))
    noise = rng.normal(size=(600, 2))
    feats = {"good": np.concatenate([good, noise], 1), "noise": np.concatenate([noise, rng.normal(size=(600, 2))], 1)}
    out = {k: D.pose_metrics(f[:400], bins[:400], az[:400], f[400:], bins[400:], az[400:]) for k, f in feats.items()}
    assert out["good"]["pose_top1"] > 90 and out["good"]["azimuth_mae"] < 10
    assert out["noise"]["pose_top1"] < 45 and out["noise"]["azimuth_mae"] > 60


def test_segmentation_metrics_match_hand_counts() -> None:
    labels = np.array([[0, 0, 1, 1], [2, 2, 2, 0]])
    pred = np.array([[0, 1, 1, 1], [2, 2, 0, 0]])
    table = D.confusion(pred, labels, 4)                              # class 3 absent in both: not averaged
    out = D.segmentation_metrics(table)
    ious = [2 / 4, 2 / 3, 2 / 3]                                        # tp / (gt + pred - tp)
    accs = [2 / 3, 2 / 2, 2 / 3]
    assert out["miou"] == pytest.approx(100 * np.mean(ious))
    assert out["macc"] == pytest.approx(100 * np.mean(accs))
    assert out["aacc"] == pytest.approx(100 * 6 / 8)


def test_depth_metrics_ignore_the_background() -> None:
    depth = torch.tensor([[[2.0, 4.0], [float("inf"), float("inf")]]])
    pred = torch.log(torch.tensor([[[[2.0, 5.0], [9.0, 9.0]]]]))
    out = D.depth_metrics(pred, depth)
    assert out["abs_rel"] == pytest.approx((0 + 0.25) / 2)
    assert out["rmse"] == pytest.approx(np.sqrt(0.5))
    assert out["delta1"] == pytest.approx(50.0)                         # 5 / 4 = 1.25 is not < 1.25
    with pytest.raises(ValueError, match="no pixel"):
        D.depth_metrics(pred, torch.full_like(depth, float("inf")))


def _toy_maps(n: int = 48, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Feature maps (n, 8, 4, 4) whose first channels one-hot encode a 3-class label map (n, 16, 16)."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randint(0, 3, (n, 4, 4), generator=g)
    feats = torch.randn(n, 8, 4, 4, generator=g) * 0.1
    feats[:, :3] += torch.nn.functional.one_hot(coarse, 3).permute(0, 3, 1, 2).float() * 3
    labels = coarse.repeat_interleave(4, 1).repeat_interleave(4, 2)
    return feats, labels


@pytest.mark.parametrize("kind", list(D.LOSSES))
def test_dense_heads_learn_what_the_features_encode(kind: str) -> None:
    feats, labels = _toy_maps()
    cfg = D.DenseConfig(hidden=16, steps=150, batch_size=16, lr=1e-2)
    if kind == "depth":
        target = 1.0 + labels.float()
        target[:, 0, :] = float("inf")                                   # background rows are ignored
        err = {}
        for name, f in (("encoded", feats), ("noise", torch.randn_like(feats))):
            head = D.train_dense_head(f[:32], target[:32], kind, 1, cfg)
            err[name] = D.depth_metrics(D.predict_dense(head, f[32:], (16, 16)), target[32:])["abs_rel"]
        assert err["encoded"] < 0.2 and err["encoded"] < 0.6 * err["noise"], err
    else:
        head = D.train_dense_head(feats[:32], labels[:32], kind, 3, cfg)
        pred = D.predict_dense(head, feats[32:], (16, 16)).argmax(1).numpy()
        assert D.segmentation_metrics(D.confusion(pred, labels[32:].numpy(), 3))["miou"] > 60


def test_dense_head_rejects_unknown_task() -> None:
    with pytest.raises(ValueError, match="unknown dense task 'normals'"):
        D.train_dense_head(torch.zeros(2, 4, 2, 2), torch.zeros(2, 4, 4), "normals", 1, D.DenseConfig(steps=1))


def test_unsupervised_segmentation_recovers_clusters_under_any_naming() -> None:
    feats, labels = _toy_maps()
    perm = np.array([2, 0, 1])                                           # class ids need not match clusters
    out = D.unsupervised_segmentation(feats, perm[labels.numpy()], 3, seed=0)
    assert out["miou"] > 95
    noise = torch.randn_like(feats)
    assert D.unsupervised_segmentation(noise, labels.numpy(), 3, seed=0)["miou"] < 60


def test_si_log_is_blind_to_a_global_scale_and_counts_relative_error() -> None:
    depth = torch.tensor([[[2.0, 4.0], [float("inf"), 8.0]]])
    assert D.si_log(torch.log(3 * depth).nan_to_num(posinf=0.0).unsqueeze(1), depth) == pytest.approx(0.0, abs=1e-9)
    pred = torch.log(torch.tensor([[[[2.0, 4.0], [1.0, 16.0]]]]))      # the last pixel off by x2
    e = np.array([0.0, 0.0, np.log(2)])
    assert D.si_log(pred, depth) == pytest.approx(100 * np.sqrt((e ** 2).mean() - e.mean() ** 2))
    assert "si_log" in D.depth_metrics(pred, depth)


def _pyramid(n: int = 48, seed: int = 0, up: int = 2) -> tuple[list[torch.Tensor], torch.Tensor]:
    """A fine (n, 4, 8, 8) map that one-hot encodes a 3-class label map (n, 8 up, 8 up) at 8 x 8, and
    a coarse (n, 8, 2, 2) map of noise (what a last stage of stride 32 sees of small objects)."""
    g = torch.Generator().manual_seed(seed)
    coarse_labels = torch.randint(0, 3, (n, 8, 8), generator=g)
    fine = torch.randn(n, 4, 8, 8, generator=g) * 0.1
    fine[:, :3] += torch.nn.functional.one_hot(coarse_labels, 3).permute(0, 3, 1, 2).float() * 3
    labels = coarse_labels.repeat_interleave(up, 1).repeat_interleave(up, 2)
    return [fine, torch.randn(n, 8, 2, 2, generator=g)], labels


def test_dense_head_reads_the_fine_stages_of_a_pyramid() -> None:
    maps, labels = _pyramid()
    cfg = D.DenseConfig(hidden=16, steps=150, batch_size=16, lr=1e-2)
    miou, heads = {}, {}
    for name, feats in (("pyramid", maps), ("last stage", maps[-1:])):
        heads[name] = D.train_dense_head([m[:32] for m in feats], labels[:32], "segmentation", 3, cfg)
        pred = D.predict_dense(heads[name], [m[32:] for m in feats], (16, 16)).argmax(1).numpy()
        miou[name] = D.segmentation_metrics(D.confusion(pred, labels[32:].numpy(), 3))["miou"]
    assert miou["pyramid"] > 80 and miou["last stage"] < 50, miou
    with pytest.raises(ValueError, match="built for 2 maps, got 1"):
        heads["pyramid"](maps[:1], (16, 16))


def test_pixel_descriptors_live_on_the_stride_8_grid_and_have_unit_norm() -> None:
    maps = [torch.randn(2, 4, 16, 16), torch.randn(2, 6, 8, 8), torch.randn(2, 8, 2, 2)]   # 64-px image
    desc = D.pixel_descriptors(maps, 64)
    assert desc.shape == (2, 18, 8, 8)
    torch.testing.assert_close(desc.norm(dim=1), torch.ones(2, 8, 8))
    assert D.pixel_descriptors(maps[:1], 64).shape == (2, 4, 16, 16)   # nothing that coarse: the coarsest
    assert D.pixel_descriptors(maps, 16).shape == (2, 18, 2, 2)


def test_unsupervised_segmentation_on_a_pyramid() -> None:
    maps, labels = _pyramid(up=8)                                        # the fine map has stride 8
    assert D.unsupervised_segmentation(maps, labels.numpy(), 3, seed=0)["miou"] > 90


def test_depth_head_fits_standardised_log_depth_at_any_scale() -> None:
    feats, labels = _toy_maps()
    target = 50.0 * (1.0 + 0.1 * labels.float())                       # far away, 10% relative differences
    cfg = D.DenseConfig(hidden=16, steps=150, batch_size=16, lr=1e-2)
    head = D.train_dense_head(feats[:32], target[:32], "depth", 1, cfg)
    logs = target[:32].log().double()
    torch.testing.assert_close(head.affine.double(), torch.stack([logs.std(), logs.mean()]), rtol=1e-5, atol=1e-6)
    out = D.depth_metrics(D.predict_dense(head, feats[32:], (16, 16)), target[32:])
    flat = D.si_log(torch.zeros(16, 1, 16, 16), target[32:])              # a constant per image: no relative depth
    assert out["abs_rel"] < 0.03 and out["si_log"] < 0.5 * flat, (out, flat)
