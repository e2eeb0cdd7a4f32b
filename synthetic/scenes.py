"""Sample the factors of a chunk of images and render them into arrays and label tables.

``sample(preset, seed, units)`` draws every factor of the images of the given units (images,
clips or probe sets) from counter-based streams (``synthetic.rng``), so that each value depends
only on (seed, unit or image or object id, factor). ``render(spec, ...)`` turns a Spec into
images, masks, depth and the rows of ``labels.csv`` / ``objects.csv``.

Conventions (recorded per image / object): angles in degrees; ``pose_bin`` is the 5-way pose
class of Newell & Deng: 0 = "top" when elevation >= 60, else 1-4 = azimuth quadrant centred on
0 / 90 / 180 / 270 degrees; colours are RGB in [0, 1]; light direction is given as azimuth /
elevation in the camera frame (0, 0 = light from the camera).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import torch

from . import rng
from .meshes import build_mesh
from .presets import Preset
from .render import MeshBank, ObjectBatch, rasterize, rotation_matrix
from .shading import BACKGROUNDS, TEXTURES, Appearance, Light, backgrounds, occluder_masks, shade

CANONICAL_VIEW = (30.0, 20.0, 0.0)              # azimuth, elevation, roll
FIXED_LIGHT = (-35.0, 40.0, 0.85, 0.3)          # azimuth, elevation, intensity, ambient
POSE_BINS = ("top", "front", "left", "back", "right")
NOISE_U = 8 + 3 * 6 * 6


@dataclass
class Spec:
    """Factors of B images with M objects in all (numpy arrays; per image, then per object)."""

    index: np.ndarray            # (B,) global image index
    light: np.ndarray            # (B, 4) azimuth, elevation, intensity, ambient
    light_color: np.ndarray      # (B, 3)
    bg_kind: np.ndarray          # (B,) into BACKGROUNDS
    bg_color: np.ndarray         # (B, 3)
    bg_color2: np.ndarray        # (B, 3)
    bg_u: np.ndarray             # (B, NOISE_U)
    occ_kind: np.ndarray         # (B,) 0 none, 1 rectangle, 2 ellipse, 3 half-plane
    occ_params: np.ndarray       # (B, 5) see shading.occluder_masks
    occ_color: np.ndarray        # (B, 3)
    occ_target: np.ndarray       # (B,) target occluded fraction of object 1 (half-plane), nan if none
    obj_image: np.ndarray        # (M,) local image of each object
    cls: np.ndarray              # (M,)
    inst: np.ndarray             # (M,)
    view: np.ndarray             # (M, 3) azimuth, elevation, roll
    scale: np.ndarray            # (M,)
    trans: np.ndarray            # (M, 3) camera frame
    color: np.ndarray            # (M, 3)
    texture: np.ndarray          # (M,) into TEXTURES
    tex: np.ndarray              # (M, 5) frequency, direction (3), phase
    extra: dict = field(default_factory=dict)  # extra per-image columns (set_id, clip, ...)


# --------------------------------------------------------------------------- factor draws
def hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Vectorised HSV -> RGB; inputs (N,) in [0, 1], output (N, 3)."""
    k = (np.stack([5.0, 3.0, 1.0])[None, :] + h[:, None] * 6) % 6
    return v[:, None] - v[:, None] * s[:, None] * np.clip(np.minimum(k, 4 - k), 0, 1)


def class_colors(cls: np.ndarray, n_classes: int) -> np.ndarray:
    """The fixed colour of each class (used when the colour factor is off)."""
    h = cls / n_classes
    return hsv_to_rgb(h, np.full(h.shape, 0.65), np.full(h.shape, 0.85))


NEUTRAL_COLOUR = (0.6, 0.6, 0.6)


