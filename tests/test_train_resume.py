"""Signals and exact resume: a real training subprocess, real SIGTERM/SIGINT, then --resume."""

import signal
from pathlib import Path

import pytest
import torch

from train_support import make_run, read_metrics, start_training, tensorboard_steps, train, wait_for
from utils.checkpointing.io import load_checkpoint

pytestmark = pytest.mark.slow

# Small batches make an epoch long (158 steps), so a signal sent after epoch 1 lands mid-run.
DETERMINISTIC = ("deterministic=true", "data.batch_size=8", "training.epochs=3", "model.channels=[8,16]", "model.hidden=32")
STEPS = 3 * 158


def _interrupt_after_first_epoch(run_dir: Path, exp: str, run: str, signum: int) -> tuple[int, str]:
    """Start training, send `signum` once epoch 1's checkpoint exists, return (code, stdout)."""
    process = start_training(exp, run)
    try:
        wait_for(lambda: (run_dir / "checkpoints" / "last.pt").exists(), process)  # epoch 1 saved
        process.send_signal(signum)
        stdout, _ = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return process.returncode, stdout


def _final_parameters(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(run_dir / "checkpoints" / "last.pt")["model"]


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_saves_last_and_a_resume_matches_an_uninterrupted_run(signum, code):
    reference = make_run("exp", "reference", *DETERMINISTIC)
    interrupted = make_run("exp", "interrupted", *DETERMINISTIC)
    assert train("exp", "reference").returncode == 0

    returncode, stdout = _interrupt_after_first_epoch(interrupted, "exp", "interrupted", signum)
    assert returncode == code
    stopped_at = load_checkpoint(interrupted / "checkpoints" / "last.pt")["global_step"]
    assert 158 <= stopped_at < STEPS, "the signal must stop training part-way"
    assert "resume with --resume" in stdout

    resumed = train("exp", "interrupted", "--resume")
    assert resumed.returncode == 0, resumed.stderr

    expected, actual = _final_parameters(reference), _final_parameters(interrupted)
    assert expected.keys() == actual.keys()
    for name in expected:
        assert torch.equal(expected[name], actual[name]), name

    metrics = read_metrics(interrupted)
    assert list(metrics["step"]) == list(range(STEPS))  # every step exactly once
    assert metrics["train/loss"].tolist() == read_metrics(reference)["train/loss"].tolist()
    assert tensorboard_steps(interrupted, "train/loss") == list(range(STEPS))


def test_resume_falls_back_to_the_newest_valid_checkpoint():
    run_dir = make_run("exp", "corrupt")
    assert train("exp", "corrupt", "--set", "training.epochs=2").returncode == 0
    (run_dir / "checkpoints" / "last.pt").write_bytes(b"not a checkpoint")
    resumed = train("exp", "corrupt", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "last.pt" in resumed.stdout + resumed.stderr  # says which file it skipped
    assert list(read_metrics(run_dir)["step"]) == list(range(60))
