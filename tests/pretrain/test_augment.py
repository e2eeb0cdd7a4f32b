"""pretrain.augment: batched ops (vs torchvision), the policies and the AUGMENTATIONS registry."""
from __future__ import annotations

import time

import pytest
import torch
import torchvision.transforms.v2.functional as TF

from pretrain.augment import ops as A
from pretrain.augment import AUGMENTATIONS, SALIENCY_POLICIES, Policy, build_policy
from pretrain.views import RawBatch, Views

POLICIES = sorted(set(AUGMENTATIONS) - set(SALIENCY_POLICIES))   # saliency ones: test_saliency_policies.py
# overrides that switch every photometric op off (a white frame then stays white)
NO_COLOUR = {"none": {}, "byol": {"jitter_p": 0.0, "grayscale_p": 0.0, "blur_p": (0, 0), "solarize_p": (0, 0)},
             "*": {"jitter_p": 0.0, "grayscale_p": 0.0, "blur_p": 0.0}}


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def raw_batch(b: int = 6, size: int = 32, seed: int = 0, pair: bool = False, boxes: bool = False) -> RawBatch:
    g = gen(seed)
    img = lambda: torch.randint(0, 256, (b, 3, size, size), generator=g, dtype=torch.uint8)  # noqa: E731
    box = torch.tensor([[4.0, 6.0, 20.0, 26.0]]).repeat(b, 1) if boxes else None
    return RawBatch(images=img(), targets=torch.arange(b), indices=torch.arange(100, 100 + b),
                    pair=img() if pair else None, boxes=box, pair_boxes=box + 2 if boxes and pair else None)


def rand_images(b: int = 4, size: int = 24, seed: int = 1) -> torch.Tensor:
    return torch.rand(b, 3, size, size, generator=gen(seed))


# ---------------------------------------------------------------------------------------------
# policies


@pytest.mark.parametrize("name", POLICIES)
def test_policy_shapes_dtypes_range(name: str) -> None:
    batch = raw_batch()
    policy = build_policy(name)
    assert isinstance(policy, Policy)
    out = policy(batch, gen())
    assert isinstance(out, Views) and out.batch_size == 6 and len(out.views) >= 2
    assert out.boxes is not None and len(out.boxes) == len(out.views)
    for v, box in zip(out.views, out.boxes):
        assert v.dtype == torch.float32 and v.shape[:2] == (6, 3) and v.shape[-1] == v.shape[-2]
        assert v.min() >= 0.0 and v.max() <= 1.0 and torch.isfinite(v).all()
        assert box.shape == (6, 4) and (box[:, :2] >= 0).all() and (box[:, 2:] <= 32 + 1e-4).all()
        assert (box[:, 2:] > box[:, :2]).all()
    assert out.views[0].shape[-1] == out.views[1].shape[-1] == 32
    assert torch.equal(out.targets, batch.targets) and torch.equal(out.indices, batch.indices)


@pytest.mark.parametrize("name", POLICIES)
def test_policy_determinism(name: str) -> None:
    batch = raw_batch()
    a, b = build_policy(name)(batch, gen(3)), build_policy(name)(batch, gen(3))
    assert all(torch.equal(x, y) for x, y in zip(a.views, b.views))
    if name != "none":
        c = build_policy(name)(batch, gen(4))
        assert any(not torch.equal(x, y) for x, y in zip(a.views, c.views))


@pytest.mark.parametrize("name", POLICIES)
def test_pair_batches_take_view1_from_pair(name: str) -> None:
    batch = raw_batch(pair=True)
    batch.pair = batch.images.clone()
    batch.pair[:] = 255                       # an all-white second frame
    out = build_policy(name, **NO_COLOUR.get(name, NO_COLOUR["*"]))(batch, gen())
    assert torch.allclose(out.views[1], torch.ones_like(out.views[1]))
    assert not torch.allclose(out.views[0], torch.ones_like(out.views[0]))
    assert out.sources[:2] == [0, 1]


@pytest.mark.parametrize("name", POLICIES)
def test_region_mode_crops_inside_boxes(name: str) -> None:
    batch = raw_batch(pair=True, boxes=True)
    out = build_policy(name)(batch, gen())
    for i, box in enumerate(out.boxes):
        region = batch.boxes if i % 2 == 0 else batch.pair_boxes
        assert (box[:, :2] >= region[:, :2] - 1e-4).all() and (box[:, 2:] <= region[:, 2:] + 1e-4).all()


