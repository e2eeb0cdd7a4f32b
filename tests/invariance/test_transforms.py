"""invariance.transforms: the transforms, the whitened-cosine measure, encoders invariant by construction."""
from __future__ import annotations

from itertools import pairwise

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from invariance.transforms import (
    TRANSFORMS,
    invariance,
    transform_invariance,
    whiten_stats,
)

STRENGTHS = (0.0, 0.25, 0.5, 0.75, 1.0)


def smooth_images(n: int, h: int = 32, w: int = 32, seed: int = 0) -> torch.Tensor:
    """(n, 3, h, w) in [0.1, 0.9]: a low-frequency colour field plus mid-frequency texture."""
    g = torch.Generator().manual_seed(seed)
    low = F.interpolate(torch.rand(n, 3, 4, 4, generator=g), size=(h, w), mode="bilinear", align_corners=False)
    mid = F.interpolate(torch.rand(n, 1, 12, 12, generator=g), size=(h, w), mode="bilinear", align_corners=False)
    return (0.1 + 0.5 * low + 0.3 * mid).clamp(0, 1)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """These tensors are tiny: with the CPU shared, two intra-op threads cost far more than they save."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return smooth_images(64)


@pytest.fixture(scope="module")
def net() -> nn.Module:
    """A tiny random conv net: 32-d features from (B, 3, H, W)."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 16, 5, 2, 2), nn.ReLU(), nn.Conv2d(16, 8, 3, 2, 1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(2), nn.Flatten()).eval()


# ----------------------------------------------------------------------------- the transforms

@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_transform_contract(name: str) -> None:
    """Same shape / dtype, in [0, 1], identity at 0, deterministic per seed, a change at strength 1."""
    x = smooth_images(8, 24, 32, seed=1)
    fn = TRANSFORMS[name]
    for s in STRENGTHS:
        y = fn(x, s, torch.Generator().manual_seed(3))
        assert y.shape == x.shape and y.dtype == x.dtype
        assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0
        assert torch.equal(y, fn(x, s, torch.Generator().manual_seed(3))), f"{name} not deterministic at {s}"
    assert float((fn(x, 0.0, torch.Generator().manual_seed(3)) - x).abs().max()) < 1e-5
    assert float((fn(x, 1.0, torch.Generator().manual_seed(3)) - x).abs().mean()) > 1e-3
    assert torch.equal(x, smooth_images(8, 24, 32, seed=1)), "the input was modified in place"


def test_rotation_on_a_non_square_image() -> None:
    """180 deg is a point reflection; 90 deg maps the central square onto itself, rotated (either way):
    checks the pixel <-> affine_grid conversion, which a wrong aspect handling would distort."""
    x = smooth_images(8, 24, 40)
    y = TRANSFORMS["rotation"](x, 1.0, torch.Generator().manual_seed(0))
    assert torch.allclose(y, x.flip(-1).flip(-2), atol=1e-5)
    y, square = TRANSFORMS["rotation"](x, 0.5, torch.Generator().manual_seed(0))[..., 8:32], x[..., 8:32]
    turns = []
    for yi, xi in zip(y, square, strict=True):
        turns += [k for k in (1, -1) if torch.allclose(yi, torch.rot90(xi, k, dims=(-2, -1)), atol=1e-5)]
    assert sorted(set(turns)) == [-1, 1] and len(turns) == len(x)


def test_random_parameters_follow_the_seed() -> None:
    x = smooth_images(16)
    a = TRANSFORMS["resized_crop"](x, 0.5, torch.Generator().manual_seed(0))
    b = TRANSFORMS["resized_crop"](x, 0.5, torch.Generator().manual_seed(1))
    assert not torch.allclose(a, b)


# ----------------------------------------------------------------------------- whitening

def correlated(n: int, d: int, seed: int, decades: float = 2.0) -> torch.Tensor:
    """(n, d) float64 with correlated columns whose scales span ``decades`` powers of ten, mean 5."""
    g = torch.Generator().manual_seed(seed)
    rotation, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    mix = torch.logspace(0, decades, d, dtype=torch.float64)[:, None] * rotation.T       # diag(scales) Q^T
    return torch.randn(n, d, generator=g, dtype=torch.float64) @ mix + 5.0


@pytest.mark.parametrize(("decades", "eps"), [(0.5, 1e-4), (2.0, 1e-12)])
def test_whitened_clean_features_have_identity_covariance(decades: float, eps: float) -> None:
    """Identity up to the ridge: eigenvalue l becomes l / (l + eps * mean(diag)), so an ill-conditioned
    covariance needs a small eps (the default 1e-4 shrinks its smallest directions)."""
    f = correlated(4000, 8, 0, decades)
    mean, w = whiten_stats(f, eps)
    z = (f - mean) @ w
    assert torch.allclose(w, w.T, atol=1e-10)
    assert z.mean(0).abs().max() < 1e-8
    assert torch.allclose(torch.cov(z.T), torch.eye(8, dtype=torch.float64), atol=1e-3)


def test_matches_the_cholesky_formulation_of_the_original() -> None:
    """Their code: L = cholesky(inv(cov)), cos((mu - f) L, (mu - g) L), averaged over images."""
    f = correlated(500, 6, 1)
    g = f + 0.5 * correlated(500, 6, 2)
    mu = f.mean(0)
    chol = torch.linalg.cholesky(torch.linalg.inv(torch.cov(f.T)))
    ref = F.cosine_similarity((mu - f) @ chol, (mu - g) @ chol, dim=-1).mean()
    assert invariance(f, g, eps=1e-12) == pytest.approx(float(ref), abs=1e-8)


