"""Paper reproductions end to end: data -> pretraining -> evaluation -> invariance -> transfer -> report.

    python -m reports reproduce --paper utility --scale cpu [--out reproductions] [--dry-run]
    make reproduce PAPER=utility SCALE=cpu

A plan is a list of :class:`Step` command lines, run in order with this project's own CLIs
(``synthetic.generate``, ``pretrain``, ``evaluate.suite``, ``invariance``, ``evaluate.transfer``,
``reports build``), each idempotent: a dataset that is up to date, a run that is complete, an
evaluation already in the store are not redone, so an interrupted reproduction continues where it
stopped. Each paper's plan is the ``plan(lay, scale)`` function of its module in
``reports/papers/`` (registered in ``reports.papers.PLANS``), built from the shared step builders
here (``data_step``, ``pretrain_step``, ``suite_step``, ``transfer_steps``, ``report_steps``, ...);
``plan`` and ``run`` take it as an argument. Everything goes under ``<out>/<paper>-<scale>/``
(``data/``, ``runs/``, ``results.sqlite``, ``report/``); the ``full`` plans read the papers' data
sets under ``data/`` (ImageNet, COCO, ...) and use the GPU presets and the frameworks' multi-GPU
launchers. ``cpu`` plans are sized for 2 cores; their wall times are in docs/reports.md.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .cost import format_hours, plan_estimates
from .smoke import SMOKE_PROCS, smoke_steps
from .submit import submit_plan

SCALES = ("cpu", "full")



@dataclass(frozen=True)
class Step:
    """One command of a plan: ``python -m <module> <args>``, or under a launcher module
    (``launch``: ``python -m torch.distributed.run --nproc_per_node=8 -m <module> <args>``);
    ``what`` says why (logged)."""

    what: str
    module: str
    args: tuple[str, ...]
    launch: tuple[str, ...] = ()

    def command(self, python: str = sys.executable) -> list[str]:
        return [python, "-m", *self.launch, self.module, *self.args]


@dataclass(frozen=True)
class Layout:
    """Where a reproduction writes: its data, runs, store and report. ``transfer``: a cpu plan
    also runs its framework transfers (Detectron2 / mmseg on an extra standard-stem arm, seed 0;
    ``pretrain_steps``); off by default, since at ~20 minutes a checkpoint on 2 cores three seeds
    a side do not fit a cpu plan's 90 minutes, so their claims are judged at full scale. Full
    plans always transfer."""

    root: Path
    transfer: bool = False
    datasets: Path = Path("data")

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    @property
    def store(self) -> Path:
        return self.root / "results.sqlite"

    @property
    def report(self) -> Path:
        return self.root / "report"


# cpu scale: short runs of the cpu preset on small synthetic sets (2 cores); full: the papers' settings.
CPU_PRETRAIN = ("--preset", "cpu", "--quiet")
# cpu scale: images of a single-object classification set. Every cpu plan renders the held-out-instance
# presets (``synthetic.presets.heldout``: test meshes never seen in training, splits 0.7 / 0.1 / 0.2),
# so 12 500 images give >= 2500 test images (2544 at seed 0: 8673 train, 1283 val).
CPU_OBJECTS = 12500
# cpu scale: the framework transfers (Detectron2 / mmseg) take torchvision's ResNet only: the standard
# 7x7/2 stem with its max-pool and 64 channels in res2 (Detectron2's R18 needs both; the converters
# refuse a small stem or another width). The cpu preset's backbone may be a small-stem, narrower
# ResNet-18, so the runs of the ``transfer`` group reset the backbone's kwargs to torchvision's.
CPU_TRANSFER_BACKBONE = ("--backbone.kwargs={}",)
# SlotCon groups the pixels of the last stage: torchvision's stem leaves 1x1 on the cpu preset's
# 32-px views (SlotCon refuses it), 4x4 on the scenes' own 128 px.
CPU_TRANSFER_VIEWS = {"slotcon": 128}


def transfer_arm_args(method: str) -> tuple[str, ...]:
    """What a cpu run of the ``transfer`` group adds to the preset: torchvision's stem, and for a
    method grouping dense maps, views large enough for a 4x4 map at that stem."""
    views = CPU_TRANSFER_VIEWS.get(method)
    return (*CPU_TRANSFER_BACKBONE, *((f"--aug_cfg.out_size={views}",) if views else ()))
# a pretraining interrupted with the plan continues from its last checkpoint (a complete one is kept)
RESUME = ("--resume",)
CPU_EPOCHS = 10
# MoCo v2 on ~4000 training images (the 5000-image shapes64 set the cpu plans used before): at 10
# epochs (310 steps) it probed below the random backbone (39.0 vs 43.9), at 30 epochs 53.9; PIRL
# 41.5 at 10, 52.0 at 30 (RESULTS "Invariance and dataset bias at cpu scale"). The invariance plan
# trains all its runs this long; the masking plan its MoCo v2 runs (on ~8700 training images now,
# 30 epochs are about twice those steps).
MOCO_EPOCHS = 30
FULL_PRETRAIN = ("--preset", "full", "--quiet")
FULL_IMAGE_SIZE = 224                               # the full preset's ``data.image_size``
# full scale: ImageNet-layout datasets have train / val (no test split): every probe scores on val
IMAGENET_SPLITS = ("--test-split", "val")
COCO_TRAIN = "coco/annotations/instances_train2017.json"   # under the datasets root
VOC2012 = "VOCdevkit/VOC2012"                               # under the datasets root
GPUS = 8                                            # full scale: one node of 8 GPUs
DDP = ("torch.distributed.run", "--standalone", f"--nproc_per_node={GPUS}", "-m")   # = torchrun
ON_GPU = ("evaluate.suite", "invariance")           # the steps that take --device
Plan = Callable[[Layout, str], list[Step]]          # a paper's ``plan(lay, scale)``: its steps at that scale


# ------------------------------------------------------------------------ shared step builders

def data_step(lay: Layout, preset: str, n: int, *extra: str) -> tuple[Step, Path]:
    """Render ``n`` images of the synthetic ``preset`` into ``data/<preset>``; (the step, that folder)."""
    out = lay.data / preset
    return Step(f"dataset {preset}", "synthetic.generate", ("--preset", preset, "--n", str(n), "--seed", "0",
                                                             "--out", str(out), *extra)), out


def pretrain_step(lay: Layout, scale: str, method: str, aug: str | None, data: Path | str, *extra: str,
                  seed: int = 0, group: str = "", cpu_epochs: int = CPU_EPOCHS) -> Step:
    """One pretraining run into ``runs/<group>`` (a group = the checkpoints evaluated together);
    ``cpu_epochs``: its length at cpu scale. At cpu scale a run of the ``transfer`` group (handed
    to Detectron2 / mmseg by ``transfer_steps``) trains torchvision's standard ResNet stem at width
    64 (``CPU_TRANSFER_BACKBONE``), whatever the cpu preset's backbone is: the frameworks'
    converters take no other."""
    base = (*CPU_PRETRAIN, f"--train.epochs={cpu_epochs}") if scale == "cpu" else FULL_PRETRAIN
    if scale == "cpu" and group == "transfer":
        base = (*base, *transfer_arm_args(method))
    args = ("--method", method, *(("--aug", aug) if aug else ()), "--data", str(data), *base,
            f"--train.seed={seed}", f"--train.out={lay.runs / group}", *RESUME, *extra)
    arm = ("(standard stem for the transfers)",) if scale == "cpu" and group == "transfer" else ()
    return Step(" ".join(("pretrain", method, *((aug,) if aug else ()), *extra, *arm)), "pretrain", args)


def suite_step(lay: Layout, data: Path | str, tasks: str, *extra: str, group: str = "") -> Step:
    """Evaluate every run of ``runs/<group>`` on ``data`` with the suite's ``tasks`` into the store."""
    return Step(f"evaluate {tasks}", "evaluate.suite", (str(lay.runs / group), "--data", str(data), "--tasks", tasks,
                                                         "--store", str(lay.store), *extra))