def test_none_policy_is_identity() -> None:
    batch = raw_batch()
    out = build_policy("none")(batch, gen())
    assert all(torch.equal(v, batch.images.float() / 255) for v in out.views)
    resized = build_policy("none", out_size=16)(batch, gen())
    assert resized.views[0].shape == (6, 3, 16, 16)


def test_policy_options() -> None:
    assert len(build_policy("default", n_views=3)(raw_batch(), gen()).views) == 3
    mc = build_policy("multicrop")(raw_batch(), gen())
    assert [v.shape[-1] for v in mc.views] == [32, 32] + [14] * 4
    assert build_policy("mild").config.crop_scale == (0.5, 1.0)
    assert build_policy("aggressive").config.crop_scale == (0.08, 1.0)
    assert build_policy("default", crop_scale=[0.3, 0.9]).config.crop_scale == (0.3, 0.9)
    # auto blur: off for small images, MoCo v2's 0.5 for large ones
    policy = build_policy("default")
    assert policy.pipelines(32, 32)[0].blur_p == 0.0 and policy.pipelines(96, 96)[0].blur_p == 0.5
    assert build_policy("default", blur_p=0.3).pipelines(32, 32)[0].blur_p == 0.3
    byol = build_policy("byol").pipelines(32, 32)
    assert (byol[0].blur_p, byol[0].solarize_p, byol[1].blur_p, byol[1].solarize_p) == (1.0, 0.0, 0.1, 0.2)
    assert byol[0].jitter_strengths() == (0.4, 0.4, 0.2, 0.1)
    assert policy.pipelines(32, 32)[0].jitter_strengths() == pytest.approx((0.4, 0.4, 0.4, 0.1))


def test_unknown_policy_and_override_errors() -> None:
    with pytest.raises(ValueError) as e:
        build_policy("simclr-ish")
    assert "simclr-ish" in str(e.value) and all(n in str(e.value) for n in POLICIES)
    with pytest.raises(ValueError) as e:
        build_policy("default", crop_sacle=(0.2, 1.0))
    assert "crop_sacle" in str(e.value) and "crop_scale" in str(e.value) and "blur_p" in str(e.value)


def test_default_policy_batch_speed() -> None:
    """No per-image loops: 256 images of 32 px through `default` (measured, printed, not asserted)."""
    batch = raw_batch(b=256, size=32)
    policy = build_policy("default")
    policy(raw_batch(b=8), gen())                               # warm-up
    t = time.perf_counter()
    out = policy(batch, gen())
    dt = time.perf_counter() - t
    print(f"\ndefault policy, 256 x 32 px, 2 views: {dt * 1000:.1f} ms ({256 / dt:.0f} images/s)")
    assert out.views[0].shape == (256, 3, 32, 32)


# ---------------------------------------------------------------------------------------------
# geometry


@pytest.mark.parametrize("scale", [(0.08, 1.0), (0.2, 1.0), (0.05, 0.14), (0.5, 1.0)])
def test_random_resized_crop_boxes(scale: tuple[float, float]) -> None:
    x = rand_images(b=64, size=224)
    crops, boxes = A.random_resized_crop(x, 16, scale=scale, gen=gen())
    assert crops.shape == (64, 3, 16, 16) and boxes.shape == (64, 4)
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 2:] <= 224).all() and (boxes[:, 2:] > boxes[:, :2]).all()
    frac = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) / 224 ** 2
    assert (frac >= scale[0] * 0.95).all() and (frac <= scale[1] * 1.05).all()
    aspect = (boxes[:, 2] - boxes[:, 0]) / (boxes[:, 3] - boxes[:, 1])
    assert (aspect >= 0.75 * 0.95).all() and (aspect <= 4 / 3 * 1.05).all()
    assert torch.equal(boxes, boxes.round())                  # whole pixels, as torchvision


def test_random_resized_crop_fallback_is_centre_crop() -> None:
    x = rand_images(b=3, size=20)
    _, boxes = A.random_resized_crop(x, 8, scale=(2.0, 3.0), gen=gen())   # never fits: fallback
    assert torch.equal(boxes, torch.tensor([[0.0, 0.0, 20.0, 20.0]]).repeat(3, 1))
    wide = torch.rand(2, 3, 10, 40)
    _, boxes = A.random_resized_crop(wide, 8, scale=(2.0, 3.0), gen=gen())
    assert torch.equal(boxes[0], torch.tensor([13.0, 0.0, 26.0, 10.0]))   # w = round(10 * 4/3) = 13


