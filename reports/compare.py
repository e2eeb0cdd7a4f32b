"""Our numbers beside a reproduced paper's: its published table, where one is stored, and its
claimed trends checked on both sides.

    frame = load("results/results.sqlite")            # reports.data
    spec = get_paper("saliency-masking")               # reports.papers
    numbers, trends = compare(frame, spec)
    print(report(frame, spec))                         # markdown: numbers, then trends

This module is the machinery; each paper's claims are a ``PaperSpec`` in its own module of
``reports/papers/`` (registered by name in ``reports.papers.PAPERS``), built from the predicates
and the shared filters here (``LINEAR``, ``SCENE_CENTRIC``, ...). A ``PaperSpec`` says which
published CSVs (``reports/paper_tables/``) it reads, how a published row maps onto rows of the
results store (``match``: a published row -> a filter on our frame, or the reason it has no
counterpart here), and its claims as ``Trend``s: small predicates (``Pair``: mean of rows a >
mean of rows b; ``Decreasing``: means fall at every step of a column; ``Positive``: mean > 0 at a
column's smallest value) evaluated on our rows and, where the stored table holds them, on the
published rows. On our rows every predicate answers *yes* / *no* / *inconclusive* from a 95 %
confidence interval over pretraining seeds (``reports.stats``: Welch's interval of a difference,
Student's of a mean; evaluation seeds are averaged inside one pretraining first), and prints the
interval; a side with one seed gives "one seed: no CI" and *inconclusive*. Published rows have no
seeds: their answer is the sign. A trend our data cannot check says "not measured": no comparison is made unless
both sides have rows in the same (backbone, pretraining data, evaluation dataset, ...) group.

Variants: a run id names the method, augmentation policy, backbone, data and seed, not the
policy's settings (``--aug_cfg.fill=blur``). Those come from the pretraining configs stored beside
the results, as the ``variant`` column of ``reports.data.load`` (``fill=blur``), and every
grouping by augmentation here groups by variant too: the numbers show ``sal-mask fill=blur`` apart
from ``sal-mask fill=mean``, and a ``Pair`` compares each variant of one side with each variant
of the other that agrees with it on every shown setting the claim does not name. A filter on the
variant is a ``VariantIs`` (``variant_is(shows={"fill": "blur"})``). Runs without a stored config
(older stores) have no variant; where several of them share a pretraining seed in one number
(only the config hash tells them apart), their values are averaged per seed and the number is
flagged ``[mixes K runs per seed]``.

Pooling: runs of one (method, aug, backbone, pretrain_data) group that differ in a resolved
setting their paper's plan does not vary on purpose (``PaperSpec.planned``: the settings its
pretraining steps name, ``--aug_cfg.fill=blur``; e.g. rows left from before a default changed)
are not one arm run several times. ``compare`` / ``report`` refuse them (``PoolingRefused``, one
line naming the group, the setting, and the runs at each value) unless asked to ``apart``: then
each setting's runs are a variant of their own, compared only with variants that agree with them.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import pandas as pd

from .data import aug_label, parse_settings, parse_variant, with_run_info
from .stats import INCONCLUSIVE, NO, YES, decide, mean_ci, welch_ci
from .tables import (
    aggregate,
    cells,
    format_cell,
    preferred_split,
    render,
    replicates,
    with_label_counts,
)

TABLES_DIR = Path(__file__).parent / "paper_tables"
NOT_MEASURED = "not measured"
NO_TABLE = "no published table stored"
# a comparison of two of our selections is made only inside one group of these columns
WITHIN = ("backbone", "pretrain_data", "dataset")
PER_METHOD = ("method", *WITHIN)      # ... and one method: a claim about augmentations, checked per method
# how the numbers table splits our rows that map to one published row (aug_variant: the augmentation
# with its variant, ``sal-mask fill=blur``, added by ``prepare``)
OURS_WHERE = ("aug_variant", "dataset", "backbone", "pretrain_data")
OURS_DATA = "ours: aug / dataset / backbone / pretrain_data"
TABLE_COLUMNS = ("paper", "ours: rows", OURS_DATA, "ours")
TREND_COLUMNS = ("claim", "paper shows", "ours shows", "ours: detail")


@dataclass(frozen=True)
class Where:
    """A filter value that is a predicate on the column (``label`` is how it is printed)."""

    label: str
    test: Callable[[pd.Series], pd.Series]


@dataclass(frozen=True)
class VariantIs(Where):
    """A filter on the ``variant`` column (``variant_is``): the label shows each of ``shows``
    (key, value), and each of ``or_default`` with that value or not at all (the setting is then the
    same for every run of the group)."""

    shows: tuple[tuple[str, str], ...] = ()
    or_default: tuple[tuple[str, str], ...] = ()

    @property
    def keys(self) -> tuple[str, ...]:
        """The settings the filter requires to be shown (a comparison may differ in them)."""
        return tuple(k for k, _ in self.shows)


def _setting(shown: Mapping[str, str], key: str) -> str | None:
    """The value a parsed variant shows for ``key`` (also as ``section.key``), or None."""
    return next((v for k, v in shown.items() if k == key or k.endswith("." + key)), None)


def variant_is(shows: Mapping[str, str] | None = None, or_default: Mapping[str, str] | None = None) -> VariantIs:
    """Rows whose variant shows ``key=value`` for each of ``shows``, and for each of ``or_default``
    shows that value or does not show the key: ``variant_is({"fill": "blur"}, {"branch": "query"})``."""
    need, allow = tuple(sorted((shows or {}).items())), tuple(sorted((or_default or {}).items()))
    label = ", ".join(f"{k}={v}" for k, v in need)
    if allow:
        label += (" " if label else "") + f"({', '.join(f'{k}={v}' for k, v in allow)} where shown)"

    def test(column: pd.Series) -> pd.Series:
        def ok(label: object) -> bool:
            shown = parse_variant(label)
            return all(_setting(shown, k) == v for k, v in need) and \
                all(_setting(shown, k) in (None, v) for k, v in allow)
        return column.map(ok).astype(bool)
    return VariantIs(label, test, need, allow)


Filter = Mapping[str, Any]      # column -> value | tuple of values (any of) | Where


def select(frame: pd.DataFrame, filt: Filter) -> pd.DataFrame:
    """The rows of ``frame`` that pass every item of ``filt``; a column the frame lacks passes none."""
    mask = pd.Series(True, index=frame.index)
    for column, want in filt.items():
        if column not in frame.columns:
            return frame.iloc[0:0]
        col = frame[column]
        if isinstance(want, Where):
            mask &= want.test(col).fillna(False).astype(bool)
        elif isinstance(want, (tuple, list, set, frozenset)):
            mask &= col.isin(list(want))
        else:
            mask &= (col == want).fillna(False).astype(bool)
    return frame[mask]


def _value_text(v: Any) -> str:
    if isinstance(v, Where):
        return v.label
    if isinstance(v, (tuple, list, set, frozenset)):
        return "/".join(map(str, v))
    return str(v)


def describe(filt: Filter) -> str:
    """A filter as text: ``method=mocov2, aug=sal-mask, in_domain, pretrain_data scenes*``."""
    def one(k: str, v: Any) -> str:
        if v is True:
            return k
        if isinstance(v, Where):
            return f"{k} {v.label}"
        if isinstance(v, (tuple, list, set, frozenset)):
            return f"{k} in {_value_text(v)}"
        return f"{k}={v}"
    return ", ".join(one(k, v) for k, v in filt.items())


# ----------------------------------------------------------------------------------- predicates

@dataclass(frozen=True)
class Outcome:
    """One comparison made: its answer (``yes`` / ``no`` / ``inconclusive``; None: the group has
    rows but not where the claim is judged, e.g. no utility at the smallest labelled-set size), and
    the numbers."""

    answer: str | None
    text: str


def _key_text(within: Sequence[str], key: tuple[str, ...]) -> str:
    """``[backbone=resnet18, dataset=shapes64] `` for a group key ("" for none); a variant as it reads."""
    shown = [k if c == "variant" else f"{c}={k}" for c, k in zip(within, key) if k]
    return f"[{', '.join(shown)}] " if shown else ""


def _groups(rows: pd.DataFrame, within: Sequence[str]) -> dict[tuple[str, ...], pd.DataFrame]:
    """``rows`` split by the ``within`` columns (keys as text; NaN -> ""), or one group."""
    if rows.empty:
        return {}
    if not within:
        return {(): rows}
    if "variant" in within and "variant" not in rows.columns:      # a frame without variants: none
        rows = rows.assign(variant="")
    missing = [c for c in within if c not in rows.columns]
    if missing:
        raise ValueError(f"trend: no column(s) {', '.join(missing)} to group by")
    out = {}
    for key, part in rows.groupby(list(within), dropna=False, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        out[tuple("" if pd.isna(k) else str(k) for k in key)] = part
    return out


def runs_per_seed(rows: pd.DataFrame) -> int:
    """The most run ids sharing one pretraining seed and variant in ``rows``. Above 1, the rows mix
    runs that neither the run id nor a stored config tells apart (e.g. ``sal-mask`` with three fills
    and no stored configs: only the config hash, which also changes with the seed, differs), and
    each seed's value is their mean. Runs with stored configs differing in a setting have
    different variants and are not counted together."""
    parsed = rows[rows["pretrain_seed"].notna()]
    if not len(parsed):
        return 1
    variant = parsed["variant"].fillna("").astype(str) if "variant" in parsed.columns else ""
    return int(parsed.assign(_variant=variant).groupby(["pretrain_seed", "_variant"])["run_id"].nunique().max())


def _ours_text(rows: pd.DataFrame) -> tuple[float, str]:
    """(mean, ``mean ± std (n=K)``) of our rows, flagged when they mix several runs per seed."""
    cell = cells(aggregate(rows, [])).iloc[0]
    k = runs_per_seed(rows)
    return cell.mean, format_cell(cell) + (f" [mixes {k} runs per seed]" if k > 1 else "")


def _summary(rows: pd.DataFrame, ours: bool) -> tuple[float, str]:
    """(mean, text) of ``rows``: ours with its spread and seed count, published rows as printed."""
    if ours:
        return _ours_text(rows)
    values = rows["value"].astype(float)
    if len(rows) == 1:
        return float(values.iloc[0]), str(rows["published"].iloc[0])
    return float(values.mean()), f"{values.mean():.2f} (mean of {len(rows)} published rows)"


def _difference(a: Filter, b: Filter) -> tuple[str, str]:
    """How two filters differ, for the text of a comparison (``sal-mask`` vs ``default``); a
    ``VariantIs`` is left to the variant of the rows compared (``_named``); "" when nothing is left."""
    keys = [k for k in dict.fromkeys([*a, *b]) if a.get(k) != b.get(k)]

    def name(f: Filter) -> str:
        return " ".join(_value_text(f[k]) for k in keys if k in f and not isinstance(f[k], VariantIs))
    return name(a), name(b)


def _named(name: str, variant: str) -> str:
    """A side of a comparison: its filters' difference and the variant of its rows."""
    return " ".join(p for p in (name, variant) if p) or "the rest"


