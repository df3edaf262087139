"""A rank that stops arriving is named: under a real torchrun with two gloo ranks, rank 1 of a task
defined here sleeps in one training step; the watchdog dumps both stacks, rank 0 names rank 1 and
its step on the console and in log.txt, and every rank exits 124 instead of waiting for ever."""

import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from conftest import REPO_ROOT, SRC, run_in_group, subprocess_env
from training.hang_watchdog import EXIT_HANG
from sum_toy import SumToy
from training.task import Datasets, StepOutput, register_task
from utils.management import create_run

pytestmark = pytest.mark.slow

TESTS = Path(__file__).resolve().parent
SLEEP_AT = 3  # rank 1 sleeps in its third training batch: global step 2
TIMEOUT_S = 2.0


def nap_until_killed() -> None:
    """The frame the stack dump of rank 1 must show."""
    time.sleep(600)


@register_task
class SleepyToy(SumToy):
    """A linear regression whose rank 1 stops arriving in its `SLEEP_AT`-th training batch."""

    name = "toy_sleepy"
    batches = 0

    def build_datasets(self) -> Datasets:
        x = torch.randn(64, 2, generator=torch.Generator().manual_seed(0))  # (N, 2)
        data = TensorDataset(x, x.sum(dim=1, keepdim=True))
        return Datasets(data, data, data)

    def train_step(self, model: nn.Module, batch: Any) -> StepOutput:
        self.batches += 1
        if self.context.rank == 1 and self.batches == SLEEP_AT:
            nap_until_killed()
        x, y = batch
        return StepOutput(nn.functional.mse_loss(model(x), y), len(y))


CONFIG = {
    "task": "toy_sleepy", "data": {"batch_size": 4},
    "training": {"epochs": 1, "stop_check_every": 1, "draw_every": None},
    "distributed": {"hang_timeout_s": TIMEOUT_S},
    "logging": {"tensorboard": False, "wandb": False},
}
# torchrun's report of a failed worker: `rank      : 1 (local_rank: 1)` then `exitcode  : 124 (pid: ...)`
EXIT_REPORT = re.compile(r"rank\s*:\s*(\d+) \(local_rank: \d+\)\s*\n\s*exitcode\s*:\s*(-?\d+)")
WORKER = "import runpy, sys, test_hang_watchdog\nsys.argv = [{script!r}, *sys.argv[1:]]\nrunpy.run_path({script!r}, run_name='__main__')\n"


@pytest.fixture(scope="module")
def hung(tmp_path_factory) -> tuple[Path, Any]:
    """One torchrun job whose rank 1 sleeps: (its run folder, its completed process)."""
    root = tmp_path_factory.mktemp("hang")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EXPERIMENTS_ROOT", str(root / "experiments"))
        run_dir = create_run("exp", "hang", CONFIG)
        worker = root / "worker.py"
        worker.write_text(WORKER.format(script=str(SRC / "02_train.py")))
        env = subprocess_env(OMP_NUM_THREADS="1")
        env["PYTHONPATH"] = f"{TESTS}{os.pathsep}{env['PYTHONPATH']}"
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                   str(worker), "-e", "exp", "-r", "hang", "--device", "cpu"]
        # bounded: without the watchdog rank 0 would wait in gloo's all-reduce for ten minutes
        done = run_in_group(command, timeout=90, cwd=REPO_ROOT, env=env)
    return run_dir, done


def test_every_rank_exits_with_the_hang_code_instead_of_waiting(hung):
    _, done = hung
    assert done.returncode != 0, "torchrun reports the workers' exits as a failure"
    assert dict(EXIT_REPORT.findall(done.stderr)) == {"0": str(EXIT_HANG), "1": str(EXIT_HANG)}, done.stderr[-3000:]


def test_rank_0_names_the_rank_that_did_not_arrive_and_its_step_on_the_console_and_in_the_log(hung):
    run_dir, done = hung
    # only rank 1 is named, with the phase and the step it is stuck in
    named = re.compile(r"did not arrive: rank 1 in the forward pass at step 2 for [\d.]+ s\. Stacks in ")
    assert named.search(done.stderr), done.stderr[-3000:]
    assert named.search((run_dir / "logs" / "log.txt").read_text())


def test_each_rank_dumps_its_stack_and_rank_1_shows_the_sleeping_frame(hung):
    run_dir, _ = hung
    assert "in nap_until_killed" in (run_dir / "logs" / "hang-rank1.txt").read_text()
    rank0 = (run_dir / "logs" / "hang-rank0.txt").read_text()
    assert rank0.startswith("rank 0: in the backward pass") and "in train_epoch" in rank0
