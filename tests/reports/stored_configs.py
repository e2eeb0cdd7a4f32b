"""Pretraining configs as a checkpoint records them, for the reports' fixture stores.

A run's stored config holds ``method_cfg`` and ``aug_cfg`` fully resolved: every field of the
method's and the policy's config dataclass, defaults included (``pretrain.resolve.resolve_config``; tests/pretrain/test_resolve.py checks these
against it).
The reports read the value a run used from there and know no default; these are the resolved
settings of the methods and policies the report tests store (tuples as lists, as JSON holds them).
"""
from __future__ import annotations

import copy
from typing import Any

_PIPELINE = {"n_views": 2, "out_size": None, "crop_scale": [0.2, 1.0], "crop_ratio": [0.75, 1.3333333333333333],
             "flip_p": 0.5, "jitter": 0.5, "brightness": None, "contrast": None, "saturation": None, "hue": None,
             "jitter_p": 0.8, "jitter_random_order": True, "grayscale_p": 0.2, "blur_p": None,
             "blur_sigma": [0.1, 2.0], "blur_kernel_frac": 0.1, "solarize_p": 0.0}
_MASK = {**_PIPELINE, "grid": None, "ratio": [0.05, 0.25], "fill": "highpass", "branch": "query", "saliency": "none",
         "scda_checkpoint": None, "scda_largest_component": True, "params": None, "cache": None,
         "saliency_size": None, "hard_negatives": 0, "hard_ratio": [0.4, 0.7], "noise_std": 0.18,
         "hard_noise_std": 0.14}
AUG_CFG: dict[str, dict[str, Any]] = {
    "default": dict(_PIPELINE),
    "mild": {**_PIPELINE, "crop_scale": [0.5, 1.0]},
    "sgd": {**_PIPELINE, "seg_p": 0.5, "fill": "black", "algo": "rc", "params": None, "threshold": "cut",
            "cache": None, "saliency_size": None, "distinct_pairs": False},
    "random-mask": dict(_MASK),
    "sal-mask": {**_MASK, "saliency": "scda"},
}
METHOD_CFG: dict[str, dict[str, Any]] = {
    "simclr": {"proj_hidden": 2048, "proj_dim": 128, "temperature": 0.5, "hard_negative_alpha": 1.0},
    "mocov2": {"queue_size": 4096, "momentum": 0.99, "temperature": 0.2, "proj_hidden": 2048, "proj_dim": 128,
               "symmetric": True, "bn_splits": 8, "proj_bn": False, "hard_negative_alpha": 1.0},
    "byol": {"proj_hidden": 4096, "proj_dim": 256, "base_momentum": 0.99, "pred_lr_mult": 1.0},
    "temporal": {"mode": "frames", "dim_hidden": 2048, "dim_out": 128, "momentum": 0.99, "queue_size": 4096,
                 "temperature": 0.2, "symmetric": False, "bn_splits": 8},
}


def resolved(method: str, aug: str, method_cfg: dict[str, Any] | None = None,
             aug_cfg: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(method_cfg, aug_cfg) of a run of ``method`` with policy ``aug`` given these settings: every
    field, the given ones overriding the defaults; MoCo v2 on views masked on one side records
    ``symmetric: false``, as ``pretrain.resolve`` does (``MoCoV2.effective_settings``)."""
    m, a = {**copy.deepcopy(METHOD_CFG[method]), **(method_cfg or {})}, {**copy.deepcopy(AUG_CFG[aug]), **(aug_cfg or {})}
    if method == "mocov2" and a.get("branch") in ("query", "key"):
        m["symmetric"] = False
    return m, a