def _by_variant(rows: pd.DataFrame, ours: bool) -> dict[str, pd.DataFrame]:
    """Our rows per variant (one group of all rows for published rows or a frame without variants)."""
    if not ours or "variant" not in rows.columns:
        return {"": rows}
    return {str(k): part for k, part in rows.groupby(rows["variant"].fillna("").astype(str), sort=True)}


def _comparable(va: str, vb: str, free: Sequence[str]) -> bool:
    """Whether two variants agree on every setting both show, except those in ``free``."""
    a, b = parse_variant(va), parse_variant(vb)
    named = [k for k in a.keys() & b.keys() if not any(k == f or k.endswith("." + f) for f in free)]
    return all(a[k] == b[k] for k in named)


def _published_answer(holds: bool) -> str:
    return YES if holds else NO


@dataclass(frozen=True)
class Pair:
    """The mean of the rows ``a`` is above the mean of the rows ``b``, in every group of the
    ``within`` columns where both have rows. Ours: *yes* / *no* / *inconclusive* from the Welch 95 %
    CI of the difference of the per-pretraining-seed values (``reports.stats``); published rows: the
    sign of the difference."""

    a: Filter
    b: Filter
    within: tuple[str, ...] = WITHIN

    def outcomes(self, frame: pd.DataFrame, ours: bool) -> list[Outcome]:
        within = self.within if ours else ()
        ga, gb = _groups(select(frame, self.a), within), _groups(select(frame, self.b), within)
        name_a, name_b = _difference(self.a, self.b)
        free = [k for f in (self.a, self.b) for v in f.values() if isinstance(v, VariantIs) for k in v.keys]
        out = []
        for key in sorted(ga.keys() & gb.keys()):
            for va, rows_a in _by_variant(ga[key], ours).items():
                for vb, rows_b in _by_variant(gb[key], ours).items():
                    if not _comparable(va, vb, free):
                        continue
                    (ma, ta), (mb, tb) = _summary(rows_a, ours), _summary(rows_b, ours)
                    head = f"{_key_text(within, key)}{_named(name_a, va)} {ta}"
                    if ours:
                        diff = welch_ci(replicates(rows_a), replicates(rows_b))
                        out.append(Outcome(decide(diff), f"{head} vs {_named(name_b, vb)} {tb}: "
                                                         f"difference {diff.text()}"))
                    else:
                        holds = bool(ma > mb)
                        out.append(Outcome(_published_answer(holds),
                                           f"{head} {'>' if holds else '<='} {_named(name_b, vb)} {tb}"))
        return out