def test_region_crop_inside_box() -> None:
    x = rand_images(b=32, size=32)
    region = torch.tensor([[3.5, 4.0, 19.0, 30.5]]).repeat(32, 1)
    _, boxes = A.random_resized_crop(x, 8, scale=(0.2, 1.0), gen=gen(), region=region)
    assert (boxes[:, :2] >= region[:, :2] - 1e-5).all() and (boxes[:, 2:] <= region[:, 2:] + 1e-5).all()
    frac = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) / (15.5 * 26.5)
    assert (frac >= 0.2 - 1e-5).all() and (frac <= 1 + 1e-5).all()


def test_crop_whole_image_is_identity() -> None:
    x = rand_images(size=24)
    out = A.crop_boxes(x, A.full_boxes(4, 24, 24), 24)
    assert (out - x).abs().max() < 1e-5


def test_crop_gradient_matches_analytic() -> None:
    """Pixel (i, j) of the source holds 2 j + 3 i; a box resampled to out pixels must hold the
    linear function at the output pixel centres x0 + (k + 0.5) w / out (in pixel-centre coords)."""
    h, w = 40, 48
    ii, jj = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    x = (2 * jj + 3 * ii).expand(2, 3, h, w).contiguous()
    boxes = torch.tensor([[5.0, 7.0, 29.0, 31.0], [10.5, 3.25, 14.5, 9.25]])
    out = A.crop_boxes(x, boxes, 6)
    for b, (x0, y0, x1, y1) in enumerate(boxes.tolist()):
        k = torch.arange(6, dtype=torch.float32) + 0.5
        cx, cy = x0 + k * (x1 - x0) / 6 - 0.5, y0 + k * (y1 - y0) / 6 - 0.5
        expected = 2 * cx[None, :] + 3 * cy[:, None]
        assert torch.allclose(out[b, 0], expected, atol=1e-4), (b, out[b, 0], expected)


def test_hflip_twice_is_identity_and_flags() -> None:
    x = rand_images(b=16)
    once, flags = A.hflip(x, 0.5, gen(5))
    assert 0 < int(flags.sum()) < 16
    assert torch.equal(once[flags], x[flags].flip(-1)) and torch.equal(once[~flags], x[~flags])
    twice, _ = A.hflip(once, 1.0, gen())
    back, _ = A.hflip(twice, 1.0, gen())
    assert torch.equal(back, once)
    boxes = torch.tensor([[1.0, 2.0, 5.0, 6.0]]).repeat(16, 1)
    fb = A.hflip_boxes(boxes, flags, 24)
    assert torch.equal(fb[flags][0], torch.tensor([19.0, 2.0, 23.0, 6.0])) and torch.equal(fb[~flags], boxes[~flags])


# ---------------------------------------------------------------------------------------------
# colour, blur, solarize vs torchvision


def per_image(fn, x: torch.Tensor, *args) -> torch.Tensor:  # reference only: torchvision one image at a time
    return torch.stack([fn(xi, *args) for xi in x])


def test_grayscale_matches_torchvision() -> None:
    x = rand_images(b=8)
    out = A.random_grayscale(x, 1.0, gen())
    assert torch.equal(out[:, 0], out[:, 1]) and torch.equal(out[:, 1], out[:, 2])
    assert torch.allclose(out, TF.rgb_to_grayscale(x, num_output_channels=3), atol=1e-6)
    assert torch.equal(A.random_grayscale(x, 0.0, gen()), x)


@pytest.mark.parametrize("op,factors", [("brightness", [0.0, 0.6, 1.0, 1.7]), ("contrast", [0.0, 0.5, 1.0, 1.6]),
                                        ("saturation", [0.0, 0.3, 1.0, 1.8]), ("hue", [-0.5, -0.2, 0.0, 0.1, 0.45])])
def test_colour_ops_match_torchvision(op: str, factors: list[float]) -> None:
    ours, ref = getattr(A, f"adjust_{op}"), getattr(TF, f"adjust_{op}")
    x = rand_images(b=len(factors))
    x[0] = x[0, :1]                                           # a grey image (hue undefined)
    for f in factors:                                         # scalar factor
        assert (ours(x, f) - ref(x, f)).abs().max() < 1e-4, (op, f)
    per = ours(x, torch.tensor(factors))                      # one factor per sample
    expected = torch.stack([ref(x[i], f) for i, f in enumerate(factors)])
    assert (per - expected).abs().max() < 1e-4


