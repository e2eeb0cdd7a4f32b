"""A full plan's own commands on tiny fixtures, on CPU, in minutes: ``reproduce --scale full --smoke``.

    python -m reports reproduce --paper slotcon --scale full --smoke --out /tmp/smoke

The smoke plan is the full plan (the same modules, methods, presets, data layouts, launchers and
protocols) with its sizes cut so that every step runs end to end on 2 CPU cores:

- the papers' datasets are tiny fixtures in their real layouts (``imagedata.layouts``), written
  first under ``<root>/datasets``, which is the plan's datasets root (and Detectron2's / mmseg's);
  the synthetic data a plan renders is ``SMOKE_IMAGES`` images;
- pretraining still goes through ``torch.distributed.run``, with ``SMOKE_PROCS`` gloo processes
  instead of 8 GPUs (the DDP path runs), ``SMOKE_STEPS`` updates of ``SMOKE_BATCH`` images read at
  ``SMOKE_SIZE`` px;
- every evaluation runs on the CPU with its iterations, draws and images cut (``SUITE``, ``INVARIANCE``);
- only the first pretraining seed's runs: the other seeds repeat the same commands with another
  ``--train.seed``. Every arm is present, so ``reports compare`` reads each claim (inconclusive
  with one seed).

What is left unchanged is the point: a step that fails here fails on the cluster.
"""
from __future__ import annotations

from pathlib import Path

SMOKE_PROCS = 2          # gloo processes standing in for the node's 8 GPUs
SMOKE_STEPS = 2
SMOKE_BATCH = 8          # global batch: 4 images a process
SMOKE_SIZE = 64          # px: the fixtures' images and the synthetic renders are read at this size
SMOKE_IMAGES = 96        # synthetic images a data step renders
SMOKE_SEED = 0           # the pretraining seed whose runs a smoke plan keeps

PRETRAIN = {"--train.steps": str(SMOKE_STEPS), "--data.batch_size": str(SMOKE_BATCH),
            "--data.image_size": str(SMOKE_SIZE), "--data.stats_images": "16", "--train.ckpt_every": "1",
            "--data.prefetch": "1", "--data.workers": "1"}
SUITE = {"--device": "cpu", "--num-gpus": "1", "--image-size": str(SMOKE_SIZE), "--train-limit": "24",
         "--test-limit": "12", "--finetune-max-steps": "2", "--dense-steps": "2", "--transfer-iters": "2",
         "--transfer-batch": "2", "--transfer-input-size": "128", "--lowshot-draws": "2", "--lowshot-shots": "1", "--fewshot-episodes": "4",
         "--invariance-sets": "2", "--transform-images": "16"}
INVARIANCE = {"--device": "cpu", "--sets": "2", "--images": "16", "--image-size": str(SMOKE_SIZE)}
# the finetuned label counts of a plan (utility: 1000 / 5000 / 20 000) cut to what the fixtures hold
SIZES = {"--sizes": "4,8,12"}
SALIENCY = {"--image-size": str(SMOKE_SIZE), "--workers": "1"}
DATA = {"--n": str(SMOKE_IMAGES)}


def with_options(args: tuple[str, ...], options: dict[str, str]) -> tuple[str, ...]:
    """``args`` with each option of ``options`` set to its value: an ``--opt=value`` or ``--opt value``
    already there is replaced in place, a missing one appended as ``--opt=value`` (dotted pretraining
    overrides) or ``--opt value``."""
    out = list(args)
    for opt, value in options.items():
        for i, a in enumerate(out):
            if a.startswith(opt + "="):
                out[i] = f"{opt}={value}"
                break
            if a == opt and i + 1 < len(out):
                out[i + 1] = value
                break
        else:
            out += [f"{opt}={value}"] if "." in opt else [opt, value]
    return tuple(out)


def seed_of(args: tuple[str, ...]) -> int:
    """The ``--train.seed`` of a pretraining's arguments (0 if absent)."""
    return next((int(a.partition("=")[2]) for a in args if a.startswith("--train.seed=")), 0)


def launcher(launch: tuple[str, ...]) -> tuple[str, ...]:
    """The plan's torchrun launcher with ``SMOKE_PROCS`` processes instead of one per GPU."""
    return tuple(f"--nproc_per_node={SMOKE_PROCS}" if a.startswith("--nproc_per_node=") else a for a in launch)


def smoke_step(step):  # noqa: ANN001, ANN201 - reproduce.Step, imported late (no cycle)
    """``step`` of a full plan with its sizes cut (module by module, the table above)."""
    from .reproduce import Step

    args = step.args
    if step.module == "pretrain":
        return Step(step.what, step.module, with_options(args, PRETRAIN), launcher(step.launch))
    if step.module == "evaluate.suite":
        args = with_options(args, SUITE)
        return Step(step.what, step.module, with_options(args, SIZES) if "--sizes" in args else args)
    if step.module == "invariance":
        return Step(step.what, step.module, with_options(args, INVARIANCE))
    if step.module == "pretrain.saliency" and args[:1] == ("examples",):
        return Step(step.what, step.module, with_options(args, {"--image-size": str(SMOKE_SIZE)}))
    if step.module == "pretrain.saliency" and args[:1] == ("precompute",):
        return Step(step.what, step.module, with_options(args, SALIENCY))
    if step.module == "synthetic.generate":
        return Step(step.what, step.module, with_options(args, DATA))
    return step


def smoke_steps(steps: list, datasets: Path, layouts: tuple[str, ...]) -> list:
    """The smoke plan of a full plan's ``steps``: the fixtures of ``layouts`` written under
    ``datasets`` first, then every step of the ``SMOKE_SEED`` runs (and every non-pretraining step)
    cut by :func:`smoke_step`."""
    from .reproduce import Step

    first = [Step("dataset fixtures", "imagedata.layouts", ("write", "--root", str(datasets), *layouts))] \
        if layouts else []
    kept = [s for s in steps if s.module != "pretrain" or seed_of(s.args) == SMOKE_SEED]
    return first + [smoke_step(s) for s in kept]
