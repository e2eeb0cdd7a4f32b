"""Paper reproductions end to end: data -> pretraining -> evaluation -> invariance -> transfer -> report.

    python -m reports reproduce --paper utility --scale cpu [--out reproductions] [--dry-run]
    make reproduce PAPER=utility SCALE=cpu

A plan (``PLANS``) is a list of :class:`Step` command lines, run in order with this project's own
CLIs (``synthetic.generate``, ``pretrain``, ``evaluate.suite``, ``invariance``,
``evaluate.transfer``, ``reports build``), each idempotent: a dataset that is up to date, a run
that is complete, an evaluation already in the store are not redone, so an interrupted
reproduction continues where it stopped. Everything goes under ``<out>/<paper>-<scale>/``
(``data/``, ``runs/``, ``results.sqlite``, ``report/``); the ``full`` plans read the papers' data
sets under ``data/`` (ImageNet, COCO, ...) and use the GPU presets and the frameworks' multi-GPU
launchers. ``cpu`` plans are sized for 2 cores; their wall times are in the README.
"""
from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

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
    """Where a reproduction writes: its data, runs, store and report."""

    root: Path

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
# a pretraining interrupted with the plan continues from its last checkpoint (a complete one is kept)
RESUME = ("--resume",)
CPU_EPOCHS = 10
# SlotCon's plan: 10 epochs on 2000 scenes left every method at random init's transfer (box AP50
# 7.2 vs 7.8); 50 epochs of MoCo v2 gave 11.3 (bench/RESULTS.md "SlotCon at cpu scale").
SCENE_EPOCHS = 50
# MoCo v2 on ~4000 training images: at 10 epochs (310 steps) it probed below the random backbone
# (39.0 vs 43.9), at 30 epochs 53.9; PIRL 41.5 at 10, 52.0 at 30 (RESULTS "Invariance and dataset
# bias at cpu scale"). The invariance plan trains all its runs this long; the masking plan its MoCo v2 runs.
MOCO_EPOCHS = 30
INVARIANCE_EPOCHS = MOCO_EPOCHS
FULL_PRETRAIN = ("--preset", "full", "--quiet")
GPUS = 8                                            # full scale: one node of 8 GPUs
DDP = ("torch.distributed.run", "--standalone", f"--nproc_per_node={GPUS}", "-m")   # = torchrun
ON_GPU = ("evaluate.suite", "invariance")           # the steps that take --device


def _data(lay: Layout, preset: str, n: int, *extra: str) -> tuple[Step, Path]:
    out = lay.data / preset
    return Step(f"dataset {preset}", "synthetic.generate", ("--preset", preset, "--n", str(n), "--seed", "0",
                                                             "--out", str(out), *extra)), out


def _pretrain(lay: Layout, scale: str, method: str, aug: str | None, data: Path | str, *extra: str,
              seed: int = 0, group: str = "", cpu_epochs: int = CPU_EPOCHS) -> Step:
    """One pretraining run into ``runs/<group>`` (a group = the checkpoints evaluated together);
    ``cpu_epochs``: its length at cpu scale."""
    base = (*CPU_PRETRAIN, f"--train.epochs={cpu_epochs}") if scale == "cpu" else FULL_PRETRAIN
    args = ("--method", method, *(("--aug", aug) if aug else ()), "--data", str(data), *base,
            f"--train.seed={seed}", f"--train.out={lay.runs / group}", *RESUME, *extra)
    return Step(" ".join(("pretrain", method, *((aug,) if aug else ()), *extra)), "pretrain", args)


def _suite(lay: Layout, data: Path | str, tasks: str, *extra: str, group: str = "") -> Step:
    return Step(f"evaluate {tasks}", "evaluate.suite", (str(lay.runs / group), "--data", str(data), "--tasks", tasks,
                                                         "--store", str(lay.store), *extra))


def _report(lay: Layout, paper: str, saliency: Path | None = None) -> list[Step]:
    """Build the report (with the saliency examples npz when given), then the comparison."""
    extra = ("--saliency", str(saliency)) if saliency is not None else ()
    return [Step("report", "reports", ("build", "--db", str(lay.store), "--out", str(lay.report), *extra)),
            Step("published vs ours", "reports", ("compare", "--paper", paper, "--db", str(lay.store),
                                                  "--out", str(lay.report)))]


