"""The results store as one pandas frame, with the run id's parts as columns.

    frame = load("results/results.sqlite")     # the store's rows + method, aug, backbone, ...
    runs_table(frame)                          # one line per run: what it was evaluated on
    export(frame, "results.csv")               # or .parquet (needs pyarrow or fastparquet)

A run id is ``{method}-{aug}-{backbone}-{dataset}-s{seed}-{hash8}``, parsed by
``pretrain.runid.RunId`` (cut at the backbone name, since augmentation and dataset names may hold
hyphens) into the ``RUN_COLUMNS``. Ids that do not follow the pattern (the finetuning baseline
``scratch-<arch>``, the agreement rows ``set-<hash>``) get ``method`` = their first token and
NaN for the other parts. This module reads the store only through ``measure.results`` and run ids
only through ``pretrain.runid``: no torch.

**Variants.** A run id does not name a policy's or a method's settings (``--aug_cfg.fill=blur``,
``--method_cfg.mode=regions``), and its hash changes with the seed, so ``load`` also reads the
pretraining configs the evaluations record (``ResultsStore.runs``) and adds a ``variant`` column:
among the runs sharing (method, aug, backbone, pretrain_data), the settings that differ between
them (a policy's own ``aug_cfg`` settings: between the runs of that policy, whatever their
method), rendered ``key=value`` and ``, ``-joined in key order (``fill=blur``; ``algo=hc,
out_size=64``).
Ignored: the seed, output / data paths, device and logging fields (``IGNORED_SETTINGS``) and
anything equal across the group. A key is its leaf name, prefixed by its section
(``method_cfg.temperature``), or its full path, only where two shown keys would read alike. Every
run of such a group shows every differing key, including runs that leave it at its default: a
run's stored config holds ``method_cfg`` and ``aug_cfg`` fully resolved (every field of the
method's and the policy's config dataclass, defaults included), so the value it used is read
from the config itself and this module knows no default (``pretrain.resolve`` resolves it when a
checkpoint is written and again when the suite records it, so a checkpoint from before resolved
configs is recorded with today's defaults). A setting a stored config lacks (stores recorded
before that; rerunning the suite on the checkpoints re-records their configs, reusing the stored
results) reads ``DEFAULT_MARK``, ``(default)``. The variant is
``""`` for a run that is its group's only variant (seed-only differences included), for a run
with no stored config (older stores, checkpoints without one), and for ids that do not parse.
``aug_label`` joins the augmentation and the variant (``sal-mask fill=blur``) for tables and
figures. ``load`` also adds ``settings``: the same differing settings under their full dotted paths
(``aug_cfg.fill=blur; train.epochs=30``), which ``reports.compare`` reads before it pools runs.

**Input transform.** A checkpoint trained on transformed images (the masking paper's high-pass
views) records the transform every evaluation applied (``CheckpointMeta.input_transform``); the
suite stores it beside the config, and ``load`` gives it its own ``input_transform`` column
(``highpass(kernel=11, sigma=5)``, ``""`` for plain images), shown by ``runs_table``, never in the
variant (the policy setting that causes it, ``fill=highpass``, already tells such runs apart).
"""
from __future__ import annotations

import importlib.util
import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from fsio import atomic_path
from measure.results import ResultsStore
from pretrain.runid import RunId

DEFAULT_DB = Path("results/results.sqlite")
RUN_COLUMNS = ("method", "aug", "backbone", "pretrain_data", "pretrain_seed", "config_hash")
EXPORT_FORMATS = (".csv", ".parquet")
# config fields that never tell two runs apart in a report: the seed (every table counts seeds),
# where files go or come from, the device, logging and checkpointing cadence, and input prefetch
IGNORED_SETTINGS = frozenset({"train.seed", "train.out", "train.device", "train.log_every", "train.ckpt_every",
                              "train.tensorboard", "data.path", "data.prefetch", "data.workers", "data.pin_memory",
                              "train.aug_device"})
DEFAULT_MARK = "(default)"         # a setting a run's stored config lacks (configs of older stores)
# recorded beside the config, shown in a column of its own (``input_transform``), never in the variant
SHOWN_APART = ("input_transform",)


