"""The offline saliency cache: keys, hits, corruption, concurrent writers, and the precompute CLI."""
from __future__ import annotations

import importlib.util
import logging
import multiprocessing
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pretrain.saliency import algos
from pretrain.saliency.__main__ import main
from pretrain.saliency.cache import FOOTER_SIZE, SaliencyCache, image_key

ROOT = Path(__file__).resolve().parents[2]
HAVE_GC = importlib.util.find_spec("pretrain.saliency.global_contrast") is not None


def gradient_saliency(rgb: np.ndarray, *, scale: float = 1.0, invert: bool = False) -> np.ndarray:
    """A cheap deterministic stand-in algorithm: H x W float32 in [0, 1]."""
    sal = rgb.astype(np.float32).mean(2) / 255.0 * scale
    return (1.0 - sal if invert else sal).astype(np.float32)


class Counting:
    """``gradient_saliency`` that counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, rgb: np.ndarray, *, scale: float = 1.0, invert: bool = False) -> np.ndarray:
        self.calls += 1
        return gradient_saliency(rgb, scale=scale, invert=invert)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Counting:
    fn = Counting()
    monkeypatch.setitem(algos.ALGORITHMS, "fake", fn)
    monkeypatch.setitem(algos.ALGORITHMS, "grad", gradient_saliency)
    return fn


def images(n: int, seed: int = 0, size: int = 12) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size + 3, 3), dtype=np.uint8)


def entry_path(cache: SaliencyCache, rgb: np.ndarray) -> Path:
    return cache.path(cache.key(rgb))


# --------------------------------------------------------------------------------------------
# Keys and the registry


def test_algorithm_key_depends_on_every_parameter(fake: Counting) -> None:
    base = algos.algorithm_key("fake", {})
    assert base == algos.algorithm_key("fake", {"scale": 1.0, "invert": False})
    assert base == algos.algorithm_key("fake", {"scale": 1})                   # int for a float default
    assert len({base, algos.algorithm_key("fake", {"scale": 0.5}), algos.algorithm_key("fake", {"invert": True}),
                algos.algorithm_key("grad", {})}) == 4


def test_registry_errors_name_the_valid_choices(fake: Counting) -> None:
    with pytest.raises(ValueError, match="valid algorithms: hc, rc"):
        algos.algorithm_key("nope", {})
    with pytest.raises(ValueError, match=r"'sigma'.*valid parameters: scale, invert"):
        algos.algorithm_key("fake", {"sigma": 1.0})
    with pytest.raises(ValueError, match="scale"):
        algos.algorithm_key("fake", {"scale": "big"})
    assert set(algos.ALGORITHMS) >= {"hc", "rc"}


def test_image_key_is_content_and_shape() -> None:
    a = images(1)[0]
    assert image_key(a) == image_key(a.copy()) != image_key(a.reshape(a.shape[1], a.shape[0], 3))
    b = a.copy()
    b[0, 0, 0] ^= 1
    assert image_key(a) != image_key(b)


@pytest.mark.parametrize("bad", [np.zeros((8, 8, 2), np.uint8), np.zeros((8, 8, 3), np.float32),
                                 np.zeros((2, 8, 8, 3), np.uint8), np.zeros((0, 8, 3), np.uint8)])
def test_non_image_input_is_refused_in_one_line(fake: Counting, tmp_path: Path, bad: np.ndarray) -> None:
    with pytest.raises(ValueError, match=r"uint8 RGB image of shape \(H, W, 3\)") as e:
        SaliencyCache(tmp_path, "fake").get(bad)
    assert "\n" not in str(e.value) and fake.calls == 0


@pytest.mark.skipif(not HAVE_GC, reason="pretrain.saliency.global_contrast not available")
def test_grayscale_and_rgba_are_converted_as_the_algorithms_do(fake: Counting, tmp_path: Path) -> None:
    rgb = images(1)[0]
    gray = rgb[:, :, 0]
    rgba = np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 7, np.uint8)], axis=2)
    cache = SaliencyCache(tmp_path, "fake")
    np.testing.assert_array_equal(cache.get(gray), cache.get(np.repeat(gray[:, :, None], 3, axis=2)))
    np.testing.assert_array_equal(cache.get(rgba), cache.get(rgb))
    assert fake.calls == 2 and cache.stats["hits"] == 2


# --------------------------------------------------------------------------------------------
# Hits, misses, round trip


def test_fill_then_get_hits_without_computing(fake: Counting, tmp_path: Path) -> None:
    x = images(6)
    cache = SaliencyCache(tmp_path, "fake")
    assert cache.fill(x, workers=1) == 6 and fake.calls == 6
    assert cache.fill(x, workers=1) == 0 and fake.calls == 6
    maps = SaliencyCache(tmp_path, "fake").get_many(x, compute=False)
    assert fake.calls == 6 and maps.dtype == np.float32 and maps.shape == (6, 12, 15)
    expected = np.stack([gradient_saliency(r) for r in x])
    np.testing.assert_allclose(maps, expected, atol=1e-3)
    assert (tmp_path / cache.folder.name / "params.json").is_file()
    # entries are standard .npy files (plus a footer) under <algo>-<key12>/<key[:2]>/<key>.npy
    path = entry_path(cache, x[0])
    assert path.parent.name == path.stem[:2] and cache.folder.name == f"fake-{cache.algo_key[:12]}"
    np.testing.assert_allclose(np.load(path), expected[0], atol=1e-3)


def test_get_computes_once_and_counts(fake: Counting, tmp_path: Path) -> None:
    x = images(2)
    cache = SaliencyCache(tmp_path, "fake")
    first = cache.get(x[0])
    again = cache.get(x[0])
    np.testing.assert_array_equal(first, again)        # computed value == what a read returns
    assert fake.calls == 1 and cache.stats == {"hits": 1, "misses": 1, "computed": 1, "corrupt": 0}
    assert cache.fill(np.concatenate([x, x]), workers=1) == 1 and fake.calls == 2    # duplicates once


def test_parameter_change_misses(fake: Counting, tmp_path: Path) -> None:
    x = images(3)
    SaliencyCache(tmp_path, "fake").fill(x)
    other = SaliencyCache(tmp_path, "fake", {"invert": True})
    assert fake.calls == 3
    with pytest.raises(KeyError):
        other.get(x[0], compute=False)
    assert other.fill(x) == 3 and fake.calls == 6
    np.testing.assert_allclose(other.get(x[1]), 1 - gradient_saliency(x[1]), atol=1e-3)
    assert len([p for p in tmp_path.iterdir() if p.is_dir()]) == 2


def test_missing_entry_without_compute_raises_keyerror_with_hint(fake: Counting, tmp_path: Path) -> None:
    cache = SaliencyCache(tmp_path, "fake")
    with pytest.raises(KeyError, match="python -m pretrain.saliency precompute"):
        cache.get(images(1)[0], compute=False)
    with pytest.raises(KeyError, match="precompute"):
        cache.get_many(images(2), compute=False)
    assert fake.calls == 0


def test_out_of_range_maps_are_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(algos.ALGORITHMS, "big", lambda rgb: np.full(rgb.shape[:2], 3.0, np.float32))
    with pytest.raises(ValueError, match="outside"):
        SaliencyCache(tmp_path, "big").get(images(1)[0])


# --------------------------------------------------------------------------------------------
# Corruption


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def flip_payload_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-FOOTER_SIZE - 5] ^= 0x10
    path.write_bytes(bytes(data))


def flip_footer_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))


def garbage(path: Path) -> None:
    path.write_bytes(np.random.default_rng(1).bytes(path.stat().st_size))


def empty(path: Path) -> None:
    path.write_bytes(b"")


@pytest.mark.parametrize("damage", [truncate, flip_payload_byte, flip_footer_byte, garbage, empty])
def test_corrupt_entry_is_detected_recomputed_and_repaired(fake: Counting, tmp_path: Path, damage,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    x = images(3)
    cache = SaliencyCache(tmp_path, "fake")
    cache.fill(x)
    path = entry_path(cache, x[1])
    good = path.read_bytes()
    damage(path)
    with caplog.at_level(logging.WARNING, logger="pretrain.saliency.cache"):
        with pytest.raises(KeyError):
            cache.get(x[1], compute=False)                 # never returned
        sal = cache.get(x[1])
    assert any("corrupt" in r.getMessage() and str(path) in r.getMessage() for r in caplog.records)
    np.testing.assert_allclose(sal, gradient_saliency(x[1]), atol=1e-3)
    assert cache.stats["corrupt"] == 2 and fake.calls == 4
    assert path.read_bytes() == good                       # repaired
    cache.get(x[1], compute=False)
    assert cache.stats["corrupt"] == 2


def test_fill_repairs_corrupt_entries(fake: Counting, tmp_path: Path) -> None:
    x = images(4)
    cache = SaliencyCache(tmp_path, "fake")
    cache.fill(x)
    garbage(entry_path(cache, x[2]))
    assert cache.fill(x) == 1 and cache.stats["corrupt"] == 1
    assert x[2] in cache


# --------------------------------------------------------------------------------------------
# Concurrent writers


def _fill_in_child(root: str, seed_lo: int, seed_hi: int, workers: int) -> None:
    algos.ALGORITHMS["grad"] = gradient_saliency           # a spawned process starts with the plain registry
    x = np.concatenate([images(1, seed) for seed in range(seed_lo, seed_hi)])
    SaliencyCache(root, "grad").fill(x, workers=workers)


def test_two_processes_fill_the_same_cache_without_corruption(fake: Counting, tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_fill_in_child, args=(str(tmp_path), 0, 40, 1)),
             ctx.Process(target=_fill_in_child, args=(str(tmp_path), 10, 50, 2))]   # 30 shared, one uses a pool
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    cache = SaliencyCache(tmp_path, "grad")
    x = np.concatenate([images(1, seed) for seed in range(50)])
    maps = cache.get_many(x, compute=False)
    assert cache.stats == {"hits": 50, "misses": 0, "computed": 0, "corrupt": 0}
    np.testing.assert_allclose(maps, np.stack([gradient_saliency(r) for r in x]), atol=1e-3)
    files = list(cache.folder.rglob("*"))
    assert len([f for f in files if f.suffix == ".npy"]) == 50
    assert not [f for f in files if f.name.endswith(".tmp")]


def test_a_pool_fills_in_chunks_with_a_partial_last_one(fake: Counting, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from pretrain.saliency import cache as cache_mod

    monkeypatch.setattr(cache_mod, "FILL_CHUNK", 3)
    x = images(10, seed=7)
    cache = SaliencyCache(tmp_path, "grad")
    cache.fill(x[:2], workers=1)                                    # two present, eight missing
    assert cache.fill(np.concatenate([x, x[:1]]), workers=2) == 8   # chunks of 3, 3, 2; duplicate once
    assert cache.stats["computed"] == 10
    np.testing.assert_allclose(cache.get_many(x, compute=False), np.stack([gradient_saliency(r) for r in x]),
                               atol=1e-3)


# --------------------------------------------------------------------------------------------
# The CLI


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from synthetic.generate import generate

    return generate("shapes64", 16, 0, tmp_path_factory.mktemp("sal") / "d", size=32, workers=1, progress=False)


def test_cli_precompute_fills_then_hits(fake: Counting, tiny_dataset: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture) -> None:
    args = ["precompute", "--data", str(tiny_dataset), "--algo", "fake", "--cache", str(tmp_path / "c"),
            "--workers", "1", "--param", "scale=0.5", "--split", "all", "--quiet"]
    assert main(args) == 0 and fake.calls == 16
    assert main(args) == 0 and fake.calls == 16
    from imagedata.formats import open_source

    src = open_source(tiny_dataset, split="all")
    x = src.read(np.arange(16)).permute(0, 2, 3, 1).contiguous().numpy()
    maps = SaliencyCache(tmp_path / "c", "fake", {"scale": 0.5}).get_many(x, compute=False)
    np.testing.assert_allclose(maps, np.stack([gradient_saliency(r, scale=0.5) for r in x]), atol=1e-3)
    assert main(["stats", "--cache", str(tmp_path / "c")]) == 0
    out = capsys.readouterr().out
    assert "entries=16" in out and '"scale": 0.5' in out


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pretrain.saliency", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.skipif(not HAVE_GC, reason="pretrain.saliency.global_contrast not available")
def test_cli_precompute_end_to_end_with_hc(tiny_dataset: Path) -> None:
    first = run_cli("precompute", "--data", str(tiny_dataset), "--algo", "hc", "--workers", "2")
    assert first.returncode == 0, first.stderr
    assert "15 computed" in first.stderr                   # the train split of 16 images
    second = run_cli("precompute", "--data", str(tiny_dataset), "--algo", "hc", "--workers", "2")
    assert second.returncode == 0 and "15 already cached, 0 computed" in second.stderr, second.stderr
    stats = run_cli("stats", "--data", str(tiny_dataset))
    assert stats.returncode == 0 and "entries=15" in stats.stdout
    from pretrain.saliency.global_contrast import hc
    from imagedata.formats import open_source

    x = open_source(tiny_dataset, split="train").read(np.arange(3)).permute(0, 2, 3, 1).contiguous().numpy()
    cache = SaliencyCache(tiny_dataset / ".saliency", "hc")
    np.testing.assert_allclose(cache.get_many(x, compute=False), np.stack([hc(r) for r in x]), atol=1e-3)


@pytest.mark.parametrize("args, needle", [
    (["--data", "/nonexistent/data", "--algo", "hc"], "no such dataset"),
    (["--algo", "nope"], "valid algorithms"),
    (["--algo", "hc", "--param", "noequals"], "name=value"),
])
def test_cli_bad_input_is_one_line_and_nonzero(args: list[str], needle: str, tmp_path: Path) -> None:
    if "--data" not in args:
        args = ["--data", str(tmp_path), *args]
    r = run_cli("precompute", *args)
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], r.stderr


def test_cli_unknown_parameter(tmp_path: Path, fake: Counting, capsys: pytest.CaptureFixture) -> None:
    assert main(["precompute", "--data", str(tmp_path), "--algo", "fake", "--param", "sigma=2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'sigma'" in err[0] and "scale, invert" in err[0]
