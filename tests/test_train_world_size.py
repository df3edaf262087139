"""Resume on another number of ranks: a run cut part-way through an epoch under N ranks resumes
under M (2->1 and 1->2: a real torchrun with gloo ranks, and `02_train.main` in this process), and
every training sample is trained exactly once per epoch; the step counter and the schedule go on."""

import importlib.util
import os
import signal
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from conftest import REPO_ROOT, SRC, run_in_group, subprocess_env
from train_support import read_metrics
from sum_toy import SumToy
from training.task import Datasets, StepOutput, register_task
from training.trainer import Trainer
from utils.checkpointing.io import load_checkpoint
from utils.management import create_run

pytestmark = pytest.mark.slow

TESTS = Path(__file__).resolve().parent
SAMPLES, BATCH, EPOCHS = 48, 4, 2  # 48 divides over 1 and 2 ranks: no epoch drops a sample


@register_task
class CountingToy(SumToy):
    """A linear regression whose training steps write `<epoch> <sample index>` lines to a file per
    process in `TOY_SEEN_DIR`, and whose rank `TOY_SIGTERM_RANK` sends itself a real SIGTERM in
    its `TOY_SIGTERM_AT`-th training batch (the epoch comes from the worker below)."""

    name = "toy_counting"
    batches = 0
    epoch = -1  # set by the worker before each epoch

    def build_datasets(self) -> Datasets:
        x = torch.randn(SAMPLES, 2, generator=torch.Generator().manual_seed(0))  # (N, 2)
        train = TensorDataset(x, x.sum(dim=1, keepdim=True), torch.arange(SAMPLES))
        return Datasets(train, TensorDataset(x, x.sum(dim=1, keepdim=True)), TensorDataset(x, x.sum(dim=1, keepdim=True)))

    def train_step(self, model: nn.Module, batch: Any) -> StepOutput:
        x, y, index = batch
        self.batches += 1
        seen = Path(os.environ["TOY_SEEN_DIR"]) / f"rank{self.context.rank}-pid{os.getpid()}.txt"
        with seen.open("a") as file:
            file.writelines(f"{CountingToy.epoch} {i}\n" for i in index.tolist())
        if self.context.rank == int(os.environ.get("TOY_SIGTERM_RANK", "-1")) and \
                self.batches == int(os.environ.get("TOY_SIGTERM_AT", "0")):
            os.kill(os.getpid(), signal.SIGTERM)
        return StepOutput(nn.functional.mse_loss(model(x), y), len(y))


CONFIG = {
    "task": "toy_counting", "data": {"batch_size": BATCH},
    "optimizer": {"lr": 0.01},
    "training": {"epochs": EPOCHS, "stop_check_every": 1, "draw_every": None, "checkpoint_every": 1},
    # short enough to fire if any phase of these healthy runs waited on a peer that long
    "distributed": {"hang_timeout_s": 20.0},
    "logging": {"tensorboard": False, "wandb": False},
}
# 02_train.py as a user runs it, once this module registered its task; the loop tells the task its epoch
WORKER = """\
import runpy, sys
import test_train_world_size
from training.trainer import Trainer

train_epoch = Trainer.train_epoch


def train_epoch_telling_the_task(self):
    test_train_world_size.CountingToy.epoch = self.state.epoch
    return train_epoch(self)


Trainer.train_epoch = train_epoch_telling_the_task
sys.argv = [{script!r}, *sys.argv[1:]]
runpy.run_path({script!r}, run_name="__main__")
"""


def _launch(worker: Path, ranks: int, seen: Path, *args: str, **env: str) -> int:
    """`02_train.py` under torchrun with `ranks` gloo ranks (bounded), or with one rank `main` in
    this process (a torch start saved); returns the exit code."""
    argv = ["-e", "exp", "-r", "run", "--device", "cpu", *args]
    if ranks == 1:
        return _train_here(seen, argv, env)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={ranks}",
               str(worker), *argv]
    environment = subprocess_env(OMP_NUM_THREADS="1", TOY_SEEN_DIR=str(seen), **env)
    environment["PYTHONPATH"] = f"{TESTS}{os.pathsep}{environment['PYTHONPATH']}"
    done = run_in_group(command, timeout=120, cwd=REPO_ROOT, env=environment)
    assert done.returncode in (0, 1), done.stderr[-3000:]  # 1: torchrun reports the ranks' 143 as a failure
    return done.returncode


