"""A plan's steps as cluster jobs through submitit: ``reproduce --submit slurm`` (or ``local``).

    python -m reports reproduce --paper slotcon --scale full --submit slurm --partition gpu --timeout-min 4320
    python -m reports reproduce --paper slotcon --scale full --smoke --submit local      # on CPU

The convention of the DINO and MoCo v3 repositories (their ``run_with_submitit.py``): one job per
run, ``nodes`` x ``tasks_per_node`` processes (one per GPU), each process one DDP rank whose
``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` / ``MASTER_ADDR`` come from the job's environment, as
torchrun would set them. Consecutive pretrainings of a plan are independent, so they are submitted
together and run side by side; every other step (evaluation, transfer, report) is one job of one
task, submitted when the steps before it are done, in plan order.

Preemption and time limits: a job is checkpointable. On Slurm's signal (or the local executor's
``_interrupt``) it is requeued as the same step, and the step continues where it was: a
pretraining from its ``resume.pt`` (plans pass ``--resume``; the data order and every random draw
are functions of the seed and the step, so the resumed run ends with the same weights as an
uninterrupted one), every other step from the results store (idempotent). ``local`` runs the jobs
as processes on this machine (submitit's ``LocalExecutor``), which is how the tests check all of it
on CPU. No scheduler of our own: Slurm queues, requeues and places the jobs.
"""
from __future__ import annotations

import contextlib
import os
import runpy
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

KINDS = ("slurm", "local")


@dataclass
class StepJob:
    """One plan step as a submitit job: ``python -m <module> <args>`` run in the job's process(es),
    under ``env``; with several tasks, each task is one DDP rank."""

    module: str
    args: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)

    def __call__(self) -> int:
        import submitit

        os.environ.update(self.env)
        job = submitit.JobEnvironment()
        if job.num_tasks > 1:
            os.environ.update(RANK=str(job.global_rank), WORLD_SIZE=str(job.num_tasks),
                              LOCAL_RANK=str(job.local_rank), LOCAL_WORLD_SIZE=str(job.num_tasks // job.num_nodes),
                              MASTER_ADDR=job.hostnames[0], MASTER_PORT=str(master_port(str(job.job_id))))
        rc = run_module(self.module, self.args)
        if self.__dict__.get("_requeued"):
            raise SystemExit(rc)             # submitit's requeue exits the process: let it
        if rc != 0:
            raise RuntimeError(f"python -m {self.module} exited with {rc} (job {job.job_id}, rank {job.global_rank})")
        return rc

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """On preemption or timeout: requeue this same step (a pretraining resumes from ``resume.pt``)."""
        import submitit

        self._requeued = True

        return submitit.helpers.DelayedSubmission(StepJob(self.module, self.args, self.env))


def master_port(job_id: str) -> int:
    """A rendezvous port from the job id (the same on every task of the job, 20000-39999)."""
    return 20000 + zlib.crc32(job_id.encode()) % 20000


def run_module(module: str, args: tuple[str, ...]) -> int:
    """Run ``python -m module args`` in this process (a signal reaches the training loop itself);
    its exit status."""
    argv = sys.argv
    sys.argv = [module, *args]
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        return 0
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.argv = argv


def make_executor(kind: str, folder: Path, tasks: int, *, gpus: int, timeout_min: int, partition: str | None,
                  nodes: int = 1) -> Any:
    """A submitit executor for a job of ``nodes`` x ``tasks`` processes (``gpus`` GPUs a node on Slurm)."""
    import submitit

    if kind not in KINDS:
        raise ValueError(f"--submit {kind!r}: expected one of {', '.join(KINDS)}")
    if kind == "local":
        ex = submitit.LocalExecutor(folder=folder)
        ex.update_parameters(tasks_per_node=tasks, timeout_min=timeout_min, nodes=1)
        return ex
    ex = submitit.AutoExecutor(folder=folder, cluster="slurm", slurm_max_num_timeout=30)
    ex.update_parameters(nodes=nodes, tasks_per_node=tasks, gpus_per_node=gpus, cpus_per_task=10,
                         mem_gb=40 * gpus, timeout_min=timeout_min, slurm_signal_delay_s=120,
                         **({"slurm_partition": partition} if partition else {}))
    return ex


def submit_plan(steps: list, folder: Path, kind: str, *, procs: int, gpus: int, timeout_min: int = 4320,
                partition: str | None = None, env: dict[str, str] | None = None, log: Any = print) -> None:
    """Submit ``steps`` (``reports.reproduce.Step``s) in plan order: runs of consecutive pretraining
    steps together as jobs of ``procs`` DDP processes, every other step as a one-task job once those
    before it are done. RuntimeError naming the step when a job fails."""
    env = dict(env or {})
    i = 0
    while i < len(steps):
        group = [steps[i]]
        if steps[i].module == "pretrain":
            while i + len(group) < len(steps) and steps[i + len(group)].module == "pretrain":
                group.append(steps[i + len(group)])
        tasks = procs if steps[i].module == "pretrain" else 1
        ex = make_executor(kind, folder, tasks, gpus=gpus, timeout_min=timeout_min, partition=partition)
        if kind == "slurm":
            ex.update_parameters(name=f"sslbench-{group[0].what}"[:60])
        jobs = []
        with ex.batch() if len(group) > 1 else contextlib.nullcontext():
            for s in group:
                jobs.append(ex.submit(StepJob(s.module, s.args, env)))
        for k, (s, job) in enumerate(zip(group, jobs), i + 1):
            log(f"[{k}/{len(steps)}] {s.what}: job {job.job_id} ({tasks} task{'s' if tasks > 1 else ''})")
        for k, (s, job) in enumerate(zip(group, jobs), i + 1):
            try:
                job.results()
            except Exception as e:
                raise RuntimeError(f"step {k} ({s.what}) failed in job {job.job_id}: "
                                   f"{str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__}") from e
            log(f"[{k}/{len(steps)}] done: job {job.job_id}")
        i += len(group)