def _series(rows: pd.DataFrame, over: str, ours: bool) -> list[tuple[Any, float, str]]:
    """(value of ``over``, mean, text) for each value of ``over`` in ``rows``, in order."""
    points = []
    for value, part in rows.groupby(over, sort=True):
        mean, text = _summary(part, ours)
        points.append((value, mean, text))
    return points


@dataclass(frozen=True)
class Decreasing:
    """The mean of ``rows`` falls at every step of ``over`` (at least two steps measured), in every
    group of ``within``."""

    rows: Filter
    over: str
    within: tuple[str, ...] = ("method", "aug", "variant", *WITHIN)

    def outcomes(self, frame: pd.DataFrame, ours: bool) -> list[Outcome]:
        out, within = [], self.within if ours else ()
        for key, part in _groups(select(frame, self.rows), within).items():
            part = part[part[self.over].notna()]
            points = _series(part, self.over, ours)
            if len(points) < 2:
                continue
            text = " -> ".join(f"{self.over} {v}: {t}" for v, _, t in points)
            if not ours:
                out.append(Outcome(_published_answer(all(b[1] < a[1] for a, b in pairwise(points))),
                                   f"{_key_text(within, key)}{text}"))
                continue
            steps = [welch_ci(replicates(part[part[self.over] == a[0]]), replicates(part[part[self.over] == b[0]]))
                     for a, b in pairwise(points)]                  # previous minus next: > 0 where it falls
            answers = [decide(d) for d in steps]
            answer = YES if all(a == YES for a in answers) else NO if NO in answers else INCONCLUSIVE
            drops = ", ".join(d.text() for d in steps)
            out.append(Outcome(answer, f"{_key_text(within, key)}{text}; drops {drops}"))
        return out


