"""reports.plots: every figure from a small fake results store (2 methods x 3 pretraining seeds)."""
from __future__ import annotations

import hashlib
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
from matplotlib.patches import Rectangle
from scipy.stats import spearmanr

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from measure.results import Result, ResultsStore
from evaluate.utility import utility_rows
from reports import plots as P

REPO = Path(__file__).resolve().parents[2]
COUNTS = (10, 100, 1000)
FT_SEEDS = (0, 1)
PROBES = ("probe-occlusion", "probe-viewpoint", "probe-illumination")
DATASET = "shapes64"
# scratch mean accuracy per count: best 0.61 at 1000 labels
SCRATCH = {10: [0.20, 0.22], 100: [0.40, 0.42], 1000: [0.60, 0.62]}
# pretrained per method (+ 0.01 * pretraining seed): simclr passes the best scratch accuracy at
# 1000 labels (its utility ends at utility_limit_at); byol stays measurable throughout
BASE = {"simclr": {10: 0.35, 100: 0.55, 1000: 0.70}, "byol": {10: 0.25, 100: 0.45, 1000: 0.56},
        "rotation": {10: 0.10, 100: 0.45, 1000: 0.50}}      # rotation: below the first scratch point at 10
LINEAR = {"simclr": 0.50, "byol": 0.40, "rotation": 0.30}
INVARIANCE = {"simclr": {"probe-occlusion": 0.30, "probe-viewpoint": 0.50, "probe-illumination": 0.70},
              "byol": {"probe-occlusion": 0.35, "probe-viewpoint": 0.45, "probe-illumination": 0.60},
              "rotation": {"probe-occlusion": 0.20, "probe-viewpoint": 0.40, "probe-illumination": 0.50}}


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def run_id(method: str, seed: int, aug: str = "mild") -> str:
    return f"{method}-{aug}-resnet18-{DATASET}-s{seed}-{sha(method + aug + str(seed))[:8]}"


def fake_results(methods=("simclr", "byol"), seeds=(0, 1, 2)) -> list[Result]:
    """Rows as the suite and invariance.run write them, for ``methods`` x pretraining ``seeds``."""
    ecfg = {"task": "finetune"}
    out = [Result("scratch-resnet18", "scratch-" + sha("scratch")[:16], "finetune", DATASET, "test",
                  f"top1@n{n}", v, s, ecfg) for n, accs in SCRATCH.items() for s, v in zip(FT_SEEDS, accs)]
    for method in methods:
        for seed in seeds:
            rid, ck = run_id(method, seed), sha(run_id(method, seed))

            def add(task, dataset, metric, value, s=None, cfg=None, rid=rid, ck=ck):
                out.append(Result(rid, ck, task, dataset, "test", metric, float(value), s, cfg or {"task": task}))
            pre = {n: [BASE[method][n] + 0.01 * seed + 0.02 * fs for fs in FT_SEEDS] for n in COUNTS}
            for n in COUNTS:
                for fs in FT_SEEDS:
                    add("finetune", DATASET, f"top1@n{n}", pre[n][fs], fs, ecfg)
                    add("finetune", DATASET, f"scratch_top1@n{n}", SCRATCH[n][fs], fs, ecfg)
            for metric, value, fs in utility_rows(SCRATCH, pre, FT_SEEDS):    # as evaluate.suite stores it
                add("finetune", DATASET, metric, value, fs, ecfg)
            add("linear", DATASET, "top1", LINEAR[method] + 0.03 * seed)
            for probe in PROBES:
                for metric, off in (("top10", -0.1), ("top25", 0.0)):
                    add("invariance", probe, metric, INVARIANCE[method][probe] + off + 0.02 * seed)
    return out


def fake_store(path: Path, methods=("simclr", "byol"), seeds=(0, 1, 2)) -> ResultsStore:
    """A results store with :func:`fake_results` and a 2-D clustering embedding per checkpoint."""
    store = ResultsStore(path)
    store.add(fake_results(methods, seeds))
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 15)
    for method in methods:
        for seed in seeds:
            xy = rng.normal(size=(60, 2)) + labels[:, None] * 3.0
            store.put_arrays(run_id(method, seed), sha(run_id(method, seed)), "clustering", DATASET,
                             "embedding_tsne", xy=xy.astype(np.float32), labels=labels)
    return store


