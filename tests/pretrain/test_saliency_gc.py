"""HC / RC global-contrast saliency against maps of the authors' C++ (CmSaliencyRC), plus input handling
and salient-object masks.

The golden maps (and the README that says how the C++ made them) are in tests/golden/saliency/.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from pretrain.saliency import hc, rc, saliency_cut, saliency_mask, segment_image
from pretrain.saliency.global_contrast import quantize, to_rgb_uint8
from pretrain.saliency.segment import segment_image_reference


GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "saliency"
# name -> Felzenszwalb region count of the reference run (golden README)
REGIONS = {"china": 41, "chelsea": 23, "astronaut": 55, "coffee": 28}
NAMES = list(REGIONS)


def load_rgb(name: str) -> np.ndarray:
    """The golden input as the C++ read it (imread: BGR), returned in RGB order."""
    bgr = cv2.imread(str(GOLDEN / f"{name}.png"), cv2.IMREAD_COLOR)
    return np.ascontiguousarray(bgr[..., ::-1])


def lab_of(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb[..., ::-1].astype(np.float32) * np.float32(1 / 255), cv2.COLOR_BGR2Lab)


@pytest.fixture(scope="module")
def golden_images() -> dict[str, np.ndarray]:
    return {n: load_rgb(n) for n in NAMES}


# ----------------------------------------------------------------------------------------- golden maps

@pytest.mark.parametrize("name", NAMES)
def test_hc_matches_reference(name: str, golden_images: dict[str, np.ndarray]) -> None:
    ours, ref = hc(golden_images[name]), np.load(GOLDEN / f"{name}_hc.npy")
    assert ours.shape == ref.shape and ours.dtype == np.float32
    assert np.abs(ours - ref).max() <= 0.01


@pytest.mark.parametrize("name", NAMES)
def test_rc_matches_reference(name: str, golden_images: dict[str, np.ndarray]) -> None:
    ours, ref = rc(golden_images[name]), np.load(GOLDEN / f"{name}_rc.npy")
    assert ours.shape == ref.shape and ours.dtype == np.float32
    assert np.abs(ours - ref).mean() <= 0.01
    assert np.corrcoef(ours.ravel().astype(np.float64), ref.ravel().astype(np.float64))[0, 1] >= 0.99


@pytest.mark.parametrize("name", NAMES)
def test_segmentation_region_counts(name: str, golden_images: dict[str, np.ndarray]) -> None:
    labels, n = segment_image(lab_of(golden_images[name]))
    assert n == REGIONS[name]
    assert labels.dtype == np.int32 and labels.shape == golden_images[name].shape[:2]
    assert labels.min() == 0 and labels.max() == n - 1


def test_fast_segmentation_equals_reference_transcription(golden_images: dict[str, np.ndarray]) -> None:
    """The skimage-backed path against the step-by-step reference (float32 weights, `<=`, raster edge
    order): a full image and two crops at other parameters, labels included (raster numbering)."""
    cases = [(golden_images["coffee"], {}),
             (golden_images["china"][20:100, 30:150], {"k": 20.0, "min_size": 50}),
             (golden_images["astronaut"][100:180, 60:200], {"k": 100.0, "min_size": 30, "sigma": 0.8})]
    for rgb, kw in cases:
        lab = lab_of(np.ascontiguousarray(rgb))
        fast, n_fast = segment_image(lab, **kw)
        ref, n_ref = segment_image_reference(lab, **kw)
        assert n_fast == n_ref
        np.testing.assert_array_equal(fast, ref)


def test_labels_in_raster_order(golden_images: dict[str, np.ndarray]) -> None:
    labels, n = segment_image(lab_of(golden_images["chelsea"]))
    _, first = np.unique(labels.ravel(), return_index=True)
    assert (np.diff(first) > 0).all() and len(first) == n


def test_quantisation_palette(golden_images: dict[str, np.ndarray]) -> None:
    rgb = golden_images["china"]
    pal = quantize(rgb)
    k = len(pal.counts)
    assert 10 <= k <= 256 and pal.counts.sum() == pal.index.size and pal.index.max() == k - 1
    assert pal.colors.dtype == np.float32 and ((pal.colors >= 0) & (pal.colors <= 1)).all()
    bgr = rgb[..., ::-1].astype(np.float32) / 255
    np.testing.assert_allclose(pal.colors[0], bgr[pal.index == 0].mean(0), atol=1e-5)


# --------------------------------------------------------------------------------- outputs, degenerate

def _check_map(sal: np.ndarray, shape: tuple[int, int]) -> None:
    assert sal.shape == shape and sal.dtype == np.float32
    assert np.isfinite(sal).all() and sal.min() >= 0.0 and sal.max() <= 1.0


@pytest.mark.parametrize("fn", [hc, rc])
def test_output_contract_on_random_image(fn) -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (40, 56, 3), dtype=np.uint8)
    _check_map(fn(rgb), (40, 56))


@pytest.mark.parametrize("fn", [hc, rc])
def test_uniform_colour_gives_zero_map(fn) -> None:
    sal = fn(np.full((32, 48, 3), (200, 30, 90), np.uint8))
    _check_map(sal, (32, 48))
    assert (sal == 0).all()


@pytest.mark.parametrize("fn", [hc, rc])
def test_two_flat_colours_give_finite_map(fn) -> None:
    rgb = np.zeros((30, 40, 3), np.uint8)
    rgb[:, 25:] = (250, 250, 250)
    sal = fn(rgb)
    _check_map(sal, (30, 40))
    assert sal[:, 30:].mean() > sal[:, :20].mean()    # the rarer colour is the salient one


def test_single_region_many_colours_is_finite() -> None:
    """A smooth gradient: few segmentation regions, many colours."""
    ramp = np.linspace(0, 255, 64, dtype=np.float32)
    rgb = np.stack(np.broadcast_arrays(ramp[None, :], ramp[:, None] * 0.5, 128 + 0 * ramp[None, :]), -1)
    rgb = rgb.astype(np.uint8)
    for fn in (hc, rc):
        _check_map(fn(rgb), (64, 64))


def test_tiny_image_is_finite() -> None:
    rgb = np.random.default_rng(1).integers(0, 256, (4, 4, 3), dtype=np.uint8)
    for fn in (hc, rc):
        _check_map(fn(rgb), (4, 4))


# ------------------------------------------------------------------------------------------- inputs

def test_grayscale_and_rgba_inputs() -> None:
    rng = np.random.default_rng(2)
    gray = rng.integers(0, 256, (24, 30), dtype=np.uint8)
    as_rgb = np.repeat(gray[:, :, None], 3, axis=2)
    np.testing.assert_array_equal(hc(gray), hc(as_rgb))
    np.testing.assert_array_equal(rc(gray[:, :, None]), rc(as_rgb))
    rgb = rng.integers(0, 256, (24, 30, 3), dtype=np.uint8)
    rgba = np.concatenate([rgb, rng.integers(0, 256, (24, 30, 1), dtype=np.uint8)], axis=2)
    np.testing.assert_array_equal(hc(rgba), hc(rgb))
    np.testing.assert_array_equal(rc(rgba), rc(rgb))


def test_uint16_is_reduced_to_8_bits() -> None:
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)
    wide = rgb.astype(np.uint16) * 256 + rng.integers(0, 256, rgb.shape, dtype=np.uint16)
    np.testing.assert_array_equal(to_rgb_uint8(wide), rgb)
    np.testing.assert_array_equal(hc(wide), hc(rgb))


@pytest.mark.parametrize("image, needle", [
    (np.zeros((16, 16, 3), np.float32), "expected a uint8 RGB image, got dtype float32"),
    (np.zeros((16, 16, 3), np.float64), "(x * 255).round().astype(np.uint8)"),
    (np.zeros((16, 16, 3), np.int32), "expected a uint8"),
    (np.zeros((16, 16, 3), bool), "expected a uint8"),
    (np.zeros((3, 16, 3), np.uint8), "at least 4 px per side"),
    (np.zeros((16, 2), np.uint8), "at least 4 px per side"),
    (np.zeros((16, 16, 2), np.uint8), "got shape (16, 16, 2)"),
    (np.zeros((2, 16, 16, 3), np.uint8), "got shape (2, 16, 16, 3)"),
])
@pytest.mark.parametrize("fn", [hc, rc])
def test_bad_inputs_are_refused_with_one_line(fn, image: np.ndarray, needle: str) -> None:
    with pytest.raises(ValueError) as e:
        fn(image)
    assert needle in str(e.value) and "\n" not in str(e.value)


# -------------------------------------------------------------------------------------------- masks

def square_scene(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A bright square on a flat, slightly noisy dark background; (rgb, bool square)."""
    rng = np.random.default_rng(seed)
    rgb = np.clip(rng.normal(60, 4, (96, 128, 3)), 0, 255)
    rgb[:, :, 2] += 20
    square = np.zeros((96, 128), bool)
    square[30:66, 44:84] = True
    rgb[square] = np.clip(rng.normal(230, 4, (square.sum(), 3)), 0, 255) * [1.0, 0.85, 0.2]
    return rgb.astype(np.uint8), square


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def test_saliency_mask_contract() -> None:
    sal = np.random.default_rng(4).random((20, 30), dtype=np.float32) ** 3
    for method in ("adaptive", "otsu"):
        m = saliency_mask(sal, method)
        assert m.shape == (20, 30) and m.dtype == bool and 0 < m.sum() < m.size
    assert not saliency_mask(np.zeros((20, 30), np.float32)).any()
    assert not saliency_mask(np.full((20, 30), 0.7, np.float32), "otsu").any()
    with pytest.raises(ValueError, match="valid methods: adaptive, otsu"):
        saliency_mask(sal, "median")
    with pytest.raises(ValueError, match="NaN"):
        saliency_mask(np.full((4, 4), np.nan, np.float32))


@pytest.mark.parametrize("fn", [hc, rc])
def test_masks_find_the_square(fn) -> None:
    rgb, square = square_scene()
    sal = fn(rgb)
    assert iou(saliency_mask(sal, "adaptive"), square) > 0.8
    assert iou(saliency_mask(sal, "otsu"), square) > 0.8
    cut = saliency_cut(rgb, sal)
    assert cut.shape == square.shape and cut.dtype == bool
    assert iou(cut, square) > 0.8


def test_saliency_cut_degenerate_and_deterministic() -> None:
    rgb, square = square_scene(1)
    assert not saliency_cut(rgb, np.zeros(square.shape, np.float32)).any()
    flat = np.full((40, 40, 3), 128, np.uint8)
    assert not saliency_cut(flat, rc(flat)).any()
    sal = rc(rgb)
    np.testing.assert_array_equal(saliency_cut(rgb, sal), saliency_cut(rgb, sal))
    with pytest.raises(ValueError, match="does not match"):
        saliency_cut(rgb, sal[:-1])
