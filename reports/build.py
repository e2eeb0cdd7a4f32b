"""``python -m reports build``: every table, every plot and one self-contained HTML report.

    python -m reports build [--db results/results.sqlite] --out DIR [--stat std|ci95] [--title T]

Writes ``DIR/tables/<name>.{md,csv,tex,html}`` (``tables.default_tables``: mean +- std or 95% CI
with the seed count in every cell), ``DIR/plots/<name>.{png,svg}`` (``plots``: label-efficiency
curves, label-savings utility, invariance bars, linear vs finetune with Spearman's rho, method x
augmentation heatmaps, the stored 2-D embeddings, saliency examples when an ``--saliency`` npz of
image / HC / RC / mask / masked-view arrays is given), the published-vs-ours comparison of every
paper with rows in the store, and ``DIR/report.html`` with all of it embedded (opens with no
server; checked with ``html.check_report`` before it is kept).
"""
from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

import numpy as np

from fsio import write_text_atomic
from measure.results import ResultsStore

from . import compare as C
from . import html, plots
from .data import DEFAULT_DB, load
from .papers import DATASETS, PAPERS, PLANS, SMOKE_KEEPS, get_plan
from .reproduce import SCALES, run
from .tables import aggregate, cells, default_tables, format_cell, gap_table, render

log = logging.getLogger("reports.build")
TABLE_FORMATS = {"md": "md", "csv": "csv", "tex": "latex", "html": "html"}
MAX_EMBEDDINGS = 6


OWNED = ("tables", "plots", "compare")     # the folders a build writes in full (stale files are removed)


def _tables(frame, out: Path, stat: str, written: set[Path]) -> list[dict]:
    sections = []
    for name, table in default_tables(frame, stat).items():
        for suffix, fmt in TABLE_FORMATS.items():
            written.add(write_text_atomic(out / "tables" / f"{name}.{suffix}", render(table, fmt)))
        sections.append({"heading": f"Table: {name}", "tables": [render(table, "html")]})
    return sections


def _profile(frame, out: Path, stat: str, written: set[Path]) -> list[dict]:
    """For a store of one pretrained run: every value it has, one line per (task, dataset, metric),
    mean with its spread over seeds -- a readable profile instead of 1 x 1 heatmaps."""
    mine = frame[frame["pretrain_seed"].notna()]
    runs = mine["run_id"].unique()
    if len(runs) != 1:
        return []
    agg = aggregate(mine, ["task", "dataset", "split", "metric"], stat)
    table = agg.assign(value=cells(agg))[["task", "dataset", "split", "metric", "value"]]
    text = table.assign(value=[format_cell(c) for c in table["value"]])
    written.add(write_text_atomic(out / "tables" / "profile.csv", text.to_csv(index=False)))
    return [{"heading": f"Profile of {runs[0]}",
             "tables": [text.to_html(index=False, classes="sslbench-table", na_rep="")]}]


def _gaps(frame, out: Path, stat: str, written: set[Path]) -> list[dict]:
    """Linear top-1 of every run beside its random-init floor and supervised ceiling, where the
    store has both."""
    table = gap_table(frame, stat=stat)
    if table.empty:
        return []
    text = table.assign(**{c: [format_cell(v) for v in table[c]] for c in ("value", "random", "supervised")})
    written.add(write_text_atomic(out / "tables" / "linear-top1-gap.csv", text.to_csv(index=False)))
    return [{"heading": "Linear top-1 between random init and supervised (fraction of the gap closed)",
             "tables": [text.to_html(index=False, classes="sslbench-table", na_rep="")]}]


def _plots(frame, store: ResultsStore, out: Path, saliency: Path | None) -> list[dict]:
    p = out / "plots"
    made: list[tuple[str, list[Path]]] = [
        ("Label efficiency (finetuned vs scratch)", plots.label_efficiency(frame, p / "label_efficiency")),
        ("Label-savings utility (Newell & Deng)", plots.utility(frame, p / "utility")),
        ("Invariance (firing-rate top-25)", plots.invariance_bars(frame, p / "invariance")),
        ("Linear probe vs finetuning", plots.linear_vs_finetune(frame, p / "linear_vs_finetune")),
    ]
    for task, metric in (("linear", "top1"), ("knn", "top1@k20"), ("segmentation", "miou"), ("unsup_seg", "miou"),
                         ("detection", "AP50")):
        made.append((f"{task} {metric}: method x augmentation", plots.heatmap(frame, p / f"heatmap_{task}", task,
                                                                              metric)))
    for i, row in enumerate(store.arrays(task="clustering")[:MAX_EMBEDDINGS]):
        made.append((f"Embedding of {row['run_id']} ({row['dataset']})", plots.embedding(row, p / f"embedding_{i}")))
    if saliency is not None:
        with np.load(saliency) as z:
            made.append(("Saliency examples", plots.saliency_examples({k: z[k] for k in z.files}, p / "saliency")))
    return [{"heading": title, "images": paths} for title, paths in made if paths]


def _comparisons(frame, out: Path, written: set[Path]) -> list[dict]:
    sections = []
    for paper, spec in PAPERS.items():
        try:
            numbers, trends = C.compare(frame, spec)
        except C.PoolingRefused as refused:       # shown where the comparison would be, never pooled
            sections.append({"heading": f"Published vs ours: {paper}", "text": str(refused)})
            continue
        if (trends["ours shows"] == "not measured").all() if len(trends) else True:
            continue
        written.add(write_text_atomic(out / "compare" / f"{paper}.md", C.report(frame, spec)))
        sections.append({"heading": f"Published vs ours: {paper}",
                         "tables": [numbers.to_html(index=False, classes="sslbench-table", na_rep=""),
                                    trends.to_html(index=False, classes="sslbench-table")]})
    return sections


