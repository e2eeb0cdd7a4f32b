"""The training loop: one code path for 1 CPU process, and for DDP under ``torchrun``.

Every source of randomness is a function of (seed, step, rank): the data order of an epoch,
the augmentation generator of a step, and the global torch seed re-set before each step. So a
run killed after a checkpoint and resumed from ``resume.pt`` ends with the same weights as an
uninterrupted one, and the same seed on the CPU gives identical weights.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.distributed as dist
from tqdm import tqdm

from fsio import write_text_atomic

from . import config as C
from .augment import Policy, build_policy
from .backbones import build_backbone, check_image_size
from .checkpoint import DataSpec, TrainSpec, export_checkpoint, read_meta, save_atomic
from .data import PretrainData, open_pretrain_data
from .distributed import Dist, init_distributed
from .methods import METHODS, get_method
from .methods.base import Method, MethodContext
from .optim import build_optimizer, lr_factor
from .resolve import resolve_config

log = logging.getLogger("pretrain")


class TrainingDiverged(RuntimeError):
    """The loss became NaN / inf; training stopped and the last good checkpoint was kept."""


class RunExists(ValueError):
    """The run folder holds a partial run that was not asked to resume."""


def pick_device(name: str, local_rank: int) -> str:
    if name == "auto":
        return f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--train.device {name}: no CUDA device here")
    return name


def cpu_has_bf16() -> bool:
    """True if this CPU runs bf16 natively (AVX512-BF16 / AMX), where bf16 autocast is faster."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


AUG_DEVICES = ("cpu", "train")


def check_aug_device(name: str) -> None:
    """ValueError unless ``--train.aug_device`` is one of ``AUG_DEVICES``."""
    if name not in AUG_DEVICES:
        raise ValueError(f"--train.aug_device {name!r}: valid: {', '.join(AUG_DEVICES)} (train: the training device)")


def autocast_dtype(amp: str, device: str) -> torch.dtype | None:
    """Mixed precision where the device supports it: bf16 (else fp16) on CUDA; bf16 on CPUs with
    native bf16 instructions; off elsewhere. ``off`` / ``bf16`` / ``fp16`` force a choice."""
    if amp not in ("auto", "off", "bf16", "fp16"):
        raise ValueError(f"--train.amp {amp!r}: valid: auto, off, bf16, fp16")
    if amp == "off":
        return None
    if amp == "auto":
        if device.startswith("cuda"):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if cpu_has_bf16() else None
    return torch.bfloat16 if amp == "bf16" else torch.float16


def _step_seed(seed: int, step: int, rank: int) -> int:
    return (seed * 1_000_003 + step * 1_009 + rank) % (2**62)


def method_config(cls: type, overrides: dict[str, Any]) -> Any:
    names = [f.name for f in dataclasses.fields(cls.Config)]
    bad = [k for k in overrides if k not in names]
    if bad:
        raise ValueError(f"unknown method_cfg key(s) {', '.join(bad)} for this method; valid: {', '.join(names)}")
    return cls.Config(**overrides)


@dataclass
class Run:
    """Everything built for a training run (before the loop starts)."""

    cfg: C.Config
    run_id: str
    dir: Path
    data: PretrainData
    method: Method
    policy: Policy
    total_steps: int
    steps_per_epoch: int
    mean: tuple
    std: tuple
    device: str
    dist: Dist


