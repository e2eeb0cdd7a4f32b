"""A batched triangle rasteriser with a perspective camera, a depth buffer and Lambertian shading.

All images of a batch are rendered together in torch (CPU or GPU): every triangle of every
object is projected, back faces are culled, and triangles are grouped by the size of their
screen bounding box so that each group is tested against a fixed Kx x Ky block of pixel centres
(no per-triangle Python loop). Depth testing is a ``scatter_reduce(amin)`` of a 64-bit key
(quantised depth in the high bits, triangle id in the low bits), so the nearest surface wins
deterministically. Attributes (normal, object-space position for solid textures, depth) are
interpolated with perspective-correct barycentric coordinates at the winning triangle.

Camera frame: x right, y up, the camera at the origin looking down -z; depth = -z. Image
coordinates: u = W/2 + f x / depth, v = H/2 - f y / depth, pixel centres at integer + 0.5.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .meshes import Mesh

_DEPTH_LEVELS = 1 << 30
_ID_BITS = 32


@dataclass
class MeshBank:
    """All meshes of a dataset padded to one face count, ready to gather by mesh id.

    ``tri_pos`` and ``tri_nrm``: (num_meshes, F, 3, 3) object-space vertex positions / normals
    per face corner; ``valid``: (num_meshes, F) bool (padding faces are False).
    """

    tri_pos: torch.Tensor
    tri_nrm: torch.Tensor
    valid: torch.Tensor

    @classmethod
    def from_meshes(cls, meshes: list[Mesh]) -> "MeshBank":
        fmax = max(m.num_faces for m in meshes)
        pos = np.zeros((len(meshes), fmax, 3, 3), np.float32)
        nrm = np.zeros_like(pos)
        valid = np.zeros((len(meshes), fmax), bool)
        for i, m in enumerate(meshes):
            pos[i, : m.num_faces] = m.vertices[m.faces]
            nrm[i, : m.num_faces] = m.normals[m.faces]
            valid[i, : m.num_faces] = True
        return cls(torch.from_numpy(pos), torch.from_numpy(nrm), torch.from_numpy(valid))


@dataclass
class ObjectBatch:
    """M objects placed in B images. Shapes: mesh (M,), image (M,), rotation (M, 3, 3)
    object->camera, translation (M, 3) camera frame (z < 0), scale (M,)."""

    mesh: torch.Tensor
    image: torch.Tensor
    rotation: torch.Tensor
    translation: torch.Tensor
    scale: torch.Tensor


@dataclass
class Raster:
    """Result of rasterising B images of H x W.

    ``tri``: (B, H, W) int64 index of the visible triangle (-1 = empty); ``obj``: (B, H, W) index
    into the ObjectBatch (-1 = empty); ``depth``: (B, H, W) float (inf = empty); ``bary``:
    (P, 3) perspective-correct barycentrics of the P covered pixels (``tri >= 0``, in row-major
    order); ``footprint``: (M, H, W) bool, where each
    object would be visible if nothing were in front of it; plus the per-triangle camera-space
    normals ``tri_nrm`` (T, 3, 3) and object-space positions ``tri_obj_pos`` (T, 3, 3).
    """

    tri: torch.Tensor
    obj: torch.Tensor
    depth: torch.Tensor
    bary: torch.Tensor
    footprint: torch.Tensor
    tri_nrm: torch.Tensor
    tri_obj_pos: torch.Tensor

    def interpolate(self, attr: torch.Tensor) -> torch.Tensor:
        """Interpolate a per-corner attribute (T, 3, C) at the P covered pixels -> (P, C)."""
        return torch.einsum("pkc,pk->pc", attr[self.tri[self.tri >= 0]], self.bary)


def focal_length(size: int, fov_deg: float) -> float:
    """Focal length in pixels of a square image with the given full field of view."""
    return (size / 2) / math.tan(math.radians(fov_deg) / 2)


def rasterize(bank: MeshBank, objs: ObjectBatch, num_images: int, size: int, fov_deg: float) -> Raster:
    """Rasterise the objects of ``num_images`` square images of ``size`` pixels."""
    dev = objs.rotation.device
    h = w = size
    f = focal_length(size, fov_deg)
    # gather the faces of every object: (M, F, 3, 3) -> flat (T, 3, 3) after dropping padding
    pos = bank.tri_pos.to(dev)[objs.mesh]
    nrm = bank.tri_nrm.to(dev)[objs.mesh]
    valid = bank.valid.to(dev)[objs.mesh]
    rot = objs.rotation[:, None, None]                       # (M, 1, 1, 3, 3)
    cam = (rot @ (pos * objs.scale[:, None, None, None])[..., None])[..., 0] + objs.translation[:, None, None]
    cnrm = (rot @ nrm[..., None])[..., 0]
    face_n = torch.cross(cam[..., 1, :] - cam[..., 0, :], cam[..., 2, :] - cam[..., 0, :], dim=-1)
    front = (face_n * cam[..., 0, :]).sum(-1) < 0            # facing the camera at the origin
    depth = -cam[..., 2]                                     # (M, F, 3)
    keep = valid & front & (depth.min(-1).values > 1e-3)
    m_idx, f_idx = keep.nonzero(as_tuple=True)
    cam, cnrm, depth, obj_pos = cam[m_idx, f_idx], cnrm[m_idx, f_idx], depth[m_idx, f_idx], pos[m_idx, f_idx]
    tri_obj = m_idx
    tri_img = objs.image[m_idx]
    x = w / 2 + f * cam[..., 0] / depth                      # (T, 3) screen coordinates
    y = h / 2 - f * cam[..., 1] / depth

    # edge functions w_i(p) = A_i px + B_i py + C_i for the edge opposite vertex i
    j, k = [1, 2, 0], [2, 0, 1]
    ea = y[:, j] - y[:, k]
    eb = x[:, k] - x[:, j]
    ec = x[:, j] * y[:, k] - x[:, k] * y[:, j]
    area = ec.sum(-1)
    ok = area.abs() > 1e-9
    inv_area = torch.where(ok, 1.0 / torch.where(ok, area, torch.ones_like(area)), torch.zeros_like(area))

    x0 = torch.ceil(x.min(-1).values - 0.5).clamp(0, w - 1).long()
    x1 = torch.floor(x.max(-1).values - 0.5).clamp(-1, w - 1).long()
    y0 = torch.ceil(y.min(-1).values - 0.5).clamp(0, h - 1).long()
    y1 = torch.floor(y.max(-1).values - 0.5).clamp(-1, h - 1).long()
    on_screen = ok & (x1 >= x0) & (y1 >= y0) & (x.max(-1).values > 0) & (y.max(-1).values > 0)
    on_screen &= (x.min(-1).values < w) & (y.min(-1).values < h)

    zmin = float(depth.min()) if depth.numel() else 1.0
    zmax = float(depth.max()) if depth.numel() else 2.0
    zscale = (_DEPTH_LEVELS - 1) / max(zmax - zmin, 1e-6)
    sentinel = torch.iinfo(torch.int64).max
    zbuf = torch.full((num_images * h * w,), sentinel, dtype=torch.int64, device=dev)
    foot = torch.zeros(objs.mesh.shape[0] * h * w, dtype=torch.bool, device=dev)
    inv_z = 1.0 / depth

    # orient every triangle's edge functions so that inside means all three are >= 0
    sgn = torch.sign(area)[:, None]
    ea_s, eb_s = ea * sgn, eb * sgn
    base = ea_s * (x0[:, None] + 0.5) + eb_s * (y0[:, None] + 0.5) + ec * sgn   # at the block's corner
    bx = torch.ceil(torch.log2((x1 - x0 + 1).clamp(min=1).float())).long()
    by = torch.ceil(torch.log2((y1 - y0 + 1).clamp(min=1).float())).long()
    bucket = bx * 16 + by
    for code in torch.unique(bucket[on_screen]).tolist():
        sel = (on_screen & (bucket == code)).nonzero(as_tuple=True)[0]
        kx, ky = 1 << (code // 16), 1 << (code % 16)
        dy, dx = (g.reshape(-1) for g in torch.meshgrid(torch.arange(ky, device=dev), torch.arange(kx, device=dev),
                                                        indexing="ij"))
        ew = base[sel, None, :] + ea_s[sel, None, :] * dx[None, :, None].float() \
            + eb_s[sel, None, :] * dy[None, :, None].float()             # (S, kx*ky, 3) edge values
        hit = (ew >= 0).all(-1)
        if kx > 1:
            hit &= dx[None, :] <= (x1 - x0)[sel, None]
        if ky > 1:
            hit &= dy[None, :] <= (y1 - y0)[sel, None]
        s_i, c_i = hit.nonzero(as_tuple=True)
        t_i = sel[s_i]
        px, py = x0[t_i] + dx[c_i], y0[t_i] + dy[c_i]
        bw = ew[s_i, c_i] * inv_area[t_i, None].abs()                  # screen-space barycentrics
        pz = 1.0 / (bw * inv_z[t_i]).sum(-1)                            # perspective-correct depth
        pix = (tri_img[t_i] * h + py) * w + px
        zq = ((pz - zmin) * zscale).clamp(0, _DEPTH_LEVELS - 1).long()
        zbuf.scatter_reduce_(0, pix, (zq << _ID_BITS) | t_i, reduce="amin")
        foot[(tri_obj[t_i] * h + py) * w + px] = True

    covered = zbuf != sentinel
    tri = torch.where(covered, zbuf & ((1 << _ID_BITS) - 1), torch.full_like(zbuf, -1)).view(num_images, h, w)
    # perspective-correct barycentrics of the winning triangle at each covered pixel centre
    cov = tri >= 0
    _, py, px = cov.nonzero(as_tuple=True)
    t = tri[cov]
    bw = (ea[t] * (px[:, None] + 0.5) + eb[t] * (py[:, None] + 0.5) + ec[t]) * inv_area[t][:, None]
    persp = bw * inv_z[t]
    pdepth = 1.0 / persp.sum(-1).clamp(min=1e-12)
    depth_map = torch.full((num_images, h, w), math.inf, device=dev)
    depth_map[cov] = pdepth
    obj_map = torch.full_like(tri, -1)
    obj_map[cov] = tri_obj[t]
    return Raster(tri=tri, obj=obj_map, depth=depth_map, bary=persp * pdepth[:, None],
                  footprint=foot.view(-1, h, w), tri_nrm=cnrm, tri_obj_pos=obj_pos)


def rotation_matrix(azimuth: torch.Tensor, elevation: torch.Tensor, roll: torch.Tensor) -> torch.Tensor:
    """Object->camera rotation (N, 3, 3) for viewing angles in degrees.

    The camera orbits the object: azimuth turns the object about its up axis, elevation tilts
    its top towards the camera (90 = seen from straight above), roll turns the image plane.
    """
    a, e, r = (torch.deg2rad(t) for t in (azimuth, elevation, roll))
    one, zero = torch.ones_like(a), torch.zeros_like(a)

    def mat(rows: list[list[torch.Tensor]]) -> torch.Tensor:
        return torch.stack([torch.stack(row, -1) for row in rows], -2)

    ry = mat([[torch.cos(a), zero, -torch.sin(a)], [zero, one, zero], [torch.sin(a), zero, torch.cos(a)]])
    rx = mat([[one, zero, zero], [zero, torch.cos(e), -torch.sin(e)], [zero, torch.sin(e), torch.cos(e)]])
    rz = mat([[torch.cos(r), -torch.sin(r), zero], [torch.sin(r), torch.cos(r), zero], [zero, zero, one]])
    return rz @ rx @ ry