def fake_saliency(n: int = 3) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    image = rng.uniform(size=(n, 16, 16, 3))
    hc, rc = rng.uniform(size=(n, 16, 16)), rng.uniform(size=(n, 16, 16))
    mask = hc > 0.5
    return {"image": image, "HC map": hc, "RC map": rc, "mask": mask, "masked": image * mask[..., None]}


def all_plots(store: ResultsStore, out: Path) -> dict[str, list[Path]]:
    """Every plot kind of ``store``, written under ``out``: {kind: paths}."""
    frame = store.to_frame()
    row = store.arrays(task="clustering", name="embedding_tsne")
    return {"label_efficiency": P.label_efficiency(frame, out / "label_efficiency"),
            "utility": P.utility(frame, out / "utility"),
            "invariance_bars": P.invariance_bars(frame, out / "invariance"),
            "linear_vs_finetune": P.linear_vs_finetune(frame, out / "linear_vs_finetune"),
            "heatmap": P.heatmap(frame, out / "heatmap", "linear", "top1"),
            "embedding": P.embedding(row[0] if row else None, out / "embedding"),
            "saliency_examples": P.saliency_examples(fake_saliency(), out / "saliency")}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> ResultsStore:
    return fake_store(tmp_path_factory.mktemp("store") / "results.sqlite")


@pytest.fixture(scope="module")
def frame(store: ResultsStore) -> pd.DataFrame:
    return store.to_frame()


@pytest.fixture(autouse=True)
def _close_figures():
    plt.close("all")
    yield
    plt.close("all")


def _axes(fig) -> list:
    return [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]


# ------------------------------------------------------------------------------------- files

KINDS = ("label_efficiency", "utility", "invariance_bars", "linear_vs_finetune", "heatmap", "embedding",
         "saliency_examples")


def test_every_plot_writes_png_and_svg(store: ResultsStore, tmp_path: Path) -> None:
    written = all_plots(store, tmp_path)
    assert set(written) == set(KINDS)
    for kind, paths in written.items():
        assert [p.suffix for p in paths] == [".png", ".svg"], (kind, paths)
        assert paths[0].with_suffix("") == paths[1].with_suffix("")
        png, svg = paths
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 2000, kind
        root = ET.fromstring(svg.read_bytes())
        assert root.tag.endswith("svg") and svg.stat().st_size > 2000, kind
    assert plt.get_fignums() == [], "a plot function left a figure open"
    # nothing but the 14 figures: no temporary files left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for ps in written.values() for p in ps)


def test_every_plot_returns_nothing_without_data(tmp_path: Path) -> None:
    empty = ResultsStore(tmp_path / "empty.sqlite").to_frame()
    unrelated = pd.DataFrame([{"run_id": run_id("simclr", 0), "ckpt_sha256": "x", "task": "knn",
                               "dataset": DATASET, "split": "test", "metric": "top1@k20", "value": 0.5, "seed": None}])
    out = tmp_path / "out"
    for frame in (empty, unrelated, pd.DataFrame(), None):
        assert P.label_efficiency(frame, out / "a") == []
        assert P.utility(frame, out / "b") == []
        assert P.invariance_bars(frame, out / "c") == []
        assert P.linear_vs_finetune(frame, out / "d") == []
        assert P.heatmap(frame, out / "e", "linear", "top1") == []
    assert P.embedding(None, out / "f") == [] and P.embedding({}, out / "f") == []
    assert P.embedding({"arrays": {"xy": np.zeros((0, 2)), "labels": np.zeros(0)}}, out / "f") == []
    assert P.saliency_examples({}, out / "g") == []
    assert P.saliency_examples({"image": np.zeros((0, 4, 4, 3))}, out / "g") == []
    assert not out.exists() and plt.get_fignums() == []