def build_run(cfg: C.Config, dist_info: Dist | None = None) -> Run:
    """Check the config and build data, backbone, method and policy (every bad input fails here)."""
    cls = get_method(cfg.method)
    policy = build_policy(cfg.aug, **cfg.aug_cfg)
    if policy.produces.negatives and not cls.uses_negatives:
        users = ", ".join(sorted(n for n, m in METHODS.items() if m.uses_negatives))
        raise ValueError(f"augmentation {cfg.aug!r} makes hard negatives, which method {cfg.method!r} does not use; "
                         f"methods with hard negatives: {users}")
    backbone = build_backbone(cfg.backbone.name, **cfg.backbone.kwargs)
    mcfg = method_config(cls, cfg.method_cfg)
    data = open_pretrain_data(cfg.data, cls.data_needs(mcfg))
    check_image_size(backbone, cfg.backbone.name, data.image_size)
    view_size = policy.produces.out_size or data.image_size
    check_image_size(backbone, cfg.backbone.name, view_size)
    spe = data.steps_per_epoch()
    total = cfg.train.steps if cfg.train.steps > 0 else max(1, int(round(cfg.train.epochs * spe)))
    d = dist_info or Dist()
    device = pick_device(cfg.train.device, d.local_rank)
    check_aug_device(cfg.train.aug_device)
    mean, std = data.stats()
    policy.bind(cfg.data.path, torch.tensor(mean), torch.tensor(std))
    rid = C.run_id(cfg, data.name)
    torch.manual_seed(cfg.train.seed)
    backbone = build_backbone(cfg.backbone.name, **cfg.backbone.kwargs)  # seeded initialisation
    ctx = MethodContext(mean=mean, std=std, num_classes=data.num_classes, dataset_size=len(data),
                        image_size=view_size, total_steps=total)
    method = cls(backbone, mcfg, ctx).to(device)
    if cfg.train.channels_last:
        method = method.to(memory_format=torch.channels_last)
    method.export_branch(cfg.train.export)                               # an unavailable branch fails now
    return Run(cfg=cfg, run_id=rid, dir=Path(cfg.train.out) / rid, data=data, method=method, policy=policy,
               total_steps=total, steps_per_epoch=spe, mean=mean, std=std, device=device, dist=d)


def _export(run: Run, step: int, complete: bool) -> None:
    backbone, branch = run.method.export_branch(run.cfg.train.export)
    export_checkpoint(
        run.dir / "ckpt.pt", backbone, name=run.cfg.backbone.name, kwargs=run.cfg.backbone.kwargs,
        exported=branch, method=run.cfg.method, aug=run.cfg.aug, run_id=run.run_id, config=resolved_config(run),
        data=DataSpec(name=run.data.name, path=str(Path(run.cfg.data.path).resolve()), image_size=run.data.image_size,
                      mean=tuple(run.mean), std=tuple(run.std), split=run.cfg.data.split),
        train=TrainSpec(epochs=step / run.steps_per_epoch, steps=step, total_steps=run.total_steps,
                        seed=run.cfg.train.seed, world_size=run.dist.world, complete=complete),
        input_transform=run.policy.produces.input_transform)      # what every evaluation must apply too


def resolved_config(run: Run) -> dict[str, Any]:
    """The run's config with the method's and the policy's settings fully resolved (every field of
    their config dataclasses, defaults included): what ``ckpt.pt`` and the results store record."""
    return resolve_config(run.cfg.to_dict())


def _save(run: Run, step: int, opt: torch.optim.Optimizer, scaler: Any, complete: bool) -> None:
    """Atomically write resume.pt then ckpt.pt (rank 0 only)."""
    if not run.dist.main:
        return
    save_atomic({"config": run.cfg.to_dict(), "run_id": run.run_id, "step": step, "method": run.method.state_dict(),
                 "optimizer": opt.state_dict(), "scaler": scaler.state_dict() if scaler else None,
                 "complete": complete}, run.dir / "resume.pt")
    _export(run, step, complete)


def stale_settings(run: Run, ckpt: Path) -> list[str]:
    """Where the run's checkpoint ``ckpt`` recorded other resolved method / policy settings than
    this version resolves the same given config to (a default changed since it was trained):
    ``aug_cfg.distinct_pairs (False vs True)``, recorded first; [] when they agree or there is no
    checkpoint. The recorded sections are read as ``pretrain.resolve`` reads them (``LEGACY``)."""
    if not ckpt.exists():
        return []
    recorded, today = resolve_config(read_meta(ckpt).config), resolved_config(run)
    return [change for section in ("method_cfg", "aug_cfg")
            for change in C.diff(recorded.get(section) or {}, today.get(section) or {}, f"{section}.")]


