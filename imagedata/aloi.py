"""ALOI (Geusebroek et al., IJCV 2005) as the viewpoint and illumination probe sets of the
invariance study.

See :mod:`imagedata.probeset` for the conventions shared by every benchmark reader.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from imagedata.probeset import LayoutError, ProbeSet, benchmark_root

# Each ALOI tar (aloi_red4_{view,col,ill}.tar) unpacks to ``png4/<obj>/...``; the first folder is
# one tar unpacked into a folder named after it, the second all three unpacked into ROOT together
# (file names differ per collection, so they can share ``png4``). The original used the red2
# (half-resolution, ``png2``) tars; images are resized anyway, so either works once named here.
# ROOT may also be the object folders' parent itself (the original's ``data/ALOI_viewpoint``).
ALOI_DIRS: dict[str, tuple[str, ...]] = {
    "viewpoint": ("aloi_red4_view/png4", "png4"),
    "illum-color": ("aloi_red4_col/png4", "png4"),
    "illum-dir": ("aloi_red4_ill/png4", "png4"),
}

ALOI_LAYOUT = ("ALOI layout: ROOT/aloi_red4_view/png4/<obj>/<obj>_r<angle>.png, "
               "ROOT/aloi_red4_col/png4/<obj>/<obj>_i<temp>.png, "
               "ROOT/aloi_red4_ill/png4/<obj>/<obj>_l<l>c<c>.png (or all in ROOT/png4)")

# file-name pattern per collection: (regex on "<obj>_<rest>.png", how to write it in an error)
_ALOI_FILES: dict[str, tuple[str, str]] = {
    "viewpoint": (r"_r(\d+)\.png", "_r<angle>.png"),
    "illum-color": (r"_i(\d+)\.png", "_i<temp>.png"),
    "illum-dir": (r"_l(\d+)c(\d+)\.png", "_l<l>c<c>.png"),
}


def _aloi_dir(root: Path, kind: str) -> Path:
    for sub in ALOI_DIRS[kind]:
        if (root / sub).is_dir():
            return root / sub
    if any(p.is_dir() and p.name.isdigit() for p in root.iterdir()):
        return root
    raise LayoutError(f"{root / ALOI_DIRS[kind][0]}: missing folder ({ALOI_LAYOUT})")


def _load_aloi(root: Path | str, kind: str) -> ProbeSet:
    folder = _aloi_dir(benchmark_root(root, ALOI_LAYOUT), kind)
    objects = sorted((p for p in folder.iterdir() if p.is_dir() and p.name.isdigit()),
                     key=lambda p: int(p.name))
    if not objects:
        raise LayoutError(f"{folder}/<obj>: no numbered object folders ({ALOI_LAYOUT})")
    suffix, shown = _ALOI_FILES[kind]
    images: list[Path] = []
    set_ids, factor, camera = [], [], []
    for s, obj in enumerate(objects):
        pattern = re.compile(re.escape(obj.name) + suffix + "$")
        found = []
        for p in obj.iterdir():
            m = pattern.match(p.name)
            if m:
                found.append((tuple(int(g) for g in m.groups()), p))
        if not found:
            raise LayoutError(f"{obj / (obj.name + shown)}: no such files ({ALOI_LAYOUT})")
        found.sort()
        for values, p in found:
            images.append(p)
            set_ids.append(s)
            factor.append(values[0])
            if kind == "illum-dir":
                camera.append(values[1])
    names = [p.name for p in objects]
    meta: dict[str, Any] = {"considered": len(objects), "kept": len(objects), "classes": names,
                            "set_names": names}
    if kind == "illum-dir":
        meta["camera"] = np.asarray(camera, dtype=np.int64)
    set_arr = np.asarray(set_ids, dtype=np.int64)
    return ProbeSet(name=f"aloi-{kind}", images=images, boxes=None, set_ids=set_arr,
                    labels=set_arr.copy(), factor=np.asarray(factor, dtype=np.float64), meta=meta)


def load_aloi_viewpoint(root: Path | str) -> ProbeSet:
    """ALOI (Geusebroek et al., IJCV 2005) viewpoint sets: ``<obj>/<obj>_r<angle>.png``.

    As ``extract_generic_ALOI_features.py``: every image of an object folder, one set per object,
    class = the object (ALOI has no categories; the original stores the object id as the class).
    factor = rotation angle in degrees (0..355 step 5). Whole images, no crop. ``meta["classes"]``
    and ``meta["set_names"]`` are the object ids (folder names), in numeric order. Folders:
    ``ALOI_DIRS["viewpoint"]``.
    """
    return _load_aloi(root, "viewpoint")


def load_aloi_illum_color(root: Path | str) -> ProbeSet:
    """ALOI illumination-colour sets: ``<obj>/<obj>_i<temp>.png``, factor = the ``i`` code
    (110..250, the lamp voltage setting that sets the colour temperature). Sets, classes and
    folders as :func:`load_aloi_viewpoint` (``ALOI_DIRS["illum-color"]``)."""
    return _load_aloi(root, "illum-color")


def load_aloi_illum_dir(root: Path | str) -> ProbeSet:
    """ALOI illumination-direction sets: ``<obj>/<obj>_l<l>c<c>.png``, factor = the light
    configuration ``l`` (1..8). As in the original, every file of the object is used, so a set also
    spans the three cameras ``c`` (1..3), kept per row in ``meta["camera"]``. Sets, classes and
    folders as :func:`load_aloi_viewpoint` (``ALOI_DIRS["illum-dir"]``)."""
    return _load_aloi(root, "illum-dir")
