"""Report figures from the results store (matplotlib, Agg backend; no seaborn).

Every plot function takes a tidy frame: the store's columns (``ResultsStore.to_frame()``: run_id,
ckpt_sha256, task, dataset, split, metric, value, seed, eval_config, ...) plus ``method``, ``aug``
and ``pretrain_seed``. Those three are parsed from the run id
(``{method}-{aug}-{backbone}-{dataset}-s{seed}-{hash8}``, ``pretrain.runid.RunId``) when the frame
lacks them. Each function writes ``<out_stem>.png`` and ``<out_stem>.svg`` atomically
(``fsio.atomic_path``: a temporary file, then a rename), closes its figure and returns the two
paths, or returns ``[]`` and writes nothing when the frame has no data for that plot, so a report
can call all of them.

"Seeds" in bands and error bars are every run behind a point: pretraining seeds (checkpoints of
one method) times evaluation seeds. A frame holding several datasets for a task gets one panel
per dataset. Colours: the Okabe-Ito colour-blind-safe palette, one colour per method (methods
in sorted order); the from-scratch curve is black and dashed; heatmaps use viridis.

The ``*_figure`` functions build the same figures without saving them (for tests and notebooks);
they return None where the save function returns ``[]``.
"""
from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from fsio import atomic_path
from pretrain.runid import RunId

from .data import aug_label

# Okabe & Ito (2008), "Color Universal Design": distinguishable under the common colour-vision
# deficiencies. Yellow last: it is the weakest on white.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000", "#F0E442")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
SCRATCH_COLOUR = "#000000"
UNMEASURABLE_COLOUR = "#999999"
FORMATS = ("png", "svg")
DPI = 120
BAND = "min-max over seeds"           # what the label-efficiency band shows

_COUNT = re.compile(r"^(?P<prefix>top1|scratch_top1|utility)@n(?P<n>\d+)$")

_RC = {"svg.hashsalt": "sslbench", "svg.fonttype": "path", "font.size": 9, "axes.titlesize": 10,
       "axes.spines.top": False, "axes.spines.right": False, "legend.fontsize": 8, "legend.frameon": False}


# ------------------------------------------------------------------------------------ helpers

def _run_parts(run_id: object) -> dict[str, Any]:
    """``{method, aug, backbone, pretrain_seed}`` of a run id (``RunId.try_parse``); the suite's
    from-scratch curves (``scratch-<backbone>``) give method ``scratch``; anything else gives the
    whole id as method."""
    text = str(run_id)
    parsed = RunId.try_parse(text)
    if parsed is not None:
        return {"method": parsed.method, "aug": parsed.aug, "backbone": parsed.backbone, "pretrain_seed": parsed.seed}
    if text.startswith("scratch-"):
        return {"method": "scratch", "aug": None, "backbone": text[len("scratch-"):], "pretrain_seed": None}
    return {"method": text, "aug": None, "backbone": None, "pretrain_seed": None}


def _tidy(frame: pd.DataFrame | None) -> pd.DataFrame:
    """A copy of ``frame`` with ``method`` / ``aug`` / ``pretrain_seed`` (parsed where missing); ``aug``
    carries the run's variant where the frame has one (``sal-mask fill=blur``), so that labels and
    heatmap columns keep variants apart."""
    if frame is None or len(frame) == 0 or not {"run_id", "task", "metric", "value"} <= set(frame.columns):
        return pd.DataFrame(columns=["run_id", "ckpt_sha256", "task", "dataset", "split", "metric", "value",
                                     "seed", "method", "aug", "pretrain_seed"])
    out = frame.copy()
    parsed = None
    for column in ("method", "aug", "pretrain_seed"):
        missing = column not in out.columns
        if missing or (column == "method" and out[column].isna().any()):
            if parsed is None:
                parsed = pd.DataFrame([_run_parts(r) for r in out["run_id"]], index=out.index)
            out[column] = parsed[column] if missing else out[column].astype(object).fillna(parsed[column])
    if "variant" in out.columns:
        out["aug"] = aug_label(out)
    if "ckpt_sha256" not in out.columns:
        out["ckpt_sha256"] = out["run_id"]
    if "dataset" not in out.columns:
        out["dataset"] = ""
    out["value"] = pd.to_numeric(out["value"], errors="coerce")
    return out[np.isfinite(out["value"].to_numpy(dtype=float))]