def report_steps(lay: Layout, paper: str, saliency: Path | None = None) -> list[Step]:
    """Build the report (with the saliency examples npz when given), then the comparison."""
    extra = ("--saliency", str(saliency)) if saliency is not None else ()
    return [Step("report", "reports", ("build", "--db", str(lay.store), "--out", str(lay.report), *extra)),
            Step("published vs ours", "reports", ("compare", "--paper", paper, "--db", str(lay.store),
                                                  "--out", str(lay.report)))]


def saliency_steps(data: Path, algos: tuple[str, ...] = ("hc", "rc"), scale: str = "cpu") -> list[Step]:
    """Precompute the saliency cache of ``data`` (once, content-hashed) for the saliency policies;
    at full scale at the pretraining's image size (file datasets have no size of their own)."""
    size = ("--image-size", str(FULL_IMAGE_SIZE)) if scale == "full" else ()
    return [Step(f"saliency cache {a}", "pretrain.saliency", ("precompute", "--data", str(data), "--algo", a,
                                                               "--workers", "2", *size)) for a in algos]


def examples_step(lay: Layout, data: Path, scale: str = "cpu") -> tuple[Step, Path]:
    """The report's saliency examples: images, HC / RC maps, masks and the policies' views (at full
    scale at the pretraining's image size: file datasets have none of their own)."""
    out = lay.root / "saliency_examples.npz"
    size = ("--image-size", str(FULL_IMAGE_SIZE)) if scale == "full" else ()
    return Step("saliency examples", "pretrain.saliency", ("examples", "--data", str(data), "--out", str(out),
                                                           *size)), out


