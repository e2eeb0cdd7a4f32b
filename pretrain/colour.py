"""Colour-space conversions on batched tensors (CMC's L / ab split)."""
from __future__ import annotations

import torch

# sRGB (linear) -> CIE XYZ and the D65 / 2-degree reference white, as skimage.color uses them.
_XYZ_FROM_RGB = ((0.412453, 0.357580, 0.180423),
                 (0.212671, 0.715160, 0.072169),
                 (0.019334, 0.119193, 0.950227))
_D65_WHITE = (0.95047, 1.0, 1.08883)


@torch.no_grad()
def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1], (B, 3, H, W) -> CIE Lab (B, 3, H, W): L in [0, 100], a / b roughly in
    [-128, 127]. D65 white, 2-degree observer, sRGB linearisation (IEC 61966-2-1); the same
    formulas and constants as ``skimage.color.rgb2lab``. Not differentiable (runs under no_grad):
    it only prepares inputs. Computed outside autocast in float32 (float64 for float64 input),
    the dtype of the result."""
    if rgb.dim() != 4 or rgb.shape[1] != 3:
        raise ValueError(f"rgb_to_lab expects (B, 3, H, W), got {tuple(rgb.shape)}")
    with torch.autocast(rgb.device.type, enabled=False):
        return _rgb_to_lab(rgb.double() if rgb.dtype == torch.float64 else rgb.float())


def _rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    lin = torch.where(rgb > 0.04045, ((rgb + 0.055) / 1.055).clamp_min(0) ** 2.4, rgb / 12.92)
    m = torch.tensor(_XYZ_FROM_RGB, dtype=rgb.dtype, device=rgb.device)
    white = torch.tensor(_D65_WHITE, dtype=rgb.dtype, device=rgb.device).view(1, 3, 1, 1)
    xyz = torch.einsum("ij,bjhw->bihw", m, lin) / white
    f = torch.where(xyz > 0.008856, xyz.clamp_min(0) ** (1 / 3), 7.787 * xyz + 16.0 / 116.0)
    fx, fy, fz = f.unbind(1)
    return torch.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], 1)