def _prepare_dir(run: Run, resume: bool, overwrite: bool) -> dict | None:
    """Decide what to do with an existing run folder; returns the resume state or None. A run whose
    checkpoint recorded other resolved settings than today's (``stale_settings``) is retrained
    from step 0 under ``--resume`` (a plan rerun: logged with the settings), refused without it."""
    ckpt, res = run.dir / "ckpt.pt", run.dir / "resume.pt"
    stale = [] if overwrite or not res.exists() else stale_settings(run, ckpt)
    if stale and not resume:
        raise RunExists(f"{ckpt}: made by an earlier version that resolved other settings ({'; '.join(stale[:4])}); "
                        "pass --resume to retrain it from step 0, or --overwrite")
    if stale:
        log.warning("%s: retrained from step 0, its checkpoint was made with other resolved settings than this "
                    "version's (%s)", run.dir, "; ".join(stale))
        overwrite = True
    if overwrite or not res.exists():
        if resume and not overwrite and run.dir.exists():     # a fresh run under --resume is not news
            log.warning("--resume: no resume.pt in %s; starting from step 0", run.dir)
        if overwrite:       # without --overwrite an existing ckpt.pt stays until the new run replaces it
            for f in (ckpt, res):
                f.unlink(missing_ok=True)
        _trim_log(run.dir / "log.jsonl", 0)
        shutil.rmtree(run.dir / "tb", ignore_errors=True)
        return None
    state = torch.load(res, map_location="cpu", weights_only=True)
    changed = C.diff(C.semantic_dict(C.config_from_dict(state["config"])), C.semantic_dict(run.cfg))
    if changed:
        raise RunExists(f"{res}: made with a different config ({'; '.join(changed[:4])}); "
                        "use another --train.out or --overwrite")
    if state.get("complete"):
        return state
    if not resume:
        raise RunExists(f"{run.dir}: a partial run stopped at step {state['step']}; pass --resume to continue "
                        "it or --overwrite to start again")
    _trim_log(run.dir / "log.jsonl", int(state["step"]))
    return state


def _trim_log(path: Path, last_step: int) -> None:
    """Keep only the log rows of steps <= ``last_step`` (rows past a resumed checkpoint are redone)."""
    if not path.exists():
        return
    rows = [r for r in path.read_text().splitlines() if r.strip() and json.loads(r).get("step", 0) <= last_step]
    write_text_atomic(path, "".join(r + "\n" for r in rows))


def train(cfg: C.Config, *, resume: bool = False, overwrite: bool = False, progress: bool = True,
          after_step: Callable[[int], None] | None = None) -> Path:
    """Train (or resume, or find complete) the run of ``cfg``; returns the run folder."""
    device = cfg.train.device
    d = init_distributed(pick_device(device, int(os.environ.get("LOCAL_RANK", "0"))))
    run = build_run(cfg, d)
    state = _prepare_dir(run, resume, overwrite) if d.main else None
    if d.world > 1:
        box = [None if state is None else state["step"]]
        dist.broadcast_object_list(box)
        if d.main is False and box[0] is not None:
            state = torch.load(run.dir / "resume.pt", map_location="cpu", weights_only=True)
    if state is not None and state.get("complete"):
        log.info("%s is complete (%d steps); nothing to do", run.dir, state["step"])
        return run.dir
    if d.main:
        run.dir.mkdir(parents=True, exist_ok=True)
        C_write = {"config": run.cfg.to_dict(), "run_id": run.run_id, "total_steps": run.total_steps,
                   "steps_per_epoch": run.steps_per_epoch}
        write_text_atomic(run.dir / "config.json", json.dumps(C_write, indent=1, sort_keys=True))
    if not run.method.trains:
        _save(run, 0, torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.0), None, complete=True)
        log.info("%s: %s exported without training", run.dir, cfg.method)
        return run.dir
    _loop(run, state, progress, after_step)
    return run.dir


