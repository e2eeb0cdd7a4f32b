"""SCDA saliency: the object mask of a backbone's last convolutional feature map.

X.-S. Wei, J.-H. Luo, J. Wu, Z.-H. Zhou, "Selective Convolutional Descriptor Aggregation for
Fine-Grained Image Retrieval", IEEE TIP 2017, Sec. III-B: sum the last conv activations over
channels into an aggregation map ``A`` (h x w), keep the positions where ``A`` exceeds its mean, and
keep only the largest connected component of them. Saliency-guided masking uses this mask to pick
the object's patches on a self-supervised backbone's own features.

SCDA needs a trained backbone, so it is not a per-image entry of
:data:`pretrain.saliency.algos.ALGORITHMS`. :class:`SCDA` loads one only from an sslbench
checkpoint (:func:`pretrain.checkpoint.load_backbone`): no weights are ever downloaded, and a
missing or bad checkpoint is an error, never a randomly initialised network.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from ..checkpoint import load_backbone

# 8-connectivity, as MATLAB's bwlabel default (the released SCDA code labels with bwlabel).
CONNECTIVITY = np.ones((3, 3), dtype=bool)


def scda_map(features: torch.Tensor) -> torch.Tensor:
    """Aggregation map ``A = sum_c features[:, c]``: (B, C, h, w) -> (B, h, w) (Wei et al., Eq. 1)."""
    if features.ndim != 4:
        raise ValueError(f"expected features of shape (B, C, h, w), got {tuple(features.shape)}")
    return features.float().sum(1)


def keep_largest_component(mask: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The largest 8-connected component of a bool (h, w) mask (ties: the larger sum of ``weights``)."""
    labels, n = ndimage.label(mask, structure=CONNECTIVITY)
    if n <= 1:
        return mask
    index = np.arange(1, n + 1)
    sizes = ndimage.sum_labels(np.ones_like(weights), labels, index)
    mass = ndimage.sum_labels(weights, labels, index)
    best = index[np.lexsort((mass, sizes))[-1]]
    return labels == best


def scda_mask(features: torch.Tensor, largest_component: bool = True) -> torch.Tensor:
    """SCDA object mask: bool (B, h, w), True where ``A > mean(A)`` per image (Wei et al., Eq. 2).

    With ``largest_component`` only the largest 8-connected region of that mask is kept (Sec.
    III-B), ties going to the region with the larger summed activation. A constant map has no
    cell above its mean and gives an empty mask.
    """
    agg = scda_map(features)                                  # (B, h, w)
    mask = agg > agg.mean((1, 2), keepdim=True)
    if not largest_component:
        return mask
    a, m = agg.detach().cpu().numpy(), mask.cpu().numpy()
    kept = np.stack([keep_largest_component(m[i], a[i]) for i in range(m.shape[0])]) if m.shape[0] else m
    return torch.from_numpy(kept).to(mask.device)


def resize_mask(mask: torch.Tensor, grid: int) -> torch.Tensor:
    """bool (B, h, w) -> bool (B, grid, grid): area-average the mask, keep cells at least half covered.

    Enlarging by an integer factor repeats each cell exactly (as nearest neighbour).
    """
    if mask.shape[-2:] == (grid, grid):
        return mask
    if grid < 1:
        raise ValueError(f"grid must be >= 1, got {grid}")
    return F.adaptive_avg_pool2d(mask[:, None].float(), (grid, grid))[:, 0] >= 0.5


class SCDA:
    """SCDA masks from the backbone of an sslbench checkpoint.

    Args:
        checkpoint: path of a ``ckpt.pt`` written by ``python -m pretrain``.
        device: where the backbone runs.
        largest_component: keep only the largest connected region of each mask.

    Images are scaled to [0, 1] and normalised with the checkpoint's data mean / std
    (``meta.data``), exactly as in pretraining. Raises FileNotFoundError for a missing path and
    ValueError (:class:`pretrain.checkpoint.CheckpointError`) for an unreadable or foreign file;
    no weights are downloaded.
    """

    def __init__(self, checkpoint: Path | str, device: str | torch.device = "cpu",
                 largest_component: bool = True) -> None:
        path = Path(checkpoint)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such checkpoint file (SCDA needs a trained sslbench ckpt.pt)")
        self.path = path
        self.device = torch.device(device)
        self.largest_component = largest_component
        self.backbone, self.meta = load_backbone(path, self.device)
        data = self.meta.data
        mean, std = torch.tensor(data.mean, dtype=torch.float32), torch.tensor(data.std, dtype=torch.float32)
        if mean.numel() != 3 or std.numel() != 3 or not bool((std > 0).all()):
            raise ValueError(f"{path}: bad data mean / std in checkpoint ({list(data.mean)}, {list(data.std)})")
        self.mean = mean.view(1, 3, 1, 1).to(self.device)
        self.std = std.view(1, 3, 1, 1).to(self.device)

    def __repr__(self) -> str:
        return f"SCDA({str(self.path)!r}, backbone={self.meta.backbone.name!r})"

    @torch.no_grad()
    def features(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (B, 3, H, W) RGB -> the backbone's last feature map (B, C, h, w)."""
        if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.ndim != 4 \
                or images.shape[1] != 3:
            got = f"{images.dtype} {tuple(images.shape)}" if isinstance(images, torch.Tensor) else type(images).__name__
            raise ValueError(f"SCDA expects uint8 RGB images of shape (B, 3, H, W), got {got}")
        x = (images.to(self.device).float().div_(255) - self.mean) / self.std
        return self.backbone.forward_features(x.contiguous())

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (B, 3, H, W) -> bool (B, h, w) mask on the feature grid (7 x 7 for a stride-32 ResNet at 224 px)."""
        return scda_mask(self.features(images), self.largest_component)

    def masks_at(self, images: torch.Tensor, grid: int) -> torch.Tensor:
        """uint8 (B, 3, H, W) -> bool (B, grid, grid): the mask resized with :func:`resize_mask`."""
        return resize_mask(self(images), grid)