def _series(frame: pd.DataFrame) -> pd.Series:
    """The legend label of each row: the method, or ``method/aug`` when a method has several augs."""
    aug = frame["aug"].astype(object).where(frame["aug"].notna(), "")
    several = frame.assign(_aug=aug).groupby("method")["_aug"].nunique()
    multi = frame["method"].map(several).fillna(1) > 1
    return frame["method"].astype(str).where(~multi, frame["method"].astype(str) + "/" + aug.astype(str))


def method_colours(labels: Sequence[str]) -> dict[str, str]:
    """A fixed palette colour per label (sorted order; the palette repeats after 8)."""
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(sorted(set(labels)))}


def _colour_map(frame: pd.DataFrame) -> dict[str, str]:
    return method_colours([s for s in _series(frame).unique() if s != "scratch"]) if len(frame) else {}


def _count_rows(frame: pd.DataFrame, prefix: str) -> pd.DataFrame:
    """Rows whose metric is ``<prefix>@n<N>``, with an int column ``n``."""
    m = frame["metric"].astype(str).str.extract(_COUNT)
    keep = m["prefix"] == prefix
    return frame[keep].assign(n=m.loc[keep, "n"].astype(int))


PANEL_COLUMNS = 4      # panels per row of a per-dataset figure


def _panels(frame: pd.DataFrame, width: float = 5.2, height: float = 3.8, sharey: bool = False):
    """(figure, [(axes, dataset, rows)]): one panel per dataset in ``frame``, at most
    ``PANEL_COLUMNS`` to a row (the unused cells of the last row removed)."""
    datasets = sorted(frame["dataset"].astype(str).unique())
    cols = min(len(datasets), PANEL_COLUMNS)
    rows = -(-len(datasets) // cols)
    with plt.rc_context(_RC):
        fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False,
                                 sharey=sharey, layout="constrained")
    cells = list(axes.flat)
    for ax in cells[len(datasets):]:
        fig.delaxes(ax)
    return fig, [(ax, d, frame[frame["dataset"].astype(str) == d]) for ax, d in zip(cells, datasets)]


def _stem(out_stem: str | os.PathLike) -> Path:
    stem = Path(out_stem)
    if stem.suffix.lower() in {".png", ".svg"}:
        stem = stem.with_suffix("")
    return stem


