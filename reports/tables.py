"""Tables of the results store: aggregation over seeds, pivots, and rendering (md / csv / LaTeX / HTML).

    agg = aggregate(frame[frame.task == "linear"], ["method", "aug", "dataset", "metric"])
    table = pivot(agg, rows=["method"], cols=["aug"])
    print(render(table, "md"))                 # every cell: "mean ± std (n=K)"

**Seeds.** The replicate is a pretraining seed: the pretraining seed of the run id (runs whose id
gives none, ``scratch-<arch>``, count each run id as its own). A run's evaluation seeds (the
store's ``seed`` column: probe draws, finetuning seeds, k-means seeds; NULL for deterministic
protocols) are averaged into one value per pretraining seed first, and rows sharing a pretraining
seed and an evaluation seed (one seed under two eval configs, or two config hashes of one seed)
before that, so ``n`` counts pretrainings and never an evaluation seed. ``ci95`` is the half-width
of the Student t interval of the mean over those values, t(0.975, n-1) std / sqrt(n), ``std``
their sample standard deviation (ddof 1); both NaN when n = 1. Group by every column that tells
apart what is measured (task, dataset, split, metric, ...): ``aggregate`` averages whatever else
differs.

**Variants.** Runs that share a method and augmentation policy but differ in its settings
(``--aug_cfg.fill=blur``) carry different ``variant`` labels (``reports.data``, from the configs
stored beside the results). ``default_tables`` shows them as separate augmentations
(``sal-mask fill=blur``), so that no cell averages two variants; a caller of ``aggregate`` that
groups by ``aug`` should group by ``variant`` too.

**Rendering.** A number is never shown without its seed count: a cell reads ``61.2 ± 0.4 (n=3)``
(by default ± the 95 % CI half-width), and a single value ``61.2 (n=1)``. ``render`` refuses a frame with bare float columns.
"""
from __future__ import annotations

import html
import io
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from .data import aug_label, with_run_info

STATS = ("std", "ci95")
FORMATS = ("md", "csv", "latex", "html")
MISSING = {"md": "—", "csv": "", "latex": "--", "html": "—"}
HTML_CLASS = "sslbench-table"
BARE = ("value", "mean", "std", "ci95")      # number columns that never render as they are
_LABEL_COUNT = re.compile(r"^(?P<base>.+)@n(?P<n>\d+)$")


@dataclass(frozen=True)
class Cell:
    """One aggregated value: mean, spread (std or ci95 half-width; NaN when n = 1) and n."""

    mean: float
    spread: float
    n: int
    stat: str = "ci95"


# ------------------------------------------------------------------------------------- aggregation

