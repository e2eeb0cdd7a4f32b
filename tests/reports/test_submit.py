"""A plan's steps as submitit jobs (``reproduce --submit``), on submitit's local executor: DDP ranks
from the job environment, and a preempted pretraining requeued to the same final weights."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch

from reports.reproduce import Step
from reports.submit import StepJob, make_executor, master_port, submit_plan


def pretrain(data: Path, out: Path, steps: int = 12) -> Step:
    return Step("pretrain mocov2", "pretrain", (
        "--method", "mocov2", "--data", str(data), "--preset", "test", "--quiet", f"--train.steps={steps}",
        "--train.ckpt_every=3", "--train.log_every=1", "--train.tensorboard=false", "--data.batch_size=16",
        f"--train.out={out}", "--resume"))


def final(out: Path) -> tuple[dict, dict]:
    (run,) = [p for p in out.iterdir() if (p / "ckpt.pt").exists()]
    ckpt = torch.load(run / "ckpt.pt", weights_only=True)
    return ckpt["state_dict"], ckpt["train"]


def preempt(job) -> None:  # noqa: ANN001
    """Slurm's preemption: its signal (USR2 here) to every task of the job. (The local executor's own
    ``_interrupt`` signals its controller process only, which does not pass USR2 on to the tasks.)"""
    import os
    import signal

    from submitit.local.local import LocalJobEnvironment

    controller = int(job.job_id)
    tasks = Path(f"/proc/{controller}/task/{controller}/children").read_text().split()
    assert len(tasks) == 2, tasks
    for pid in tasks:
        os.kill(int(pid), LocalJobEnvironment._usr_sig())


def test_master_port_is_one_per_job() -> None:
    assert master_port("123") == master_port("123") != master_port("124")
    assert 20000 <= master_port("7_3") < 40000


@pytest.mark.slow
def test_a_plan_runs_as_local_jobs_with_ddp_ranks(eval_data: Path, tmp_path: Path) -> None:
    steps = [pretrain(eval_data, tmp_path / "a", steps=6), pretrain(eval_data, tmp_path / "b", steps=3),
             Step("layouts", "imagedata.layouts", ("write", "--root", str(tmp_path / "fx"), "cifar10"))]
    lines: list[str] = []
    submit_plan(steps, tmp_path / "jobs", "local", procs=2, gpus=0, timeout_min=10, log=lines.append)
    assert [line.split(":")[0] for line in lines if "done" in line] == ["[1/3] done", "[2/3] done", "[3/3] done"]
    assert "(2 tasks)" in lines[0] and "(1 task)" in lines[-2]
    _, meta = final(tmp_path / "a")
    assert meta["world_size"] == 2 and meta["complete"]
    assert (tmp_path / "fx" / "cifar-10-batches-py" / "test_batch").is_file()


@pytest.mark.slow
def test_a_failing_step_names_itself(eval_data: Path, tmp_path: Path) -> None:
    bad = Step("pretrain nothing", "pretrain", ("--method", "nosuch", "--data", str(eval_data), "--preset", "test"))
    with pytest.raises(RuntimeError, match=r"step 1 \(pretrain nothing\) failed in job"):
        submit_plan([bad], tmp_path / "jobs", "local", procs=1, gpus=0, timeout_min=5, log=lambda s: None)


@pytest.mark.slow
def test_a_preempted_run_is_requeued_and_ends_with_the_uninterrupted_weights(eval_data: Path, tmp_path: Path) -> None:
    submit_plan([pretrain(eval_data, tmp_path / "whole")], tmp_path / "jobs", "local", procs=2, gpus=0,
                timeout_min=10, log=lambda s: None)
    step = pretrain(eval_data, tmp_path / "cut")
    ex = make_executor("local", tmp_path / "jobs", 2, gpus=0, timeout_min=10, partition=None)
    job = ex.submit(StepJob(step.module, step.args))
    deadline = time.time() + 300
    while not list((tmp_path / "cut").glob("*/resume.pt")):                  # the first checkpoint (step 3)
        assert time.time() < deadline and not job.done(), job.stderr()
        time.sleep(0.2)
    preempt(job)
    job.results()
    out = job.stdout() + (job.stderr() or "")
    assert "Requeued" in out or "requeue" in out.lower(), out
    whole, meta = final(tmp_path / "whole")
    cut, meta_cut = final(tmp_path / "cut")
    assert meta_cut["complete"] and meta_cut["world_size"] == meta["world_size"] == 2
    assert whole.keys() == cut.keys() and all(torch.equal(whole[k], cut[k]) for k in whole)
    (run,) = [p for p in (tmp_path / "cut").iterdir() if (p / "log.jsonl").exists()]
    logged = [line for line in (run / "log.jsonl").read_text().splitlines() if line.strip()]
    assert len(logged) == 12                                                   # every step once, none twice
