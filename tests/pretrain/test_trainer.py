"""The training engine end to end: every method trains and exports; resume, determinism, DDP, bad input."""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torchvision

from pretrain import config as C
from pretrain import trainer as T
from pretrain.augment import AUGMENTATIONS
from pretrain.checkpoint import CheckpointError, load_backbone, read_checkpoint
from pretrain.methods import METHODS

ROOT = Path(__file__).resolve().parents[2]
VIDEO_METHODS = {"temporal"}


def cfg_for(method: str, data: Path, out: Path, **overrides) -> C.Config:
    base = {"data.path": str(data), "train.out": str(out), "train.tensorboard": False}
    if method == "swav":
        base["aug"] = "default"
    return C.build_config(method, None, "test", {**base, **overrides})


def data_for(method: str, shapes_dir: Path, video_dir: Path) -> Path:
    return video_dir if method in VIDEO_METHODS else shapes_dir


def weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_trains_exports_and_loads_strictly(method: str, shapes_dir: Path, video_dir: Path,
                                                        tmp_path: Path) -> None:
    cfg = cfg_for(method, data_for(method, shapes_dir, video_dir), tmp_path)
    run_dir = T.train(cfg, progress=False)
    ckpt = run_dir / "ckpt.pt"
    model, meta = load_backbone(ckpt)
    assert meta.method == method and meta.train.complete
    assert meta.run_id == run_dir.name and run_dir.name.startswith(f"{method}-")
    assert meta.data.name and meta.data.image_size > 0 and len(meta.data.mean) == len(meta.data.std) == 3
    raw = torch.load(ckpt, weights_only=True)
    assert not any(k.startswith(("module.", "_orig_mod.", "encoder.")) for k in raw["state_dict"])
    assert all(v.is_contiguous() for v in raw["state_dict"].values())    # standard layout, however trained
    assert (run_dir / "config.json").exists() and (run_dir / "resume.pt").exists()
    if METHODS[method].trains:
        lines = (run_dir / "log.jsonl").read_text().splitlines()
        assert len(lines) == cfg.train.steps
        assert all("nan" not in line for line in lines)
    # export -> strict load -> identical features
    run = T.build_run(cfg)
    state = torch.load(run_dir / "resume.pt", weights_only=True)
    run.method.load_state_dict(state["method"])
    # the run trains in NHWC (train.channels_last); the loaded backbone is NCHW: compare like for like
    exported = run.method.backbone_for_export().eval().to(memory_format=torch.contiguous_format)
    x = torch.rand(4, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(exported(x), model(x))


@pytest.mark.parametrize("method", list(METHODS))
def test_export_branch_setting(method: str, shapes_dir: Path, video_dir: Path, tmp_path: Path) -> None:
    """train.export=momentum writes the EMA teacher's backbone (methods with one) and says so in
    the checkpoint; methods without a teacher refuse it before training."""
    cfg = cfg_for(method, data_for(method, shapes_dir, video_dir), tmp_path, **{"train.export": "momentum",
                                                                                "train.steps": 2})
    if METHODS[method].momentum_attr is None:
        with pytest.raises(ValueError, match="has no momentum \\(EMA\\) encoder"):
            T.build_run(cfg)
        return
    run_dir = T.train(cfg, progress=False)
    model, meta = load_backbone(run_dir / "ckpt.pt")
    assert meta.exported == "momentum"
    run = T.build_run(cfg)
    run.method.load_state_dict(torch.load(run_dir / "resume.pt", weights_only=True)["method"])
    run.method.to(memory_format=torch.contiguous_format)               # trained NHWC, loaded NCHW
    teacher = getattr(run.method, METHODS[method].momentum_attr).eval()
    x = torch.rand(4, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(teacher(x), model(x))
        assert not torch.equal(run.method.backbone.eval()(x), model(x))


@pytest.mark.parametrize("method", ["simclr", "byol", "mocov2", "swav", "slotcon", "pirl"])
def test_parameters_change(method: str, shapes_dir: Path, tmp_path: Path) -> None:
    cfg = cfg_for(method, shapes_dir, tmp_path)
    before = weights(T.build_run(cfg).method.backbone)
    model, _ = load_backbone(T.train(cfg, progress=False) / "ckpt.pt")
    after = model.state_dict()
    changed = [k for k in before if k.endswith("weight") and not torch.equal(before[k], after[k])]
    assert len(changed) > 3


def test_resnet_export_loads_into_torchvision(shapes_dir: Path, tmp_path: Path) -> None:
    cfg = cfg_for("random", shapes_dir, tmp_path, **{"backbone.name": "resnet18"})
    raw = torch.load(T.train(cfg, progress=False) / "ckpt.pt", weights_only=True)
    tv = torchvision.models.resnet18()
    missing, unexpected = tv.load_state_dict(raw["state_dict"], strict=False)
    assert sorted(missing) == ["fc.bias", "fc.weight"] and unexpected == []


def test_same_seed_same_weights_and_resume_equals_uninterrupted(shapes_dir: Path, tmp_path: Path) -> None:
    over = {"train.steps": 6, "train.ckpt_every": 3}
    a = T.train(cfg_for("mocov2", shapes_dir, tmp_path / "a", **over), progress=False)
    b = T.train(cfg_for("mocov2", shapes_dir, tmp_path / "b", **over), progress=False)
    wa, wb = (torch.load(p / "resume.pt", weights_only=True)["method"] for p in (a, b))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)

    class Killed(Exception):
        pass

    def kill(step: int) -> None:
        if step == 4:
            raise Killed

    cfg = cfg_for("mocov2", shapes_dir, tmp_path / "c", **over)
    with pytest.raises(Killed):
        T.train(cfg, progress=False, after_step=kill)
    assert torch.load(tmp_path / "c" / a.name / "resume.pt", weights_only=True)["step"] == 3
    with pytest.raises(T.RunExists, match="pass --resume"):
        T.train(cfg, progress=False)
    c = T.train(cfg, resume=True, progress=False)
    wc = torch.load(c / "resume.pt", weights_only=True)["method"]
    assert all(torch.equal(wa[k], wc[k]) for k in wa)            # queue, EMA teacher, BN stats too
    rows = {d: [json.loads(r) for r in (d / "log.jsonl").read_text().splitlines()] for d in (a, c)}
    assert [r["step"] for r in rows[c]] == [r["step"] for r in rows[a]] == list(range(1, 7))  # no row twice
    assert [r["loss"] for r in rows[c]] == [r["loss"] for r in rows[a]]
    T.train(cfg, overwrite=True, progress=False)
    assert [json.loads(r)["step"] for r in (c / "log.jsonl").read_text().splitlines()] == list(range(1, 7))


def test_resume_with_another_config_is_refused(shapes_dir: Path, tmp_path: Path) -> None:
    cfg = cfg_for("simclr", shapes_dir, tmp_path)
    run_dir = T.train(cfg, progress=False)
    other = cfg_for("simclr", shapes_dir, tmp_path, **{"optim.lr": 0.5})
    other_dir = run_dir.parent / C.run_id(other, shapes_dir.name)
    os.rename(run_dir, other_dir)                                   # a folder holding another config's run
    with pytest.raises(T.RunExists, match="different config.*optim.lr"):
        T.train(other, resume=True, progress=False)


def test_nan_loss_stops_with_message_and_keeps_checkpoint(shapes_dir: Path, tmp_path: Path, monkeypatch) -> None:
    cfg = cfg_for("simclr", shapes_dir, tmp_path, **{"train.steps": 4, "train.ckpt_every": 2})
    original = METHODS["simclr"].loss
    calls = {"n": 0}

    def flaky(self, views):
        calls["n"] += 1
        loss, logs = original(self, views)
        return (loss * float("nan") if calls["n"] == 3 else loss), logs

    monkeypatch.setattr(METHODS["simclr"], "loss", flaky)
    with pytest.raises(T.TrainingDiverged, match="diverged at step 2: loss = nan.*last good checkpoint"):
        T.train(cfg, progress=False)
    _, meta = load_backbone(tmp_path / C.run_id(cfg, shapes_dir.name) / "ckpt.pt")
    assert meta.train.steps == 2 and not meta.train.complete


def test_complete_run_is_a_no_op(shapes_dir: Path, tmp_path: Path) -> None:
    cfg = cfg_for("simclr", shapes_dir, tmp_path)
    run_dir = T.train(cfg, progress=False)
    mtime = (run_dir / "ckpt.pt").stat().st_mtime_ns
    T.train(cfg, progress=False)
    assert (run_dir / "ckpt.pt").stat().st_mtime_ns == mtime


def _as_if_resolved_earlier(ckpt: Path, section: str, key: str, value: object) -> None:
    """Rewrite ``ckpt``'s recorded resolved setting, as a version with another default wrote it."""
    raw = torch.load(ckpt, map_location="cpu", weights_only=True)
    raw["config"][section][key] = value
    T.save_atomic(raw, ckpt)


def test_a_run_made_with_other_resolved_settings_is_retrained_under_resume(shapes_dir: Path, tmp_path: Path,
                                                                          caplog) -> None:
    """A complete run whose checkpoint recorded another resolved setting than this version gives
    the same given config (a default changed): refused without --resume, naming the setting;
    retrained from step 0 under --resume (what a plan rerun passes), saying which and why."""
    cfg = cfg_for("simclr", shapes_dir, tmp_path)
    run_dir = T.train(cfg, progress=False)
    _as_if_resolved_earlier(run_dir / "ckpt.pt", "method_cfg", "temperature", 0.1)
    with pytest.raises(T.RunExists, match=r"resolved other settings \(method_cfg.temperature \(0.1 vs 0.5\)\).*--resume"):
        T.train(cfg, progress=False)
    with caplog.at_level("WARNING", logger="pretrain"):
        T.train(cfg, resume=True, progress=False)
    assert "retrained from step 0" in caplog.text and "method_cfg.temperature (0.1 vs 0.5)" in caplog.text
    assert read_checkpoint(run_dir / "ckpt.pt")[1].config["method_cfg"]["temperature"] == 0.5
    assert T.stale_settings(T.build_run(cfg), run_dir / "ckpt.pt") == []


# --------------------------------------------------------------------------- checkpoints
def test_truncated_and_foreign_checkpoints_fail_loudly(shapes_dir: Path, tmp_path: Path) -> None:
    ckpt = T.train(cfg_for("random", shapes_dir, tmp_path), progress=False) / "ckpt.pt"
    cut = tmp_path / "cut.pt"
    cut.write_bytes(ckpt.read_bytes()[:2000])
    with pytest.raises(CheckpointError, match="not a readable sslbench checkpoint"):
        load_backbone(cut)
    foreign = tmp_path / "foreign.pt"
    torch.save({"model": torchvision.models.resnet18().state_dict()}, foreign)
    with pytest.raises(CheckpointError, match="not an sslbench checkpoint"):
        load_backbone(foreign)
    bad = torch.load(ckpt, weights_only=True)
    bad["state_dict"].pop(next(iter(bad["state_dict"])))
    torch.save(bad, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="do not fit backbone"):
        load_backbone(tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_backbone(tmp_path / "none.pt")
    assert read_checkpoint(ckpt)[1].backbone.name == "tiny"


# --------------------------------------------------------------------------- CLI and bad input
def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pretrain", *args, "--quiet"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env=env)


def test_cli_list_names_every_registry() -> None:
    r = cli("--list")
    assert r.returncode == 0
    for name in [*METHODS, *AUGMENTATIONS, "resnet18", "resnet50", "resnet9", "tiny"]:
        assert name in r.stdout


@pytest.mark.parametrize("args, message", [
    (["--method", "nope"], "unknown method 'nope'; valid methods: simclr"),
    (["--method", "simclr", "--aug", "nope"], "valid"),
    (["--method", "simclr", "--backbone.name=nope"], "unknown backbone 'nope'; valid backbones: resnet18"),
    (["--method", "simclr", "--optim.lrr=1"], "unknown setting 'optim.lrr'"),
    (["--method", "simclr", "--method_cfg.temp=1"], "unknown method_cfg key(s) temp"),
    (["--method", "simclr", "--data", "/nonexistent/x"], "no such dataset"),
    (["--method", "simclr", "--backbone.name=resnet18", "--data", "SMALL"], "needs at least 32 px"),
])
def test_cli_bad_input(args: list[str], message: str, shapes_dir: Path, tiny_images_dir: Path,
                       tmp_path: Path) -> None:
    base = ["--preset", "test", "--data", str(shapes_dir), f"--train.out={tmp_path}"]
    r = cli(*base, *[str(tiny_images_dir) if a == "SMALL" else a for a in args])
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and message in lines[0], r.stderr
    assert not any(tmp_path.iterdir())


def test_cli_malformed_dataset(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "meta.json").write_text("{not json")
    r = cli("--method", "simclr", "--preset", "test", "--data", str(bad), f"--train.out={tmp_path / 'runs'}")
    assert r.returncode == 2 and "meta.json" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_cli_trains(shapes_dir: Path, tmp_path: Path) -> None:
    r = cli("--method", "byol", "--preset", "test", "--data", str(shapes_dir), f"--train.out={tmp_path}")
    assert r.returncode == 0, r.stderr
    assert Path(r.stdout.strip()).name == "ckpt.pt" and Path(r.stdout.strip()).exists()


def test_ddp_two_gloo_processes_match_one_process(shapes_dir: Path, tmp_path: Path) -> None:
    """Same global batch in 1 and 2 processes: the loss trajectories have the same shape."""
    common = ["--method", "simclr", "--preset", "test", "--data", str(shapes_dir), "--train.steps=8",
              "--data.batch_size=32", "--train.tensorboard=false", "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    one = subprocess.run([sys.executable, "-m", "pretrain", *common, f"--train.out={tmp_path / 'one'}"],
                         cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert one.returncode == 0, one.stderr
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone",
                          "-m", "pretrain", *common, f"--train.out={tmp_path / 'two'}"],
                         cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert two.returncode == 0, two.stderr[-2000:]
    import json

    def losses(root: Path) -> list[float]:
        (log,) = root.glob("*/log.jsonl")
        return [json.loads(line)["loss"] for line in log.read_text().splitlines()]

    l1, l2 = losses(tmp_path / "one"), losses(tmp_path / "two")
    assert len(l1) == len(l2) == 8
    # same data and augmentations per sample; only BN statistics (per process) differ
    assert abs(l1[0] - l2[0]) < 0.15 * abs(l1[0])
    assert all(abs(a - b) < 0.2 * abs(a) for a, b in zip(l1, l2))
    _, meta = load_backbone(next((tmp_path / "two").glob("*/ckpt.pt")))
    assert meta.train.world_size == 2


@pytest.mark.parametrize("preset", list(C.PRESETS))
@pytest.mark.parametrize("method", list(METHODS))
def test_every_preset_builds_a_valid_config(preset: str, method: str) -> None:
    cfg = C.build_config(method, None, preset, {})
    assert cfg.aug in AUGMENTATIONS and cfg.optim.name in ("sgd", "adamw", "lars")
    T.method_config(METHODS[method], cfg.method_cfg)


@pytest.mark.parametrize("method", ["simclr", "byol", "swav"])
def test_full_preset_runs_the_same_code_path(method: str, shapes_dir: Path, tmp_path: Path) -> None:
    """The papers' GPU recipes (LARS, their augmentations) on tiny data and a tiny backbone."""
    cfg = C.build_config(method, None, "full", {
        "backbone.name": "tiny", "data.path": str(shapes_dir), "data.image_size": 0, "data.split": "train",
        "data.batch_size": 16, "data.stats_images": 64, "train.steps": 2, "train.out": str(tmp_path),
        "train.tensorboard": False})
    _, meta = load_backbone(T.train(cfg, progress=False) / "ckpt.pt")
    assert meta.config["optim"]["name"] == "lars" and meta.train.complete


def test_temporal_on_tracked_regions(video_dir: Path, tmp_path: Path) -> None:
    cfg = cfg_for("temporal", video_dir, tmp_path, **{"method_cfg.mode": "regions"})
    run = T.build_run(cfg)
    assert run.data.regions and run.data.pairs
    raw = next(run.data.batches(0, 0, 0, 0, 1))
    assert raw.pair is not None and raw.boxes is not None and raw.pair_boxes is not None
    assert (raw.boxes[:, 2] > raw.boxes[:, 0]).all() and (raw.pair_boxes[:, 3] > raw.pair_boxes[:, 1]).all()
    _, meta = load_backbone(T.train(cfg, progress=False) / "ckpt.pt")
    assert meta.config["method_cfg"]["mode"] == "regions"            # resolved: every field, defaults included
    assert set(meta.config["method_cfg"]) == {f.name for f in dataclasses.fields(METHODS["temporal"].Config)}


def test_temporal_needs_a_video_dataset(shapes_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="expected video frames \\(TrackingNet, GOT-10k\\) or a dataset made with "
                                         "`--preset video`"):
        T.build_run(cfg_for("temporal", shapes_dir, tmp_path))


@pytest.mark.parametrize("args, expected", [
    (["--train.amp", "off"], {"train.amp": "off"}),
    (["--train.amp=bf16", "--optim.lr=0.1"], {"train.amp": "bf16", "optim.lr": 0.1}),
    (["--optim.weight_decay=1e-5", "--optim.lr=2E-3", "--data.path=1e5x"],
     {"optim.weight_decay": 1e-5, "optim.lr": 2e-3, "data.path": "1e5x"}),
    (["--train.tensorboard=false", "--aug_cfg.crop_scale=[0.5, 1.0]"],
     {"train.tensorboard": False, "aug_cfg.crop_scale": [0.5, 1.0]}),
    (["--method_cfg.proj_bn", "true", "--train.device=no"], {"method_cfg.proj_bn": True, "train.device": "no"}),
])
def test_cli_values_parse_as_yaml_but_words_stay_strings(args: list[str], expected: dict) -> None:
    assert C.parse_overrides(args) == expected


@pytest.mark.parametrize("args", [["optim.lr=0.1"], ["--optim.lr"], ["--"]])
def test_cli_malformed_settings_are_refused(args: list[str]) -> None:
    with pytest.raises(ValueError, match="--"):
        C.parse_overrides(args)


def test_the_gpu_data_path_trains_the_same_weights(shapes_dir: Path, tmp_path: Path) -> None:
    """Decoding in worker processes and augmenting on the training device (the full preset's data
    path) change where the work runs, not what is trained: same run id, same weights."""
    over = {"train.steps": 3}
    a = T.train(cfg_for("simclr", shapes_dir, tmp_path / "a", **over), progress=False)
    b = T.train(cfg_for("simclr", shapes_dir, tmp_path / "b", **over, **{
        "data.workers": 2, "data.pin_memory": True, "train.aug_device": "train"}), progress=False)
    assert a.name == b.name
    wa, wb = (torch.load(p / "ckpt.pt", weights_only=True)["state_dict"] for p in (a, b))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    with pytest.raises(ValueError, match="--train.aug_device 'gpu': valid: cpu, train"):
        T.build_run(cfg_for("simclr", shapes_dir, tmp_path / "c", **{"train.aug_device": "gpu"}))