def _saliency(data: Path, algos: tuple[str, ...] = ("hc", "rc")) -> list[Step]:
    """Precompute the saliency cache of ``data`` (once, content-hashed) for the saliency policies."""
    return [Step(f"saliency cache {a}", "pretrain.saliency", ("precompute", "--data", str(data), "--algo", a,
                                                               "--workers", "2")) for a in algos]


def _examples(lay: Layout, data: Path) -> tuple[Step, Path]:
    """The report's saliency examples: images, HC / RC maps, masks and the policies' views."""
    out = lay.root / "saliency_examples.npz"
    return Step("saliency examples", "pretrain.saliency", ("examples", "--data", str(data), "--out", str(out))), out


def _seeds(scale: str) -> tuple[int, ...]:
    return (0, 1) if scale == "cpu" else (0, 1, 2)


def plan_saliency_aug(lay: Layout, scale: str) -> list[Step]:
    """Saliency (HC / RC) segmentation as an SSL augmentation: SGD with HC and RC maps and
    SGD-only vs the default pipeline, for SimCLR and BYOL; linear, kNN, clustering,
    segmentation; and the resolution of the views (32 vs 64 px)."""
    steps, data = [], Path("data/imagenet")
    if scale == "cpu":
        step, data = _data(lay, "shapes64-clutter", 5000)
        steps.append(step)
    steps += _saliency(data)
    for seed in _seeds(scale):
        for method in ("simclr", "byol"):
            steps.append(_pretrain(lay, scale, method, "default", data, seed=seed))
            for algo in ("hc", "rc"):
                steps.append(_pretrain(lay, scale, method, "sgd", data, f"--aug_cfg.algo={algo}", seed=seed))
            steps.append(_pretrain(lay, scale, method, "sgd-only", data, seed=seed))
        if scale == "cpu":
            steps.append(_pretrain(lay, scale, "simclr", "sgd", data, "--aug_cfg.out_size=64", seed=seed))
    steps.append(_suite(lay, data, "linear,knn,clustering,segmentation", "--seeds", "0,1"))
    step, examples = _examples(lay, data)
    return steps + [step] + _report(lay, "saliency-aug", examples)


# The masks' saliency: the cached RC maps (the paper's SCDA needs a frozen network's checkpoint,
# --aug_cfg.saliency=scda --aug_cfg.scda_checkpoint=PATH, which a plan cannot name in advance).
SAL = "--aug_cfg.saliency=rc"


def plan_saliency_masking(lay: Layout, scale: str) -> list[Step]:
    """Saliency-guided masking for ConvNets: random vs saliency-guided masks, three fills,
    query-only vs both branches, hard negatives; MoCo v2 and SimCLR; linear and transfer.

    cpu: SimCLR (which learns in 10 epochs) runs every variant; MoCo v2, which needs 30 epochs
    here, runs the headline pair (default vs saliency-masked with the high-pass fill), which also
    goes on to Detectron2 (seed 0); random init is the floor. full: every variant of both."""
    steps, data = [], Path("data/imagenet-100")
    if scale == "cpu":
        step, data = _data(lay, "shapes64-clutter", 5000)
        steps.append(step)
    steps += _saliency(data, ("rc",))
    variants = [("default", ()), ("random-mask", ())] + \
        [("sal-mask", (SAL, f"--aug_cfg.fill={fill}")) for fill in ("highpass", "blur", "mean")] + \
        [("sal-mask", (SAL, "--aug_cfg.branch=both")), ("sal-mask-hn", (SAL,))]
    for seed in _seeds(scale):
        for method in ("mocov2", "simclr"):
            for aug, extra in variants:
                headline = aug == "default" or extra[1:] == ("--aug_cfg.fill=highpass",)
                if scale == "cpu" and method == "mocov2" and not headline:
                    continue
                chosen = method == "mocov2" and seed == 0 and headline
                steps.append(_pretrain(lay, scale, method, aug, data, *extra, seed=seed,
                                       group=_transfer_group(scale, chosen),
                                       cpu_epochs=MOCO_EPOCHS if method == "mocov2" else CPU_EPOCHS))
        if scale == "cpu":
            steps.append(_pretrain(lay, scale, "random", None, data, seed=seed))
    steps.append(_suite(lay, data, "linear,knn", "--seeds", "0"))
    steps += _transfer(lay, scale, "transfer", tasks="detection" if scale == "cpu" else "")
    step, examples = _examples(lay, data)
    return steps + [step] + _report(lay, "saliency-masking", examples)


