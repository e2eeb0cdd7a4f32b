"""Triangle meshes of the shape classes, with per-instance shape parameters.

Every class is a closed triangle mesh built from parametric parts (surfaces of revolution,
(u, v) grids, flat polygons). An *instance* of a class is one draw of its shape parameters
(proportions, bevel, holes, bumps, ...) from a generator seeded by (class, instance), so
instance ``i`` of a class is the same object in every dataset. Meshes are centred and scaled
to a unit bounding sphere; faces are oriented outward (checked with a ray-parity inside test,
so the renderer can cull back faces) and vertex normals are averaged within each
smooth part, so that sharp edges between parts stay sharp.

Object frame: y is up; the canonical view looks at the object from +z.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import numpy as np

Part = tuple[np.ndarray, np.ndarray]  # vertices (V, 3) float64, faces (F, 3) int64
_INSTANCE_SEED = 20_201_124


@dataclass(frozen=True)
class Mesh:
    """A closed triangle mesh: vertices (V, 3), faces (F, 3), vertex normals (V, 3), float32."""

    vertices: np.ndarray
    faces: np.ndarray
    normals: np.ndarray
    params: dict

    @property
    def num_faces(self) -> int:
        return int(self.faces.shape[0])


# --------------------------------------------------------------------------- part builders
def grid_part(points: np.ndarray, wrap_u: bool = False, wrap_v: bool = False) -> Part:
    """Triangulate a (nu, nv, 3) grid of surface points into quads split in two triangles."""
    nu, nv, _ = points.shape
    iu = np.arange(nu if wrap_u else nu - 1)
    iv = np.arange(nv if wrap_v else nv - 1)
    u0, v0 = np.meshgrid(iu, iv, indexing="ij")
    u1, v1 = (u0 + 1) % nu, (v0 + 1) % nv
    a, b, c, d = u0 * nv + v0, u1 * nv + v0, u1 * nv + v1, u0 * nv + v1
    faces = np.concatenate([np.stack([a, b, c], -1).reshape(-1, 3), np.stack([a, c, d], -1).reshape(-1, 3)])
    return points.reshape(-1, 3).astype(np.float64), faces.astype(np.int64)


def revolve(profile: np.ndarray, segments: int = 32) -> Part:
    """Surface of revolution about the y axis of a (P, 2) profile of (radius, y) points."""
    theta = np.linspace(0.0, 2 * np.pi, segments, endpoint=False)
    r, y = profile[:, 0], profile[:, 1]
    pts = np.stack([np.cos(theta)[:, None] * r, np.broadcast_to(y, (segments, len(y))),
                    np.sin(theta)[:, None] * r], axis=-1)
    return grid_part(pts, wrap_u=True)


def polygon_part(points: np.ndarray) -> Part:
    """Fan triangulation of a planar convex polygon given as (K, 3) points in order."""
    k = len(points)
    faces = np.stack([np.zeros(k - 2), np.arange(1, k - 1), np.arange(2, k)], -1)
    return np.asarray(points, np.float64), faces.astype(np.int64)


def arc(r: float, y0: float, a0: float, a1: float, n: int) -> np.ndarray:
    """(n, 2) profile points of a circle of radius r centred at (0, y0), angles a0..a1 from +y."""
    a = np.linspace(a0, a1, n)
    return np.stack([r * np.sin(a), y0 + r * np.cos(a)], -1)


def line(p0: tuple[float, float], p1: tuple[float, float], n: int = 2) -> np.ndarray:
    t = np.linspace(0.0, 1.0, n)[:, None]
    return (1 - t) * np.asarray(p0) + t * np.asarray(p1)


# --------------------------------------------------------------------------- shape classes
def _superquadric(p: dict) -> list[Part]:
    """Rounded box: a superellipsoid; exponent e -> 0 gives a sharp cube, larger e bevels it."""
    u = np.linspace(-np.pi, np.pi, 32, endpoint=False)
    v = np.linspace(-np.pi / 2, np.pi / 2, 17)
    uu, vv = np.meshgrid(u, v, indexing="ij")

    def f(x: np.ndarray) -> np.ndarray:
        return np.sign(x) * np.abs(x) ** p["e"]

    pts = np.stack([p["a"] * f(np.cos(vv)) * f(np.cos(uu)), p["c"] * f(np.sin(vv)),
                    p["b"] * f(np.cos(vv)) * f(np.sin(uu))], -1)
    return [grid_part(pts, wrap_u=True)]


def _bumpy_sphere(p: dict) -> list[Part]:
    """Sphere with radial bumps r = 1 + amp sin(k u) sin(k v) (amp 0 gives a plain sphere)."""
    u = np.linspace(0, 2 * np.pi, 32, endpoint=False)
    v = np.linspace(0, np.pi, 17)
    uu, vv = np.meshgrid(u, v, indexing="ij")
    r = 1.0 + p["amp"] * np.sin(p["k"] * uu) * np.sin(p["k"] * vv)
    pts = np.stack([r * np.sin(vv) * np.cos(uu), p["squash"] * r * np.cos(vv), r * np.sin(vv) * np.sin(uu)], -1)
    return [grid_part(pts, wrap_u=True)]


def _ellipsoid(p: dict) -> list[Part]:
    prof = arc(1.0, 0.0, np.pi, 0.0, 13)
    v, f = revolve(prof, 28)
    return [(v * np.array([p["a"], p["c"], p["b"]]), f)]


def _cylinder(p: dict) -> list[Part]:
    """Cylinder of radius r and height h; instances with a hole are tubes (inner radius ri)."""
    r, h, ri = p["r"], p["h"], p["hole"] * p["r"]
    parts = [revolve(line((r, -h / 2), (r, h / 2), 4)),
             revolve(line((ri, -h / 2), (r, -h / 2))[::-1]),
             revolve(line((r, h / 2), (ri, h / 2)))]
    if ri > 0:
        parts.append(revolve(line((ri, h / 2), (ri, -h / 2), 4)))
    return parts


def _cone(p: dict) -> list[Part]:
    """Cone (top radius 0) or truncated cone, base radius r, height h."""
    r, h, rt = p["r"], p["h"], p["top"] * p["r"]
    parts = [revolve(line((r, -h / 2), (rt, h / 2), 8)), revolve(line((0, -h / 2), (r, -h / 2)))]
    if rt > 0:
        parts.append(revolve(line((rt, h / 2), (0, h / 2))))
    return parts


def _torus(p: dict) -> list[Part]:
    """Torus with ring radius 1, tube radius r (the hole shrinks as r grows), tube aspect q."""
    u = np.linspace(0, 2 * np.pi, 28, endpoint=False)
    v = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    uu, vv = np.meshgrid(u, v, indexing="ij")
    rho = 1.0 + p["r"] * np.cos(vv)
    pts = np.stack([rho * np.cos(uu), p["q"] * p["r"] * np.sin(vv), rho * np.sin(uu)], -1)
    return [grid_part(pts, wrap_u=True, wrap_v=True)]


def _capsule(p: dict) -> list[Part]:
    r, half = p["r"], p["half"]
    prof = np.concatenate([arc(r, -half, np.pi, np.pi / 2, 7), arc(r, half, np.pi / 2, 0.0, 7)])
    return [revolve(prof, 24)]


def _pyramid(p: dict) -> list[Part]:
    """Pyramid with a (2a x 2b) rectangular base, height h and apex offset dx."""
    a, b, h = p["a"], p["b"], p["h"]
    base = np.array([[-a, -h / 2, -b], [a, -h / 2, -b], [a, -h / 2, b], [-a, -h / 2, b]])
    apex = np.array([p["dx"], h / 2, 0.0])
    parts = [polygon_part(base)]
    for i in range(4):
        parts.append(polygon_part(np.stack([base[i], base[(i + 1) % 4], apex])))
    return parts


def _prism(p: dict) -> list[Part]:
    """Right prism over a regular n-gon of radius 1, height h, optionally twisted."""
    n, h = p["n"], p["h"]
    ang = np.arange(n) * 2 * np.pi / n
    bot = np.stack([np.cos(ang), np.full(n, -h / 2), np.sin(ang)], -1)
    top_ang = ang + p["twist"]
    top = np.stack([np.cos(top_ang), np.full(n, h / 2), np.sin(top_ang)], -1)
    parts = [polygon_part(bot), polygon_part(top)]
    for i in range(n):
        j = (i + 1) % n
        parts.append(polygon_part(np.stack([bot[i], bot[j], top[j]])))
        parts.append(polygon_part(np.stack([bot[i], top[j], top[i]])))
    return parts


def _dumbbell(p: dict) -> list[Part]:
    """Composite: two balls (radii r1, r2, centres L apart) joined by a bar of radius rb.

    Built as one closed surface of revolution with a crease at each junction (three parts),
    so the pieces do not interpenetrate.
    """
    L, rb, r1, r2 = p["L"], p["rb"], p["r1"], p["r2"]
    y1, y2 = -L / 2 + math.sqrt(r1**2 - rb**2), L / 2 - math.sqrt(r2**2 - rb**2)
    return [revolve(arc(r1, -L / 2, math.pi, math.asin(rb / r1), 11), 20),
            revolve(line((rb, y1), (rb, y2), 3), 20),
            revolve(arc(r2, L / 2, math.pi - math.asin(rb / r2), 0.0, 11), 20)]


Sampler = Callable[[np.random.Generator], dict]
SHAPES: dict[str, tuple[Callable[[dict], list[Part]], Sampler]] = {
    "cube": (_superquadric, lambda g: dict(a=1.0, b=g.uniform(0.55, 1.0), c=g.uniform(0.55, 1.0),
                                           e=g.uniform(0.12, 0.45))),
    "sphere": (_bumpy_sphere, lambda g: dict(amp=g.choice([0.0, g.uniform(0.03, 0.08)]),
                                             k=int(g.integers(3, 7)), squash=g.uniform(0.92, 1.0))),
    "cylinder": (_cylinder, lambda g: dict(r=g.uniform(0.35, 0.8), h=g.uniform(0.8, 2.0),
                                           hole=g.choice([0.0, g.uniform(0.45, 0.75)], p=[0.6, 0.4]))),
    "cone": (_cone, lambda g: dict(r=g.uniform(0.5, 0.95), h=g.uniform(1.0, 2.0),
                                   top=g.choice([0.0, g.uniform(0.15, 0.45)], p=[0.6, 0.4]))),
    "torus": (_torus, lambda g: dict(r=g.uniform(0.2, 0.5), q=g.uniform(0.7, 1.4))),
    "capsule": (_capsule, lambda g: dict(r=g.uniform(0.3, 0.6), half=g.uniform(0.35, 1.0))),
    "pyramid": (_pyramid, lambda g: dict(a=1.0, b=g.uniform(0.6, 1.0), h=g.uniform(0.9, 1.9),
                                         dx=g.uniform(-0.25, 0.25))),
    "prism": (_prism, lambda g: dict(n=int(g.choice([3, 5, 6])), h=g.uniform(0.5, 2.0),
                                     twist=g.choice([0.0, g.uniform(0.2, 0.5)], p=[0.7, 0.3]))),
    "ellipsoid": (_ellipsoid, lambda g: dict(a=1.0, b=g.uniform(0.3, 0.6), c=g.uniform(0.45, 0.8))),
    "dumbbell": (_dumbbell, lambda g: dict(L=g.uniform(1.5, 2.4), rb=g.uniform(0.1, 0.22),
                                           r1=g.uniform(0.35, 0.6), r2=g.uniform(0.35, 0.6))),
}
SHAPE_NAMES: tuple[str, ...] = tuple(SHAPES)


# --------------------------------------------------------------------------- assembly
def inside(points: np.ndarray, tri: np.ndarray) -> np.ndarray:
    """Orientation-free inside test of (P, 3) points against (F, 3, 3) triangles.

    Ray parity (Moller-Trumbore intersections counted along three fixed directions, majority
    vote), so it does not need the mesh to be oriented already. Returns (P,) bool.
    """
    dirs = np.array([[0.5773, 0.5774, 0.5775], [-0.6, 0.3, 0.7416], [0.2, -0.9, 0.3873]])
    e1, e2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    votes = np.zeros(len(points), int)
    for d in dirs:
        h = np.cross(d, e2)                                 # (F, 3)
        a = (e1 * h).sum(-1)                                # (F,)
        ok = np.abs(a) > 1e-12
        inv = np.where(ok, 1.0 / np.where(ok, a, 1.0), 0.0)
        s = points[:, None, :] - tri[None, :, 0]            # (P, F, 3)
        u = (s * h).sum(-1) * inv
        q = np.cross(s, e1)
        v = (q * d).sum(-1) * inv
        t = (q * e2).sum(-1) * inv
        hit = ok & (u >= 0) & (v >= 0) & (u + v <= 1) & (t > 0)
        votes += hit.sum(1) % 2
    return votes >= 2


def _face_normals(v: np.ndarray, f: np.ndarray) -> np.ndarray:
    return np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])


def _vertex_normals(v: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Area-weighted face normals averaged over coincident vertices of one smooth part."""
    _, weld = np.unique(np.round(v, 6), axis=0, return_inverse=True)
    weld = weld.reshape(-1)
    acc = np.zeros((weld.max() + 1, 3))
    fn = _face_normals(v, f)
    for i in range(3):
        np.add.at(acc, weld[f[:, i]], fn)
    n = acc[weld]
    length = np.linalg.norm(n, axis=1, keepdims=True)
    return np.where(length > 1e-12, n / np.maximum(length, 1e-12), 0.0)