@dataclass(frozen=True)
class Positive:
    """The mean of ``rows`` at the smallest value of ``at`` is above 0, in every group of ``within``.
    With ``sizes`` (the rows whose ``at`` values are the sizes a group was evaluated at, e.g. its
    finetuning accuracies), the smallest is the group's smallest size: where ``rows`` have no value
    there (the utility is not measurable at that size), the group is not measured; without, or
    where the group has no ``sizes`` rows, it is the smallest value ``rows`` have."""

    rows: Filter
    at: str
    within: tuple[str, ...] = ("method", "aug", "variant", *WITHIN)
    sizes: Filter | None = None

    def outcomes(self, frame: pd.DataFrame, ours: bool) -> list[Outcome]:
        out, within = [], self.within if ours else ()
        sizes = _groups(select(frame, self.sizes), within) if self.sizes is not None and ours else {}
        for key, part in _groups(select(frame, self.rows), within).items():
            points = _series(part[part[self.at].notna()], self.at, ours)
            if not points:
                continue
            value, mean, text = points[0]
            smallest = sizes[key][self.at].dropna().min() if key in sizes else value
            if smallest < value:
                out.append(Outcome(None, f"{_key_text(within, key)}{self.at} {smallest}: not measurable "
                                         f"(smallest measured: {self.at} {value}: {text})"))
            elif not ours:
                out.append(Outcome(_published_answer(bool(mean > 0)), f"{_key_text(within, key)}{self.at} {value}: {text}"))
            else:
                ci = mean_ci(replicates(part[part[self.at] == value]))
                out.append(Outcome(decide(ci), f"{_key_text(within, key)}{self.at} {value}: {text}, "
                                               f"95% CI {ci.text(signed=False)}"))
        return out


