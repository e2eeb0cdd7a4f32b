"""The suite end to end: checkpoint -> cached features -> tasks -> results store (evaluate.suite)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from evaluate import suite as S
from evaluate.utility import calc_utility, utility_points
from measure import features as F
from measure.results import ResultsStore
from measure.tasks import default_tasks


FAST = ["--sizes", "20,50", "--finetune-max-steps", "4", "--dense-steps", "4"]


def run(args: list[str]) -> int:
    return S.main(args)


def test_suite_fills_the_store_and_reuses_features_and_results(tiny_ckpt: Path, eval_data: Path, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture) -> None:
    store, cache = tmp_path / "r.sqlite", tmp_path / "cache"
    args = [str(tiny_ckpt), "--data", str(eval_data), "--store", str(store), "--cache", str(cache), "--seeds", "0,1",
            *FAST]
    before = F.STATS["extractions"]
    assert run(args) == 0
    assert F.STATS["extractions"] - before == 4                        # (pool, dense) x (train, test), once each
    frame = ResultsStore(store).to_frame()
    assert set(frame["task"]) == set(default_tasks())                 # the framework transfers only on request
    assert {"top1", "best_c", "top1@k20", "nmi", "ari", "acc", "top1@n20", "scratch_top1@n50", "pose_top1",
            "azimuth_mae", "abs_rel", "rmse", "miou", "aacc"} <= set(frame["metric"])
    assert set(frame.loc[frame["task"] == "clustering", "seed"]) == {0, 1}
    mine = ~frame["run_id"].str.startswith("scratch-")                   # the shared from-scratch curve
    assert frame["value"].notna().all() and (frame.loc[mine, "ckpt_sha256"] == F.file_sha256(tiny_ckpt)).all()
    assert "top1" in capsys.readouterr().out
    n = len(frame)
    assert run(args) == 0                                                # stored: nothing recomputed
    assert F.STATS["extractions"] - before == 4 and len(ResultsStore(store).to_frame()) == n
    assert run(args + ["--force", "--tasks", "linear,depth"]) == 0      # features from the cache
    assert F.STATS["extractions"] - before == 4 and len(ResultsStore(store).to_frame()) == n
    (emb,) = ResultsStore(store).arrays(task="clustering")
    assert emb["arrays"]["xy"].shape == (len(emb["arrays"]["labels"]), 2)


def test_suite_runs_folder_and_bad_input(tiny_ckpt: Path, eval_data: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture) -> None:
    store = tmp_path / "r.sqlite"
    base = ["--data", str(eval_data), "--store", str(store), "--cache", str(tmp_path / "c")]
    assert run([str(tiny_ckpt.parent.parent), "--tasks", "knn", *base]) == 0
    assert run([str(tiny_ckpt), "--tasks", "nope", *base]) == 2
    assert "unknown task(s) nope; valid: linear" in capsys.readouterr().err
    assert run([str(tiny_ckpt), "--sizes", "100,lots", *base]) == 2
    assert "--sizes '100,lots': expected comma-separated integers" in capsys.readouterr().err
    assert run([str(tiny_ckpt), "--scratch-factors", "2,x", *base]) == 2
    assert "--scratch-factors '2,x': expected comma-separated numbers" in capsys.readouterr().err
    assert run([str(tiny_ckpt), "--scratch-factors", "0.5", *base]) == 2
    assert "scratch_factors [0.5]: each must be > 1" in capsys.readouterr().err
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    assert run([str(junk), *base]) == 2
    assert "junk.pt: not a readable torch file" in capsys.readouterr().err
    assert run([str(tmp_path / "missing.pt"), *base]) == 2
    assert run([str(tiny_ckpt), "--data", str(tmp_path / "nodata"), "--store", str(store)]) == 2
    assert set(ResultsStore(store).to_frame()["task"]) == {"knn"}      # the store is intact


def _curve(rows, prefix: str) -> dict[int, list[float]]:
    rows = rows[rows["metric"].str.startswith(prefix + "@n")].sort_values(["metric", "seed"])
    out: dict[int, list[float]] = {}
    for metric, value in zip(rows["metric"], rows["value"]):
        out.setdefault(int(metric.split("@n")[1]), []).append(float(value))
    return dict(sorted(out.items()))


def stored_utility_is_measured(rows) -> bool:
    """The stored ``utility@nN`` are one row per finetuning seed of the pretrained curve at exactly
    the label counts where the stored curves make it measurable (never calc_utility's -1 / -1/n - 1
    sentinels), with calc_utility's mean and population std wherever it lists that count; the
    other label counts have their bound (``utility_atleast`` / ``utility_atmost``) or nothing."""
    scratch, pretrained = _curve(rows, "scratch_top1"), _curve(rows, "top1")
    counts, mean, std = calc_utility(scratch, pretrained)
    listed = {n: (m, s) for n, m, s in zip(counts, mean, std) if n in pretrained}
    points = {p.n: p for p in utility_points(scratch, pretrained)}
    seeds = sorted(rows.loc[rows["metric"].str.startswith("top1@n"), "seed"].unique())
    for base in ("utility", "utility_atleast", "utility_atmost"):
        got = {n: part.sort_values("seed") for n, part in _curve_rows(rows, base).items()}
        want = {n: p for n, p in points.items() if p.metric == f"{base}@n{n}"}
        if got.keys() != want.keys():
            return False
        for n, part in got.items():
            values = part["value"].to_numpy()
            if sorted(part["seed"]) != seeds or not np.allclose(values, want[n].runs, rtol=0, atol=1e-9):
                return False
            if base == "utility" and n in listed and (abs(values.mean() - listed[n][0]) > 1e-9
                                                      or abs(np.std(values) - listed[n][1]) > 1e-9):
                return False
    return True


def _curve_rows(rows, base: str) -> dict:
    util = rows[rows["metric"].str.fullmatch(rf"{base}@n\d+")]
    return {int(k.split("@n")[1]): part for k, part in util.groupby("metric")}


def test_suite_compares_checkpoints(eval_data: Path, make_ckpt, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Three checkpoints: one from-scratch curve shared by all, utility per checkpoint, rank agreement."""
    runs = tmp_path / "runs"
    ckpts = [make_ckpt(m, eval_data, runs) for m in ("simclr", "byol", "random")]
    store = tmp_path / "r.sqlite"
    args = [str(runs), "--store", str(store), "--cache", str(tmp_path / "c"), "--tasks", "linear,finetune", *FAST]
    assert run(args) == 0
    out = capsys.readouterr().out
    assert "Spearman rho" in out or "agreement over 3 checkpoints: undefined" in out
    frame = ResultsStore(store).to_frame()
    fin = frame[frame["task"] == "finetune"]
    scratch_ids = set(fin.loc[fin["run_id"].str.startswith("scratch-"), "ckpt_sha256"])
    assert len(scratch_ids) == 1                                        # trained once, reused
    scratch_counts = {int(m.split("@n")[1]) for m in fin.loc[fin["ckpt_sha256"].isin(scratch_ids), "metric"]}
    assert {20, 50} < scratch_counts and max(scratch_counts) > 50        # 2x beyond (capped at the 99 train images)
    ecfg = json.loads(fin["eval_config"].iloc[0])["finetune"]           # the steps it ran, the opt-in ceiling
    assert ecfg["max_steps"] == 4 and ecfg["steps"] == {"pretrained": {"20": 4, "50": 4},
                                                        "scratch": {"20": 4, "50": 4, "100": 4}}
    scratch = fin[fin["ckpt_sha256"].isin(scratch_ids)].sort_values(["metric", "seed"])["value"].to_numpy()
    for ckpt in ckpts:
        mine = fin[fin["ckpt_sha256"] == F.file_sha256(ckpt)]
        assert sorted(mine.loc[mine["metric"].str.startswith("scratch_"), "value"]) == sorted(scratch)
        assert stored_utility_is_measured(mine)
        assert mine["metric"].str.fullmatch(r"[a-z_0-9]+(@n\d+)?").all()        # label counts are integers
    rho = frame.loc[frame["task"] == "agreement", "value"].tolist()
    assert ("Spearman rho" in out) == (len(rho) == 1) and all(-1.0 <= r <= 1.0 for r in rho)


