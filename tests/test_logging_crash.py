"""Crash safety with real processes: SIGKILL at a random moment, and an exit without finish()."""

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest
import prewarmed
from conftest import subprocess_env
from test_logging_tensorboard import read_events, scalar_steps
from test_logging_wandb import wandb_file, wandb_history

from utils.management import run_path

SAFE_AGE = 3.0  # seconds: the promise is ~2 s (1 s flush period + 1 s hold of the last row)

STEADY_LOGGER = textwrap.dedent("""
    import itertools, time
    from utils.logging import Logger

    logger = Logger("exp", "crash")
    logger.initialize_csv()
    logger.initialize_tensorboard()
    for step in itertools.count():
        metrics = {"loss": 1.0 / (step + 1)}
        if step % 50 == 49:
            metrics[f"extra{step}"] = step / 7  # a new column: the CSV is rewritten atomically
        logger.log(metrics, step=step)
        print(step, time.monotonic(), flush=True)
        time.sleep(0.005)  # pace: about 200 steps per second
""")

EXIT_WITHOUT_FINISH = textwrap.dedent("""
    from utils.logging import Logger

    logger = Logger("exp", "atexit")
    logger.initialize_csv()
    logger.initialize_tensorboard()
    logger.initialize_wandb("template-tests")
    for step in range(50):
        logger.log({"loss": step / 50}, step=step)
    raise RuntimeError("training crashed before finish()")
""")


def start(script: Path, code: str) -> subprocess.Popen:
    script.write_text(code)
    return prewarmed.popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, env=subprocess_env())


@pytest.mark.slow
def test_after_sigkill_csv_and_events_hold_every_step_older_than_two_seconds(tmp_path):
    seed = random.randrange(2**32)
    kill_after = random.Random(seed).uniform(3.0, 6.0)  # seconds of steady logging
    process = start(tmp_path / "steady.py", STEADY_LOGGER)
    logged: dict[int, float] = {}
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            assert line, f"the logging process ended early: {process.stderr.read()}"
            step, stamp = line.split()
            logged[int(step)] = float(stamp)
            if logged[int(step)] - logged[0] >= kill_after:
                break
        os.kill(process.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        process.wait(timeout=30)
    finally:
        process.kill()
        process.stdout.close()
        process.stderr.close()
    must_have = max(step for step, stamp in logged.items() if stamp <= killed_at - SAFE_AGE)
    log_dir = run_path("exp", "crash") / "logs"

    frame = pd.read_csv(log_dir / "metrics.csv")
    steps = frame["step"].tolist()
    context = f"seed {seed}: must have 0..{must_have}, file has {len(steps)} rows"
    assert steps == list(range(len(steps))), context
    assert len(steps) > must_have, context
    assert frame["loss"].tolist() == [1.0 / (s + 1) for s in steps]
    for column in (c for c in frame.columns if c.startswith("extra")):
        step = int(column[5:])
        assert frame[column].dropna().to_dict() == ({step: step / 7} if step in steps else {})

    tb_steps = [step for step, _ in scalar_steps(read_events(log_dir), "loss")]
    assert tb_steps == list(range(len(tb_steps))) and len(tb_steps) > must_have, context


@pytest.mark.slow
def test_an_exit_without_finish_still_completes_every_output(tmp_path):
    process = start(tmp_path / "atexit.py", EXIT_WITHOUT_FINISH)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 1 and "training crashed before finish()" in err
    log_dir = run_path("exp", "atexit") / "logs"
    assert pd.read_csv(log_dir / "metrics.csv")["loss"].tolist() == [s / 50 for s in range(50)]
    assert [step for step, _ in scalar_steps(read_events(log_dir), "loss")] == list(range(50))
    run_id = (log_dir / "wandb_run_id.txt").read_text().strip()
    assert [row["loss"] for row in wandb_history(wandb_file(log_dir, run_id))] == [s / 50 for s in range(50)]