def build(db: Path | str, out: Path | str, *, stat: str = "ci95", title: str = "sslbench report",
          saliency: Path | None = None) -> Path:
    """Render the store at ``db`` into ``out``; returns the HTML report's path."""
    frame = load(db)
    if frame.empty:
        raise ValueError(f"{db}: the results store has no rows to report")
    out = Path(out)
    store = ResultsStore(db)
    n_runs = frame["run_id"].nunique()
    intro = {"heading": "Results store", "text": f"{len(frame)} stored values of {n_runs} runs from {db}. "
             f"Every table cell is mean {'± std' if stat == 'std' else '± 95% CI'} over seeds, with the "
             "number of seeds (n)."}
    written: set[Path] = set()
    figures = _plots(frame, store, out, saliency)
    written.update(p for section in figures for p in section["images"])
    sections = [intro, *_profile(frame, out, stat, written), *_gaps(frame, out, stat, written),
                *_tables(frame, out, stat, written), *figures,
                *_comparisons(frame, out, written)]
    path = html.write_report(out, title, sections)
    problems = html.check_report(path)
    if problems:
        os.replace(path, path.with_suffix(".broken.html"))
        raise ValueError(f"{path}: report failed its check: {problems[0]}")
    _prune(out, written)
    log.info("wrote %s (%d sections)", path, len(sections))
    return path


def _prune(out: Path, written: set[Path]) -> None:
    """Remove the files of an earlier build in the folders a build owns that this one did not
    write (a table or plot the store no longer gives), once the new report has passed its check."""
    keep = {p.resolve() for p in written}
    stale = [f for sub in OWNED if (out / sub).is_dir() for f in (out / sub).iterdir()
             if f.is_file() and f.resolve() not in keep]
    for f in stale:
        f.unlink()
    if stale:
        log.info("removed %d files of an earlier build from %s", len(stale), out)


def cmd_build(a: argparse.Namespace) -> int:
    """Render every table, plot and comparison of the store into one HTML report."""
    path = build(a.db, a.out, stat=a.stat, title=a.title, saliency=a.saliency)
    print(f"wrote {path}")
    return 0


def add_build(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("build", help=cmd_build.__doc__, description=cmd_build.__doc__)
    p.add_argument("--db", type=Path, default=DEFAULT_DB, help=f"results store (default {DEFAULT_DB})")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--stat", choices=("std", "ci95"), default="ci95",
                   help="spread shown beside each mean: the 95%% CI half-width (default) or the std")
    p.add_argument("--title", default="sslbench report")
    p.add_argument("--saliency", type=Path, help="npz of saliency example arrays (image, hc, rc, mask, ...)")
    p.set_defaults(func=cmd_build)


def cmd_reproduce(a: argparse.Namespace) -> int:
    """Run a paper's reproduction end to end (data, pretraining, evaluation, report)."""
    report = run(a.paper, get_plan(a.paper), a.scale, a.out, dry_run=a.dry_run, transfer=a.transfer,
                 smoke=a.smoke, datasets=DATASETS[a.paper], data_root=a.data_root, gpu_memory=a.gpu_memory,
                 keep=SMOKE_KEEPS[a.paper], submit=a.submit, partition=a.partition, timeout_min=a.timeout_min)
    print(f"report: {report / 'report.html'}" if not a.dry_run else f"(dry run) report would be in {report}")
    return 0


def add_reproduce(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("reproduce", help=cmd_reproduce.__doc__, description=cmd_reproduce.__doc__)
    p.add_argument("--paper", required=True, help=f"one of {', '.join(PLANS)}")
    p.add_argument("--scale", default="cpu", help=f"one of {', '.join(SCALES)}")
    p.add_argument("--out", type=Path, default=Path("reproductions"))
    p.add_argument("--dry-run", action="store_true", help="print the steps without running them")
    p.add_argument("--transfer", action="store_true",
                   help="cpu: also run the plan's Detectron2 / mmseg transfers (an extra standard-stem arm, "
                        "seed 0, ~20 minutes a checkpoint; full plans always transfer)")
    p.add_argument("--smoke", action="store_true",
                   help="full: run the plan's own commands on tiny fixtures of its datasets, a few steps each, "
                        "on CPU, into <out>/<paper>-full-smoke")
    p.add_argument("--data-root", type=Path, default=Path("data"),
                   help="full: the folder holding the papers' datasets (checked before any step)")
    p.add_argument("--submit", choices=("slurm", "local"), default=None,
                   help="run the steps as submitit jobs: one job per pretraining (8 DDP processes on a node of 8 "
                        "GPUs; requeued and resumed when preempted), one per other step; local: on this machine")
    p.add_argument("--partition", default=None, help="--submit slurm: the Slurm partition")
    p.add_argument("--timeout-min", type=int, default=4320, help="--submit: a job's time limit (default 3 days)")
    p.add_argument("--gpu-memory", type=float, default=80.0,
                   help="full --dry-run: GB of memory a GPU holds (a step needing more is warned about; default 80)")
    p.set_defaults(func=cmd_reproduce)
