"""Helpers shared by the training tests: tiny runs, training subprocesses, readers."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

import prewarmed
from conftest import REPO_ROOT, SRC, subprocess_env
from utils.configs import apply_overrides, load_config_template
from utils.management import create_run

FAST = [
    "training.epochs=3", "training.checkpoint_every=1", "logging.wandb=false",
    "logging.tensorboard=true", "data.batch_size=64", "training.draw_every=null",
]


def make_run(exp: str, run: str, *overrides: str) -> Path:
    """A run of the example config with FAST settings, then `overrides`."""
    config = apply_overrides(load_config_template("default"), [*FAST, *overrides])
    return create_run(exp, run, config)


def train_command(exp: str, run: str, *args: str) -> list[str]:
    return [sys.executable, str(SRC / "02_train.py"), "-e", exp, "-r", run, "--device", "cpu", *args]


def train(exp: str, run: str, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    """Run 02_train.py to completion, bounded in time (forked from the prewarmed interpreter)."""
    return prewarmed.run(train_command(exp, run, *args), timeout=timeout, env=subprocess_env(), cwd=REPO_ROOT)


def start_training(exp: str, run: str, *args: str) -> subprocess.Popen:
    return prewarmed.popen(
        train_command(exp, run, *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=subprocess_env(), cwd=REPO_ROOT,
    )


def wait_for(condition, process: subprocess.Popen, timeout: float = 120) -> None:
    """Poll `condition()` until true; fail early when the process ends first."""
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"training ended (code {process.returncode}) first:\n{process.stderr.read()}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def signal_once_ready(command: list[str], ready, signum: int = signal.SIGTERM, env: dict | None = None) -> int:
    """Start `command`, send `signum` once `ready()` holds, return its exit code (bounded in time)."""
    process = prewarmed.popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=env or subprocess_env(), cwd=REPO_ROOT)
    try:
        wait_for(ready, process)
        process.send_signal(signum)
        process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return process.returncode


def read_metrics(run_dir: Path) -> pd.DataFrame:
    return pd.read_csv(run_dir / "logs" / "metrics.csv")


def assert_perf_at_every_epoch(metrics: pd.DataFrame, steps_per_epoch: int, samples_per_epoch: int) -> None:
    """perf/* on each epoch's last step; samples/s x the epoch's wall time is every rank's samples."""
    perf = metrics.dropna(subset=["perf/samples_per_s"])
    assert list(perf["step"]) == list(metrics.dropna(subset=["train/epoch_loss"])["step"])
    assert list(perf["epoch"]) == list(range(1, len(perf) + 1)) and len(perf) >= 2
    seconds = perf["perf/step_ms"] / 1000 * steps_per_epoch
    assert (perf["perf/samples_per_s"] * seconds).round().tolist() == [samples_per_epoch] * len(perf)
    assert perf["perf/data_wait_fraction"].between(0, 1).all()
    assert (perf["perf/peak_memory_mb"] > 50).all()  # the process's peak RSS: torch alone is more
    assert "perf/mfu" not in metrics, "no MFU on the CPU"


def tensorboard_steps(run_dir: Path, tag: str) -> list[int]:
    """Steps of a scalar tag as TensorBoard's own reader sees them."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    steps: list[int] = []
    for folder in sorted({p.parent for p in (run_dir / "logs").rglob("events.out.tfevents.*")}):
        accumulator = EventAccumulator(str(folder), size_guidance={"scalars": 0})
        accumulator.Reload()
        if tag in accumulator.Tags()["scalars"]:
            steps += [event.step for event in accumulator.Scalars(tag)]
    return sorted(steps)