def save_figure(fig: Figure | None, out_stem: str | os.PathLike, formats: Sequence[str] = FORMATS) -> list[Path]:
    """Write ``fig`` as ``<out_stem>.<fmt>`` for each format, atomically; closes ``fig``.
    Returns the written paths ([] for no figure)."""
    if fig is None:
        return []
    stem = _stem(out_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    written = []
    try:
        for fmt in formats:
            path = Path(f"{stem}.{fmt}")
            with atomic_path(path, suffix=f".tmp.{fmt}") as tmp, plt.rc_context(_RC):
                fig.savefig(tmp, format=fmt, dpi=DPI, metadata={"Date": None} if fmt == "svg" else None)
            written.append(path)
    finally:
        plt.close(fig)
    return written


def _log_xlim(ax, counts: Sequence[float], right_pad: float = 1.0) -> tuple[float, float]:
    lo, hi = min(counts), max(counts)
    lim = (lo / 1.6, hi * 1.6 * right_pad)
    ax.set_xscale("log")
    ax.set_xlim(*lim)
    return lim


def _finetune(frame: pd.DataFrame) -> pd.DataFrame:
    """The pretrained checkpoints' finetune rows (not the suite's own from-scratch runs)."""
    fin = frame[frame["task"] == "finetune"]
    return fin[(fin["method"] != "scratch") & ~fin["ckpt_sha256"].astype(str).str.startswith("scratch-")]


# ---------------------------------------------------------------------------- label efficiency

def label_efficiency_figure(frame: pd.DataFrame) -> Figure | None:
    """Finetuned top-1 vs labelled examples (log x): mean per method, band = min-max over seeds
    (pretraining x finetuning), and the from-scratch curve (dashed, deduplicated per seed)."""
    frame = _tidy(frame)
    fin = _finetune(frame)
    pre = _count_rows(fin, "top1")
    if pre.empty:
        return None
    scratch = _count_rows(fin, "scratch_top1")
    if scratch.empty:  # the suite's own from-scratch runs (run id scratch-<backbone>), if present
        own = frame[(frame["task"] == "finetune") & frame["ckpt_sha256"].astype(str).str.startswith("scratch-")]
        scratch = _count_rows(own, "top1")
    colours = _colour_map(pre)
    fig, panels = _panels(pre)
    for ax, dataset, rows in panels:
        rows = rows.assign(_series=_series(rows))
        for name, sub in rows.groupby("_series", sort=True):
            stats = sub.groupby("n")["value"].agg(["mean", "min", "max"]).sort_index()
            ax.plot(stats.index, stats["mean"], marker="o", ms=4, color=colours[name], label=name)
            ax.fill_between(stats.index, stats["min"], stats["max"], color=colours[name], alpha=0.2, lw=0)
        sc = scratch[scratch["dataset"].astype(str) == dataset]
        if not sc.empty:
            # every checkpoint stores the same scratch curve; one value per (backbone, n, seed)
            sc = sc.assign(_bb=[_run_parts(r)["backbone"] or "" for r in sc["run_id"]])
            for bb, sub in sc.groupby("_bb", sort=True):
                per_seed = sub.groupby(["n", sub["seed"].astype(object).fillna(-1)])["value"].mean()
                stats = per_seed.groupby(level="n").agg(["mean", "min", "max"]).sort_index()
                label = "scratch" if sc["_bb"].nunique() == 1 else f"scratch ({bb})"
                ax.plot(stats.index, stats["mean"], ls="--", marker="x", ms=4, color=SCRATCH_COLOUR, label=label)
                ax.fill_between(stats.index, stats["min"], stats["max"], color=SCRATCH_COLOUR, alpha=0.08, lw=0)
        counts = sorted(set(rows["n"]) | set(sc["n"]) if not sc.empty else set(rows["n"]))
        _log_xlim(ax, counts)
        ax.set_xlabel("labelled training examples (log scale)")
        ax.set_ylabel("top-1 accuracy")
        ax.set_title(f"Label efficiency: {dataset}\n(line: mean; band: {BAND})")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(loc="lower right")
    return fig


def label_efficiency(frame: pd.DataFrame, out_stem: str | os.PathLike) -> list[Path]:
    """Accuracy vs labelled examples per method (mean, min-max seed band) and from scratch."""
    return save_figure(label_efficiency_figure(frame), out_stem)


# ------------------------------------------------------------------------------------- utility

def _pooled(sub: pd.DataFrame) -> pd.DataFrame:
    """Per label count: mean and population std of the utility over every (checkpoint, finetuning
    seed) row."""
    return sub.groupby("n")["utility"].agg(mean="mean", std=lambda v: v.std(ddof=0)).sort_index()


def utility_figure(frame: pd.DataFrame) -> Figure | None:
    """Newell & Deng's utility vs labelled examples (log x), one line per method with a +-std
    band (population std over checkpoints and finetuning seeds), 0 marked, and the unmeasurable region
    shaded: per method (its colour, hatched) beyond the smallest ``utility_limit_at`` of its
    checkpoints, where the pretrained curve passes the best scratch accuracy, and (grey) beyond
    the largest measured label count; label counts finetuned but not measurable (the pretrained
    accuracy outside the scratch curve's range, ``evaluate.utility.measurable``) are crosses on
    the zero line. The shaded spans have gids ``unmeasurable-<label>`` and
    ``unmeasurable-beyond-data``, the crosses ``outside-scratch-range-<label>`` (kept in the SVG)."""
    frame = _tidy(frame)
    fin = _finetune(frame)
    util = _count_rows(fin, "utility")
    if util.empty:
        return None
    util = util.rename(columns={"value": "utility"})
    limits = fin[fin["metric"] == "utility_limit_at"]
    counted = pd.concat([_count_rows(fin, p) for p in ("top1", "scratch_top1", "utility")])
    tops = _count_rows(fin, "top1")
    colours = _colour_map(util)
    fig, panels = _panels(util, width=6.0, height=4.8)
    for ax, dataset, rows in panels:
        rows = rows.assign(_series=_series(rows))
        ptops = tops[tops["dataset"].astype(str) == dataset]
        ptops = ptops.assign(_series=_series(ptops))
        lim_rows = limits[limits["dataset"].astype(str) == dataset]
        lim_rows = lim_rows.assign(_series=_series(lim_rows)) if not lim_rows.empty else lim_rows
        measured = sorted(set(counted.loc[counted["dataset"].astype(str) == dataset, "n"]))
        span_ends = list(lim_rows["value"]) if not lim_rows.empty else []
        lo, hi = _log_xlim(ax, measured + span_ends, right_pad=2.0)
        max_measured = max(measured)
        for name, sub in rows.groupby("_series", sort=True):
            stats = _pooled(sub)
            c = colours[name]
            ax.plot(stats.index, stats["mean"], marker="o", ms=4, color=c, label=name)
            ax.fill_between(stats.index, stats["mean"] - stats["std"], stats["mean"] + stats["std"],
                            color=c, alpha=0.2, lw=0)
            mine = lim_rows[lim_rows["_series"] == name] if not lim_rows.empty else lim_rows
            limit = float(mine["value"].min()) if not mine.empty else math.inf
            gaps = sorted(n for n in set(ptops.loc[ptops["_series"] == name, "n"]) - set(stats.index) if n < limit)
            if gaps:        # finetuned there, but outside the scratch curve's range: no utility stored
                mark = ax.scatter(gaps, [0.0] * len(gaps), marker="x", s=36, color=c, zorder=3,
                                  label=f"not measurable: {name} outside the scratch range")
                mark.set_gid(f"outside-scratch-range-{name}")
            if not mine.empty:
                at = limit
                span = ax.axvspan(at, hi, facecolor=c, alpha=0.12, hatch="//", edgecolor=c, lw=0,
                                  label=f"not measurable: {name} beats best scratch")
                span.set_gid(f"unmeasurable-{name}")
                ax.axvline(at, color=c, ls=":", lw=1)
        span = ax.axvspan(max_measured, hi, facecolor=UNMEASURABLE_COLOUR, alpha=0.25, lw=0,
                          label="not measured: beyond largest label count")
        span.set_gid("unmeasurable-beyond-data")
        ax.set_xlim(lo, hi)
        ax.axhline(0, color="#333333", lw=0.8)
        ax.set_xlabel("labelled training examples (log scale)")
        ax.set_ylabel("utility (scratch labels needed / labels - 1)")
        ax.set_title(f"Label-savings utility (Newell & Deng): {dataset}\n(band: +-std over seeds)")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=1)
    return fig