def _train_here(seen: Path, argv: list[str], env: dict[str, str]) -> int:
    spec = importlib.util.spec_from_file_location("train_cli_world_size", SRC / "02_train.py")
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    train_epoch = Trainer.train_epoch

    def train_epoch_telling_the_task(self: Trainer) -> bool:
        CountingToy.epoch = self.state.epoch
        return train_epoch(self)

    with pytest.MonkeyPatch.context() as patch:
        for name, value in {"TOY_SEEN_DIR": str(seen), **env}.items():
            patch.setenv(name, value)
        patch.setattr(Trainer, "train_epoch", train_epoch_telling_the_task)
        return cli.main(argv)


def _appearances(seen: Path) -> dict[int, Counter]:
    """How often each sample was trained, per epoch, over every process of every session."""
    counts: dict[int, Counter] = {}
    for path in seen.glob("rank*.txt"):
        for line in path.read_text().splitlines():
            epoch, index = map(int, line.split())
            counts.setdefault(epoch, Counter())[index] += 1
    return counts


# (ranks before, ranks after, the batch of the rank that is signalled, the steps before the stop, after)
CASES = {
    "2->1": (2, 1, 8, 8, 8),  # 6 steps an epoch on 2 ranks; stop 2 steps into epoch 2; 32 samples left: 8 steps
    "1->2": (1, 2, 15, 15, 5),  # 12 steps an epoch on 1 rank; stop 3 steps into epoch 2; 36 left: 18 a rank, 5 steps
}


@pytest.mark.parametrize("case", CASES)
def test_a_run_cut_under_n_ranks_and_resumed_under_m_trains_every_sample_once_per_epoch(tmp_path, case):
    before, after, signal_at, steps_before, steps_after = CASES[case]
    run_dir = create_run("exp", "run", CONFIG)
    seen = tmp_path / "seen"
    seen.mkdir()
    worker = tmp_path / "worker.py"
    worker.write_text(WORKER.format(script=str(SRC / "02_train.py")))

    cut = _launch(worker, before, seen, TOY_SIGTERM_RANK=str(before - 1), TOY_SIGTERM_AT=str(signal_at))
    assert cut == (143 if before == 1 else 1)
    saved = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert (saved["epoch"], saved["global_step"]) == (1, steps_before), "stopped part-way through epoch 2"
    assert saved["extra"]["position"]["world_size"] == before

    assert _launch(worker, after, seen, "--resume") == 0

    counts = _appearances(seen)
    assert sorted(counts) == list(range(EPOCHS))
    for epoch, counter in counts.items():
        assert counter == Counter(range(SAMPLES)), f"epoch {epoch}: a sample trained twice or skipped"
    log = (run_dir / "logs" / "log.txt").read_text()
    assert f"world size changed from {before} to {after} ranks" in log and "cannot be bit-identical" in log
    assert not list((run_dir / "logs").glob("hang-rank*.txt")), "no watchdog fires on a healthy run"

    # the step counter goes on: every step once; the schedule goes on from where it was to its end
    total = steps_before + steps_after + (EPOCHS - 2) * SAMPLES // BATCH // after
    metrics = read_metrics(run_dir)
    assert metrics["step"].tolist() == list(range(total))
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["global_step"] == total
    lr, peak = metrics.set_index("step")["lr"].dropna(), CONFIG["optimizer"]["lr"]
    assert abs(lr[steps_before] - lr[steps_before - 1]) < 0.2 * peak, "no jump in the learning rate at the resume"
    assert lr[total - 1] < 0.1 * peak, "the cosine schedule ends where the epochs end"
