"""An offline, content-addressed store of per-image saliency maps (HC / RC, ...).

Saliency-based augmentation needs one map per training image; computing RC on the fly costs far
more than a training step, so the maps are computed once (``python -m pretrain.saliency
precompute``) and read back by content::

    cache = SaliencyCache("data/shapes64/.saliency", "rc", {"seg_k": 50})
    cache.fill(images, workers=8, progress=True)         # uint8 (B, H, W, 3) -> computes the missing ones
    maps = cache.get_many(images, compute=False)         # float32 (B, H, W) in [0, 1]

Layout: ``root/<algo>-<algorithm_key[:12]>/params.json`` records the algorithm and its resolved
parameters; entry ``key`` lives at ``root/<algo>-<algorithm_key[:12]>/<key[:2]>/<key>.npy`` where
``key = blake2b(algorithm_key, image_key(rgb))`` and :func:`image_key` hashes the decoded uint8
pixels and their shape (the image exactly as training sees it, so any change of decoding or
resizing is a different entry).

Entry format: a standard ``.npy`` file of the float16 ``(H, W)`` map (``np.load`` reads it; float16
keeps maps in [0, 1] to within 2.5e-4) followed by a 32-byte footer: the 8-byte magic ``FOOTER_MAGIC``
and a 24-byte blake2b digest of the entry key and every byte before the footer. A truncated,
bit-flipped, foreign or misplaced file fails the digest, is logged as a warning, counted in
``stats["corrupt"]``, recomputed and rewritten; it is never returned. Every write goes to a
temporary file in the entry's folder and is renamed into place with ``os.replace``, so concurrent
writers (processes filling the same cache) and interrupted runs leave only complete entries.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import multiprocessing
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from fsio import write_bytes_atomic

from .algos import algorithm_key, get_algorithm, resolve_params

log = logging.getLogger(__name__)

FOOTER_MAGIC = b"SSLSAL\x00\x01"
DIGEST_SIZE = 24
FOOTER_SIZE = len(FOOTER_MAGIC) + DIGEST_SIZE
STORE_DTYPE = np.float16
RANGE_TOLERANCE = 1e-3      # computed maps must lie in [0, 1] up to this
FILL_CHUNK = 64            # images per process-pool task in SaliencyCache.fill
PRECOMPUTE_HINT = "run `python -m pretrain.saliency precompute --data DIR --algo ALGO` first"


# --------------------------------------------------------------------------------------------
# Keys and entry files


def check_rgb(rgb: Any) -> np.ndarray:
    """``rgb`` as a C-contiguous uint8 ``(H, W, 3)`` RGB array (the image that is keyed and computed on).

    Grayscale ``(H, W)`` / ``(H, W, 1)``, RGBA ``(H, W, 4)`` and 16-bit images are converted exactly as
    the algorithms convert them (:func:`pretrain.saliency.global_contrast.to_rgb_uint8`); anything
    else is refused with a one-line ValueError.
    """
    if isinstance(rgb, np.ndarray) and rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3 and rgb.size:
        return np.ascontiguousarray(rgb)
    if isinstance(rgb, np.ndarray) and rgb.dtype in (np.uint8, np.uint16) and rgb.size \
            and (rgb.ndim == 2 or (rgb.ndim == 3 and rgb.shape[2] in (1, 3, 4))):
        from .global_contrast import to_rgb_uint8

        return to_rgb_uint8(rgb)
    got = f"{rgb.dtype} array of shape {rgb.shape}" if isinstance(rgb, np.ndarray) else type(rgb).__name__
    raise ValueError(f"expected a uint8 RGB image of shape (H, W, 3) (or grayscale (H, W), RGBA (H, W, 4)), "
                     f"got a {got}")


def image_key(rgb: np.ndarray) -> str:
    """blake2b (hex, 32 bytes) of a uint8 ``(H, W, 3)`` image's shape and pixel bytes."""
    rgb = check_rgb(rgb)
    h = hashlib.blake2b(digest_size=32)
    h.update(f"uint8{rgb.shape}".encode())
    h.update(rgb.data)
    return h.hexdigest()