def test_save_is_atomic_and_replaces(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stem = tmp_path / "fig"
    (tmp_path / "fig.svg").write_text("old")
    fig = plt.figure()
    real = fig.savefig

    def fail_on_svg(fname, *args, format=None, **kwargs):
        if format == "svg":
            Path(fname).write_text("partial")
            raise OSError("disk full")
        return real(fname, *args, format=format, **kwargs)
    monkeypatch.setattr(fig, "savefig", fail_on_svg)
    with pytest.raises(OSError, match="disk full"):
        P.save_figure(fig, stem)
    assert (tmp_path / "fig.svg").read_text() == "old"          # the old file survives a failed write
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fig.png", "fig.svg"]   # no temporary left
    assert not plt.fignum_exists(fig.number)                       # closed even on failure
    assert P.save_figure(plt.figure(), tmp_path / "fig.svg") == [tmp_path / "fig.png", tmp_path / "fig.svg"]
    assert (tmp_path / "fig.svg").read_text() != "old"


def test_reports_do_not_import_torch() -> None:
    """The reports (every paper's module included) load neither torch nor any pretraining module
    but the torch-free run id."""
    code = ("import sys, reports.__main__, reports.plots, reports.html; "
            "bad = [m for m in sys.modules if m == 'torch' or m.startswith('torch.')"
            " or (m.startswith('pretrain.') and m != 'pretrain.runid')]; "
            "assert not bad, bad")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == 0, proc.stderr


# ------------------------------------------------------------------------------------ content

def test_run_parts_of_a_frame_without_them() -> None:
    """A bare store frame gets method / aug / pretrain_seed from its run ids (``RunId``): hyphenated
    augmentations and datasets included; the suite's ``scratch-<arch>`` is method ``scratch``."""
    ids = ["mocov2-mild-resnet18-shapes64-s3-e5130f24", "simclr-sal-mask-hn-resnet18-shapes64-clutter-s1-0a1b2c3d",
           "byol-default-tiny-my-data-s0-4a04cac9", "scratch-resnet18", "set-0123"]
    bare = pd.DataFrame({"run_id": ids, "task": "linear", "metric": "top1", "value": 1.0})
    tidy = P._tidy(bare).set_index("run_id")
    assert tidy.loc[ids[0], ["method", "aug", "pretrain_seed"]].tolist() == ["mocov2", "mild", 3]
    assert tidy.loc[ids[1], ["method", "aug", "pretrain_seed"]].tolist() == ["simclr", "sal-mask-hn", 1]
    assert tidy.loc[ids[2], "pretrain_seed"] == 0
    assert tidy.loc["scratch-resnet18", "method"] == "scratch" and tidy.loc["set-0123", "method"] == "set-0123"


def test_label_efficiency_lines_and_seed_band(frame: pd.DataFrame) -> None:
    fig = P.label_efficiency_figure(frame)
    (ax,) = _axes(fig)
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == {"simclr", "byol", "scratch"}
    assert ax.get_xscale() == "log" and ax.get_xlabel() and ax.get_ylabel() and ax.get_title()
    for method in ("simclr", "byol"):   # mean over 3 pretraining x 2 finetuning seeds
        want = [np.mean([BASE[method][n] + 0.01 * s + 0.02 * fs for s in range(3) for fs in FT_SEEDS]) for n in COUNTS]
        np.testing.assert_allclose(lines[method].get_xdata(), COUNTS)
        np.testing.assert_allclose(lines[method].get_ydata(), want)
    np.testing.assert_allclose(lines["scratch"].get_ydata(), [np.mean(SCRATCH[n]) for n in COUNTS])
    # the simclr band spans min..max over seeds at 10 labels
    colour = lines["simclr"].get_color()
    bands = [c for c in ax.collections if matplotlib.colors.same_color(c.get_facecolor()[0][:3], colour)]
    ys = np.concatenate([p.vertices[:, 1] for b in bands for p in b.get_paths()])
    assert np.isclose(ys.min(), BASE["simclr"][10]) and np.isclose(ys.max(), BASE["simclr"][1000] + 0.04)
    assert P.BAND in ax.get_title()
    plt.close(fig)


def test_utility_shades_unmeasurable_region(frame: pd.DataFrame, tmp_path: Path) -> None:
    fig = P.utility_figure(frame)
    (ax,) = _axes(fig)
    spans = {a.get_gid(): a for a in ax.patches if (a.get_gid() or "").startswith("unmeasurable")}
    assert set(spans) == {"unmeasurable-simclr", "unmeasurable-beyond-data"}   # byol is measurable throughout
    limit_at = frame.loc[(frame["metric"] == "utility_limit_at") & frame["run_id"].str.startswith("simclr"), "value"]
    assert len(limit_at) == 3 and 100 < limit_at.min() < 1000
    right = ax.get_xlim()[1]
    for gid, start in (("unmeasurable-simclr", limit_at.min()), ("unmeasurable-beyond-data", max(COUNTS))):
        span = spans[gid]
        assert isinstance(span, Rectangle)
        assert np.isclose(span.get_x(), start) and np.isclose(span.get_x() + span.get_width(), right), gid
        assert right > max(COUNTS)
    lines = {line.get_label(): line for line in ax.get_lines()}
    np.testing.assert_allclose(lines["simclr"].get_xdata(), [10, 100])   # stops before its limit
    np.testing.assert_allclose(lines["byol"].get_xdata(), COUNTS)
    assert any(np.allclose(line.get_ydata(), 0) and line.get_xdata()[0] == 0 for line in ax.get_lines())  # y = 0
    util = frame[frame["metric"] == "utility@n10"]
    byol_n10 = util[util["run_id"].str.startswith("byol")]["value"].mean()
    np.testing.assert_allclose(lines["byol"].get_ydata()[0], byol_n10)
    plt.close(fig)
    _, svg = P.utility(frame, tmp_path / "u")
    text = svg.read_text()
    assert 'id="unmeasurable-simclr"' in text and 'id="unmeasurable-beyond-data"' in text


def test_utility_marks_counts_outside_the_scratch_range(tmp_path: Path) -> None:
    """rotation's finetuned accuracy at 10 labels is below the first scratch point: no utility is
    stored there, and the plot puts a cross on the zero line instead of a point."""
    frame = fake_store(tmp_path / "r.sqlite", methods=("byol", "rotation")).to_frame()
    assert not ((frame["metric"] == "utility@n10") & frame["run_id"].str.startswith("rotation")).any()
    fig = P.utility_figure(frame)
    (ax,) = _axes(fig)
    marks = {c.get_gid(): c for c in ax.collections if (c.get_gid() or "").startswith("outside-scratch-range")}
    assert set(marks) == {"outside-scratch-range-rotation"}
    np.testing.assert_allclose(marks["outside-scratch-range-rotation"].get_offsets(), [[10, 0]])
    lines = {line.get_label(): line for line in ax.get_lines()}
    np.testing.assert_allclose(lines["rotation"].get_xdata(), [100, 1000])
    plt.close(fig)


def test_invariance_bars_heights_and_error_bars(frame: pd.DataFrame) -> None:
    fig = P.invariance_bars_figure(frame, metric="top25")
    (ax,) = _axes(fig)
    bars = [p for p in ax.patches if isinstance(p, Rectangle) and p.get_height() > 0]
    assert len(bars) == len(PROBES) * 2
    want = {INVARIANCE[m][p] + 0.02 for m in ("simclr", "byol") for p in PROBES}   # mean over seeds 0, 1, 2
    assert np.allclose(sorted(b.get_height() for b in bars), sorted(want))
    assert [t.get_text() for t in ax.get_xticklabels()] == sorted(p.removeprefix("probe-") for p in PROBES)
    caps = [c for c in ax.get_children() if isinstance(c, matplotlib.collections.LineCollection)]
    segs = np.concatenate([c.get_segments() for c in caps])
    assert np.allclose(sorted({round(abs(s[1][1] - s[0][1]) / 2, 6) for s in segs}), [0.02])   # std of 0, .02, .04
    plt.close(fig)
    assert P.invariance_bars_figure(frame, metric="nope") is None


def test_linear_vs_finetune_spearman(frame: pd.DataFrame) -> None:
    fig, (rho,) = P.linear_vs_finetune_figure(frame)
    (ax,) = _axes(fig)
    lin = [LINEAR[m] + 0.03 * s for m in ("simclr", "byol") for s in range(3)]
    fin = [BASE[m][1000] + 0.01 * s + 0.01 for m in ("simclr", "byol") for s in range(3)]
    assert np.isclose(rho, spearmanr(lin, fin).statistic)
    assert f"ρ = {rho:.3f}" in ax.get_title()
    assert len(ax.texts) == 6 and {t.get_text() for t in ax.texts} >= {"simclr-mild-s0", "byol-mild-s2"}
    assert "1000 labels" in ax.get_ylabel()
    plt.close(fig)
    fig, (rho10,) = P.linear_vs_finetune_figure(frame, n=10)
    assert "10 labels" in _axes(fig)[0].get_ylabel() and np.isfinite(rho10)
    plt.close(fig)


def test_heatmap_annotations_and_missing_cells(tmp_path: Path) -> None:
    rows = fake_results() + [Result(run_id("simclr", 0, "strong"), sha("strong"), "linear", DATASET, "test",
                                    "top1", 0.9, None, {})]
    frame = pd.DataFrame([r.__dict__ for r in rows])
    fig = P.heatmap_figure(frame, "linear", "top1")
    ax = _axes(fig)[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["mild", "strong"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["byol", "simclr"]
    texts = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in ax.texts}
    assert texts == {(0, 0): f"{LINEAR['byol'] + 0.03:.3g}", (0, 1): "–",
                     (1, 0): f"{LINEAR['simclr'] + 0.03:.3g}", (1, 1): "0.9"}
    plt.close(fig)


def test_given_method_columns_win(frame: pd.DataFrame) -> None:
    renamed = frame.assign(method=np.where(frame["run_id"].str.startswith("simclr"), "SimCLR", "BYOL"),
                           aug="mild", pretrain_seed=0)
    renamed.loc[renamed["run_id"].str.startswith("byol-mild-resnet18-shapes64-s2"), "method"] = None
    fig = P.invariance_bars_figure(renamed)   # a missing method is parsed from the run id
    assert sorted(t.get_text() for t in _axes(fig)[0].get_legend().get_texts()) == ["BYOL", "SimCLR", "byol"]
    plt.close(fig)


def test_embedding_and_saliency(store: ResultsStore, tmp_path: Path) -> None:
    row = store.arrays(task="clustering", name="embedding_tsne")[0]
    fig = P.embedding_figure(row)
    ax = fig.axes[0]
    assert len(ax.collections) == 4 and sum(len(c.get_offsets()) for c in ax.collections) == 60
    assert row["run_id"] in ax.get_title()
    plt.close(fig)
    fig = P.saliency_examples_figure(fake_saliency(3))
    assert len(fig.axes) == 3 * 5
    assert [fig.axes[j].get_title() for j in range(5)] == ["image", "HC map", "RC map", "mask", "masked"]
    plt.close(fig)
    chw = {"image": np.random.default_rng(0).normal(size=(2, 3, 8, 8)), "map": [np.ones((8, 8))] * 2}
    assert len(P.saliency_examples(chw, tmp_path / "chw")) == 2
    with pytest.raises(ValueError, match="different example counts"):
        P.saliency_examples({"a": np.zeros((2, 4, 4)), "b": np.zeros((3, 4, 4))}, tmp_path / "bad")
    assert not (tmp_path / "bad.png").exists()
    with pytest.raises(ValueError, match="cannot show"):
        P.saliency_examples({"a": np.zeros((2, 4, 4, 7))}, tmp_path / "bad")
    assert plt.get_fignums() == [] and not (tmp_path / "bad.png").exists()


def test_many_datasets_wrap_into_rows() -> None:
    """Ten datasets (the T/C/V/L variants) make three rows of at most four panels, not one strip."""
    frame = pd.DataFrame({"dataset": [f"tcvl-{i:04d}" for i in range(10)]})
    fig, panels = P._panels(frame)
    assert len(panels) == len(fig.axes) == 10
    rows = {round(ax.get_position().y0, 3) for ax, _, _ in panels}
    assert len(rows) == 3 and [d for _, d, _ in panels] == sorted(frame["dataset"])
    width, height = fig.get_size_inches()
    assert width < 4 * 5.2 + 1 and height > 2 * 3.8
    plt.close(fig)


@pytest.mark.parametrize("label, lines", [
    ("default", "default"),
    ("sal-mask branch=both, fill=mean", "sal-mask\nbranch=both\nfill=mean"),
    ("sgd algo=hc, out_size=32", "sgd\nalgo=hc\nout_size=32"),
])
def test_heatmap_ticks_put_each_variant_setting_on_its_own_line(label: str, lines: str) -> None:
    from reports.plots import _tick_lines
    assert _tick_lines(label) == lines