Check = Pair | Decreasing | Positive


@dataclass(frozen=True)
class Trend:
    """A claim of a paper. ``ours``: the checks on our rows (none: it cannot be measured here, and
    ``note`` says why); ``paper``: the same claim on the published rows (none: the claim is the
    paper's text, not in the stored table). It holds where every comparison made holds."""

    claim: str
    ours: tuple[Check, ...]
    paper: tuple[Check, ...] = ()
    note: str = ""


def verdict(checks: Sequence[Check], frame: pd.DataFrame, ours: bool) -> tuple[str, str]:
    """("yes" | "no" | "inconclusive" | "not measured", the comparisons made): yes when every
    comparison made says yes, no when any says no, inconclusive otherwise (a CI containing 0, or
    one seed: no CI), not measured when none could be made; groups where the claim could not be
    judged are listed after them."""
    outcomes = [o for check in checks for o in check.outcomes(frame, ours)]
    judged = [o for o in outcomes if o.answer is not None]
    unjudged = "; ".join(o.text for o in outcomes if o.answer is None)
    if not judged:
        return NOT_MEASURED, unjudged
    answers = [o.answer for o in judged]
    answer = YES if all(a == YES for a in answers) else NO if NO in answers else INCONCLUSIVE
    yes = answers.count(YES)
    prefix = f"{yes}/{len(judged)} hold: " if len(judged) > 1 else ""
    text = prefix + "; ".join(o.text for o in judged)
    return answer, text + (f"; not measured: {unjudged}" if unjudged else "")


# ---------------------------------------------------------------------------------------- papers

@dataclass(frozen=True)
class PaperSpec:
    """A reproduced paper: citation, published tables, row mapping, and claims.

    tables: CSV files in ``TABLES_DIR`` (none: the comparison shows ``ours_rows`` grouped by
    ``ours_by`` beside "no published table stored"); keep: which published rows the numbers table
    shows; columns: the published columns that identify a row there; match: a published row ->
    a filter on our frame, or a string saying why it has no counterpart here."""

    name: str
    title: str
    trends: tuple[Trend, ...]
    tables: tuple[str, ...] = ()
    keep: Filter = field(default_factory=dict)
    columns: tuple[str, ...] = ()
    match: Callable[[Mapping[str, Any]], Filter | str] | None = None
    ours_rows: Filter = field(default_factory=dict)
    ours_by: tuple[str, ...] = ()
    planned: frozenset[str] = frozenset()       # settings the plan varies on purpose (``reports.papers``)


