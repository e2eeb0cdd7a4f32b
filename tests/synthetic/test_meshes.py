"""Meshes: every class and instance is a closed, outward-oriented mesh; instances differ."""
from __future__ import annotations

import numpy as np
import pytest

from synthetic.meshes import SHAPE_NAMES, build_mesh, inside, instance_params

INSTANCES = range(5)


def test_at_least_ten_classes() -> None:
    assert len(SHAPE_NAMES) >= 10


@pytest.mark.parametrize("shape", SHAPE_NAMES)
@pytest.mark.parametrize("instance", INSTANCES)
def test_faces_point_outward(shape: str, instance: int) -> None:
    m = build_mesh(shape, instance)
    v = m.vertices.astype(np.float64)
    tri = v[m.faces]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    pick = np.linspace(0, len(tri) - 1, min(len(tri), 60)).astype(int)
    c = tri[pick].mean(1)
    behind, ahead = inside(c - 2e-3 * n[pick], tri), inside(c + 2e-3 * n[pick], tri)
    assert behind.mean() > 0.9 and ahead.mean() < 0.1
    assert np.abs(np.linalg.norm(v, axis=1).max() - 1) < 1e-5      # unit bounding sphere
    assert np.allclose(np.linalg.norm(m.normals, axis=1), 1, atol=1e-4)


@pytest.mark.parametrize("shape", SHAPE_NAMES)
def test_instances_are_different_objects(shape: str) -> None:
    params = [instance_params(shape, i) for i in INSTANCES]
    assert len({tuple(sorted(p.items())) for p in params}) == len(params)
    assert instance_params(shape, 3) == params[3]                  # fixed across calls


def test_unknown_shape() -> None:
    with pytest.raises(ValueError, match="valid: cube"):
        instance_params("blob", 0)