def _transfer_group(scale: str, chosen: bool) -> str:
    """The runs folder group of a pretraining: ``transfer`` (evaluated by the framework transfer)
    for every run at full scale and for the few ``chosen`` ones at cpu scale, else the root."""
    return "transfer" if scale == "full" or chosen else ""


def _transfer(lay: Layout, scale: str, group: str = "", tasks: str = "") -> list[Step]:
    """Detectron2 and mmseg transfer of every run of ``group``: the CPU protocols on synthetic
    scenes (``tasks``: both by default), or the papers' protocols (VOC07+12 Faster R-CNN C4, COCO
    Mask R-CNN FPN 1x, VOC12aug FCN) on 8 GPUs with the frameworks' launchers."""
    if scale == "cpu":
        step, scenes = _data(lay, "scenes", 2000)
        return [step, _suite(lay, scenes, tasks or "detection,segmentation_transfer", "--transfer-iters", "150",
                             group=group)]
    gpu = ("--device", "cuda", "--num-gpus", str(GPUS))
    return [_suite(lay, "data", "detection", "--detectron2-protocol", proto, *gpu, group=group)
            for proto in ("voc-r50-c4", "coco-r50-fpn-1x")] + \
        [_suite(lay, "data", "segmentation_transfer", "--mmseg-protocol", "voc12aug-fcn", *gpu, group=group)]


def plan_invariance(lay: Layout, scale: str) -> list[Step]:
    """Invariance and dataset bias of contrastive SSL: MoCo v2 / PIRL / supervised / temporal
    (video frame pairs and tracked regions, against MoCo v2 on the same frames); occlusion,
    viewpoint, illumination, instance invariance; object-centric (shapes64) vs scene-centric
    (scenes) pretraining; aggressive vs mild cropping."""
    steps = []
    if scale == "cpu":
        s1, objects = _data(lay, "shapes64", 5000)
        s2, scenes = _data(lay, "scenes", 2000)
        s3, video = _data(lay, "video", 500)
        steps += [s1, s2, s3]
    else:
        objects, scenes, video = Path("data/imagenet"), Path("data/coco/annotations/instances_train2017.json"), \
            Path("data/trackingnet")
    for seed in _seeds(scale):

        def run(method: str, aug: str | None, data: Path, *extra: str) -> Step:
            return _pretrain(lay, scale, method, aug, data, *extra, seed=seed, cpu_epochs=INVARIANCE_EPOCHS)
        steps += [run(m, None, objects) for m in ("mocov2", "pirl", "supervised", "random")]
        steps += [run("mocov2", None, scenes)]
        steps += [run("simclr", aug, objects) for aug in ("aggressive", "mild")]
        steps += [run("mocov2", None, video),                   # image-level on the same frames
                  run("temporal", None, video), run("temporal", None, video, "--method_cfg.mode=regions")]
    # cpu: the probe sets only. The transform measure (Ericsson et al.'s, not this paper's) needs many
    # more test images than the 512 feature dimensions to whiten; shapes64's 477 are too few.
    quick = ("--transforms", "none") if scale == "cpu" else ()
    steps.append(Step("invariance", "invariance", (str(lay.runs), "--store", str(lay.store), "--data", str(objects),
                                                   "--probe-dir", str(lay.data / "probes"), *quick)))
    steps.append(_suite(lay, objects, "linear"))
    return steps + _report(lay, "invariance")


def plan_slotcon(lay: Layout, scale: str) -> list[Step]:
    """SlotCon on scene-centric data: detection, segmentation, unsupervised segmentation, against
    image-level methods pretrained on the same scenes."""
    steps = []
    if scale == "cpu":
        step, scenes = _data(lay, "scenes", 2000)
        steps.append(step)
    else:
        scenes = Path("data/coco/annotations/instances_train2017.json")
    for seed in _seeds(scale):
        # cpu: the seed-0 SlotCon, MoCo v2 and random runs go on to the (Detectron2) transfer.
        steps += [_pretrain(lay, scale, m, None, scenes, seed=seed, cpu_epochs=SCENE_EPOCHS,
                            group=_transfer_group(scale, seed == 0 and m != "byol"))
                  for m in ("slotcon", "mocov2", "byol", "random")]
    if scale == "cpu":
        steps.append(_suite(lay, scenes, "segmentation,unsup_seg,depth"))
    steps += _transfer(lay, scale, "transfer", tasks="detection" if scale == "cpu" else "")
    return steps + _report(lay, "slotcon")