def utility(frame: pd.DataFrame, out_stem: str | os.PathLike) -> list[Path]:
    """Utility vs labelled examples per method, +-std band, unmeasurable regions shaded."""
    return save_figure(utility_figure(frame), out_stem)


# ---------------------------------------------------------------------------------- invariance

def _per_unit(sub: pd.DataFrame) -> np.ndarray:
    """The values error bars run over: one per checkpoint (mean over evaluation seeds) when there
    are several checkpoints, else the evaluation seeds' values."""
    if sub["ckpt_sha256"].nunique() > 1:
        return sub.groupby("ckpt_sha256")["value"].mean().to_numpy()
    return sub["value"].to_numpy()


def invariance_bars_figure(frame: pd.DataFrame, metric: str = "top25") -> Figure | None:
    """Grouped bars: probe type (x) x method (colour), mean and +-std (ddof 1) over seeds."""
    frame = _tidy(frame)
    rows = frame[(frame["task"] == "invariance") & (frame["metric"] == metric)]
    if rows.empty:
        return None
    rows = rows.assign(_series=_series(rows))
    probes = sorted(rows["dataset"].astype(str).unique())
    names = sorted(rows["_series"].unique())
    colours = _colour_map(rows)
    width = 0.8 / len(names)
    with plt.rc_context(_RC):
        fig, ax = plt.subplots(figsize=(max(5.0, 1.1 * len(probes) * max(1, len(names)) ** 0.5 + 2), 3.8),
                               layout="constrained")
    x = np.arange(len(probes))
    for i, name in enumerate(names):
        means, errs = [], []
        for probe in probes:
            vals = _per_unit(rows[(rows["_series"] == name) & (rows["dataset"].astype(str) == probe)])
            means.append(vals.mean() if vals.size else np.nan)
            errs.append(vals.std(ddof=1) if vals.size > 1 else 0.0)
        ax.bar(x - 0.4 + width * (i + 0.5), means, width, yerr=errs, capsize=3, color=colours[name],
               label=name, error_kw={"elinewidth": 1})
    ax.set_xticks(x, [p.removeprefix("probe-") for p in probes], rotation=20 if len(probes) > 4 else 0)
    ax.set_xlabel("probe set")
    ax.set_ylabel(f"invariance score ({metric})")
    ax.set_title(f"Invariance by probe type ({metric}; bars: mean, error: +-std over seeds)")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(loc="best")
    return fig