def _run_columns(run_id: str) -> dict[str, object]:
    """The ``RUN_COLUMNS`` of a run id (``pretrain.runid.RunId``): ``pretrain_seed`` an int; NaN for
    every part but ``method`` (the first token) when the id is not a run id."""
    parsed = RunId.try_parse(run_id)
    if parsed is None:
        unparsed: dict[str, object] = {name: np.nan for name in RUN_COLUMNS}
        unparsed["method"] = run_id.split("-", 1)[0] or np.nan
        return unparsed
    return {"method": parsed.method, "aug": parsed.aug, "backbone": parsed.backbone,
            "pretrain_data": parsed.dataset, "pretrain_seed": parsed.seed, "config_hash": parsed.config_hash}


def with_run_info(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` (store rows with a ``run_id`` column) plus the ``RUN_COLUMNS`` parsed from it;
    ``pretrain_seed`` is a nullable Int64. A new frame; the input is left as it is."""
    ids = pd.unique(frame["run_id"])
    parts = pd.DataFrame([_run_columns(str(r)) for r in ids], index=ids, columns=list(RUN_COLUMNS))
    out = frame.drop(columns=[c for c in RUN_COLUMNS if c in frame.columns])
    for name in RUN_COLUMNS:
        out[name] = frame["run_id"].map(parts[name]).to_numpy() if len(ids) else np.nan
    out["pretrain_seed"] = pd.array(out["pretrain_seed"], dtype="Int64")
    return out


# ----------------------------------------------------------------------------------- variants

def _plain_value(value: object) -> object:
    """A config value in one canonical form: tuples as lists, whole floats as ints (15.0 -> 15)."""
    if isinstance(value, (list, tuple)):
        return [_plain_value(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain_value(v) for k, v in value.items()}
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return value


def _value_text(value: object) -> str:
    """A setting's value as shown: strings as they are, anything else as compact JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _leaves(config: Mapping, prefix: str = "") -> Iterable[tuple[str, object]]:
    """(dotted path, value) of every leaf of a nested config; empty sections have none."""
    for key, value in config.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from _leaves(value, path + ".")
        else:
            yield path, value


def _settings(config: Mapping) -> dict[str, object]:
    """The config's leaves that can tell two runs apart (``IGNORED_SETTINGS`` left out)."""
    return {path: _plain_value(v) for path, v in _leaves(config)
            if path not in IGNORED_SETTINGS and path.split(".")[0] not in SHOWN_APART}


def _key_names(paths: Iterable[str]) -> dict[str, str]:
    """Display name per dotted path: the leaf, else ``section.leaf``, else the full path: the
    first that no other of ``paths`` reads as at the same level."""
    paths = sorted(set(paths))

    def form(path: str, level: int) -> str:
        parts = path.split(".")
        return (parts[-1], f"{parts[0]}.{parts[-1]}", path)[level]
    names = {}
    for path in paths:
        level = next((lv for lv in range(2) if all(form(q, lv) != form(path, lv) for q in paths if q != path)), 2)
        names[path] = form(path, level)
    return names


def differing_settings(configs: Mapping[str, Mapping]) -> dict[str, dict[str, str]]:
    """run id -> {dotted path: value text} of the settings its variant shows (module docstring,
    "Variants"): among the runs sharing (method, aug, backbone, pretrain_data), the settings that
    differ between them, with a policy's ``aug_cfg`` settings aligned across methods; ``{}`` for a
    run whose id does not parse or whose config is empty."""
    groups: dict[tuple, dict[str, dict[str, object]]] = {}
    out: dict[str, dict[str, str]] = {}
    for run_id, config in configs.items():
        out[run_id] = {}
        info = _run_columns(str(run_id))
        if not config or pd.isna(info["aug"]):
            continue
        key = (info["method"], info["aug"], info["backbone"], info["pretrain_data"])
        groups.setdefault(key, {})[run_id] = _settings(config)
    resolved, differing = {}, {}
    for runs in groups.values():
        paths = sorted({p for settings in runs.values() for p in settings})
        values = {rid: {p: s.get(p, DEFAULT_MARK) for p in paths} for rid, s in runs.items()}
        resolved.update(values)
        shown = [p for p in paths if len({_value_text(r[p]) for r in values.values()}) > 1]
        differing.update({rid: set(shown) for rid in runs})
    _align_policy_settings(groups, resolved, differing)
    for rid, values in resolved.items():
        out[rid] = {p: _value_text(values[p]) for p in sorted(differing[rid])}
    return out


def variant_labels(configs: Mapping[str, Mapping]) -> dict[str, str]:
    """run id -> variant label (module docstring, "Variants") for runs with these pretraining
    configs; groups are (method, aug, backbone, pretrain_data) parsed from the run ids. Runs whose
    id does not parse or whose config is empty get ``""``."""
    return {rid: _label(settings) for rid, settings in differing_settings(configs).items()}


def _label(settings: Mapping[str, str]) -> str:
    """``key=value, ...`` of a run's differing settings, keys by their shortest unambiguous name."""
    names = _key_names(settings)
    return ", ".join(f"{name}={text}" for name, text in sorted((names[p], t) for p, t in settings.items()))


def settings_text(settings: Mapping[str, str]) -> str:
    """A run's differing settings under their full dotted paths, for the ``settings`` column:
    ``aug_cfg.distinct_pairs=true; train.epochs=30`` (``""`` for none)."""
    return "; ".join(f"{p}={t}" for p, t in sorted(settings.items()))


def parse_settings(text: object) -> dict[str, str]:
    """The ``settings`` column back as {dotted path: value text}; ``""`` / NaN -> {}."""
    if not isinstance(text, str) or not text:
        return {}
    pairs = (item.partition("=") for item in text.split("; "))
    return {key: value for key, eq, value in pairs if eq}


def _align_policy_settings(groups: Mapping[tuple, Mapping[str, Mapping[str, object]]],
                           resolved: dict[str, dict[str, object]], differing: dict[str, set[str]]) -> None:
    """A policy setting (``aug_cfg.*``) that one method's runs vary is shown for every method's
    runs of that policy (same backbone and data), so that their labels line up in a table:
    BYOL's ``sgd`` runs read ``algo=hc, out_size=32`` beside SimCLR's, which also vary
    ``out_size``. Updates ``resolved`` (values) and ``differing`` (shown paths) in place."""
    by_policy: dict[tuple, list[str]] = {}
    for (_, aug, backbone, data), runs in groups.items():
        by_policy.setdefault((aug, backbone, data), []).extend(runs)
    for members in by_policy.values():
        paths = {p for rid in members for p in differing[rid] if p.startswith("aug_cfg.")}
        for rid in members:
            for p in paths:
                resolved[rid].setdefault(p, DEFAULT_MARK)
            differing[rid] |= paths


def parse_variant(label: object) -> dict[str, str]:
    """A variant label back as {key: value text}: ``"algo=hc, out_size=64"`` -> {"algo": "hc",
    "out_size": "64"}; ``""`` / NaN -> {}."""
    if not isinstance(label, str) or not label:
        return {}
    pairs = (item.partition("=") for item in label.split(", "))
    return {key: value for key, eq, value in pairs if eq}


def with_variants(frame: pd.DataFrame, configs: Mapping[str, Mapping]) -> pd.DataFrame:
    """``frame`` (rows with a ``run_id``) plus ``variant`` from the runs' pretraining ``configs``
    (run id -> config; ``""`` for runs without one) and ``settings``, the same settings under their
    full paths (:func:`settings_text`). A new frame."""
    differing = differing_settings(configs)
    labels = {rid: _label(s) for rid, s in differing.items()}
    texts = {rid: settings_text(s) for rid, s in differing.items()}
    return frame.assign(variant=frame["run_id"].map(lambda r: labels.get(r, "")).astype(object),
                        settings=frame["run_id"].map(lambda r: texts.get(r, "")).astype(object))


def input_transform_label(config: Mapping | None) -> str:
    """The input transform a run's stored config records, as it reads: ``highpass(kernel=11,
    sigma=5)`` (every image high-passed before the backbone, in training and evaluation); ``""``
    for none (plain images, or a config recorded before transforms were)."""
    spec = (config or {}).get("input_transform")
    if not isinstance(spec, Mapping) or not spec.get("name"):
        return ""
    params = spec.get("params") or {}
    return f"{spec['name']}({', '.join(f'{k}={_value_text(_plain_value(v))}' for k, v in sorted(params.items()))})"


def with_input_transforms(frame: pd.DataFrame, configs: Mapping[str, Mapping]) -> pd.DataFrame:
    """``frame`` plus ``input_transform`` (:func:`input_transform_label`) from the runs' stored configs."""
    labels = {run_id: input_transform_label(config) for run_id, config in configs.items()}
    return frame.assign(input_transform=frame["run_id"].map(lambda r: labels.get(r, "")).astype(object))


def aug_label(frame: pd.DataFrame) -> pd.Series:
    """The augmentation with its variant, for labels: ``sal-mask fill=blur``; the bare ``aug``
    where the variant is empty or the frame has none; NaN where ``aug`` is NaN."""
    aug = frame["aug"]
    if "variant" not in frame.columns:
        return aug
    variant = frame["variant"].fillna("").astype(str)
    joined = aug.astype(object).where(variant == "", aug.astype(str) + " " + variant)
    return joined.where(aug.notna(), np.nan)


def load(db: Path | str) -> pd.DataFrame:
    """Every row of the results store ``db`` with the run id's parts (``with_run_info``) and its
    ``variant`` (module docstring) from the pretraining configs stored beside the results.

    A missing file raises FileNotFoundError (the store is never created by reading it); a file
    that is not a results store raises ``measure.results.StoreError`` (a ValueError)."""
    path = Path(db)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such results store (python -m evaluate.suite writes one)")
    store = ResultsStore(path)
    frame = with_run_info(store.to_frame())
    runs = store.runs()                              # oldest first: a run id's latest config wins
    configs = {run_id: config for run_id, config in zip(runs["run_id"], runs["config"]) if config}
    return with_input_transforms(with_variants(frame, configs), configs)


def runs_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One line per run id: its parts, the tasks and datasets it was evaluated on, and row counts.

    Columns: run_id, method, aug, backbone, pretrain_data, pretrain_seed, variant,
    input_transform (``""`` where the frame has none: :func:`input_transform_label`), tasks
    (comma-joined), datasets (comma-joined), evaluations (``task/dataset:rows``, ``; ``-joined), rows."""
    if "method" not in frame.columns:
        frame = with_run_info(frame)
    for name in ("variant", "input_transform"):
        if name not in frame.columns:
            frame = frame.assign(**{name: ""})
    columns = ["run_id", "method", "aug", "backbone", "pretrain_data", "pretrain_seed", "variant", "input_transform",
               "tasks", "datasets", "evaluations", "rows"]
    lines = []
    for run_id, rows in frame.groupby("run_id", sort=True):
        counts = rows.groupby(["task", "dataset"]).size()
        first = rows.iloc[0]
        lines.append({"run_id": run_id, **{c: first[c] for c in columns[1:8]},
                      "tasks": ", ".join(sorted(rows["task"].unique())),
                      "datasets": ", ".join(sorted(rows["dataset"].unique())),
                      "evaluations": "; ".join(f"{t}/{d}:{n}" for (t, d), n in counts.items()),
                      "rows": len(rows)})
    table = pd.DataFrame(lines, columns=columns)
    table["pretrain_seed"] = pd.array(table["pretrain_seed"], dtype="Int64")
    table["rows"] = table["rows"].astype("int64")
    return table


def _parquet_engine() -> str | None:
    for engine in ("pyarrow", "fastparquet"):
        if importlib.util.find_spec(engine) is not None:
            return engine
    return None


def export(frame: pd.DataFrame, path: Path | str) -> Path:
    """Write ``frame`` to ``path`` atomically (``fsio.atomic_path``), in the format its suffix
    names: ``.csv`` (always) or ``.parquet`` (with pyarrow or fastparquet installed; otherwise a
    one-line ValueError). Any other suffix raises ValueError listing the valid ones. Returns the path."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with atomic_path(path) as tmp:
            frame.to_csv(tmp, index=False)
        return path
    if suffix == ".parquet":
        engine = _parquet_engine()
        if engine is None:
            raise ValueError("parquet export needs pyarrow: pip install pyarrow")
        with atomic_path(path) as tmp:
            frame.to_parquet(tmp, index=False, engine=engine)
        return path
    raise ValueError(f"{path}: unknown export format {suffix or '(no suffix)'!r}; "
                     f"valid: {', '.join(EXPORT_FORMATS)}")


__all__ = ["DEFAULT_DB", "DEFAULT_MARK", "EXPORT_FORMATS", "IGNORED_SETTINGS", "RUN_COLUMNS", "aug_label",
           "differing_settings", "export", "input_transform_label", "load", "parse_settings", "parse_variant",
           "runs_table", "settings_text", "variant_labels", "with_input_transforms", "with_run_info", "with_variants"]