def seeds(scale: str) -> tuple[int, ...]:
    """The pretraining seeds of a plan: three at either scale (a claim's verdict is a Welch 95 %
    interval over pretraining seeds; with two a side most read inconclusive, bench/RESULTS.md
    "Reproductions")."""
    return (0, 1, 2)


def pretrain_steps(lay: Layout, scale: str, method: str, aug: str | None, data: Path | str, *extra: str,
                   seed: int = 0, chosen: bool = False, cpu_epochs: int = CPU_EPOCHS) -> list[Step]:
    """A plan's pretraining run and, where it goes on to the framework transfers, the run they
    take. full: one run in the ``transfer`` group (every full run transfers). cpu: the run at the
    cpu preset's backbone in the root group, evaluated with its seeds; a ``chosen`` one also gets
    an arm at torchvision's standard stem in the ``transfer`` group (``CPU_TRANSFER_BACKBONE``),
    which the root suites see as another variant of it, never pooled with the preset's runs: only
    where the plan runs its transfers at cpu scale (``lay.transfer``)."""
    common = dict(seed=seed, cpu_epochs=cpu_epochs)
    if scale != "cpu":
        return [pretrain_step(lay, scale, method, aug, data, *extra, group=transfer_group(scale, chosen), **common)]
    steps = [pretrain_step(lay, scale, method, aug, data, *extra, **common)]
    if chosen and lay.transfer:
        steps.append(pretrain_step(lay, scale, method, aug, data, *extra, group="transfer", **common))
    return steps


def transfer_group(scale: str, chosen: bool) -> str:
    """The runs folder group of a pretraining: ``transfer`` (evaluated by the framework transfer)
    for every run at full scale and for the few ``chosen`` ones at cpu scale, else the root."""
    return "transfer" if scale == "full" or chosen else ""


