"""Quick synthetic dense and pose protocols on frozen features (CPU-sized).

Newell & Deng (CVPR 2020) measure pretraining on classification, pose, semantic segmentation and
depth of the same synthetic images; Wen et al. (SlotCon, NeurIPS 2022) add unsupervised semantic
segmentation. These are light-head versions that read the cached features of ``measure.features``
(the full Detectron2 / mmseg protocols live in ``evaluate.transfer``):

- ``pose_metrics``: 5-bin pose class (top / azimuth quadrant) by the linear probe on pooled
  features, and azimuth by ridge regression onto (sin, cos): mean / median absolute error (deg).
- ``train_dense_head`` + ``depth_metrics`` / ``segmentation_metrics``: a light FPN-style decoder
  (Kirillov et al.'s semantic FPN, cut down) on the frozen stage pyramid [(B, C_i, h_i, w_i), ...]
  of ``measure.features`` (``dense`` layer), its output bilinearly upsampled to the image size.
  Depth is regressed in log space (standardised by the training targets' mean and std) on object
  pixels (the background is at infinity) and scored
  with abs-rel, RMSE, delta < 1.25 and the scale-invariant log error (Eigen et al., 2014);
  segmentation (background + classes) with mIoU, mAcc, aAcc.
- ``unsupervised_segmentation``: k-means on pixel descriptors (every stage L2-normalised and
  resampled to the stride-8 grid, concatenated), clusters upsampled to the image and Hungarian-matched to
  the classes, mIoU (SlotCon's protocol with k-means standing in for the method's prototypes, so
  every checkpoint can be scored).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as nnf
from scipy.optimize import linear_sum_assignment
from torch import nn

from .clustering import kmeans
from .linear import LinearConfig, linear_probe


@dataclass
class DenseConfig:
    """Light dense heads: hidden channels, AdamW steps / batch / lr, images used per split."""

    hidden: int = 128
    steps: int = 300
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    train_limit: int = 2000
    test_limit: int = 500
    seed: int = 0


# --------------------------------------------------------------------------------------------
# pose


def angle_error(pred_deg: np.ndarray, true_deg: np.ndarray) -> np.ndarray:
    """Absolute angular difference in degrees, in [0, 180]."""
    d = np.abs(np.asarray(pred_deg, np.float64) - np.asarray(true_deg, np.float64)) % 360.0
    return np.minimum(d, 360.0 - d)


def ridge_fit_predict(xtr: np.ndarray, ytr: np.ndarray, xte: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """Ridge regression on standardised features: (N, D), (N, K), (M, D) -> (M, K)."""
    mean, std = xtr.mean(0), xtr.std(0) + 1e-6
    a, b = (xtr - mean) / std, (xte - mean) / std
    a = np.concatenate([a, np.ones((len(a), 1))], 1)
    b = np.concatenate([b, np.ones((len(b), 1))], 1)
    reg = alpha * len(a) * np.eye(a.shape[1])
    reg[-1, -1] = 0.0                                   # no penalty on the bias
    w = np.linalg.solve(a.T @ a + reg, a.T @ ytr)
    return b @ w


def pose_metrics(xtr: np.ndarray, bins_tr: np.ndarray, az_tr: np.ndarray, xte: np.ndarray, bins_te: np.ndarray,
                 az_te: np.ndarray, linear: LinearConfig | None = None) -> dict[str, float]:
    """Pose of frozen pooled features (N, D): ``pose_top1`` (5-bin class, percent) and azimuth
    regression ``azimuth_mae`` / ``azimuth_median`` (degrees, via (sin, cos) ridge targets)."""
    out = {"pose_top1": float(linear_probe(xtr, bins_tr, xte, bins_te, linear or LinearConfig())["top1"])}
    rad = np.deg2rad(az_tr)
    pred = ridge_fit_predict(xtr.astype(np.float64), np.stack([np.sin(rad), np.cos(rad)], 1), xte.astype(np.float64))
    err = angle_error(np.rad2deg(np.arctan2(pred[:, 0], pred[:, 1])) % 360.0, az_te)
    out.update(azimuth_mae=float(err.mean()), azimuth_median=float(np.median(err)))
    return out


# --------------------------------------------------------------------------------------------
# light dense heads


Maps = list[torch.Tensor]


def as_maps(feats: torch.Tensor | Maps) -> Maps:
    """A single (N, C, h, w) map or a pyramid, as a list of maps (finest first)."""
    return [feats] if isinstance(feats, torch.Tensor) else list(feats)


class DenseHead(nn.Module):
    """A light FPN decoder: per stage a 1x1 lateral conv + BN to ``hidden`` channels, upsampled to
    the finest stage and summed, then conv3x3 -> BN -> ReLU -> conv1x1 to ``out_channels``,
    bilinearly upsampled to the image. Maps [(B, C_i, h_i, w_i), ...] -> (B, out, H, W). The
    buffer ``affine`` = (scale, shift) maps the last conv's output to the target's units (depth:
    the training set's std and mean of log depth, so the decoder itself fits standardised targets)."""

    def __init__(self, in_channels: int | list[int], out_channels: int, hidden: int = 128) -> None:
        super().__init__()
        chans = [in_channels] if isinstance(in_channels, int) else list(in_channels)
        self.laterals = nn.ModuleList(nn.Sequential(nn.Conv2d(c, hidden, 1, bias=False), nn.BatchNorm2d(hidden))
                                      for c in chans)
        self.net = nn.Sequential(nn.Conv2d(hidden, hidden, 3, padding=1, bias=False), nn.BatchNorm2d(hidden),
                                 nn.ReLU(inplace=True), nn.Conv2d(hidden, out_channels, 1))
        self.register_buffer("affine", torch.tensor([1.0, 0.0]))

    def forward(self, feats: torch.Tensor | Maps, size: tuple[int, int]) -> torch.Tensor:
        maps = as_maps(feats)
        if len(maps) != len(self.laterals):
            raise ValueError(f"DenseHead built for {len(self.laterals)} maps, got {len(maps)}")
        grid = maps[0].shape[-2:]
        x = sum(nnf.interpolate(lat(m), size=grid, mode="bilinear", align_corners=False) if m.shape[-2:] != grid
                else lat(m) for lat, m in zip(self.laterals, maps))
        out = self.net(x) * self.affine[0] + self.affine[1]
        return nnf.interpolate(out, size=size, mode="bilinear", align_corners=False)


def depth_loss(pred: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
    """L1 between predicted log depth (B, 1, H, W) and log of finite target depth (B, H, W)."""
    valid = torch.isfinite(depth)
    if not valid.any():
        return pred.sum() * 0
    return (pred[:, 0][valid] - depth[valid].log()).abs().mean()


def segmentation_loss(pred: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of logits (B, K, H, W) against int64 labels (B, H, W); 255 (void) is ignored."""
    return nnf.cross_entropy(pred, labels, ignore_index=VOID)


VOID = 255                   # the void / crowd label of VOC and COCO masks
LOSSES = {"depth": depth_loss, "segmentation": segmentation_loss}


def train_dense_head(feats: torch.Tensor | Maps, targets: torch.Tensor, kind: str, out_channels: int,
                     cfg: DenseConfig) -> DenseHead:
    """Fit a :class:`DenseHead` on frozen maps ``feats`` (a pyramid [(N, C_i, h_i, w_i), ...] or one
    (N, C, h, w) map) to ``targets`` (N, H, W): depth (float, +inf = no depth) or segmentation
    labels (int64). Cosine-decayed AdamW; for depth the head's ``affine`` is set to the std and
    mean of the finite targets' log depth first (standardised regression)."""
    if kind not in LOSSES:
        raise ValueError(f"unknown dense task {kind!r}; valid: {', '.join(LOSSES)}")
    maps = as_maps(feats)
    gen = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    head = DenseHead([m.shape[1] for m in maps], out_channels, cfg.hidden)
    if kind == "depth":
        logs = targets[torch.isfinite(targets)].double().log()
        if len(logs):
            head.affine.copy_(torch.tensor([float(logs.std()) if len(logs) > 1 else 1.0, float(logs.mean())]))
            head.affine[0].clamp_(min=1e-6)
    opt = torch.optim.AdamW(head.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / cfg.steps)))
    size = tuple(targets.shape[-2:])
    for step in range(cfg.steps):
        idx = torch.randint(len(targets), (min(cfg.batch_size, len(targets)),), generator=gen)
        loss = LOSSES[kind](head([m[idx].float() for m in maps], size), targets[idx])
        if not torch.isfinite(loss):
            raise FloatingPointError(f"{kind} head: loss became {loss.item()} at step {step}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return head.eval()


@torch.no_grad()
def predict_dense(head: DenseHead, feats: torch.Tensor | Maps, size: tuple[int, int],
                  batch_size: int = 128) -> torch.Tensor:
    """Head outputs (N, K, H, W) for frozen maps (a pyramid or one (N, C, h, w) map)."""
    maps = as_maps(feats)
    n = len(maps[0])
    return torch.cat([head([m[s:s + batch_size].float() for m in maps], size) for s in range(0, n, batch_size)])


def si_log(log_pred: torch.Tensor, depth: torch.Tensor) -> float:
    """Scale-invariant log error (Eigen, Puhrsch, Fergus, NeurIPS 2014; KITTI's SILog) x 100: per
    image sqrt(mean(e^2) - mean(e)^2) with e = log pred - log depth over its finite pixels, averaged
    over images with any. Blind to a global scale, so it scores the relative depth inside an
    image. log_pred (N, 1, H, W), depth (N, H, W)."""
    errs = []
    for lp, d in zip(log_pred[:, 0].double(), depth.double()):
        valid = torch.isfinite(d)
        if valid.any():
            e = lp[valid] - d[valid].log()
            errs.append(float(((e ** 2).mean() - e.mean() ** 2).clamp_min(0).sqrt()))
    return 100.0 * float(np.mean(errs))


def depth_metrics(log_pred: torch.Tensor, depth: torch.Tensor) -> dict[str, float]:
    """abs-rel, RMSE and delta < 1.25 (percent) over pixels with finite depth, and :func:`si_log`;
    log_pred (N, 1, H, W), depth (N, H, W)."""
    valid = torch.isfinite(depth)
    if not valid.any():
        raise ValueError("depth_metrics: no pixel has a finite depth")
    d, p = depth[valid].double(), log_pred[:, 0][valid].double().exp()
    ratio = torch.maximum(p / d, d / p)
    return {"abs_rel": float(((p - d).abs() / d).mean()), "rmse": float(((p - d) ** 2).mean().sqrt()),
            "delta1": float(100.0 * (ratio < 1.25).double().mean()), "si_log": si_log(log_pred, depth)}


def confusion(pred: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """(K, K) pixel counts, rows = ground truth, columns = prediction; both int arrays, labels
    outside [0, K) (VOC's and COCO's void / crowd 255) are left out, as mmseg ignores them."""
    labels, pred = labels.astype(np.int64).ravel(), pred.astype(np.int64).ravel()
    keep = (labels >= 0) & (labels < num_classes)
    idx = labels[keep] * num_classes + pred[keep]
    return np.bincount(idx, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def segmentation_metrics(table: np.ndarray) -> dict[str, float]:
    """mIoU and mAcc over classes present in the ground truth or the prediction, aAcc (percent);
    the mmseg definitions, from a confusion table (K, K) with ground truth in rows."""
    table = table.astype(np.float64)
    tp, gt, pr = np.diag(table), table.sum(1), table.sum(0)
    union = gt + pr - tp
    seen = union > 0
    iou = tp[seen] / union[seen]
    acc = tp[gt > 0] / gt[gt > 0]
    return {"miou": float(100 * iou.mean()), "macc": float(100 * acc.mean()),
            "aacc": float(100 * tp.sum() / table.sum())}


GRID_STRIDE = 8


def pixel_descriptors(feats: torch.Tensor | Maps, image_side: int) -> torch.Tensor:
    """One descriptor per cell of a stride-8 grid: the finest map of stride >= ``GRID_STRIDE``
    relative to ``image_side`` (the coarsest map when none is), every map L2-normalised over
    channels, resampled to that grid (area pooling down, bilinear up), concatenated and scaled by
    1 / sqrt(#maps) -> (N, sum C_i, h, w) of unit norm."""
    maps = as_maps(feats)
    coarse = [m for m in maps if image_side // m.shape[-1] >= GRID_STRIDE]
    grid = (coarse[0] if coarse else maps[-1]).shape[-2:]
    parts = []
    for m in maps:
        m = nnf.normalize(m.float(), dim=1)
        if m.shape[-2:] != grid:
            m = (nnf.adaptive_avg_pool2d(m, grid) if m.shape[-1] > grid[-1]
                 else nnf.interpolate(m, size=grid, mode="bilinear", align_corners=False))
        parts.append(nnf.normalize(m, dim=1))
    return torch.cat(parts, 1) / len(parts) ** 0.5


def unsupervised_segmentation(feats: torch.Tensor | Maps, labels: np.ndarray, num_classes: int, seed: int = 0,
                              n_init: int = 3, max_points: int = 50_000) -> dict[str, float]:
    """k-means (``num_classes`` clusters) on :func:`pixel_descriptors` of frozen maps (a pyramid
    or one (N, C, h, w) map), assignments upsampled (nearest) to the label size (N, H, W), clusters
    Hungarian-matched to classes over all pixels; returns :func:`segmentation_metrics` of the
    matched prediction. Clustering fits on at most ``max_points`` seeded random pixels and
    assigns all of them."""
    desc = pixel_descriptors(feats, labels.shape[-1])
    n, c, h, w = desc.shape
    pix = desc.permute(0, 2, 3, 1).reshape(-1, c).numpy()
    rng = np.random.default_rng(seed)
    fit_rows = rng.choice(len(pix), min(max_points, len(pix)), replace=False)
    sample = pix[fit_rows]
    assign = kmeans(sample, num_classes, seed=seed, n_init=n_init)
    centres = np.stack([sample[assign == k].mean(0) if (assign == k).any() else np.zeros(c, np.float32)
                        for k in range(num_classes)])
    nearest = pix @ centres.T - 0.5 * (centres ** 2).sum(1)        # argmax = nearest centre
    clusters = nearest.argmax(1).reshape(n, 1, h, w)
    up = nnf.interpolate(torch.from_numpy(clusters).float(), size=labels.shape[-2:], mode="nearest")
    up = up[:, 0].long().numpy()
    table = confusion(up, labels, num_classes)                     # rows: classes, columns: clusters
    rows, cols = linear_sum_assignment(table, maximize=True)
    mapping = np.zeros(num_classes, dtype=np.int64)
    mapping[cols] = rows
    return segmentation_metrics(confusion(mapping[up], labels, num_classes))


__all__ = ["DenseConfig", "DenseHead", "as_maps", "pixel_descriptors", "si_log", "angle_error", "ridge_fit_predict",
           "pose_metrics", "train_dense_head", "predict_dense", "depth_metrics", "confusion", "segmentation_metrics",
           "unsupervised_segmentation"]