def entry_key(algo_key: str, img_key: str) -> str:
    """The key of one (algorithm + parameters, image) entry."""
    return hashlib.blake2b(f"{algo_key}:{img_key}".encode(), digest_size=32).hexdigest()


def _digest(key: str, body: bytes) -> bytes:
    h = hashlib.blake2b(digest_size=DIGEST_SIZE)
    h.update(key.encode())
    h.update(body)
    return h.digest()


def encode_entry(key: str, saliency: np.ndarray) -> bytes:
    """The bytes of an entry file: ``.npy`` of the float16 map, then magic + digest."""
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.ascontiguousarray(saliency, dtype=STORE_DTYPE), allow_pickle=False)
    body = buf.getvalue()
    return body + FOOTER_MAGIC + _digest(key, body)


class CorruptEntry(ValueError):
    """An entry file that fails its checksum or does not hold the expected map."""


def decode_entry(key: str, data: bytes, shape: tuple[int, int] | None = None) -> np.ndarray:
    """float32 ``(H, W)`` map of an entry file's bytes; CorruptEntry if anything is wrong."""
    if len(data) < FOOTER_SIZE or data[-FOOTER_SIZE:-DIGEST_SIZE] != FOOTER_MAGIC:
        raise CorruptEntry(f"no valid footer ({len(data)} bytes)")
    body = data[:-FOOTER_SIZE]
    if data[-DIGEST_SIZE:] != _digest(key, body):
        raise CorruptEntry("checksum mismatch")
    try:
        arr = np.lib.format.read_array(io.BytesIO(body), allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise CorruptEntry(f"unreadable array ({e})") from e
    if arr.dtype != STORE_DTYPE or arr.ndim != 2 or (shape is not None and arr.shape != tuple(shape)):
        raise CorruptEntry(f"holds a {arr.dtype} {arr.shape} array, expected {STORE_DTYPE.__name__} {shape}")
    return arr.astype(np.float32)


def default_cache_dir(data: Path | str) -> Path:
    """``<DATA>/.saliency`` for a dataset folder, ``<folder of DATA>/.saliency`` for a dataset file."""
    data = Path(data)
    return (data.parent if data.is_file() else data) / ".saliency"


def compute_saliency(fn: Callable[..., np.ndarray], params: dict[str, Any], rgb: np.ndarray) -> np.ndarray:
    """``fn(rgb, **params)`` checked: a finite float32 ``(H, W)`` map in [0, 1]."""
    sal = np.asarray(fn(rgb, **params))
    if sal.shape != rgb.shape[:2]:
        raise ValueError(f"saliency algorithm {fn!r} returned shape {sal.shape} for an image of "
                         f"shape {rgb.shape}; expected {rgb.shape[:2]}")
    sal = sal.astype(np.float32)
    if not np.isfinite(sal).all() or sal.min() < -RANGE_TOLERANCE or sal.max() > 1 + RANGE_TOLERANCE:
        raise ValueError(f"saliency algorithm {fn!r} returned values outside [0, 1] "
                         f"(min {np.nanmin(sal):.4g}, max {np.nanmax(sal):.4g})")
    return np.clip(sal, 0.0, 1.0)


def _compute_and_store(fn: Callable[..., np.ndarray], params: dict[str, Any],
                       items: list[tuple[np.ndarray, str, str]]) -> int:
    """Process-pool task: compute the maps of a chunk of (image, key, path) and write their entries."""
    for rgb, key, path in items:
        write_bytes_atomic(Path(path), encode_entry(key, compute_saliency(fn, params, rgb)))
    return len(items)


# --------------------------------------------------------------------------------------------
# The cache


class SaliencyCache:
    """Saliency maps of one algorithm with one set of parameters, stored under ``root``.

    Args:
        root: cache folder (shared by every algorithm; each gets its own subfolder).
        algo: a name in :data:`pretrain.saliency.algos.ALGORITHMS`.
        params: keyword parameters of the algorithm (defaults filled in from its signature).

    Attributes:
        folder: ``root/<algo>-<algorithm_key[:12]>``.
        stats: counts of ``hits`` (valid entries read), ``misses`` (absent or corrupt entries),
            ``computed`` (maps computed and stored) and ``corrupt`` (entries that failed validation).
    """

    def __init__(self, root: Path | str, algo: str, params: dict[str, Any] | None = None) -> None:
        self.root = Path(root)
        self.algo = algo
        self.fn = get_algorithm(algo)
        self.params = resolve_params(algo, params)
        self.algo_key = algorithm_key(algo, self.params)
        self.folder = self.root / f"{algo}-{self.algo_key[:12]}"
        self.stats = {"hits": 0, "misses": 0, "computed": 0, "corrupt": 0}
        self._params_written = False

    def __repr__(self) -> str:
        return f"SaliencyCache({str(self.root)!r}, {self.algo!r}, {self.params})"

    # ---------------------------------------------------------------- paths
    def key(self, rgb: np.ndarray) -> str:
        """Entry key of a uint8 ``(H, W, 3)`` image under this algorithm and parameters."""
        return entry_key(self.algo_key, image_key(rgb))

    def path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.npy"

    def _write_params(self) -> None:
        """Record algo + params in ``folder/params.json`` (once; atomically)."""
        if self._params_written:
            return
        path = self.folder / "params.json"
        if not path.is_file():
            spec = {"algo": self.algo, "params": self.params, "algorithm_key": self.algo_key}
            write_bytes_atomic(path, (json.dumps(spec, indent=2, sort_keys=True) + "\n").encode())
        self._params_written = True

    # ---------------------------------------------------------------- single entries
    def _read(self, key: str, shape: tuple[int, int]) -> np.ndarray | None:
        """The stored map, or None if absent or corrupt (corrupt ones are logged and counted)."""
        path = self.path(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            return decode_entry(key, data, shape)
        except CorruptEntry as e:
            self.stats["corrupt"] += 1
            log.warning("saliency cache: corrupt entry %s (%s); it will be recomputed", path, e)
            return None

    def _store(self, key: str, rgb: np.ndarray) -> np.ndarray:
        sal = compute_saliency(self.fn, self.params, rgb)
        self._write_params()
        write_bytes_atomic(self.path(key), encode_entry(key, sal))
        self.stats["computed"] += 1
        return sal.astype(STORE_DTYPE).astype(np.float32)   # exactly what a later read returns

    def get(self, rgb: np.ndarray, compute: bool = True) -> np.ndarray:
        """float32 ``(H, W)`` saliency of a uint8 ``(H, W, 3)`` RGB image.

        A missing or corrupt entry is computed and stored; with ``compute=False`` it raises
        KeyError instead (telling how to precompute the cache).
        """
        rgb = check_rgb(rgb)
        key = self.key(rgb)
        sal = self._read(key, rgb.shape[:2])
        if sal is not None:
            self.stats["hits"] += 1
            return sal
        self.stats["misses"] += 1
        if not compute:
            raise KeyError(f"no valid {self.algo} saliency map for this {rgb.shape[0]}x{rgb.shape[1]} image in "
                           f"{self.folder}; {PRECOMPUTE_HINT}")
        return self._store(key, rgb)

    def get_many(self, images: np.ndarray, compute: bool = True) -> np.ndarray:
        """float32 ``(B, H, W)`` saliency of a uint8 ``(B, H, W, 3)`` batch (see :meth:`get`)."""
        images = np.asarray(images)
        if images.ndim != 4:
            raise ValueError(f"expected a uint8 batch of shape (B, H, W, 3), got {images.dtype} {images.shape}")
        out = np.empty(images.shape[:3], dtype=np.float32)
        for i, rgb in enumerate(images):
            out[i] = self.get(rgb, compute=compute)
        return out

    def __contains__(self, rgb: np.ndarray) -> bool:
        """Whether a valid entry for ``rgb`` is stored (does not touch ``stats``)."""
        rgb = check_rgb(rgb)
        key = self.key(rgb)
        try:
            decode_entry(key, self.path(key).read_bytes(), rgb.shape[:2])
        except (FileNotFoundError, CorruptEntry):
            return False
        return True

    # ---------------------------------------------------------------- bulk
    def fill(self, images: Iterable[np.ndarray], workers: int = 1, progress: bool = False,
             total: int | None = None) -> int:
        """Compute and store the entries of ``images`` that are missing (or corrupt).

        Args:
            images: a uint8 ``(B, H, W, 3)`` array or any iterable of uint8 ``(H, W, 3)`` images
                (e.g. a generator reading a dataset chunk by chunk).
            workers: processes computing maps (a spawn-context ProcessPoolExecutor, started only
                when something is missing); ``<= 1`` computes in this process.
            progress: show a tqdm bar.
            total: number of images for the bar, if ``images`` has no ``len``.

        Returns:
            the number of maps computed (images repeated in ``images`` count once).
        """
        if total is None and hasattr(images, "__len__"):
            total = len(images)
        computed = 0
        with tqdm(total=total, disable=not progress, desc=f"saliency {self.algo}", unit="img") as bar:
            if workers <= 1:
                for key, rgb in self._missing(images, bar):
                    self._store(key, rgb)
                    computed += 1
                    bar.update()
            else:
                computed = self._fill_parallel(self._missing(images, bar), workers, bar)
        return computed

    def _missing(self, images: Iterable[np.ndarray], bar: tqdm) -> Iterator[tuple[str, np.ndarray]]:
        """(key, image) of each image without a valid entry, once per key; counts hits / misses."""
        seen: set[str] = set()
        for rgb in images:
            rgb = check_rgb(rgb)
            key = self.key(rgb)
            if key in seen:
                bar.update()
                continue
            seen.add(key)
            if self._read(key, rgb.shape[:2]) is not None:
                self.stats["hits"] += 1
                bar.update()
                continue
            self.stats["misses"] += 1
            yield key, rgb

    def _fill_parallel(self, missing: Iterator[tuple[str, np.ndarray]], workers: int, bar: tqdm) -> int:
        """Missing entries computed by ``workers`` processes, FILL_CHUNK images per task (one task per
        image: 109 s for the 13 824 SaliencyCut masks of shapes64-heldout on 2 cores, 64: 102 s;
        bench/RESULTS.md, "make pretrain METHOD=byol AUG=sgd: where its time goes")."""
        pool: ProcessPoolExecutor | None = None
        pending: set[Future] = set()
        computed = 0
        chunk: list[tuple[np.ndarray, str, str]] = []

        def collect(done: set[Future]) -> None:
            nonlocal computed
            for f in done:
                n = f.result()          # re-raises a worker's error
                computed += n
                self.stats["computed"] += n
                bar.update(n)

        def submit() -> None:
            nonlocal pool, pending
            if pool is None:
                self._write_params()
                pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
            pending.add(pool.submit(_compute_and_store, self.fn, self.params, list(chunk)))
            chunk.clear()
            if len(pending) >= 2 * workers:     # bound the images held in flight
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                collect(done)

        try:
            for key, rgb in missing:
                chunk.append((rgb, key, str(self.path(key))))
                if len(chunk) == FILL_CHUNK:
                    submit()
            if chunk:
                submit()
            done, pending = wait(pending)
            collect(done)
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        return computed


# --------------------------------------------------------------------------------------------
# Inspecting a cache folder


def cache_summary(root: Path | str) -> list[dict[str, Any]]:
    """One dict per algorithm folder under ``root``: folder, algo, params, entries, bytes."""
    root = Path(root)
    rows = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        spec: dict[str, Any] = {}
        try:
            spec = json.loads((folder / "params.json").read_text())
        except (OSError, ValueError):
            pass
        files = [p for p in folder.glob("*/*.npy")]
        rows.append({"folder": folder.name, "algo": spec.get("algo", "?"), "params": spec.get("params", {}),
                     "entries": len(files), "bytes": sum(p.stat().st_size for p in files)})
    return rows