def transfer_steps(lay: Layout, scale: str, group: str = "", tasks: str = "") -> list[Step]:
    """Detectron2 and mmseg transfer of every run of ``group``: the CPU protocols on synthetic
    scenes (``tasks``: both by default), or the papers' protocols (VOC07+12 Faster R-CNN C4, COCO
    Mask R-CNN FPN 1x, VOC12aug FCN) on 8 GPUs with the frameworks' launchers. None at cpu scale
    unless the plan runs its transfers (``lay.transfer``).

    cpu: ``scenes``, 2000 128-px images (seed 0: 1646 train, 180 test with 739 objects). It stays
    that size: detection AP counts the test objects and segmentation mIoU the test pixels (~2.9 M),
    and every image more costs the scene pretrainings (SlotCon's: 50 epochs) and Detectron2."""
    if scale == "cpu" and not lay.transfer:
        return []
    if scale == "cpu":
        step, scenes = data_step(lay, "scenes", 2000)
        return [step, suite_step(lay, scenes, tasks or "detection,segmentation_transfer", "--transfer-iters", "150",
                                 group=group)]
    gpu = ("--device", "cuda", "--num-gpus", str(GPUS))
    return [suite_step(lay, lay.datasets, "detection", "--detectron2-protocol", proto, *gpu, group=group)
            for proto in ("voc-r50-c4", "coco-r50-fpn-1x")] + \
        [suite_step(lay, lay.datasets, "segmentation_transfer", "--mmseg-protocol", "voc12aug-fcn", *gpu, group=group)]


# ------------------------------------------------------------------------------------- running

def plan(paper: str, steps_of: Plan, scale: str, out: Path | str = "reproductions",
         transfer: bool = False, *, smoke: bool = False, datasets: tuple[str, ...] = (),
         data_root: Path | str = "data", keep: Callable[[Step], bool] | None = None) -> tuple[Layout, list[Step]]:
    """The layout and steps of ``paper`` (its name) at ``scale``, from its plan function
    ``steps_of`` (``reports.papers.get_plan(paper)``); ``transfer``: a cpu plan runs its framework
    transfers too (``Layout.transfer``). A command named twice, e.g. the scenes data of a plan
    that also transfers on it, is run once. ``data_root``: where a full plan reads the papers'
    datasets. ``smoke`` (full only): the full plan on tiny fixtures of its ``datasets`` (layout
    names, ``reports.papers.DATASETS``) under ``<out>/<paper>-full-smoke`` (``reports.smoke``),
    of the steps ``keep`` accepts (``reports.papers.SMOKE_KEEPS``; all by default).
    ValueError for an unknown scale, or ``smoke`` at cpu scale."""
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; valid: {', '.join(SCALES)}")
    if smoke and scale != "full":
        raise ValueError("--smoke runs a full plan on tiny fixtures: use it with --scale full")
    root = Path(out) / f"{paper}-{scale}{'-smoke' if smoke else ''}"
    lay = Layout(root, transfer=transfer or scale == "full", datasets=root / "datasets" if smoke else Path(data_root))
    steps = list(dict.fromkeys(steps_of(lay, scale)))
    steps = [_on_gpus(s) for s in steps] if scale == "full" else steps
    if smoke:
        steps = smoke_steps([s for s in steps if keep is None or keep(s)], lay.datasets, datasets)
    return lay, steps


def check_datasets(lay: Layout, datasets: tuple[str, ...]) -> None:
    """Every dataset a full plan reads, in its layout under ``lay.datasets``: else one line naming the
    first missing path and the layout expected (``imagedata.layouts.DatasetLayoutError``)."""
    from imagedata.layouts import check_layout

    for name in datasets:
        check_layout(name, lay.datasets)


def _on_gpus(step: Step) -> Step:
    """A full-scale step on the GPUs: pretraining under torchrun (DDP on ``GPUS`` processes), the
    evaluation and invariance steps on ``--device cuda`` (where a step does not name a device)."""
    if step.module == "pretrain":
        return Step(step.what, step.module, step.args, DDP)
    if step.module in ON_GPU and "--device" not in step.args:
        return Step(step.what, step.module, (*step.args, "--device", "cuda"))
    return step


def progress(elapsed: float, done: int, total: int) -> str:
    """Elapsed time and the ETA at the pace so far, after ``done`` of ``total`` steps
    (``elapsed`` in seconds), e.g. ``"12.0 min elapsed, ETA 36.0 min"``."""
    left = elapsed / done * (total - done) if done else float("nan")
    return f"{elapsed / 60:.1f} min elapsed, ETA {left / 60:.1f} min"