def _seed_key(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns ``_pseed`` (pretraining seed, else the run id) and ``_eseed`` (evaluation seed or
    "-"): the identity of one value."""
    if "pretrain_seed" not in frame.columns:
        frame = with_run_info(frame)
    pseed = frame["pretrain_seed"].astype("object").where(frame["pretrain_seed"].notna(), "run:" + frame["run_id"])
    eseed = frame["seed"].astype("object").where(frame["seed"].notna(), "-")
    return frame.assign(_pseed=pseed.astype(str), _eseed=eseed.astype(str))


def _spread(std: float, n: int, stat: str) -> float:
    if n < 2:
        return float("nan")
    if stat == "std":
        return float(std)
    return float(stats.t.ppf(0.975, n - 1) * std / math.sqrt(n))


def replicates(frame: pd.DataFrame) -> np.ndarray:
    """One value per pretraining seed of ``frame`` (its evaluation seeds averaged first), in seed order."""
    keyed = _seed_key(frame)
    per_eval = keyed.groupby(["_pseed", "_eseed"], sort=True)["value"].mean().reset_index()
    return per_eval.groupby("_pseed", sort=True)["value"].mean().to_numpy(dtype=float)


def aggregate(frame: pd.DataFrame, by: Sequence[str], stat: str = "ci95") -> pd.DataFrame:
    """Mean, spread and number of seeds of ``value`` per group of ``by`` columns (see the module
    docstring for what one seed is). Columns: ``by`` + ``mean``, ``std`` or ``ci95``, ``n``;
    groups with a NaN key (e.g. no augmentation for ``scratch``) are kept; no ``by``: one line."""
    if stat not in STATS:
        raise ValueError(f"unknown stat {stat!r}; valid: {', '.join(STATS)}")
    by = list(by)
    columns = [*by, "mean", stat, "n"]
    keyed = _seed_key(frame)
    missing = [c for c in by if c not in keyed.columns]
    if missing:
        raise ValueError(f"aggregate: no column(s) {', '.join(missing)}; columns: {', '.join(frame.columns)}")
    if keyed.empty:
        return pd.DataFrame(columns=columns)
    keys = by or ["_all"]                                    # no grouping: one group of every row
    keyed = keyed.assign(_all="")
    per_eval = keyed.groupby([*keys, "_pseed", "_eseed"], dropna=False, sort=True)["value"].mean().reset_index()
    per_seed = per_eval.groupby([*keys, "_pseed"], dropna=False, sort=True)["value"].mean().reset_index()
    grouped = per_seed.groupby(keys, dropna=False, sort=True)["value"]
    out = grouped.agg(mean="mean", std=lambda v: v.std(ddof=1), n="size").reset_index()
    out["n"] = out["n"].astype("int64")
    out[stat] = [_spread(s, n, stat) for s, n in zip(out["std"], out["n"])]
    return out[columns]


def with_label_counts(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` plus ``metric_base`` (``top1@n100`` -> ``top1``; other metrics unchanged) and
    ``label_count`` (100; <NA> where the metric has no ``@nN``), for label-efficiency tables."""
    parts = frame["metric"].astype(str).str.extract(_LABEL_COUNT)
    base = parts["base"].where(parts["base"].notna(), frame["metric"])
    return frame.assign(metric_base=base, label_count=pd.array(pd.to_numeric(parts["n"]), dtype="Int64"))


# ------------------------------------------------------------------------------------------ pivot

def _stat_of(agg: pd.DataFrame) -> str:
    found = [s for s in STATS if s in agg.columns]
    if "mean" not in agg.columns or "n" not in agg.columns or len(found) != 1:
        raise ValueError("expected an aggregate() frame: columns mean, n and one of std / ci95")
    return found[0]


def _label(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def cells(agg: pd.DataFrame) -> pd.Series:
    """The rows of an ``aggregate`` frame as ``Cell`` objects (same index)."""
    stat = _stat_of(agg)
    return pd.Series([Cell(float(m), float(s), int(n), stat) for m, s, n in zip(agg["mean"], agg[stat], agg["n"])],
                     index=agg.index, dtype=object)


def pivot(agg: pd.DataFrame, rows: Sequence[str], cols: Sequence[str]) -> pd.DataFrame:
    """An ``aggregate`` frame laid out with ``rows`` as the index and ``cols`` as the columns (their
    values joined by " / "); each cell a ``Cell``, or None where the combination was not measured.
    Every other grouping column of ``agg`` must be constant: a pivot never hides a difference."""
    rows, cols = list(rows), list(cols)
    _stat_of(agg)
    keys = [c for c in agg.columns if c not in ("mean", "std", "ci95", "n")]
    bad = [c for c in rows + cols if c not in keys]
    if bad:
        raise ValueError(f"pivot: {', '.join(bad)} not among the grouping columns {', '.join(keys)}")
    hidden = [c for c in keys if c not in rows + cols and agg[c].nunique(dropna=False) > 1]
    if hidden:
        raise ValueError(f"pivot: {', '.join(hidden)} differ(s) across rows but is neither a row nor a column")
    if agg.empty:
        return pd.DataFrame(index=pd.Index([], name=rows[0] if len(rows) == 1 else None), dtype=object)
    labelled = agg.assign(_cell=cells(agg), _col=[" / ".join(_label(v) for v in vals) if cols else "value"
                                                  for vals in agg[cols].itertuples(index=False)])
    for c in rows:
        labelled[c] = labelled[c].map(_label)
    order = list(dict.fromkeys(labelled.sort_values(cols, key=_natural_key)["_col"])) if cols else ["value"]
    table = labelled.set_index([*rows, "_col"])["_cell"].unstack("_col")
    table = table.reindex(columns=order)
    table.columns.name = None
    return table.astype(object).where(table.notna(), None)


def _natural_key(column: pd.Series) -> pd.Series:
    """Sort labels that start with a number by that number (100 < 2000 labels), others as text."""
    lead = pd.to_numeric(column.astype(str).str.extract(r"^(-?\d+(?:\.\d+)?)")[0], errors="coerce")
    return lead if lead.notna().all() else column.astype(str)


# --------------------------------------------------------------------------------------- rendering

def _decimals(x: float) -> int:
    ax = abs(x)
    return 1 if ax >= 10 else 2 if ax >= 1 else 3


def format_cell(cell: Cell | None, fmt: str = "md", digits: int | None = None) -> str:
    """``mean ± spread (n=K)``; ``mean (n=1)`` for a single value; the format's missing mark for
    None. ``digits``: decimals (default: 1 from 10 up, 2 from 1, 3 below)."""
    if cell is None:
        return MISSING[fmt]
    d = _decimals(cell.mean) if digits is None else digits
    mean = cell.mean if round(cell.mean, d) != 0 else 0.0       # no "-0.000" for a rounding residue
    if cell.n < 2 or not math.isfinite(cell.spread):
        return f"{mean:.{d}f} (n={cell.n})"
    return f"{mean:.{d}f} ± {cell.spread:.{d}f} (n={cell.n})"


def latex_escape(text: str) -> str:
    """``text`` with LaTeX's special characters escaped (``_`` -> ``\\_``, ``%`` -> ``\\%``, ...)."""
    special = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
               "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
    return "".join(special.get(ch, ch) for ch in text)


def _text_frame(table: pd.DataFrame, fmt: str, digits: int | None) -> pd.DataFrame:
    """Every cell of ``table`` as display text: aggregate frames collapse mean / spread / n into
    one ``value`` column; Cell objects are formatted; labels become strings. Bare float columns
    (numbers without their seed count) are refused."""
    if "mean" in table.columns and "n" in table.columns:
        stat = _stat_of(table)
        table = table.drop(columns=["mean", stat, "n"]).assign(value=cells(table).to_numpy())
    if any(name is not None for name in table.index.names):       # a pivot: its row labels
        table = table.reset_index()
    out = {}
    for name, column in table.items():
        values = column.tolist()
        if any(isinstance(v, Cell) for v in values):
            out[_label(name)] = [format_cell(v if isinstance(v, Cell) else None, fmt, digits) for v in values]
            continue
        floats = [v for v in values if isinstance(v, (float, np.floating)) and not math.isnan(v)]
        if floats and (name in BARE or any(not float(v).is_integer() for v in floats)):
            raise ValueError(f"render: column {name!r} holds bare numbers; aggregate() them so each "
                             f"value carries its seed count")
        out[_label(name)] = [_label(v) for v in values]
    return pd.DataFrame(out, columns=list(out))


def _markdown(text: pd.DataFrame) -> str:
    def row(values: Sequence[str]) -> str:
        return "| " + " | ".join(v.replace("|", r"\|") for v in values) + " |"
    lines = [row(list(text.columns)), "|" + "|".join("---" for _ in text.columns) + "|"]
    lines += [row(list(values)) for values in text.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def _latex(text: pd.DataFrame) -> str:
    def row(values: Sequence[str]) -> str:
        return " & ".join(latex_escape(v).replace("±", r"$\pm$") for v in values) + r" \\"
    lines = [r"\begin{tabular}{" + "l" * len(text.columns) + "}", r"\hline", row(list(text.columns)), r"\hline"]
    lines += [row(list(values)) for values in text.itertuples(index=False)]
    lines += [r"\hline", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def _html(text: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in text.columns)
    body = "\n".join("<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in values) + "</tr>"
                     for values in text.itertuples(index=False))
    return (f'<table class="{HTML_CLASS}">\n<thead><tr>{head}</tr></thead>\n'
            f"<tbody>\n{body}{chr(10) if body else ''}</tbody>\n</table>\n")


def _csv(text: pd.DataFrame) -> str:
    buf = io.StringIO()
    text.to_csv(buf, index=False, lineterminator="\n")
    return buf.getvalue()


def render(table: pd.DataFrame, fmt: str, digits: int | None = None) -> str:
    """``table`` (a ``pivot``, an ``aggregate`` frame, or a frame of labels and Cells) as text:
    ``md`` (GitHub pipe table), ``csv``, ``latex`` (a ``tabular``, special characters escaped)
    or ``html`` (a plain ``<table class="sslbench-table">``). Every value reads
    ``mean ± spread (n=K)``, a single value ``mean (n=1)``."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown table format {fmt!r}; valid: {', '.join(FORMATS)}")
    text = _text_frame(table, fmt, digits)
    if fmt == "md":
        return _markdown(text)
    if fmt == "csv":
        return _csv(text)
    if fmt == "html":
        return _html(text)
    return _latex(text)


# ----------------------------------------------------------------------------------- default set

def preferred_split(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (task, dataset), only the ``test`` split's rows if it has any, else its first split."""
    keep = []
    for _, rows in frame.groupby(["task", "dataset"], sort=False):
        splits = set(rows["split"])
        keep.append(rows[rows["split"] == ("test" if "test" in splits else min(splits))])
    return pd.concat(keep) if keep else frame


def _slug(*parts: str) -> str:
    return "-".join(re.sub(r"[^A-Za-z0-9@._+-]+", "_", p) for p in parts if p)


# (name, task, metric (``base@n``: every labelled-set size), rows, cols, one table per) of the standard tables
DEFAULT_SPECS: tuple[tuple[str, str, str, tuple[str, ...], tuple[str, ...], str], ...] = (
    ("linear-top1", "linear", "top1", ("method",), ("aug",), "dataset"),
    ("knn-top1@k20", "knn", "top1@k20", ("method",), ("aug",), "dataset"),
    ("clustering-nmi", "clustering", "nmi", ("method",), ("aug",), "dataset"),
    ("finetune-top1", "finetune", "top1@n", ("method", "aug"), ("label_count",), "dataset"),
    ("utility", "finetune", "utility@n", ("method", "aug"), ("label_count",), "dataset"),
    ("invariance-top25", "invariance", "top25", ("method", "aug"), ("dataset",), ""),
    ("detection-AP", "detection", "AP", ("method", "aug"), ("dataset",), ""),
    ("detection-AP50", "detection", "AP50", ("method", "aug"), ("dataset",), ""),
    ("detection-segm_AP", "detection", "segm_AP", ("method", "aug"), ("dataset",), ""),
    ("segmentation_transfer-miou", "segmentation_transfer", "miou", ("method", "aug"), ("dataset",), ""),
    ("segmentation-miou", "segmentation", "miou", ("method", "aug"), ("dataset",), ""),
    ("unsup_seg-miou", "unsup_seg", "miou", ("method", "aug"), ("dataset",), ""),
    ("depth-abs_rel", "depth", "abs_rel", ("method", "aug"), ("dataset",), ""),
    ("pose-pose_top1", "pose", "pose_top1", ("method", "aug"), ("dataset",), ""),
)


def _display_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns for the standard tables: ``label_count`` as "100 labels", the backbone of a
    ``scratch-<arch>`` baseline taken from its run id (it has no other), and ``aug`` with the
    run's variant where it has one (``sal-mask fill=blur``)."""
    scratch = (frame["method"] == "scratch") & frame["backbone"].isna()
    backbone = frame["backbone"].where(~scratch, frame["run_id"].astype(str).str.removeprefix("scratch-"))
    labels = frame["label_count"].map(lambda k: f"{k} labels" if pd.notna(k) else np.nan)
    return frame.assign(backbone=backbone, labels=labels, aug=aug_label(frame))


def _varying(frame: pd.DataFrame, column: str) -> bool:
    return frame[column].nunique(dropna=True) > 1


FOLD_OVER = 4       # more datasets than this: one table with the dataset as a row label, not one each


def _row_labels(sub: pd.DataFrame, rows: tuple[str, ...], folded: str) -> tuple[str, ...]:
    """``rows``, the ``folded`` column, and the backbone / pretraining data where they vary (the
    pretraining data not where it is the folded dataset on every row)."""
    extra = [c for c in ("backbone", "pretrain_data") if _varying(sub, c)]
    own = sub["pretrain_data"].isna() | (sub["pretrain_data"] == sub["dataset"])
    if folded == "dataset" and "pretrain_data" in extra and own.all():
        extra.remove("pretrain_data")
    return (*rows, *((folded,) if folded else ()), *extra)


def default_tables(frame: pd.DataFrame, stat: str = "ci95") -> dict[str, pd.DataFrame]:
    """The standard set of pivots, only those with data: linear top-1, kNN top-1 (k 20) and
    clustering NMI by method x augmentation per dataset; finetuned top-1 and utility by (method,
    augmentation) x labelled-set size per dataset; invariance top-25 by (method, augmentation) x
    probe set; detection box AP / AP50 and mask AP, segmentation mIoU (framework transfer, light
    head, and unsupervised), depth AbsRel and pose top-1 by (method, augmentation) x dataset.
    The augmentation reads with its variant where runs of one policy differ in their settings
    (``sal-mask fill=blur``). Names like ``linear-top1-shapes64``. Where the rows hold several
    backbones or pretraining datasets, those become row labels too, so that no cell mixes them.
    With more than ``FOLD_OVER`` datasets, a per-dataset kind is one table with the dataset as a
    row label (``linear-top1``). Only the ``test`` split of a (task, dataset) is used when it has
    one."""
    if frame.empty:
        return {}
    if "method" not in frame.columns:
        frame = with_run_info(frame)
    frame = _display_columns(with_label_counts(preferred_split(frame)))
    out: dict[str, pd.DataFrame] = {}
    for name, task, metric, rows, cols, per in DEFAULT_SPECS:
        sub = frame[frame["task"] == task]
        if metric.endswith("@n"):
            sub = sub[(sub["metric_base"] == metric[:-2]) & sub["label_count"].notna()]
            cols = tuple("labels" if c == "label_count" else c for c in cols)
        else:
            sub = sub[sub["metric"] == metric]
        if sub.empty:
            continue
        fold = per if per and sub[per].nunique() > FOLD_OVER else ""
        rows = _row_labels(sub, rows, fold)
        parts = sub.groupby(per, sort=True) if per and not fold else [("", sub)]
        for key, part in parts:
            key = key[0] if isinstance(key, tuple) else key
            agg = aggregate(part, [*rows, *cols], stat)
            out[_slug(name, _label(key))] = pivot(agg, rows, cols)
    return out


FLOOR_METHOD, CEILING_METHOD = "random", "supervised"


def gap_table(frame: pd.DataFrame, task: str = "linear", metric: str = "top1",
              stat: str = "ci95") -> pd.DataFrame:
    """Each (method, augmentation) beside the random-init floor and the supervised ceiling of its
    (dataset, backbone, pretraining data), as the fraction of the random -> supervised gap it
    closes: (mean - random) / (supervised - random), on the means over pretraining seeds. Empty
    where a group lacks either end. Columns: dataset, backbone, pretrain_data, method, aug,
    ``value`` (a Cell), ``silhouette floor`` (text: the dataset's ``floor`` task, where stored),
    ``random``, ``supervised`` (Cells) and ``gap closed`` (text)."""
    if frame.empty:
        return pd.DataFrame()
    if "method" not in frame.columns:
        frame = with_run_info(frame)
    frame = _display_columns(with_label_counts(preferred_split(frame)))
    sub = frame[(frame["task"] == task) & (frame["metric"] == metric)]
    floors = frame[(frame["task"] == "floor") & (frame["metric"] == "top1")].groupby("dataset")["value"].mean()
    where = ["dataset", "backbone", "pretrain_data"]
    rows = []
    for key, group in sub.groupby(where, sort=True, dropna=False):
        agg = aggregate(group, ["method", "aug"], stat)
        ends = {m: agg[agg["method"] == m] for m in (FLOOR_METHOD, CEILING_METHOD)}
        if any(e.empty for e in ends.values()):
            continue
        (floor,), (ceiling,) = (cells(e).tolist() for e in ends.values())
        for (method, aug), cell in zip(zip(agg["method"], agg["aug"]), cells(agg)):
            if method in ends:
                continue
            span = ceiling.mean - floor.mean
            closed = f"{(cell.mean - floor.mean) / span:.2f}" if span > 0 else "n/a (supervised <= random)"
            silhouette = floors.get(key[0])
            rows.append({**dict(zip(where, key)), "method": method, "aug": aug, "value": cell,
                         "silhouette floor": "" if silhouette is None else f"{silhouette:.2f}", "random": floor,
                         "supervised": ceiling, "gap closed": closed})
    return pd.DataFrame(rows)


# columns a cell never mixes: each must be a row, a column, or one value per cell
GUARDED = ("task", "metric_base", "label_count", "dataset", "backbone", "pretrain_data")
_SAME = {"metric_base": ("metric",), "label_count": ("labels", "metric")}     # named by these too


def table(frame: pd.DataFrame, rows: Sequence[str], cols: Sequence[str],
          where: Mapping[str, Sequence[str]] | None = None, stat: str = "ci95") -> pd.DataFrame:
    """Any grouping of the store as one pivot: ``rows`` x ``cols`` (e.g. method, aug x task), the
    rows restricted to ``where`` (column -> accepted values, compared as text), every cell mean ±
    ``stat`` over seeds with its count. A ``GUARDED`` column not named in ``rows`` / ``cols``
    must have one value in each cell (ValueError naming it otherwise: a cell never averages two
    tasks, metrics, label counts, datasets, backbones or pretraining sets). Columns: those of
    ``reports.data.load`` plus ``metric_base``, ``label_count`` and ``labels``."""
    if "method" not in frame.columns:
        frame = with_run_info(frame)
    frame = _display_columns(with_label_counts(preferred_split(frame))) if len(frame) else frame
    named = [*rows, *cols, *(where or {})]
    unknown = [c for c in named if c not in frame.columns]
    if unknown:
        raise ValueError(f"table: unknown column(s) {', '.join(unknown)}; "
                         f"valid: {', '.join(c for c in frame.columns if not c.startswith('_'))}")
    if not rows:
        raise ValueError("table: name at least one row column (e.g. method)")
    for column, values in (where or {}).items():
        frame = frame[frame[column].astype(str).isin([str(v) for v in values])]
    if frame.empty:
        raise ValueError(f"table: no rows match {dict(where or {})}")
    keys = list(dict.fromkeys([*rows, *cols]))
    filled = frame.assign(**{c: frame[c].astype(object).where(frame[c].notna(), "<none>") for c in GUARDED})
    spread = filled.groupby(keys, dropna=False)[list(GUARDED)].nunique()
    mixed = [c for c in GUARDED if c not in keys and not set(_SAME.get(c, ())) & set(keys) and spread[c].max() > 1]
    if mixed:
        raise ValueError(f"table: cells would mix several values of {', '.join(mixed)}; add it to --rows or "
                         f"--cols or pick one with --where")
    return pivot(aggregate(frame, keys, stat), rows, cols)


__all__ = [
    "DEFAULT_SPECS",
    "GUARDED",
    "FORMATS",
    "STATS",
    "Cell",
    "aggregate",
    "cells",
    "default_tables",
    "format_cell",
    "gap_table",
    "latex_escape",
    "pivot",
    "preferred_split",
    "render",
    "table",
    "with_label_counts",
]