def invariance_bars(frame: pd.DataFrame, out_stem: str | os.PathLike, metric: str = "top25") -> list[Path]:
    """Grouped bars of the invariance ``metric`` per probe set and method, error bars over seeds."""
    return save_figure(invariance_bars_figure(frame, metric), out_stem)


# ------------------------------------------------------------------------ linear vs finetune

def _short(row: pd.Series) -> str:
    if pd.notna(row.get("pretrain_seed")) and row.get("aug") is not None and pd.notna(row.get("aug")):
        return f"{row['method']}-{row['aug']}-s{int(row['pretrain_seed'])}"
    return str(row["run_id"])[:24]


def linear_vs_finetune_figure(frame: pd.DataFrame, n: int | None = None) -> tuple[Figure, list[float]] | None:
    """Scatter of linear top-1 vs finetuned top-1 at ``n`` labels (default: the largest count),
    one labelled point per checkpoint (means over seeds), Spearman's rho per dataset in the
    title (n/a below 3 points or for constant scores). Returns (figure, [rho per panel])."""
    from scipy.stats import spearmanr

    frame = _tidy(frame)
    lin = frame[(frame["task"] == "linear") & (frame["metric"] == "top1")]
    fin = _count_rows(_finetune(frame), "top1")
    if lin.empty or fin.empty:
        return None
    key = ["dataset", "ckpt_sha256"]
    parts = []
    for dataset, f in fin.groupby("dataset"):
        f = f[f["n"] == (n if n is not None else f["n"].max())]
        parts.append(f.groupby(key)["value"].mean().rename("finetune"))
    table = pd.concat(parts).to_frame().join(lin.groupby(key)["value"].mean().rename("linear"), how="inner")
    if table.empty:
        return None
    info = frame.drop_duplicates("ckpt_sha256").set_index("ckpt_sha256")
    table = table.reset_index()
    table["label"] = [_short(info.loc[s]) for s in table["ckpt_sha256"]]
    table = table.join(info[["method", "aug"]], on="ckpt_sha256")
    table["_series"] = _series(table)
    colours = _colour_map(table)
    fig, panels = _panels(table, width=5.0, height=4.2)
    rhos = []
    for ax, dataset, rows in panels:
        for name, sub in rows.groupby("_series", sort=True):
            ax.scatter(sub["linear"], sub["finetune"], color=colours[name], label=name, s=30, zorder=3)
        for r in rows.itertuples():
            ax.annotate(r.label, (r.linear, r.finetune), textcoords="offset points", xytext=(4, 3), fontsize=7)
        rho = float("nan")
        if len(rows) >= 3 and rows["linear"].nunique() > 1 and rows["finetune"].nunique() > 1:
            rho = float(spearmanr(rows["linear"], rows["finetune"]).statistic)
        rhos.append(rho)
        shown = f"{rho:.3f}" if np.isfinite(rho) else "n/a"
        n_used = n if n is not None else int(fin[fin["dataset"].astype(str) == dataset]["n"].max())
        ax.margins(0.15)
        ax.set_xlabel("linear probe top-1")
        ax.set_ylabel(f"finetuned top-1 ({n_used} labels)")
        ax.set_title(f"Linear vs finetune: {dataset}\nSpearman's ρ = {shown} ({len(rows)} checkpoints)")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best")
    return fig, rhos