def test_hsv_round_trip() -> None:
    x = rand_images(b=4)
    assert (A.hsv_to_rgb(A.rgb_to_hsv(x)) - x).abs().max() < 1e-5


def test_color_jitter_zero_is_identity_and_brightness_factor() -> None:
    x = rand_images(b=8)
    assert torch.equal(A.color_jitter(x, 0, 0, 0, 0, p=1.0, gen=gen()), x)
    assert torch.equal(A.color_jitter(x, 0.4, 0.4, 0.4, 0.1, p=0.0, gen=gen()), x)
    # brightness only: the factor drawn for each sample reproduces torchvision's adjust_brightness
    g = gen(7)
    out = A.color_jitter(x, 0.5, 0, 0, 0, p=1.0, gen=g)
    factors = out.flatten(1).sum(1) / x.flatten(1).sum(1)     # exact when nothing clips
    assert (factors >= 0.5 - 1e-4).all() and (factors <= 1.5 + 1e-4).all()
    g = gen(7)
    torch.rand(8, generator=g, dtype=torch.float64)           # the apply flags
    drawn = 0.5 + torch.rand(8, generator=g, dtype=torch.float64)
    expected = torch.stack([TF.adjust_brightness(xi, float(f)) for xi, f in zip(x, drawn)])
    assert (out - expected).abs().max() < 1e-5


def test_color_jitter_random_order_and_apply_mask() -> None:
    x = rand_images(b=32)
    a = A.color_jitter(x, 0.4, 0.4, 0.4, 0.1, p=0.5, gen=gen(2))
    b = A.color_jitter(x, 0.4, 0.4, 0.4, 0.1, p=0.5, gen=gen(2))
    fixed = A.color_jitter(x, 0.4, 0.4, 0.4, 0.1, p=0.5, gen=gen(2), random_order=False)
    assert torch.equal(a, b) and not torch.equal(a, fixed)
    untouched = (a == x).flatten(1).all(1)
    assert 0 < int(untouched.sum()) < 32 and a.min() >= 0 and a.max() <= 1


def test_gaussian_blur_matches_torchvision() -> None:
    x = rand_images(b=3, size=20)
    for k, s in [(3, 0.5), (5, 1.3), (7, 2.0)]:
        assert (A.blur_with_sigma(x, s, k) - TF.gaussian_blur(x, [k, k], [s, s])).abs().max() < 1e-5
    sig = torch.tensor([0.3, 1.0, 1.9])
    per = A.blur_with_sigma(x, sig, 5)
    expected = torch.stack([TF.gaussian_blur(x[i], [5, 5], [float(s), float(s)]) for i, s in enumerate(sig)])
    assert (per - expected).abs().max() < 1e-5


def test_gaussian_blur_tiny_sigma_identity_and_probability() -> None:
    x = rand_images(b=8, size=64)
    assert (A.gaussian_blur(x, sigma=(1e-3, 1e-3), p=1.0, gen=gen()) - x).abs().max() < 1e-6
    assert torch.equal(A.gaussian_blur(x, p=0.0, gen=gen()), x)
    blurred = A.gaussian_blur(x, p=0.5, gen=gen(1))
    changed = (blurred != x).flatten(1).any(1)
    assert 0 < int(changed.sum()) < 8
    assert A.blur_kernel_size(224) == 23 and A.blur_kernel_size(32) == 3 and A.blur_kernel_size(64) == 7


def test_solarize() -> None:
    x = rand_images(b=4)
    assert torch.allclose(A.solarize(x, 1.0, gen()), TF.solarize(x, 0.5))
    assert torch.equal(A.solarize(x, 0.0, gen()), x)


def test_apply_pipeline_config() -> None:
    x = rand_images(b=5, size=32)
    cfg = A.PipelineConfig(out_size=16, crop_scale=(0.5, 1.0), blur_p=0.5, solarize_p=0.2)
    view, boxes = A.apply_pipeline(x, cfg, gen())
    assert view.shape == (5, 3, 16, 16) and boxes.shape == (5, 4) and 0 <= view.min() <= view.max() <= 1
    assert A.PipelineConfig(jitter=1.0).jitter_strengths() == pytest.approx((0.8, 0.8, 0.8, 0.2))
    plain = A.PipelineConfig(crop_scale=(1.0, 1.0), flip_p=0, jitter_p=0, grayscale_p=0)
    view, _ = A.apply_pipeline(x, plain, gen())
    assert (view - x).abs().max() < 1e-5