# ------------------------------------------------------------------------------ shared filters
# (a filter that one paper alone uses lives in that paper's module, ``reports/papers/``)

# pretraining data by kind, from the dataset name: our synthetic scenes, or COCO (its annotation file)
SCENE_CENTRIC = Where("scene-centric (scenes* / coco* / instances_*)",
                      lambda s: s.astype("string").str.startswith(("scenes", "coco", "instances_")))
VIDEO = Where("video (video* / trackingnet* / got10k*)",
              lambda s: s.astype("string").str.startswith(("video", "trackingnet", "got10k")))
OBJECT_CENTRIC = Where("object-centric (neither scenes nor video)",
                       lambda s: ~(SCENE_CENTRIC.test(s).fillna(False) | VIDEO.test(s).fillna(False)))
LINEAR = {"task": "linear", "metric": "top1", "in_domain": True}


# ------------------------------------------------------------------------------------ comparison

def published(spec: PaperSpec) -> pd.DataFrame:
    """The paper's stored CSVs as one frame: every column as printed (text), ``published`` the value
    as printed and ``value`` as a number. Empty when the paper has no stored table."""
    if not spec.tables:
        return pd.DataFrame(columns=["published", "value"])
    frames = [pd.read_csv(TABLES_DIR / name, dtype=str, keep_default_na=False) for name in spec.tables]
    frame = pd.concat(frames, ignore_index=True).fillna("")
    return frame.assign(published=frame["value"], value=pd.to_numeric(frame["value"]))


def prepare(frame: pd.DataFrame) -> pd.DataFrame:
    """Our rows ready to filter: run-id parts, ``variant`` (``""`` where the frame has none) and
    ``aug_variant`` (``sal-mask fill=blur``), the preferred split per (task, dataset),
    ``metric_base`` / ``label_count``, and ``in_domain`` (evaluated on the pretraining dataset)."""
    if "method" not in frame.columns:
        frame = with_run_info(frame)
    if "variant" not in frame.columns:
        frame = frame.assign(variant="")
    frame = frame.assign(variant=frame["variant"].fillna("").astype(str))
    frame = frame.assign(aug_variant=aug_label(frame))
    if frame.empty:
        return with_label_counts(frame).assign(in_domain=pd.Series(dtype=bool))
    frame = with_label_counts(preferred_split(frame))
    return frame.assign(in_domain=(frame["dataset"] == frame["pretrain_data"]).fillna(False).astype(bool))


def _ours_cells(rows: pd.DataFrame) -> list[tuple[str, str]]:
    """(aug with variant / dataset / backbone / pretraining data, formatted value) per group of our rows."""
    out = []
    for key, part in _groups(rows, OURS_WHERE).items():
        out.append((" / ".join(k or "-" for k in key), _ours_text(part)[1]))
    return out


def _published_table(spec: PaperSpec, ours: pd.DataFrame) -> pd.DataFrame:
    lines = []
    for _, row in select(published(spec), spec.keep).iterrows():
        base = {c: row[c] for c in spec.columns}
        base["paper"] = row["published"]
        target = spec.match(row) if spec.match else "no mapping defined"
        if isinstance(target, str):
            lines.append({**base, "ours: rows": "", OURS_DATA: "", "ours": f"no counterpart: {target}"})
            continue
        found = _ours_cells(select(ours, target))
        for data, text in found or [("", NOT_MEASURED)]:
            lines.append({**base, "ours: rows": describe(target), OURS_DATA: data, "ours": text})
    return pd.DataFrame(lines, columns=[*spec.columns, *TABLE_COLUMNS])