def test_invariance_is_unchanged_by_an_affine_map_of_the_features() -> None:
    """Whitening after centring removes any invertible linear map and shift of the feature space."""
    f = correlated(800, 5, 3)
    g = f + 2.0 * correlated(800, 5, 4)
    a = torch.randn(5, 5, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    shift = torch.full((5,), -3.0, dtype=torch.float64)
    assert invariance(f @ a + shift, g @ a + shift, eps=1e-12) == pytest.approx(invariance(f, g, eps=1e-12), abs=1e-6)
    assert invariance(f, f) == pytest.approx(1.0, abs=1e-12)
    assert invariance(f, g) < 0.9


# ----------------------------------------------------------------------------- the measure on encoders

def test_strength_zero_scores_one_for_every_transform(images: torch.Tensor, net: nn.Module) -> None:
    result = transform_invariance(net, images[:40], strengths=(0.0,))
    assert set(result) == set(TRANSFORMS)
    for name, scores in result.items():
        assert scores[0.0] == pytest.approx(1.0, abs=1e-5), name


def test_hflip_invariant_encoder(images: torch.Tensor, net: nn.Module) -> None:
    """features = f(x) + f(hflip(x)) is invariant to horizontal flips by construction, not to the rest."""
    result = transform_invariance(lambda x: net(x) + net(x.flip(-1)), images,
                                  transforms=("hflip", "rotation", "invert"), strengths=(1.0,))
    assert result["hflip"][1.0] == pytest.approx(1.0, abs=1e-5)
    assert result["rotation"][1.0] < 0.6 and result["invert"][1.0] < 0.6
    plain = transform_invariance(net, images, transforms=("hflip",), strengths=(1.0,))
    assert plain["hflip"][1.0] < 0.6


def test_brightness_invariant_encoder_scores_higher(images: torch.Tensor, net: nn.Module) -> None:
    """Per-image standardised input removes brightness (up to clipping at 1)."""
    def standardised(x: torch.Tensor) -> torch.Tensor:
        m, s = x.mean((1, 2, 3), keepdim=True), x.std((1, 2, 3), keepdim=True)
        return net((x - m) / (s + 1e-3))
    kw = {"transforms": ("brightness",), "strengths": (0.5, 1.0)}
    inv, plain = transform_invariance(standardised, images, **kw), transform_invariance(net, images, **kw)
    for s in (0.5, 1.0):
        assert inv["brightness"][s] > plain["brightness"][s] + 0.2


def test_invariance_decreases_with_strength(images: torch.Tensor, net: nn.Module) -> None:
    result = transform_invariance(net, images, transforms=("rotation", "blur"), strengths=STRENGTHS)
    for name, tol, drop in (("rotation", 0.02, 0.5), ("blur", 1e-4, 0.01)):
        scores = [result[name][s] for s in STRENGTHS]
        assert all(b <= a + tol for a, b in pairwise(scores)), (name, scores)
        assert scores[0] - scores[-1] > drop, (name, scores)


def test_clean_features_computed_once_without_grad(images: torch.Tensor, net: nn.Module) -> None:
    calls = []

    def encode(x: torch.Tensor) -> torch.Tensor:
        assert not torch.is_grad_enabled()
        calls.append(len(x))
        return net(x)
    x = images[:40]
    a = transform_invariance(encode, x, transforms=("hflip", "scale"), strengths=(0.5, 1.0), batch_size=16)
    assert calls == [16, 16, 8] * (1 + 2 * 2)
    b = transform_invariance(net, x, transforms=("scale", "hflip"), strengths=(1.0, 0.5), batch_size=16,
                             progress=True)
    assert a == b, "results depend on the order of the requested transforms"


# ----------------------------------------------------------------------------- errors

def test_unknown_transform_lists_the_valid_names(images: torch.Tensor, net: nn.Module) -> None:
    with pytest.raises(ValueError, match=r"unknown transform.*'colour'.*rotation"):
        transform_invariance(net, images, transforms=("rotation", "colour"))


def test_nan_features_raise(images: torch.Tensor, net: nn.Module) -> None:
    with pytest.raises(ValueError, match="NaN"):
        transform_invariance(lambda x: net(x) * float("nan"), images, transforms=("hflip",))
    f = torch.randn(10, 3)
    bad = f.clone()
    bad[2, 1] = float("nan")
    with pytest.raises(ValueError, match="transformed features contain NaN"):
        invariance(f, bad)
    with pytest.raises(ValueError, match="clean features contain NaN"):
        whiten_stats(bad)


def test_too_few_images_raise(images: torch.Tensor, net: nn.Module) -> None:
    with pytest.raises(ValueError, match="at least 2"):
        whiten_stats(torch.randn(1, 4))
    with pytest.raises(ValueError, match="at least 2 images"):
        transform_invariance(net, images[:1], transforms=("hflip",))


def test_other_bad_inputs_raise(images: torch.Tensor, net: nn.Module) -> None:
    with pytest.raises(ValueError, match="differ in shape"):
        invariance(torch.randn(10, 3), torch.randn(9, 3))
    with pytest.raises(ValueError, match="zero variance"):
        whiten_stats(torch.ones(10, 3))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        transform_invariance(net, images * 2, transforms=("hflip",))
    with pytest.raises(ValueError, match="strengths"):
        transform_invariance(net, images, transforms=("hflip",), strengths=(1.5,))
    with pytest.warns(UserWarning, match="rank-deficient"):
        whiten_stats(torch.randn(8, 16))