def run(paper: str, steps_of: Plan, scale: str, out: Path | str = "reproductions", dry_run: bool = False,
        transfer: bool = False, *, smoke: bool = False, datasets: tuple[str, ...] = (),
        data_root: Path | str = "data", gpu_memory: float = 80.0, keep: Callable[[Step], bool] | None = None,
        submit: str | None = None, partition: str | None = None, timeout_min: int = 4320) -> Path:
    """Run (or with ``dry_run`` print, with a full plan's GPU-hour estimate per step: ``reports.cost``;
    ``gpu_memory``: GB a GPU holds, a step needing more is warned about; ``submit``: "slurm" or
    "local", the steps as submitit jobs, ``reports.submit``) every step of ``paper``'s reproduction (its plan function
    ``steps_of``) at ``scale``, with its framework transfers at cpu scale if ``transfer``; returns
    its report folder. A full plan first checks its ``datasets`` under ``data_root`` (all of them,
    before any step); ``smoke``: the full plan on fixtures (:func:`plan`)."""
    lay, steps = plan(paper, steps_of, scale, out, transfer, smoke=smoke, datasets=datasets, data_root=data_root,
                      keep=keep)
    if scale == "full" and not smoke and not dry_run:
        check_datasets(lay, datasets)
    env = {**os.environ, "DETECTRON2_DATASETS": str(lay.datasets)} if scale == "full" else None
    if submit and not dry_run:
        procs = SMOKE_PROCS if smoke else GPUS if scale == "full" else 1
        begin = time.perf_counter()
        submit_plan(steps, lay.root / "jobs", submit, procs=procs, gpus=GPUS if scale == "full" else 0,
                    timeout_min=timeout_min, partition=partition,
                    env={"DETECTRON2_DATASETS": str(lay.datasets)} if scale == "full" else {})
        print(f"{paper} ({scale}) reproduced through {submit} jobs in {(time.perf_counter() - begin) / 60:.1f} min: "
              f"{lay.report / 'report.html'}", flush=True)
        return lay.report
    costs = plan_estimates(steps, gpu_memory) if dry_run and scale == "full" and not smoke else None
    begin = time.perf_counter()
    for i, step in enumerate(steps, 1):
        cmd = step.command()
        cost = ""
        if costs is not None and (costs[i - 1].gpu_hours or costs[i - 1].note):
            e = costs[i - 1]
            cost = f"  [~{format_hours(e.gpu_hours)} V100 GPU-h{'; ' + e.note if e.note else ''}]" if e.gpu_hours \
                else f"  [{e.note}]"
        print(f"[{i}/{len(steps)}] {step.what}: {' '.join(cmd[1:])}{cost}", flush=True)
        if costs is not None and costs[i - 1].note.startswith("batch"):
            print(f"warning: step {i} ({step.what}): {costs[i - 1].note}", file=sys.stderr, flush=True)
        if dry_run:
            continue
        start = time.perf_counter()
        rc = subprocess.run(cmd, env=env).returncode
        if rc != 0:
            raise RuntimeError(f"step {i} ({step.what}) failed with exit code {rc}: {' '.join(cmd)}")
        print(f"[{i}/{len(steps)}] done in {time.perf_counter() - start:.0f} s; "
              f"{progress(time.perf_counter() - begin, i, len(steps))}", flush=True)
    if costs is not None:
        total = sum(e.gpu_hours for e in costs)
        left = sorted({e.note for e in costs if e.note and not e.gpu_hours})
        print(f"estimate: ~{format_hours(total)} V100 GPU-hours, ~{format_hours(total / GPUS)} hours on one node of "
              f"{GPUS} V100{'; not counted: ' + ', '.join(left) if left else ''} (reports/cost.py)", flush=True)
    if not dry_run:
        print(f"{paper} ({scale}) reproduced in {(time.perf_counter() - begin) / 60:.1f} min: "
              f"{lay.report / 'report.html'}", flush=True)
    return lay.report
