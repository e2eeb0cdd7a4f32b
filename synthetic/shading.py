"""Solid textures, Lambertian + ambient shading, backgrounds and screen-space occluders.

Textures are *solid* (functions of the object-space position of the surface point), so they
stay attached to the object when it turns. Every function works on whole batches.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .render import Raster

TEXTURES: tuple[str, ...] = ("none", "stripes", "checker", "dots", "marble")
BACKGROUNDS: tuple[str, ...] = ("plain", "noise", "texture", "photo")


@dataclass
class Appearance:
    """Per-object surface: colour (M, 3) and second colour (M, 3) in [0, 1], texture id (M,)
    into TEXTURES, frequency (M,) in cycles per unit, direction (M, 3) unit, phase (M,)."""

    color: torch.Tensor
    color2: torch.Tensor
    texture: torch.Tensor
    freq: torch.Tensor
    direction: torch.Tensor
    phase: torch.Tensor


@dataclass
class Light:
    """Per-image directional light: direction (B, 3) towards the light (camera frame, unit),
    intensity (B,), colour (B, 3), ambient (B,)."""

    direction: torch.Tensor
    intensity: torch.Tensor
    color: torch.Tensor
    ambient: torch.Tensor


def texture_mix(p: torch.Tensor, kind: torch.Tensor, freq: torch.Tensor, direction: torch.Tensor,
                phase: torch.Tensor) -> torch.Tensor:
    """Mixing weight in [0, 1] of the second colour at object-space points p (N, 3)."""
    s = freq[:, None] * p + phase[:, None]
    along = (p * direction).sum(-1) * freq + phase
    stripes = (torch.sin(2 * math.pi * along) > 0).float()
    checker = (torch.floor(s).sum(-1).remainder(2) > 0.5).float()
    dots = ((s - torch.floor(s) - 0.5).norm(dim=-1) < 0.33).float()
    swirl = torch.sin(2 * math.pi * 0.7 * freq * (p[:, [1, 2, 0]] * direction).sum(-1))
    marble = 0.5 + 0.5 * torch.sin(2 * math.pi * along + 2.5 * swirl)
    table = torch.stack([torch.zeros_like(stripes), stripes, checker, dots, marble], -1)
    return table.gather(-1, kind[:, None]).squeeze(-1)


def shade(r: Raster, app: Appearance, light: Light) -> torch.Tensor:
    """Lambertian + ambient colour of every covered pixel -> (B, H, W, 3), zeros elsewhere."""
    cov = r.obj >= 0
    o = r.obj[cov]
    img = cov.nonzero(as_tuple=True)[0]
    p = r.interpolate(r.tri_obj_pos)
    n = F.normalize(r.interpolate(r.tri_nrm), dim=-1)
    t = texture_mix(p, app.texture[o], app.freq[o], app.direction[o], app.phase[o])[:, None]
    albedo = app.color[o] * (1 - t) + app.color2[o] * t
    lambert = (n * light.direction[img]).sum(-1).clamp(min=0)
    gain = light.ambient[img] + light.intensity[img] * lambert
    out = torch.zeros(*r.obj.shape, 3, device=r.obj.device)
    out[cov] = albedo * gain[:, None] * light.color[img]
    return out


def backgrounds(kind: torch.Tensor, color: torch.Tensor, color2: torch.Tensor, u: torch.Tensor,
                size: int, photos: torch.Tensor | None = None) -> torch.Tensor:
    """Backgrounds (B, H, W, 3) in [0, 1].

    kind (B,) into BACKGROUNDS; colours (B, 3); u (B, 8 + 3 * 6 * 6) uniforms that place the
    pattern / photo crop (first 8) and make the low-resolution noise grid (the rest);
    photos (P, 3, S, S) float in [0, 1] for the "photo" kind.
    """
    b = kind.shape[0]
    dev = color.device
    out = color[:, None, None, :].expand(b, size, size, 3).clone()
    gy, gx = torch.meshgrid(torch.linspace(-1, 1, size, device=dev), torch.linspace(-1, 1, size, device=dev),
                            indexing="ij")
    noise = kind == BACKGROUNDS.index("noise")
    if noise.any():
        low = u[noise, 8:8 + 108].reshape(-1, 3, 6, 6)
        up = F.interpolate(low, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)
        w = up.permute(0, 2, 3, 1)
        out[noise] = color[noise, None, None] * (1 - w) + color2[noise, None, None] * w
    tex = kind == BACKGROUNDS.index("texture")
    if tex.any():
        ang = u[tex, 1] * math.pi
        freq = 2 + 6 * u[tex, 2]
        along = gx * torch.cos(ang)[:, None, None] + gy * torch.sin(ang)[:, None, None]
        stripes = (torch.sin(math.pi * freq[:, None, None] * along + 6.28 * u[tex, 3, None, None]) > 0).float()
        checker = ((torch.floor(gx * freq[:, None, None]) + torch.floor(gy * freq[:, None, None])).remainder(2))
        w = torch.where((u[tex, 4] < 0.5)[:, None, None], stripes, checker)[..., None]
        out[tex] = color[tex, None, None] * (1 - w) + color2[tex, None, None] * w
    photo = kind == BACKGROUNDS.index("photo")
    if photo.any():
        if photos is None or len(photos) == 0:
            raise ValueError("background 'photo' needs photos (pass --backgrounds DIR)")
        out[photo] = _photo_crops(photos, u[photo], size)
    return out


def _photo_crops(photos: torch.Tensor, u: torch.Tensor, size: int) -> torch.Tensor:
    """Random square crops (scale 0.3-1 of the photo side) resized to size: (N, H, W, 3)."""
    idx = (u[:, 5] * len(photos)).long().clamp(max=len(photos) - 1)
    s = 0.3 + 0.7 * u[:, 6]
    cx = (1 - s) * (2 * u[:, 7] - 1)
    cy = (1 - s) * (2 * u[:, 1] - 1)
    theta = torch.zeros(len(u), 2, 3, device=u.device)
    theta[:, 0, 0], theta[:, 1, 1], theta[:, 0, 2], theta[:, 1, 2] = s, s, cx, cy
    grid = F.affine_grid(theta, [len(u), 3, size, size], align_corners=False)
    return F.grid_sample(photos[idx], grid, mode="bilinear", align_corners=False).permute(0, 2, 3, 1)


def occluder_masks(kind: torch.Tensor, params: torch.Tensor, size: int) -> torch.Tensor:
    """Screen-space occluder cards in front of the scene -> (B, H, W) bool.

    kind (B,): 0 none, 1 rectangle, 2 ellipse, 3 half-plane; params (B, 5) in pixels/radians:
    centre x, centre y, half-width, half-height, angle (for the half-plane: a point on its edge
    is (cx, cy) and the angle is the direction of its inward normal).
    """
    dev = params.device
    g = torch.arange(size, device=dev, dtype=torch.float32) + 0.5
    gy, gx = torch.meshgrid(g, g, indexing="ij")
    dx = gx - params[:, 0, None, None]
    dy = gy - params[:, 1, None, None]
    c, s = torch.cos(params[:, 4])[:, None, None], torch.sin(params[:, 4])[:, None, None]
    lx, ly = c * dx + s * dy, -s * dx + c * dy
    hw, hh = params[:, 2, None, None].clamp(min=1e-6), params[:, 3, None, None].clamp(min=1e-6)
    rect = (lx.abs() <= hw) & (ly.abs() <= hh)
    ell = (lx / hw) ** 2 + (ly / hh) ** 2 <= 1
    half = lx >= 0
    k = kind[:, None, None]
    return ((k == 1) & rect) | ((k == 2) & ell) | ((k == 3) & half)