def _ours_table(spec: PaperSpec, ours: pd.DataFrame) -> pd.DataFrame:
    """Our rows of the paper's kind by ``ours_by`` (with ``variant`` after ``aug`` where any row has
    one), and by backbone / pretraining data where those vary."""
    rows = select(ours, spec.ours_rows)
    by = list(spec.ours_by)
    if "aug" in by and "variant" not in by and len(rows) and (rows["variant"] != "").any():
        by.insert(by.index("aug") + 1, "variant")
    by += [c for c in ("backbone", "pretrain_data")
           if c not in by and len(rows) and rows[c].nunique(dropna=True) > 1]
    columns = [*by, "paper", "ours"]
    if rows.empty:
        return pd.DataFrame(columns=columns)
    lines = [{**{c: "" if pd.isna(k) else str(k) for c, k in zip(by, key if isinstance(key, tuple) else (key,))},
              "paper": NO_TABLE, "ours": _ours_text(part)[1]}
             for key, part in rows.groupby(by, dropna=False, sort=True)]
    return pd.DataFrame(lines, columns=columns)


def _paper_shows(spec: PaperSpec, trend: Trend, pub: pd.DataFrame) -> str:
    if not spec.tables:
        return f"claimed ({NO_TABLE})"
    if not trend.paper:
        return "claimed (not in the stored table)"
    answer, detail = verdict(trend.paper, pub, ours=False)
    if answer == NOT_MEASURED:
        return "claimed (not in the stored table)"
    return f"{answer} ({detail})"


def trends_table(spec: PaperSpec, ours: pd.DataFrame) -> pd.DataFrame:
    """One line per claim: what the published table shows, and what our rows show (yes / no /
    not measured) with the comparisons made."""
    pub = published(spec)
    lines = []
    for trend in spec.trends:
        answer, detail = verdict(trend.ours, ours, ours=True)
        if answer == NOT_MEASURED:
            detail = trend.note or "no comparison possible: the store lacks the rows of one side or both"
        lines.append(dict(zip(TREND_COLUMNS, (trend.claim, _paper_shows(spec, trend, pub), answer, detail))))
    return pd.DataFrame(lines, columns=list(TREND_COLUMNS))


# ------------------------------------------------------------------------------------- pooling

GROUP = ("method", "aug", "backbone", "pretrain_data")


class PoolingRefused(ValueError):
    """Runs one claim would pool differ in a setting the paper's plan does not vary (one line)."""


@dataclass(frozen=True)
class Mixed:
    """Runs of one ``GROUP`` whose resolved ``path`` differs: value text -> their run ids."""

    group: tuple[str, ...]
    path: str
    runs: Mapping[str, tuple[str, ...]]

    def text(self, most: int = 3) -> str:
        """``simclr / sgd / resnet18 / shapes64 differ in aug_cfg.distinct_pairs (false: run-a, run-b;
        true: run-c, ... 2 more)``: at most ``most`` run ids per value."""
        def ids_text(ids: tuple[str, ...]) -> str:
            return ", ".join(ids[:most]) + (f", ... {len(ids) - most} more" if len(ids) > most else "")
        at = "; ".join(f"{v}: {ids_text(ids)}" for v, ids in sorted(self.runs.items()))
        return f"{' / '.join(self.group)} differ in {self.path} ({at})"


def _check_filters(spec: PaperSpec) -> list[Filter]:
    """Every filter a claim of ``spec`` selects our rows with."""
    out: list[Filter] = []
    for trend in spec.trends:
        for check in trend.ours:
            if isinstance(check, Pair):
                out += [check.a, check.b]
            else:
                out += [check.rows, *((check.sizes,) if getattr(check, "sizes", None) is not None else ())]
    return out


def _is_planned(path: str, planned: frozenset[str]) -> bool:
    return any(path == p or path.startswith(p + ".") for p in planned)


