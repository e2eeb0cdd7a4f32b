"""Counter-based random numbers: every value is a pure function of (seed, id, stream, slot).

Factors are drawn per image (or per object) from their own stream, so a dataset does not
depend on how it is split into chunks or processes, and switching one factor on or off leaves
the draws of every other factor unchanged.
"""
from __future__ import annotations

import zlib

import numpy as np

_M1, _M2, _M3 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser on a uint64 array."""
    x = x ^ (x >> np.uint64(30))
    x = x * _M2
    x = x ^ (x >> np.uint64(27))
    x = x * _M3
    return x ^ (x >> np.uint64(31))


def stream_id(name: str) -> int:
    """A stable integer for a named stream ("viewpoint", "light", ...)."""
    return zlib.crc32(name.encode())


def uniform(seed: int, ids: np.ndarray, stream: str, k: int = 1) -> np.ndarray:
    """(N, k) float64 uniforms in [0, 1) for ids (N,) of one named stream."""
    with np.errstate(over="ignore"):
        base = _mix(np.uint64(seed) * _M1 + np.uint64(stream_id(stream)))
        x = _mix(np.asarray(ids, np.uint64)[:, None] * _M1 ^ base)
        x = _mix(x + np.arange(1, k + 1, dtype=np.uint64)[None, :] * _M2)
    return (x >> np.uint64(11)).astype(np.float64) / float(1 << 53)
