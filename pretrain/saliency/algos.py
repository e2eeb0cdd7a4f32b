"""The per-image saliency algorithms that :class:`~pretrain.saliency.cache.SaliencyCache` can store.

``ALGORITHMS`` maps a name to a callable ``fn(rgb, **params) -> saliency`` taking an H x W x 3
uint8 RGB image and returning an H x W float map in [0, 1]:

* ``hc`` - Histogram Contrast, ``rc`` - Region Contrast (Cheng et al., "Global Contrast based
  Salient Region Detection", CVPR 2011 / TPAMI 2015), implemented in
  :mod:`pretrain.saliency.global_contrast` and imported only when first called;
* ``hc-cut`` / ``rc-cut`` - SaliencyCut (the same paper, sec. 4) of the HC / RC map: the salient
  object's mask as a map of 0 / 1 (:mod:`pretrain.saliency.masks`), what the ``sgd`` policy's
  ``threshold=cut`` reads.

:func:`algorithm_key` hashes an algorithm's name, its fully resolved parameters (defaults filled in
from the function's signature) and ``ALGO_VERSION``; a cache entry written under one key is never
read under another, so changing any parameter, or bumping ``ALGO_VERSION`` when an implementation
changes its output, invalidates the stored maps.
"""
from __future__ import annotations

import hashlib
import importlib
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

ALGO_VERSION = 1


@dataclass(frozen=True)
class LazyAlgorithm:
    """``module.name``, imported on first use (so this registry imports without its dependencies).

    Picklable by its two strings, so process pools can receive it; ``inspect.signature`` sees the
    signature of the real function.
    """

    module: str
    name: str

    def resolve(self) -> Callable[..., np.ndarray]:
        return getattr(importlib.import_module(self.module), self.name)

    def __call__(self, rgb: np.ndarray, **params: Any) -> np.ndarray:
        return self.resolve()(rgb, **params)

    @property
    def __signature__(self) -> inspect.Signature:
        return inspect.signature(self.resolve())


_GC = f"{__package__}.global_contrast"
_MASKS = f"{__package__}.masks"
ALGORITHMS: dict[str, Callable[..., np.ndarray]] = {
    "hc": LazyAlgorithm(_GC, "hc"),
    "rc": LazyAlgorithm(_GC, "rc"),
    "hc-cut": LazyAlgorithm(_MASKS, "hc_cut"),
    "rc-cut": LazyAlgorithm(_MASKS, "rc_cut"),
}


def get_algorithm(algo: str) -> Callable[..., np.ndarray]:
    """The registered callable ``algo``; ValueError listing the valid names otherwise."""
    if algo not in ALGORITHMS:
        raise ValueError(f"unknown saliency algorithm {algo!r}; valid algorithms: {', '.join(ALGORITHMS)}")
    return ALGORITHMS[algo]


def parameter_defaults(algo: str) -> dict[str, Any]:
    """Keyword parameters of ``algo`` (all but the image argument) -> default (``inspect.Parameter.empty``
    where there is none)."""
    params = list(inspect.signature(get_algorithm(algo)).parameters.values())
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {p.name: p.default for p in params[1:] if p.kind in kinds}


def _coerce(algo: str, name: str, value: Any, default: Any) -> Any:
    """``value`` checked against the type of ``default``; ints become floats for float parameters."""
    if isinstance(value, np.generic):
        value = value.item()
    if default is inspect.Parameter.empty or default is None:
        return value
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, float):
        ok, value = numeric, float(value) if numeric else value
    elif isinstance(default, int):
        ok = numeric and float(value).is_integer()
        value = int(value) if ok else value
    else:
        ok = not isinstance(default, str) or isinstance(value, str)
    if not ok:
        raise ValueError(f"{algo}: parameter {name} must be of type {type(default).__name__}, got {value!r}")
    return value


def resolve_params(algo: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """All keyword parameters of ``algo``: ``params`` over the signature's defaults.

    Raises ValueError for an unknown algorithm, an unknown parameter name (listing the valid ones),
    a missing required parameter, or a value of the wrong type.
    """
    defaults = parameter_defaults(algo)
    params = dict(params or {})
    unknown = [k for k in params if k not in defaults]
    if unknown:
        raise ValueError(f"{algo}: unknown parameter {unknown[0]!r}; valid parameters: "
                         f"{', '.join(defaults) or '(none)'}")
    out = {}
    for name, default in defaults.items():
        if name not in params and default is inspect.Parameter.empty:
            raise ValueError(f"{algo}: parameter {name!r} has no default; pass it")
        out[name] = _coerce(algo, name, params[name], default) if name in params else default
    return out


def algorithm_key(algo: str, params: dict[str, Any] | None = None) -> str:
    """sha256 (hex) of the canonical JSON of {algo, resolved params, ALGO_VERSION}."""
    spec = {"algo": algo, "params": resolve_params(algo, params), "version": ALGO_VERSION}
    try:
        text = json.dumps(spec, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{algo}: parameters must be plain JSON values (numbers, strings, bools, lists): "
                         f"{spec['params']}") from e
    return hashlib.sha256(text.encode()).hexdigest()