def object_colors(p: Preset, seed: int, keys: np.ndarray, cls: np.ndarray) -> np.ndarray:
    """(M, 3) RGB per object: one grey for all (``neutral``), the class colour (colour off), or random."""
    if p.neutral:
        return np.tile(np.array(NEUTRAL_COLOUR), (len(keys), 1))
    if not p.colour:
        return class_colors(cls, len(p.classes))
    u = rng.uniform(seed, keys, "colour", 3)
    return hsv_to_rgb(u[:, 0], 0.3 + 0.7 * u[:, 1], 0.4 + 0.6 * u[:, 2])


def object_textures(p: Preset, seed: int, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Texture id (M,) and parameters (M, 5): frequency, unit direction, phase."""
    u = rng.uniform(seed, keys, "texture", 6)
    kind = 1 + np.minimum((u[:, 0] * (len(TEXTURES) - 1)).astype(int), len(TEXTURES) - 2)
    d = u[:, 1:4] * 2 - 1
    d /= np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-6)
    params = np.concatenate([1.5 + 2.5 * u[:, 4:5], d, u[:, 5:6]], 1)
    if not p.texture:
        kind = np.zeros_like(kind)
    return kind, params


def views(p: Preset, seed: int, keys: np.ndarray) -> np.ndarray:
    """(M, 3) azimuth in [0, 360), elevation in [-30, 90], roll in [-20, 20]; canonical if off."""
    if not p.viewpoint:
        return np.tile(np.array(CANONICAL_VIEW), (len(keys), 1))
    u = rng.uniform(seed, keys, "viewpoint", 3)
    return np.stack([360 * u[:, 0], -30 + 120 * u[:, 1], -20 + 40 * u[:, 2]], 1)


def lights(p: Preset, seed: int, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(B, 4) light azimuth, elevation, intensity, ambient and (B, 3) colour; fixed if off."""
    if not p.lighting:
        return np.tile(np.array(FIXED_LIGHT), (len(keys), 1)), np.ones((len(keys), 3))
    u = rng.uniform(seed, keys, "light", 6)
    light = np.stack([-75 + 150 * u[:, 0], -15 + 90 * u[:, 1], 0.5 + 0.6 * u[:, 2], 0.15 + 0.25 * u[:, 3]], 1)
    tint = hsv_to_rgb(u[:, 4], 0.5 * u[:, 5], np.ones(len(keys)))
    return light, tint


def pose_bin(azimuth: np.ndarray, elevation: np.ndarray) -> np.ndarray:
    """5-way pose class: 0 top (elevation >= 60), else 1 + azimuth quadrant centred on 0/90/180/270."""
    quad = 1 + (((azimuth + 45) % 360) // 90).astype(int)
    return np.where(elevation >= 60, 0, quad)


def background_factors(p: Preset, seed: int, keys: np.ndarray) -> tuple[np.ndarray, ...]:
    u = rng.uniform(seed, keys, "background", 7)
    kinds = np.array([BACKGROUNDS.index(b) for b in p.backgrounds])
    kind = kinds[np.minimum((u[:, 0] * len(kinds)).astype(int), len(kinds) - 1)]
    if p.random_background_colour:
        c1 = hsv_to_rgb(u[:, 1], 0.6 * u[:, 2], 0.2 + 0.7 * u[:, 3])
        c2 = hsv_to_rgb(u[:, 4], 0.6 * u[:, 5], 0.2 + 0.7 * u[:, 6])
    else:
        c1 = c2 = np.full((len(keys), 3), 0.5)
    return kind, c1, c2, rng.uniform(seed, keys, "background-pattern", NOISE_U)


def random_occluders(p: Preset, seed: int, keys: np.ndarray, centres: np.ndarray) -> tuple[np.ndarray, ...]:
    """Rectangles / ellipses near the object centre (B, 2 pixels) in a fraction of images."""
    u = rng.uniform(seed, keys, "occluder", 8)
    s = p.size
    kind = np.where(u[:, 0] < p.occluder_prob, 1 + (u[:, 1] < 0.5), 0)
    params = np.stack([centres[:, 0] + (u[:, 2] - 0.5) * 0.5 * s, centres[:, 1] + (u[:, 3] - 0.5) * 0.5 * s,
                       (0.06 + 0.16 * u[:, 4]) * s, (0.06 + 0.16 * u[:, 5]) * s, u[:, 6] * math.pi], 1)
    color = hsv_to_rgb(u[:, 7], 0.3 * u[:, 1], 0.15 + 0.7 * u[:, 2])
    return kind, params, color


# --------------------------------------------------------------------------- samplers per unit
def _objects_in_images(p: Preset, seed: int, image_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each image its object count; returns obj_image (M,) and object keys (M,)."""
    lo, hi = p.objects
    u = rng.uniform(seed, image_keys, "num-objects", 1)[:, 0]
    count = lo + np.minimum((u * (hi - lo + 1)).astype(int), hi - lo)
    obj_image = np.repeat(np.arange(len(image_keys)), count)
    slot = np.arange(len(obj_image)) - np.repeat(np.cumsum(count) - count, count)
    return obj_image, image_keys[obj_image] * 16 + slot


def _placement(p: Preset, seed: int, keys: np.ndarray, multi: bool) -> tuple[np.ndarray, np.ndarray]:
    """Scale (M,) and camera-frame translation (M, 3) of each object."""
    u = rng.uniform(seed, keys, "placement", 4)
    scale = p.scale[0] + (p.scale[1] - p.scale[0]) * u[:, 0]
    tan = math.tan(math.radians(p.fov) / 2)
    depth = p.distance * (0.9 + 0.8 * u[:, 3]) if multi else np.full(len(keys), p.distance)
    reach = 0.7 if multi else p.jitter
    trans = np.stack([(2 * u[:, 1] - 1) * reach * depth * tan, (2 * u[:, 2] - 1) * reach * depth * tan, -depth], 1)
    return scale, trans


def _spec(p: Preset, seed: int, index: np.ndarray, unit_keys: np.ndarray, obj_image: np.ndarray,
          obj_keys: np.ndarray, cls: np.ndarray, inst: np.ndarray, view: np.ndarray, scale: np.ndarray,
          trans: np.ndarray, light_keys: np.ndarray, extra: dict) -> Spec:
    """Assemble a Spec, drawing appearance, light, background and occluders."""
    light, light_color = lights(p, seed, light_keys)
    bg = background_factors(p, seed, unit_keys)
    kind, ptex = object_textures(p, seed, obj_keys)
    first = np.r_[0, np.flatnonzero(np.diff(obj_image)) + 1]
    f = (p.size / 2) / math.tan(math.radians(p.fov) / 2)
    t0 = trans[first]
    centres = np.stack([p.size / 2 + f * t0[:, 0] / -t0[:, 2], p.size / 2 - f * t0[:, 1] / -t0[:, 2]], 1)
    occ_kind, occ_params, occ_color = random_occluders(p, seed, index, centres)
    return Spec(index=index, light=light, light_color=light_color, bg_kind=bg[0], bg_color=bg[1],
                bg_color2=bg[2], bg_u=bg[3], occ_kind=occ_kind, occ_params=occ_params, occ_color=occ_color,
                occ_target=np.full(len(index), np.nan), obj_image=obj_image, cls=cls, inst=inst, view=view,
                scale=scale, trans=trans, color=object_colors(p, seed, obj_keys, cls), texture=kind, tex=ptex,
                extra=extra)


def sample_images(p: Preset, seed: int, units: np.ndarray) -> Spec:
    """Independent images (shapes64, tcvl-*, scenes): one image per unit."""
    obj_image, keys = _objects_in_images(p, seed, units)
    u = rng.uniform(seed, keys, "identity", 2)
    n_cls = len(p.classes)
    single = p.objects == (1, 1)
    cls = (units[obj_image] % n_cls) if single else np.minimum((u[:, 0] * n_cls).astype(int), n_cls - 1)
    inst = np.minimum((u[:, 1] * p.instances).astype(int), p.instances - 1)
    scale, trans = _placement(p, seed, keys, multi=not single)
    return _spec(p, seed, units, units, obj_image, keys, cls, inst, views(p, seed, keys), scale, trans,
                 units, {})


def sample_clips(p: Preset, seed: int, clips: np.ndarray) -> Spec:
    """Video clips: objects turn, the light moves and an occluder card slides across."""
    t_n = p.frames
    index = (clips[:, None] * t_n + np.arange(t_n)).reshape(-1)
    frame = np.tile(np.arange(t_n), len(clips))
    clip_obj_image, clip_keys = _objects_in_images(p, seed, clips)
    per = np.bincount(clip_obj_image, minlength=len(clips))
    # objects of clip c appear in every frame of c
    obj_clip = np.repeat(clip_obj_image, t_n)
    obj_frame = np.tile(np.arange(t_n), len(clip_keys))
    order = np.lexsort((np.repeat(np.arange(len(clip_keys)), t_n), obj_frame, obj_clip))
    obj_clip, obj_frame = obj_clip[order], obj_frame[order]
    okey = np.repeat(clip_keys, t_n)[order]
    obj_image = obj_clip * t_n + obj_frame
    u = rng.uniform(seed, okey, "identity", 2)
    n_cls = len(p.classes)
    cls = np.minimum((u[:, 0] * n_cls).astype(int), n_cls - 1)
    inst = np.minimum((u[:, 1] * p.instances).astype(int), p.instances - 1)
    base = views(p, seed, okey)
    m = rng.uniform(seed, okey, "motion", 4)
    tt = obj_frame.astype(float)
    view = np.stack([(base[:, 0] + (m[:, 0] - 0.5) * 50 * tt) % 360,
                     np.clip(base[:, 1] + (m[:, 1] - 0.5) * 16 * tt, -30, 90), base[:, 2]], 1)
    scale, trans = _placement(p, seed, okey, multi=per.max() > 1)
    trans[:, 0] += (m[:, 2] - 0.5) * 0.08 * tt
    trans[:, 1] += (m[:, 3] - 0.5) * 0.08 * tt
    clip_of_image = np.repeat(clips, t_n)
    spec = _spec(p, seed, index, clip_of_image, obj_image, okey, cls, inst, view, scale, trans,
                 clip_of_image, {"clip": clip_of_image, "frame": frame})
    # light turns slowly; the occluder card slides across the frame at constant speed
    lm = rng.uniform(seed, clip_of_image, "light-motion", 1)[:, 0]
    spec.light[:, 0] = np.clip(spec.light[:, 0] + (lm - 0.5) * 12 * frame, -80, 80)
    ou = rng.uniform(seed, clip_of_image, "occluder-motion", 6)
    s, prog = p.size, frame / max(t_n - 1, 1)
    spec.occ_kind = np.where(ou[:, 0] < 0.5, 1, 2)
    start = np.stack([-0.2 * s + 0 * ou[:, 1], ou[:, 1] * s], 1)
    end = np.stack([1.2 * s + 0 * ou[:, 2], ou[:, 2] * s], 1)
    flip = ou[:, 5] < 0.5
    start[flip, 0], end[flip, 0] = end[flip, 0], start[flip, 0]
    pos = start + (end - start) * prog[:, None]
    spec.occ_params = np.stack([pos[:, 0], pos[:, 1], (0.08 + 0.1 * ou[:, 3]) * s, (0.15 + 0.2 * ou[:, 4]) * s,
                                np.zeros(len(index))], 1)
    return spec


def sample_probe_sets(p: Preset, seed: int, sets: np.ndarray) -> Spec:
    """Invariance probe sets: one object per set, only ``p.probe`` changes within a set."""
    k = p.set_size
    index = (sets[:, None] * k + np.arange(k)).reshape(-1)
    level = np.tile(np.arange(k), len(sets))
    set_id = np.repeat(sets, k)
    frac = level / max(k - 1, 1)
    n_cls = len(p.classes)
    u = rng.uniform(seed, set_id, "identity", 2)
    cls = set_id % n_cls
    inst = np.minimum((u[:, 1] * p.instances).astype(int), p.instances - 1)
    view = views(p, seed, set_id)
    light_keys = set_id
    value = np.zeros(len(index))
    sweep = np.full(len(index), "", dtype=object)
    if p.probe in ("instance", "instance-viewpoint"):
        if k > p.instances:
            raise ValueError(f"probe-{p.probe}: set size {k} exceeds the {p.instances} instances per class")
        inst = level.copy()
        value = inst.astype(float)
        if p.probe == "instance-viewpoint":
            view = views(p, seed, index)
    elif p.probe == "viewpoint":
        even = set_id % 2 == 0
        view[even, 0] = (view[even, 0] + 360 * level[even] / k) % 360
        view[~even, 1] = -20 + 100 * frac[~even]
        value = np.where(even, view[:, 0], view[:, 1])
        sweep = np.where(even, "azimuth", "elevation")
    scale, trans = _placement(p, seed, set_id, multi=False)
    obj_image = np.arange(len(index))
    spec = _spec(p, seed, index, set_id, obj_image, set_id, cls, inst, view, scale, trans, light_keys,
                 {"set_id": set_id, "probe": np.full(len(index), p.probe), "level": level})
    if p.probe == "illum-dir":
        spec.light[:, 0] = -70 + 140 * frac
        spec.light[:, 2:] = FIXED_LIGHT[2:]
        value = spec.light[:, 0].copy()
    elif p.probe == "illum-color":
        hue = rng.uniform(seed, set_id, "light-hue", 1)[:, 0]
        spec.light_color = hsv_to_rgb((hue + level / k) % 1.0, np.full(len(index), 0.6), np.ones(len(index)))
        value = (hue + level / k) % 1.0
    elif p.probe == "occlusion":
        ou = rng.uniform(seed, set_id, "occluder-side", 2)
        spec.occ_kind = np.where(level > 0, 3, 0)
        spec.occ_params[:, 4] = 2 * math.pi * ou[:, 0]
        spec.occ_target = 0.75 * frac
        tint = np.zeros(len(sets)) if p.neutral else np.full(len(sets), 0.2)   # neutral: one grey occluder
        spec.occ_color = np.repeat(hsv_to_rgb(ou[::k, 1], tint, np.full(len(sets), 0.35)), k, 0)
        value = spec.occ_target.copy()
    spec.extra.update(level_value=value, sweep=sweep)
    return spec


SAMPLERS = {"image": sample_images, "clip": sample_clips, "set": sample_probe_sets}


def sample(p: Preset, seed: int, units: np.ndarray) -> Spec:
    """Draw the factors of every image of the given units (ids of images, clips or sets)."""
    return SAMPLERS[p.unit](p, seed, np.asarray(units, np.int64))


# --------------------------------------------------------------------------- rendering
@lru_cache(maxsize=8)
def mesh_bank(classes: tuple[str, ...], instances: int) -> MeshBank:
    """Meshes of every (class, instance); mesh id = class * instances + instance."""
    return MeshBank.from_meshes([build_mesh(c, i) for c in classes for i in range(instances)])


def _light_vectors(light: np.ndarray) -> np.ndarray:
    az, el = np.radians(light[:, 0]), np.radians(light[:, 1])
    return np.stack([np.cos(el) * np.sin(az), np.sin(el), np.cos(el) * np.cos(az)], 1)


def _half_plane_for_target(spec: Spec, foot: torch.Tensor, first: np.ndarray) -> None:
    """Place half-plane occluders so that they cover spec.occ_target of object 1's footprint."""
    size = foot.shape[-1]
    g = torch.arange(size, dtype=torch.float32) + 0.5
    gy, gx = torch.meshgrid(g, g, indexing="ij")
    for b in np.flatnonzero((spec.occ_kind == 3) & ~np.isnan(spec.occ_target)):
        fp = foot[first[b]]
        if not fp.any():
            spec.occ_kind[b] = 0
            continue
        ang = float(spec.occ_params[b, 4])
        proj = (gx[fp] * math.cos(ang) + gy[fp] * math.sin(ang)).numpy()
        target = float(spec.occ_target[b])
        cut = np.quantile(proj, 1 - target, method="higher") if target < 1 else proj.min()
        # the card covers points whose projection is >= cut (half-way to the next pixel value)
        lower = proj[proj < cut]
        edge = (cut + lower.max()) / 2 if lower.size else cut - 0.5
        spec.occ_params[b, :2] = (edge * math.cos(ang), edge * math.sin(ang))


def render(spec: Spec, p: Preset, photos: torch.Tensor | None = None) -> tuple[dict, dict, dict]:
    """Render a Spec -> (arrays, image columns, object columns).

    arrays: images (B, H, W, 3) uint8, semantic / instance (B, H, W) uint8, depth (B, H, W)
    float16 (inf off objects); columns are dicts of (B,) / (M,) numpy arrays.
    """
    b, s = len(spec.index), p.size
    bank = mesh_bank(p.classes, p.instances)
    t = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32)  # noqa: E731
    objs = ObjectBatch(mesh=torch.as_tensor(spec.cls * p.instances + spec.inst),
                       image=torch.as_tensor(spec.obj_image), rotation=rotation_matrix(*t(spec.view).unbind(1)),
                       translation=t(spec.trans), scale=t(spec.scale))
    r = rasterize(bank, objs, b, s, p.fov)
    first = np.r_[0, np.flatnonzero(np.diff(spec.obj_image)) + 1]
    _half_plane_for_target(spec, r.footprint, first)
    occ = occluder_masks(torch.as_tensor(spec.occ_kind), t(spec.occ_params), s)
    tex = t(spec.tex)
    app = Appearance(color=t(spec.color), color2=t(_second_colors(spec.color)), texture=torch.as_tensor(spec.texture),
                     freq=tex[:, 0], direction=tex[:, 1:4], phase=tex[:, 4])
    light = Light(direction=t(_light_vectors(spec.light)), intensity=t(spec.light[:, 2]),
                  color=t(spec.light_color), ambient=t(spec.light[:, 3]))
    rgb = shade(r, app, light)
    bg = backgrounds(torch.as_tensor(spec.bg_kind), t(spec.bg_color), t(spec.bg_color2), t(spec.bg_u), s, photos)
    visible = (r.obj >= 0) & ~occ
    img = torch.where(visible[..., None], rgb, torch.where(occ[..., None], t(spec.occ_color)[:, None, None], bg))
    obj = torch.where(visible, r.obj, torch.full_like(r.obj, -1))
    local = torch.as_tensor(np.arange(len(spec.obj_image)) - first[spec.obj_image] + 1)
    cls = torch.as_tensor(spec.cls)
    arrays = {
        "images": (img.clamp(0, 1) * 255).round().to(torch.uint8).numpy(),
        "semantic": torch.where(obj >= 0, cls[obj.clamp(min=0)] + 1, 0).to(torch.uint8).numpy(),
        "instance": torch.where(obj >= 0, local[obj.clamp(min=0)], 0).to(torch.uint8).numpy(),
        "depth": torch.where(visible, r.depth, math.inf).to(torch.float16).numpy(),
    }
    obj_cols = _object_columns(spec, obj, r.footprint, local.numpy())
    return arrays, _image_columns(spec, p, obj_cols, occ), obj_cols


def _second_colors(color: np.ndarray) -> np.ndarray:
    """Texture colour derived from the object colour (darker if light, lighter if dark)."""
    bright = color.max(1, keepdims=True) > 0.55
    return np.where(bright, color * 0.3, color * 0.4 + 0.6)


def _object_columns(spec: Spec, obj: torch.Tensor, foot: torch.Tensor, local: np.ndarray) -> dict:
    m, (b, h, w) = len(spec.cls), obj.shape
    flat = obj.reshape(-1)
    on = flat >= 0
    ids = flat[on]
    pix = torch.arange(b * h * w)[on]
    ys, xs = (pix // w) % h, pix % w
    area = torch.bincount(ids, minlength=m)
    big = torch.full((m,), 1 << 30, dtype=torch.long)
    x0 = big.clone().scatter_reduce_(0, ids, xs, "amin")
    y0 = big.clone().scatter_reduce_(0, ids, ys, "amin")
    x1 = torch.full((m,), -1, dtype=torch.long).scatter_reduce_(0, ids, xs + 1, "amax")
    y1 = torch.full((m,), -1, dtype=torch.long).scatter_reduce_(0, ids, ys + 1, "amax")
    vis = area > 0
    box = [torch.where(vis, v, -1).numpy() for v in (x0, y0, x1, y1)]
    footprint = foot.reshape(m, -1).sum(1).numpy()
    area = area.numpy()
    occluded = np.where(footprint > 0, 1 - area / np.maximum(footprint, 1), 1.0)
    return dict(image=spec.index[spec.obj_image], object=local, **{"class": spec.cls}, instance=spec.inst,
                x0=box[0], y0=box[1], x1=box[2], y1=box[3], area=area, footprint=footprint,
                occluded_frac=occluded, azimuth=spec.view[:, 0], elevation=spec.view[:, 1], roll=spec.view[:, 2],
                pose_bin=pose_bin(spec.view[:, 0], spec.view[:, 1]), scale=spec.scale, tx=spec.trans[:, 0],
                ty=spec.trans[:, 1], tz=spec.trans[:, 2], color_r=spec.color[:, 0], color_g=spec.color[:, 1],
                color_b=spec.color[:, 2], texture=np.asarray(TEXTURES)[spec.texture], texture_freq=spec.tex[:, 0])


def _image_columns(spec: Spec, p: Preset, oc: dict, occ: torch.Tensor) -> dict:
    """Per-image columns: the primary (largest visible) object's identity and pose + image factors."""
    b = len(spec.index)
    order = np.lexsort((-oc["area"], spec.obj_image))
    first_in_sorted = np.r_[0, np.flatnonzero(np.diff(spec.obj_image[order])) + 1]
    prim = order[first_in_sorted]
    cols = dict(index=spec.index)
    for k in ("class", "instance", "azimuth", "elevation", "roll", "pose_bin", "scale", "tx", "ty", "tz",
              "color_r", "color_g", "color_b", "texture", "texture_freq", "occluded_frac"):
        cols[k] = oc[k][prim]
    cols["class_name"] = np.asarray(p.classes)[cols["class"]]
    cols["n_objects"] = np.bincount(spec.obj_image, minlength=b)
    cols.update(light_azimuth=spec.light[:, 0], light_elevation=spec.light[:, 1],
                light_intensity=spec.light[:, 2], light_ambient=spec.light[:, 3],
                light_r=spec.light_color[:, 0], light_g=spec.light_color[:, 1], light_b=spec.light_color[:, 2],
                background=np.asarray(BACKGROUNDS)[spec.bg_kind],
                occluder=np.asarray(["none", "rectangle", "ellipse", "half-plane"])[spec.occ_kind],
                occluder_pixels=occ.reshape(b, -1).sum(1).numpy())
    cols.update(spec.extra)
    return cols
