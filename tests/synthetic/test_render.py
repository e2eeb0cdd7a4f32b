"""The rasteriser against answers known in closed form."""
from __future__ import annotations

import math

import torch

from synthetic.meshes import build_mesh
from synthetic.render import MeshBank, ObjectBatch, focal_length, rasterize, rotation_matrix
from synthetic.shading import Appearance, Light, shade

SIZE, FOV = 96, 40.0


def _spheres(depths: list[float], xs: list[float]) -> tuple[MeshBank, ObjectBatch]:
    bank = MeshBank.from_meshes([build_mesh("ellipsoid", 0), _sphere()])
    m = len(depths)
    objs = ObjectBatch(mesh=torch.ones(m, dtype=torch.long), image=torch.zeros(m, dtype=torch.long),
                       rotation=torch.eye(3).expand(m, 3, 3),
                       translation=torch.tensor([[x, 0, -d] for x, d in zip(xs, depths)]),
                       scale=torch.ones(m))
    return bank, objs


def _sphere():
    from synthetic.meshes import arc, assemble, revolve

    return assemble([revolve(arc(1.0, 0.0, math.pi, 0.0, 33), 64)], {})


def test_sphere_silhouette_and_depth() -> None:
    bank, objs = _spheres([5.0], [0.0])
    r = rasterize(bank, objs, 1, SIZE, FOV)
    f = focal_length(SIZE, FOV)
    radius_px = f / math.sqrt(5.0**2 - 1)          # tangent cone of a unit sphere at distance 5
    area = (r.obj[0] >= 0).sum().item()
    assert abs(area / (math.pi * radius_px**2) - 1) < 0.03
    centre = r.depth[0, SIZE // 2, SIZE // 2].item()
    assert abs(centre - 4.0) < 0.01                 # nearest point of the sphere
    assert torch.isinf(r.depth[0, 0, 0])
    assert torch.equal(r.footprint[0], r.obj[0] == 0)


def test_nearer_object_wins_and_footprint_keeps_hidden_part() -> None:
    bank, objs = _spheres([6.0, 4.0], [0.0, 0.6])
    r = rasterize(bank, objs, 1, SIZE, FOV)
    overlap = r.footprint[0] & r.footprint[1]
    assert overlap.sum() > 50
    assert (r.obj[0][overlap] == 1).all()           # the nearer sphere covers the overlap
    assert (r.obj[0] == 0).sum() < r.footprint[0].sum()


def test_light_from_camera_is_brightest_at_the_centre() -> None:
    bank, objs = _spheres([5.0], [0.0])
    r = rasterize(bank, objs, 1, SIZE, FOV)
    app = Appearance(color=torch.ones(1, 3), color2=torch.ones(1, 3), texture=torch.zeros(1, dtype=torch.long),
                     freq=torch.ones(1), direction=torch.tensor([[1.0, 0, 0]]), phase=torch.zeros(1))
    light = Light(direction=torch.tensor([[0.0, 0.0, 1.0]]), intensity=torch.ones(1), color=torch.ones(1, 3),
                  ambient=torch.zeros(1))
    img = shade(r, app, light)[0, ..., 0]
    c = img[SIZE // 2, SIZE // 2].item()
    assert c > 0.98 and c >= img.max().item() - 1e-3
    edge = img[SIZE // 2, (r.obj[0, SIZE // 2] >= 0).nonzero().min()].item()
    assert edge < 0.5                               # grazing light at the silhouette


def test_rotation_matrix() -> None:
    a = torch.tensor([0.0, 30.0, 200.0])
    rm = rotation_matrix(a, torch.tensor([90.0, 10.0, -20.0]), torch.tensor([0.0, 5.0, 15.0]))
    assert torch.allclose(rm @ rm.transpose(1, 2), torch.eye(3).expand(3, 3, 3), atol=1e-6)
    assert torch.allclose(torch.linalg.det(rm), torch.ones(3), atol=1e-6)
    top = rm[0] @ torch.tensor([0.0, 1.0, 0.0])      # elevation 90: the top faces the camera
    assert torch.allclose(top, torch.tensor([0.0, 0.0, 1.0]), atol=1e-6)