def test_suite_skips_tasks_without_labels(tiny_ckpt: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
                                          caplog: pytest.LogCaptureFixture) -> None:
    """An ImageFolder has classes but no masks, depth or pose: those tasks are skipped with the
    reason and the others still run."""
    import numpy as np
    from PIL import Image
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for c in ("a", "b", "c"):
            (tmp_path / "imgs" / split / c).mkdir(parents=True)
            for i in range(8):
                im = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
                Image.fromarray(im).save(tmp_path / "imgs" / split / c / f"{i}.png")
    store = tmp_path / "r.sqlite"
    args = [str(tiny_ckpt), "--data", str(tmp_path / "imgs"), "--store", str(store), "--cache", str(tmp_path / "c"),
            "--sizes", "6", *FAST[2:]]
    assert run(args) == 0, capsys.readouterr().err
    assert set(ResultsStore(store).to_frame()["task"]) == {"linear", "lowshot", "knn", "clustering", "finetune"}
    for task in ("floor", "pose", "depth", "segmentation", "unsup_seg"):
        assert f"skipping {task}: {tmp_path / 'imgs'}: not a synthetic dataset" in caplog.text


def test_pose_is_skipped_where_the_viewpoint_does_not_vary(tiny_ckpt: Path, tmp_path: Path,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    """tcvl-0000 (Newell & Deng's fixed-viewpoint variant) has one pose bin: pose is skipped with
    the reason, not a failure of the whole run."""
    from synthetic.generate import generate

    data = generate("tcvl-0000", 60, 0, tmp_path / "tcvl-0000", size=32, workers=1, progress=False)
    store = tmp_path / "r.sqlite"
    args = [str(tiny_ckpt), "--data", str(data), "--store", str(store), "--cache", str(tmp_path / "c"),
            "--tasks", "linear,pose"]
    assert run(args) == 0
    assert set(ResultsStore(store).to_frame()["task"]) == {"linear"}
    assert f"skipping pose: {data}: one pose bin only" in caplog.text


def test_the_probe_reads_images_at_the_checkpoints_training_view_size(eval_data: Path, make_ckpt, tmp_path: Path,
                                                                      tmp_path_factory: pytest.TempPathFactory) -> None:
    """A checkpoint trained on 16-px views of 32-px synthetic images is probed at 16 px, and its
    stored eval config says so; ``--image-size`` overrides it."""
    ckpt = make_ckpt("simclr", eval_data, tmp_path_factory.mktemp("runs16"), **{"aug_cfg.out_size": 16})
    store = tmp_path / "r.sqlite"
    base = [str(ckpt), "--data", str(eval_data), "--store", str(store), "--cache", str(tmp_path / "c"),
            "--tasks", "linear"]
    assert run(base) == 0
    (config,) = set(ResultsStore(store).to_frame()["eval_config"])
    assert json.loads(config)["image_size"] == 16
    assert run([*base, "--image-size", "32"]) == 0
    sizes = {json.loads(c)["image_size"] for c in ResultsStore(store).to_frame()["eval_config"]}
    assert sizes == {16, 32}


@pytest.mark.parametrize("size, match", [("0", "--image-size 0: expected a positive number of pixels"),
                                         ("2", "image size 2: backbone 'tiny' needs at least 4 px")])
def test_an_image_size_the_backbone_cannot_take_is_one_line(size: str, match: str, tiny_ckpt: Path, eval_data: Path,
                                                            tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    args = [str(tiny_ckpt), "--data", str(eval_data), "--store", str(tmp_path / "r.sqlite"), "--cache",
            str(tmp_path / "c"), "--tasks", "linear", "--image-size", size]
    assert run(args) == 2
    err = capsys.readouterr().err.strip()
    assert match in err and len(err.splitlines()) == 1, err


def test_an_incomplete_checkpoint_is_refused_unless_allowed(tiny_ckpt: Path, eval_data: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture) -> None:
    import torch

    ckpt = torch.load(tiny_ckpt, map_location="cpu", weights_only=True)
    ckpt["train"]["complete"] = False
    partial = tmp_path / "partial" / "ckpt.pt"
    partial.parent.mkdir()
    torch.save(ckpt, partial)
    base = ["--data", str(eval_data), "--store", str(tmp_path / "r.sqlite"), "--cache", str(tmp_path / "c"),
            "--tasks", "knn"]
    assert run([str(tiny_ckpt), str(partial), *base]) == 2             # checked before any work
    err = capsys.readouterr().err.strip()
    assert "training did not complete (step 4 of 4); pass --allow-incomplete" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "r.sqlite").exists() or ResultsStore(tmp_path / "r.sqlite").to_frame().empty
    assert run([str(partial), *base, "--allow-incomplete"]) == 0


def test_the_suite_reports_progress_and_a_summary_that_fits_100_columns(tiny_ckpt: Path, eval_data: Path,
                                                                         tmp_path: Path, capsys: pytest.CaptureFixture,
                                                                         caplog: pytest.LogCaptureFixture) -> None:
    import logging

    caplog.set_level(logging.INFO)
    args = [str(tiny_ckpt), "--data", str(eval_data), "--store", str(tmp_path / "r.sqlite"), "--cache",
            str(tmp_path / "c"), "--tasks", "linear,knn,lowshot", "--lowshot-shots", "1,2", "--lowshot-draws", "2"]
    assert run(args) == 0
    assert "[1/3]" in caplog.text and "[3/3]" in caplog.text and "ETA" in caplog.text
    assert "linear shapes top1 = " in caplog.text                      # each value as it lands
    out = capsys.readouterr().out.splitlines()
    assert max(map(len, out)) <= 100 and out[0].startswith("simclr-")
    assert [line.split()[0] for line in out[1:] if not line.startswith("   ")] == ["linear", "lowshot", "knn"]
    assert "top1@1shot" in "\n".join(out) and "(x2)" in "\n".join(out)


def test_help_names_the_default_and_the_opt_in_tasks(capsys: pytest.CaptureFixture) -> None:
    from measure.tasks import all_tasks, default_tasks

    with pytest.raises(SystemExit):
        run(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert f"default: {', '.join(default_tasks())};" in text
    assert all(name in text.split("on request only:")[1] for name in all_tasks() if name not in default_tasks())
