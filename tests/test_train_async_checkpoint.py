"""training.async_checkpoint in real training subprocesses: SIGKILL during a background write leaves
last.pt valid, a SIGTERM's pending write is finished and the resume is exact."""

import os
import re
import signal
import time
from pathlib import Path

import pytest
import torch

from train_support import make_run, read_metrics, start_training, train, wait_for
from utils.checkpointing.io import load_checkpoint

pytestmark = pytest.mark.slow

ASYNC = "training.async_checkpoint=true"
BOUND_S = 120  # generous: the machine is shared


def _temp_files(checkpoints: Path) -> set[str]:
    if not checkpoints.is_dir():
        return set()
    return {name for name in os.listdir(checkpoints) if name.startswith(".") and name.endswith(".tmp")}


def _kill_during_a_background_write(run_dir: Path, resume: bool) -> int | None:
    """Start (or resume) training, SIGKILL it while a checkpoint's temp file is being written and a
    last.pt exists; returns last.pt's global_step when the write began, None when the run ended first."""
    checkpoints, last = run_dir / "checkpoints", run_dir / "checkpoints" / "last.pt"
    stale = _temp_files(checkpoints)
    process = start_training("exp", run_dir.name, *(["--resume"] if resume else []))
    try:
        deadline = time.monotonic() + BOUND_S
        while not (_temp_files(checkpoints) - stale and last.exists()):
            if process.poll() is not None:
                assert process.returncode == 0, process.stderr.read()
                return None
            assert time.monotonic() < deadline, f"no checkpoint write within {BOUND_S} s"
            time.sleep(0.0005)
        step_before = load_checkpoint(last)["global_step"]
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=BOUND_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return step_before


@pytest.mark.timeout(240)
def test_sigkill_during_background_writes_leaves_last_pt_valid_and_the_resume_finishes_every_step_once():
    epochs, steps_per_epoch = 3, 20
    run_dir = make_run("exp", "killed", ASYNC, f"training.epochs={epochs}")
    kills = 0
    for resume in (False, True):
        step_before = _kill_during_a_background_write(run_dir, resume)
        if step_before is None:
            break  # the run finished before a write could be caught
        kills += 1
        last = load_checkpoint(run_dir / "checkpoints" / "last.pt")  # raises if the kill broke it
        assert last["global_step"] >= step_before
    assert kills >= 1
    finished = train("exp", "killed", "--resume", timeout=BOUND_S)
    assert finished.returncode == 0, finished.stderr
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["global_step"] == epochs * steps_per_epoch
    assert read_metrics(run_dir)["step"].tolist() == list(range(epochs * steps_per_epoch))


@pytest.mark.timeout(240)
def test_sigterm_finishes_the_pending_write_and_the_resume_matches_an_uninterrupted_run():
    settings = (ASYNC, "deterministic=true", "data.batch_size=32", "training.epochs=2", "model.channels=[8,16]",
                "model.hidden=32")
    steps = 2 * 40
    reference, interrupted = make_run("exp", "reference", *settings), make_run("exp", "interrupted", *settings)
    assert train("exp", "reference", timeout=BOUND_S).returncode == 0

    process = start_training("exp", "interrupted")
    try:
        wait_for(lambda: (interrupted / "checkpoints" / "last.pt").exists(), process, timeout=BOUND_S)
        process.send_signal(signal.SIGTERM)
        stdout, _ = process.communicate(timeout=BOUND_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 143
    log = (interrupted / "logs" / "log.txt").read_text(encoding="utf-8")
    stop_step = int(re.search(r"stopped by SIGTERM in epoch \d+ at step (\d+)", log).group(1))
    assert load_checkpoint(interrupted / "checkpoints" / "last.pt")["global_step"] == stop_step < steps

    resumed = train("exp", "interrupted", "--resume", timeout=BOUND_S)
    assert resumed.returncode == 0, resumed.stderr
    expected = load_checkpoint(reference / "checkpoints" / "last.pt")["model"]
    actual = load_checkpoint(interrupted / "checkpoints" / "last.pt")["model"]
    for name in expected:
        assert torch.equal(expected[name], actual[name]), name
    assert read_metrics(interrupted)["train/loss"].tolist() == read_metrics(reference)["train/loss"].tolist()