def linear_vs_finetune(frame: pd.DataFrame, out_stem: str | os.PathLike, n: int | None = None) -> list[Path]:
    """Linear top-1 vs finetuned top-1 per checkpoint with Spearman's rho in the title."""
    built = linear_vs_finetune_figure(frame, n)
    return save_figure(built[0], out_stem) if built else []


# ------------------------------------------------------------------------------------- heatmap

def _tick_lines(label: str) -> str:
    """A variant label on several lines: the policy, then one setting a line
    (``"sal-mask branch=both, fill=mean"`` -> ``"sal-mask\nbranch=both\nfill=mean"``)."""
    policy, _, settings = label.partition(" ")
    return "\n".join([policy, *(p for p in settings.split(", ") if p)])


def heatmap_figure(frame: pd.DataFrame, task: str, metric: str) -> Figure | None:
    """Method (rows) x augmentation (columns) mean of ``metric`` of ``task`` over every matching
    row (checkpoints and seeds), annotated; missing cells grey with a dash. None for a single
    (method, augmentation): the report's profile table shows that run instead."""
    frame = _tidy(frame)
    rows = frame[(frame["task"] == task) & (frame["metric"] == metric) & (frame["method"] != "scratch")]
    if rows.empty:
        return None
    rows = rows.assign(aug=rows["aug"].astype(object).where(rows["aug"].notna(), "-"))
    methods = sorted(rows["method"].astype(str).unique())
    augs = sorted(rows["aug"].astype(str).unique())
    if len(methods) == 1 and len(augs) == 1:          # one cell says nothing a table does not: no heatmap
        return None
    ticks = [_tick_lines(a) for a in augs]
    lines = max(t.count("\n") + 1 for t in ticks)
    w = 1.0 + (0.9 if lines == 1 else 1.1) * len(augs)
    fig, panels = _panels(rows, width=max(3.6, w + 1.8),
                          height=max(2.6, 0.5 * len(methods) + 1.4 + 0.2 * lines))
    cmap = plt.get_cmap("viridis").with_extremes(bad="#dddddd")
    for ax, dataset, sub in panels:
        grid = sub.pivot_table(index="method", columns="aug", values="value", aggfunc="mean")
        grid = grid.reindex(index=methods, columns=augs)
        data = np.ma.masked_invalid(grid.to_numpy(dtype=float))
        image = ax.imshow(data, cmap=cmap, aspect="auto")
        finite = data.compressed()
        lo, hi = (finite.min(), finite.max()) if finite.size else (0.0, 1.0)
        for i in range(len(methods)):
            for j in range(len(augs)):
                v = grid.iat[i, j]
                if not np.isfinite(v):
                    ax.text(j, i, "–", ha="center", va="center", color="#555555")
                    continue
                level = (v - lo) / (hi - lo) if hi > lo else 0.5
                ax.text(j, i, f"{v:.3g}", ha="center", va="center", fontsize=8,
                        color="black" if level > 0.55 else "white")
        ax.set_xticks(range(len(augs)), ticks, fontsize=8 if lines == 1 else 7)
        ax.set_yticks(range(len(methods)), methods)
        ax.set_xlabel("augmentation")
        ax.set_ylabel("method")
        ax.spines[:].set_visible(False)
        ax.set_title(f"{task} {metric}: {dataset}\n(mean over checkpoints and seeds)")
        fig.colorbar(image, ax=ax, label=metric, shrink=0.9)
    return fig