def _loop(run: Run, state: dict | None, progress: bool, after_step: Callable[[int], None] | None) -> None:
    cfg, m, d = run.cfg, run.method, run.dist
    model: torch.nn.Module = m
    if d.world > 1:
        model = torch.nn.parallel.DistributedDataParallel(m, device_ids=None if run.device == "cpu" else [run.device])
    opt = build_optimizer(m, cfg.optim, cfg.data.batch_size)
    base_lrs = [g["lr"] for g in opt.param_groups]
    amp = autocast_dtype(cfg.train.amp, run.device)
    scaler = torch.amp.GradScaler("cuda") if amp == torch.float16 else None
    start = 0
    if state is not None:
        m.load_state_dict(state["method"], strict=True)
        opt.load_state_dict(state["optimizer"])
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        start = int(state["step"])
        log.info("resuming %s at step %d / %d", run.dir, start, run.total_steps)
    writer = _tensorboard(run) if d.main and cfg.train.tensorboard else None
    bar = tqdm(total=run.total_steps, initial=start, desc=run.run_id, disable=not (progress and d.main))
    step, batches = start, None
    m.train()
    try:
        while step < run.total_steps:
            epoch, b = divmod(step, run.steps_per_epoch)
            if batches is None or b == 0:
                batches = run.data.batches(cfg.train.seed, epoch, b, d.rank, d.world)
            raw = next(batches)
            torch.manual_seed(_step_seed(cfg.train.seed, step, d.rank))
            gen = torch.Generator().manual_seed(_step_seed(cfg.train.seed, step, d.rank))
            if cfg.train.aug_device == "train":
                raw = raw.to(run.device)        # the batched augmentations run where the model trains
            views = run.policy(raw, gen)
            views = _to_device(views, run.device, cfg.train.channels_last)
            for g, base in zip(opt.param_groups, base_lrs):
                g["lr"] = base * lr_factor(step, run.total_steps, cfg.optim.warmup_frac, cfg.optim.schedule)
            with torch.autocast(run.device.split(":")[0], dtype=amp, enabled=amp is not None):
                loss, logs = model(views)
            _check_finite(loss, step, run)
            opt.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.unscale_(opt)
            else:
                loss.backward()
            if cfg.optim.clip_grad > 0:
                torch.nn.utils.clip_grad_norm_(m.parameters(), cfg.optim.clip_grad)
            (scaler.step(opt), scaler.update()) if scaler is not None else opt.step()
            step += 1
            m.after_step(step / run.total_steps)
            _log(run, writer, bar, step, loss, logs, opt)
            if step % cfg.train.ckpt_every == 0 or step == run.total_steps:
                _save(run, step, opt, scaler, complete=step == run.total_steps)
                if d.world > 1:
                    dist.barrier()
            if after_step is not None:
                after_step(step)
    finally:
        bar.close()
        if writer is not None:
            writer.close()


def _to_device(views: Any, device: str, channels_last: bool = False) -> Any:
    """Move every tensor of ``views`` to ``device``; the (B, C, h, w) views to NHWC when ``channels_last``."""
    if channels_last:
        views.views = [v.contiguous(memory_format=torch.channels_last) if v.dim() == 4 else v for v in views.views]
    if device == "cpu":
        return views
    mv = lambda t: None if t is None else t.to(device, non_blocking=True)  # noqa: E731
    views.views = [mv(v) for v in views.views]
    views.masks = None if views.masks is None else [mv(v) for v in views.masks]
    views.negatives, views.targets, views.indices = mv(views.negatives), mv(views.targets), mv(views.indices)
    views.boxes = None if views.boxes is None else [mv(b) for b in views.boxes]
    views.flipped = None if views.flipped is None else [mv(f) for f in views.flipped]
    return views


def _check_finite(loss: torch.Tensor, step: int, run: Run) -> None:
    bad = torch.tensor(0.0 if torch.isfinite(loss.detach()).all() else 1.0)
    if run.dist.world > 1:
        dist.all_reduce(bad)
    if bad.item() > 0:
        last = run.dir / "ckpt.pt"
        kept = f"the last good checkpoint is {last}" if last.exists() else "no checkpoint was written yet"
        raise TrainingDiverged(f"training diverged at step {step}: loss = {loss.item()} ({run.cfg.method}, "
                               f"lr {run.cfg.optim.lr}); stopped, {kept}")


def _log(run: Run, writer: Any, bar: tqdm, step: int, loss: torch.Tensor, logs: dict, opt: Any) -> None:
    if step % run.cfg.train.log_every and step != run.total_steps:
        bar.update(1)
        return
    value = loss.item()
    bar.set_postfix(loss=f"{value:.4f}")
    bar.update(1)
    if writer is not None:
        writer.add_scalar("train/loss", value, step)
        writer.add_scalar("train/lr", opt.param_groups[0]["lr"], step)
        for k, v in logs.items():
            if isinstance(v, (int, float)) and math.isfinite(v):
                writer.add_scalar(f"train/{k}", v, step)
    if run.dist.main:
        with open(run.dir / "log.jsonl", "a") as f:
            f.write(json.dumps({"step": step, "time": round(time.time(), 3), "loss": value,
                                "lr": opt.param_groups[0]["lr"], **{
                k: v for k, v in logs.items() if isinstance(v, (int, float))}}) + "\n")


def _tensorboard(run: Run) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is installed by `make setup`; without it, only log.jsonl is written
        log.warning("tensorboard is not installed; scalars go to log.jsonl only")
        return None
    return SummaryWriter(str(run.dir / "tb"))


__all__ = ["METHODS", "TrainingDiverged", "RunExists", "build_run", "stale_settings", "train"]