def assemble(parts: list[Part], params: dict) -> Mesh:
    """Join parts into one mesh: normalise to the unit sphere, orient outward, compute normals."""
    allv = np.concatenate([v for v, _ in parts])
    lo, hi = allv.min(0), allv.max(0)
    centre = (lo + hi) / 2
    radius = np.linalg.norm(allv - centre, axis=1).max()
    parts = [((v - centre) / radius, f) for v, f in parts]
    offsets = np.cumsum([0] + [len(v) for v, _ in parts])
    tris = np.concatenate([v[f] for v, f in parts])
    verts, faces, normals = [], [], []
    for (v, f), off in zip(parts, offsets):
        fn = _face_normals(v, f)
        area = np.linalg.norm(fn, axis=1)
        keep = area > 1e-10
        f = f[keep]
        fn = fn[keep] / area[keep, None]
        sample = np.linspace(0, len(f) - 1, min(len(f), 24)).astype(int)
        cen = v[f[sample]].mean(1)
        behind = inside(cen - 1e-3 * fn[sample], tris).mean()
        ahead = inside(cen + 1e-3 * fn[sample], tris).mean()
        if ahead > behind:  # this part's faces point inward: flip them
            f = f[:, ::-1]
        verts.append(v)
        faces.append(f + off)
        normals.append(_vertex_normals(v, f))
    return Mesh(vertices=np.concatenate(verts).astype(np.float32),
                faces=np.concatenate(faces).astype(np.int64),
                normals=np.concatenate(normals).astype(np.float32), params=params)


def instance_params(shape: str, instance: int) -> dict:
    """Shape parameters of instance ``instance`` of class ``shape`` (fixed for all datasets)."""
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}; valid: {', '.join(SHAPE_NAMES)}")
    g = np.random.default_rng([_INSTANCE_SEED, SHAPE_NAMES.index(shape), instance])
    return {k: (float(v) if isinstance(v, (float, np.floating)) else int(v)) for k, v in SHAPES[shape][1](g).items()}


@lru_cache(maxsize=None)
def build_mesh(shape: str, instance: int) -> Mesh:
    """The mesh of one instance of one shape class (cached)."""
    params = instance_params(shape, instance)
    return assemble(SHAPES[shape][0](params), params)