def mixed_settings(frame: pd.DataFrame, spec: PaperSpec) -> list[Mixed]:
    """The settings other than the seed (and those ``spec.planned``) in which runs that a claim of
    ``spec`` selects differ inside one (method, aug, backbone, pretrain_data) group: these runs are
    not replicates of one arm. Runs without a stored config have no settings and are not checked
    (the numbers flag them: ``[mixes K runs per seed]``)."""
    ours = prepare(frame)
    if ours.empty or "settings" not in ours.columns:
        return []
    filters = _check_filters(spec)
    if not filters:
        return []
    runs = pd.concat([select(ours, f) for f in filters]).drop_duplicates("run_id")
    out = []
    for key, part in runs.groupby(list(GROUP), sort=True):
        settings = {rid: parse_settings(text) for rid, text in zip(part["run_id"], part["settings"])}
        for path in sorted({p for s in settings.values() for p in s}):
            if _is_planned(path, spec.planned):
                continue
            at: dict[str, list[str]] = {}
            for rid, s in sorted(settings.items()):
                if s:
                    at.setdefault(s.get(path, "(not recorded)"), []).append(rid)
            if len(at) > 1:
                out.append(Mixed(tuple(map(str, key)), path, {v: tuple(ids) for v, ids in at.items()}))
    return out


def refuse_mixed(frame: pd.DataFrame, spec: PaperSpec) -> None:
    """Raise ``PoolingRefused`` (one line) where :func:`mixed_settings` finds any."""
    mixed = mixed_settings(frame, spec)
    if mixed:
        more = f" (and {len(mixed) - 1} more setting(s) or group(s))" if len(mixed) > 1 else ""
        raise PoolingRefused(f"{spec.name}: refusing to pool runs that differ in a setting other than the seed: "
                             f"{mixed[0].text()}{more}; rerun them with one config, or compare each setting "
                             "apart (--group-apart)")


def compare(frame: pd.DataFrame, spec: PaperSpec, apart: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(numbers, trends) of the paper ``spec`` (``reports.papers.get_paper(name)``) against our rows
    ``frame`` (``data.load``'s frame). Runs one claim would pool that differ in a setting the plan
    does not vary raise ``PoolingRefused``; with ``apart`` each setting is a variant of its own.

    numbers: with a published table, one line per published row kept (its identifying columns,
    ``paper`` as printed, and ours: the rows it maps to, our data, ``mean ± std (n=K)`` or "not
    measured" / "no counterpart: why"); without, our rows of the paper's kind grouped by
    ``ours_by`` beside "no published table stored". trends: ``trends_table``. Every cell is text."""
    if not apart:
        refuse_mixed(frame, spec)
    ours = prepare(frame)
    numbers = _published_table(spec, ours) if spec.tables else _ours_table(spec, ours)
    return numbers, trends_table(spec, ours)


def report(frame: pd.DataFrame, spec: PaperSpec, apart: bool = False) -> str:
    """The comparison with the paper ``spec`` as markdown: a heading, the numbers, the trends
    (``apart``: as in :func:`compare`)."""
    numbers, trends = compare(frame, spec, apart)
    source = ", ".join(f"`{t}`" for t in spec.tables) if spec.tables else NO_TABLE
    parts = [f"# {spec.name}: {spec.title}", "", f"Published: {source}.", "", "## Numbers", "",
             render(numbers, "md") if len(numbers) else "(no matching rows in the results store)\n",
             "## Trends", "", render(trends, "md")]
    return "\n".join(parts)


__all__ = [
    "Check",
    "Decreasing",
    "Filter",
    "LINEAR",
    "Mixed",
    "NOT_MEASURED",
    "OBJECT_CENTRIC",
    "Outcome",
    "PER_METHOD",
    "Pair",
    "PaperSpec",
    "PoolingRefused",
    "Positive",
    "SCENE_CENTRIC",
    "TABLES_DIR",
    "Trend",
    "VIDEO",
    "VariantIs",
    "WITHIN",
    "Where",
    "compare",
    "describe",
    "prepare",
    "mixed_settings",
    "published",
    "refuse_mixed",
    "report",
    "runs_per_seed",
    "select",
    "trends_table",
    "variant_is",
    "verdict",
]
