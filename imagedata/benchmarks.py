"""The invariance benchmarks by name: the ``BENCHMARKS`` registry and :func:`load_benchmark`.

    ps = load_benchmark("aloi-viewpoint", "/data/aloi")     # a ProbeSet (imagedata.probeset)
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from imagedata.aloi import load_aloi_illum_color, load_aloi_illum_dir, load_aloi_viewpoint
from imagedata.got10k import load_got10k_occlusion
from imagedata.pascal3d import load_pascal3d_viewpoint
from imagedata.probeset import ProbeSet

BENCHMARKS: dict[str, Callable[[Path], ProbeSet]] = {
    "got10k-occlusion": load_got10k_occlusion,
    "aloi-viewpoint": load_aloi_viewpoint,
    "aloi-illum-color": load_aloi_illum_color,
    "aloi-illum-dir": load_aloi_illum_dir,
    "pascal3d-viewpoint": load_pascal3d_viewpoint,
}


def load_benchmark(name: str, root: Path | str) -> ProbeSet:
    """The :class:`ProbeSet` of benchmark ``name`` (a key of :data:`BENCHMARKS`) stored under ``root``."""
    if name not in BENCHMARKS:
        raise ValueError(f"unknown invariance benchmark {name!r}; valid: {', '.join(sorted(BENCHMARKS))}")
    return BENCHMARKS[name](Path(root))