def heatmap(frame: pd.DataFrame, out_stem: str | os.PathLike, task: str, metric: str) -> list[Path]:
    """Annotated method x augmentation heatmap of the mean ``metric`` of ``task``."""
    return save_figure(heatmap_figure(frame, task, metric), out_stem)


# ----------------------------------------------------------------------------------- embedding

def embedding_figure(arrays_row: Mapping[str, Any] | None) -> Figure | None:
    """2-D embedding scatter coloured by class. ``arrays_row``: one item of
    ``ResultsStore.arrays(...)`` (``{"run_id", "dataset", "name", "arrays": {"xy", "labels"}}``)
    or a plain ``{"xy": (N, 2), "labels": (N,)}``. Negative labels (unlabelled) are grey; more
    than 8 classes reuse the colours with other markers."""
    if not arrays_row:
        return None
    arrays = arrays_row.get("arrays", arrays_row)
    if "xy" not in arrays:
        return None
    xy = np.asarray(arrays["xy"], dtype=float)
    if xy.ndim != 2 or xy.shape[0] == 0 or xy.shape[1] < 2:
        return None
    labels = np.asarray(arrays["labels"]) if "labels" in arrays else np.zeros(len(xy), dtype=int)
    if labels.shape[0] != xy.shape[0]:
        raise ValueError(f"embedding: {xy.shape[0]} points but {labels.shape[0]} labels")
    with plt.rc_context(_RC):
        fig, ax = plt.subplots(figsize=(5.4, 4.6), layout="constrained")
    classes = sorted(set(labels.tolist()))
    labelled = [c for c in classes if not (isinstance(c, (int, np.integer)) and c < 0)]
    for i, c in enumerate(labelled):
        pts = xy[labels == c]
        ax.scatter(pts[:, 0], pts[:, 1], s=8, alpha=0.8, color=PALETTE[i % len(PALETTE)],
                   marker=MARKERS[(i // len(PALETTE)) % len(MARKERS)], label=str(c), linewidths=0)
    rest = np.isin(labels, [c for c in classes if c not in labelled])
    if rest.any():
        ax.scatter(xy[rest, 0], xy[rest, 1], s=6, color="#bbbbbb", label="unlabelled", linewidths=0)
    if len(classes) <= 24:
        ax.legend(title="class", loc="center left", bbox_to_anchor=(1.0, 0.5), markerscale=1.5,
                  ncols=1 if len(classes) <= 12 else 2)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("embedding dim 1")
    ax.set_ylabel("embedding dim 2")
    who = " ".join(str(arrays_row[k]) for k in ("run_id", "dataset") if k in arrays_row)
    name = str(arrays_row.get("name", "2-D embedding")).replace("embedding_", "")
    ax.set_title(f"{name} of test features ({len(xy)} points)" + (f"\n{who}" if who else ""))
    return fig


def embedding(arrays_row: Mapping[str, Any] | None, out_stem: str | os.PathLike) -> list[Path]:
    """2-D embedding scatter (e.g. the clustering task's t-SNE) coloured by class."""
    return save_figure(embedding_figure(arrays_row), out_stem)


# ---------------------------------------------------------------------------------- saliency

def _examples(values: Any) -> list[np.ndarray]:
    if isinstance(values, np.ndarray):
        return [values[i] for i in range(values.shape[0])] if values.ndim >= 3 else [values]
    return [np.asarray(v) for v in values]


def _displayable(img: np.ndarray) -> tuple[np.ndarray, str | None]:
    """(array for imshow, colormap or None for RGB): CHW -> HWC, RGB rescaled into [0, 1]."""
    img = np.asarray(img)
    if img.ndim == 3 and img.shape[0] in (1, 3) and img.shape[-1] not in (1, 3):
        img = np.moveaxis(img, 0, -1)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    if img.ndim == 2:
        return img.astype(float), ("gray" if img.dtype == bool else "viridis")
    if img.ndim != 3 or img.shape[-1] not in (3, 4):
        raise ValueError(f"saliency_examples: cannot show an array of shape {img.shape} as an image")
    if img.dtype == np.uint8:
        return img, None
    img = img.astype(float)
    lo, hi = np.nanmin(img), np.nanmax(img)
    if lo < 0 or hi > 1:
        img = (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)
    return img, None


def saliency_examples_figure(images: Mapping[str, Any], max_examples: int = 6) -> Figure | None:
    """A grid: one row per example (at most ``max_examples``), one column per key of ``images``
    (e.g. image, HC map, RC map, mask, masked view), titled by the keys. Each value: an array
    with a leading example axis ((N, H, W) maps, (N, H, W, 3) or (N, 3, H, W) images) or a list
    of per-example arrays; every column needs the same number of examples. 2-D maps use viridis
    (boolean masks grey), RGB images are shown as they are (rescaled to [0, 1] if outside)."""
    if not images:
        return None
    columns = {str(k): _examples(v) for k, v in images.items()}
    counts = {k: len(v) for k, v in columns.items()}
    if len(set(counts.values())) > 1:
        raise ValueError(f"saliency_examples: columns have different example counts {counts}")
    n = min(next(iter(counts.values())), max_examples)
    if n == 0:
        return None
    with plt.rc_context(_RC):
        fig, axes = plt.subplots(n, len(columns), figsize=(1.9 * len(columns), 1.9 * n + 0.4), squeeze=False,
                                 layout="constrained")
    try:
        for j, (title, examples) in enumerate(columns.items()):
            for i in range(n):
                ax = axes[i, j]
                img, cmap = _displayable(examples[i])
                ax.imshow(img, cmap=cmap, interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                if i == 0:
                    ax.set_title(title)
                if j == 0:
                    ax.set_ylabel(f"example {i + 1}")
    except BaseException:
        plt.close(fig)
        raise
    fig.suptitle("Saliency examples")
    return fig


def saliency_examples(images: Mapping[str, Any], out_stem: str | os.PathLike, max_examples: int = 6) -> list[Path]:
    """Grid of example images and their maps (columns titled by the dict keys)."""
    return save_figure(saliency_examples_figure(images, max_examples), out_stem)


__all__ = [
    "BAND",
    "PALETTE",
    "embedding",
    "embedding_figure",
    "heatmap",
    "heatmap_figure",
    "invariance_bars",
    "invariance_bars_figure",
    "label_efficiency",
    "label_efficiency_figure",
    "linear_vs_finetune",
    "linear_vs_finetune_figure",
    "method_colours",
    "saliency_examples",
    "saliency_examples_figure",
    "save_figure",
    "utility",
    "utility_figure",
]