def plan_utility(lay: Layout, scale: str) -> list[Step]:
    """Label-savings utility (Newell & Deng) on the 12 T/C/V/L variants: several methods,
    classification (finetuning curves vs scratch), pose, segmentation, depth; ResNet-9 vs
    ResNet-50 (the cpu preset's ResNet-18 at 32-px views at cpu scale); linear vs finetune rank
    agreement."""
    from synthetic.presets import TCVL_VARIANTS

    steps = []
    n = 2000 if scale == "cpu" else 120000
    methods = ("rotation", "simclr") if scale == "cpu" else ("rotation", "simclr", "vae", "cmc", "supervised")
    backbones = ("resnet18",) if scale == "cpu" else ("resnet9", "resnet50")   # cpu: bounded time on 2 cores
    size = ("--size", "32") if scale == "cpu" else ()     # cpu: the 32-px views the cpu preset trains at
    for variant in TCVL_VARIANTS:
        step, data = _data(lay, f"tcvl-{variant}", n, *size)
        steps.append(step)
        group = f"tcvl-{variant}"
        for backbone in backbones:
            for method in methods:
                steps.append(_pretrain(lay, scale, method, None, data, f"--backbone.name={backbone}", group=group))
        sizes = "50,200,1000" if scale == "cpu" else "1000,5000,20000,100000"
        quick = ("--finetune-max-steps", "200", "--dense-steps", "200") if scale == "cpu" else ()
        steps.append(_suite(lay, data, "linear,finetune,pose,segmentation,depth", "--sizes", sizes, "--seeds", "0,1",
                            *quick, group=group))
    return steps + _report(lay, "utility")


PLANS: dict[str, Callable[[Layout, str], list[Step]]] = {
    "saliency-aug": plan_saliency_aug,
    "saliency-masking": plan_saliency_masking,
    "invariance": plan_invariance,
    "slotcon": plan_slotcon,
    "utility": plan_utility,
}


def plan(paper: str, scale: str, out: Path | str = "reproductions") -> tuple[Layout, list[Step]]:
    """The layout and steps of ``paper`` at ``scale`` (a command named twice, e.g. the scenes data
    of a plan that also transfers on it, is run once); ValueError for an unknown one."""
    if paper not in PLANS:
        raise ValueError(f"unknown paper {paper!r}; valid: {', '.join(PLANS)}")
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; valid: {', '.join(SCALES)}")
    lay = Layout(Path(out) / f"{paper}-{scale}")
    steps = list(dict.fromkeys(PLANS[paper](lay, scale)))
    return lay, [_on_gpus(s) for s in steps] if scale == "full" else steps


def _on_gpus(step: Step) -> Step:
    """A full-scale step on the GPUs: pretraining under torchrun (DDP on ``GPUS`` processes), the
    evaluation and invariance steps on ``--device cuda`` (where a step does not name a device)."""
    if step.module == "pretrain":
        return Step(step.what, step.module, step.args, DDP)
    if step.module in ON_GPU and "--device" not in step.args:
        return Step(step.what, step.module, (*step.args, "--device", "cuda"))
    return step


def run(paper: str, scale: str, out: Path | str = "reproductions", dry_run: bool = False) -> Path:
    """Run (or with ``dry_run`` print) every step of a reproduction; returns its report folder."""
    lay, steps = plan(paper, scale, out)
    begin = time.perf_counter()
    for i, step in enumerate(steps, 1):
        cmd = step.command()
        print(f"[{i}/{len(steps)}] {step.what}: {' '.join(cmd[1:])}", flush=True)
        if dry_run:
            continue
        start = time.perf_counter()
        rc = subprocess.run(cmd).returncode
        if rc != 0:
            raise RuntimeError(f"step {i} ({step.what}) failed with exit code {rc}: {' '.join(cmd)}")
        print(f"[{i}/{len(steps)}] done in {time.perf_counter() - start:.0f} s", flush=True)
    if not dry_run:
        print(f"{paper} ({scale}) reproduced in {(time.perf_counter() - begin) / 60:.1f} min: "
              f"{lay.report / 'report.html'}", flush=True)
    return lay.report
