"""reports.papers.utility (Newell & Deng, CVPR 2020, arXiv 2003.14323): the plan measures the
scratch curve beyond the largest finetuned size with no step ceiling, and the claims judge measured
utilities only (bounds are listed by name, never judged)."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from evaluate.finetune import FinetuneConfig, pretrained_label_counts, scratch_label_counts
from measure.results import Result, ResultsStore
from reports import compare as C
from reports import data as D
from reports.papers import utility as U
from reports.reproduce import SCALES, plan
from synthetic.presets import get_preset


def _value(args: tuple[str, ...], flag: str) -> str:
    return args[args.index(flag) + 1]


def _finetune_config(args: tuple[str, ...]) -> FinetuneConfig:
    return FinetuneConfig(sizes=tuple(int(v) for v in _value(args, "--sizes").split(",")),
                          scratch_factors=tuple(float(v) for v in _value(args, "--scratch-factors").split(",")))


@pytest.mark.parametrize("scale", SCALES)
def test_the_plan_measures_scratch_beyond_the_largest_finetuned_size(scale: str, tmp_path: Path) -> None:
    """Every suite step finetunes without a step ceiling and trains scratch up to 4x the largest
    finetuned size, inside the variant's training split (so the cap at the split never cuts it)."""
    _, steps = plan("utility", U.plan, scale, tmp_path)
    data = {str(s.args[s.args.index("--out") + 1]): s for s in steps if s.module == "synthetic.generate"}
    suites = [s for s in steps if s.module == "evaluate.suite"]
    assert len(suites) == len(data) == (len(U.CPU_VARIANTS) if scale == "cpu" else 12)
    for s in suites:
        assert "--finetune-max-steps" not in s.args
        gen = data[_value(s.args, "--data")]
        train = int(int(_value(gen.args, "--n")) * get_preset(_value(gen.args, "--preset")).splits[0])
        cfg = _finetune_config(s.args)
        top = pretrained_label_counts(cfg, train)[-1]
        assert scratch_label_counts(cfg, train)[-2:] == [2 * top, 4 * top] and 4 * top < train, (scale, train)


def test_the_cpu_plan_replicates_pretraining_and_leaves_out_the_saturated_variant(tmp_path: Path) -> None:
    """cpu: three pretraining seeds of every (method, variant), one evaluation draw each; no
    variant with every factor fixed (its scratch curve starts at its ceiling, no utility to measure)."""
    _, steps = plan("utility", U.plan, "cpu", tmp_path)
    groups = {_value(s.args, "--preset") for s in steps if s.module == "synthetic.generate"}
    assert groups == {f"tcvl-{v}-heldout" for v in U.CPU_VARIANTS} and "tcvl-0000-heldout" not in groups
    assert all(_value(s.args, "--seeds") == U.CPU_EVAL_SEEDS for s in steps if s.module == "evaluate.suite")
    seeds = [a for s in steps if s.module == "pretrain" for a in s.args if a.startswith("--train.seed=")]
    assert sorted(set(seeds)) == ["--train.seed=0", "--train.seed=1", "--train.seed=2"]
    assert len(seeds) == 3 * sum(len(U.CPU_METHODS[v]) for v in U.CPU_VARIANTS)
    runs = {(_value(s.args, "--data").split("/")[-1], _value(s.args, "--method"))
            for s in steps if s.module == "pretrain"}
    assert runs == {(f"tcvl-{v}-heldout", m) for v in U.CPU_VARIANTS for m in U.CPU_METHODS[v]}


def _rows(metric: str, values: tuple[float, float, float]) -> list[Result]:
    """One row per pretraining seed of a SimCLR checkpoint on tcvl-0100-heldout."""
    out = []
    for seed, v in enumerate(values):
        rid = f"simclr-default-resnet18-tcvl-0100-heldout-s{seed}-0a1b2c3d"
        out.append(Result(rid, hashlib.sha256(rid.encode()).hexdigest(), "finetune", "tcvl-0100-heldout", "test",
                          metric, v, 0, {}))
    return out


def test_claims_read_measured_utilities_and_the_table_names_the_bounds(tmp_path: Path) -> None:
    """Measured utility falls from 50 to 200 labels; at 1000 labels the scratch curve only bounds it
    (>= 3). The trend is judged on the measured points (yes); read as a number the bound would
    have made it rise. The comparison's table lists the bound under its own name."""
    rows = [r for n in (50, 200, 1000) for r in _rows(f"top1@n{n}", (60.0, 61.0, 62.0))]
    rows += _rows("utility@n50", (2.0, 2.2, 2.4)) + _rows("utility@n200", (1.0, 1.1, 1.2))
    rows += _rows("utility_atleast@n1000", (3.0, 3.0, 3.0))
    store = ResultsStore(tmp_path / "results.sqlite")
    store.add(rows)
    numbers, trends = C.compare(D.load(store.path), U.SPEC)
    answers = dict(zip(trends["claim"], trends["ours shows"]))
    assert answers == {"utility decreases as labelled examples grow": C.YES,
                       "pretraining saves labels at the smallest labelled-set size (utility > 0)": C.YES}, trends
    decreasing = trends.loc[trends["claim"].str.startswith("utility decreases"), "ours: detail"].iloc[0]
    assert "1000" not in decreasing
    listed = numbers[["label_count", "metric_base"]].astype(str).agg(" ".join, axis=1).tolist()
    assert sorted(listed) == ["1000 utility_atleast", "200 utility", "50 utility"]
