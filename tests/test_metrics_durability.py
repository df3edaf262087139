"""SIGKILL a real training at chosen moments, `--resume` each time: metrics.csv and TensorBoard
end with every step exactly once and every column on the rows where it belongs.

The bounded form runs in `make test`; the long form runs when DURABILITY_KILLS is set, e.g.
`DURABILITY_KILLS=40 .venv/bin/python -m pytest tests/test_metrics_durability.py -k long -s -n 0`,
and prints kills, resumes and steps checked.
"""

import os
import random
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from train_support import make_run, read_metrics, start_training, tensorboard_steps, train

pytestmark = pytest.mark.slow

EPOCHS, STEPS_PER_EPOCH = 6, 20  # the example's 1257 training digits in batches of 64
STEPS = EPOCHS * STEPS_PER_EPOCH
EVERY_STEP = ("train/loss", "lr")
EPOCH_END = ("train/epoch_loss", "train/epoch_accuracy", "epoch", "val/loss", "val/accuracy")
LAST_STEP = ("test/loss", "test/accuracy")
BOUND_S = 120  # generous: the machine is shared


def _last_inode(checkpoints: Path) -> int | None:
    try:
        return (checkpoints / "last.pt").stat().st_ino
    except FileNotFoundError:
        return None


def _temp_files(checkpoints: Path) -> set[str]:
    """Temp files of last.pt, an epoch file or best.pt: a checkpoint being written (or a killed one's)."""
    if not checkpoints.is_dir():
        return set()
    return {name for name in os.listdir(checkpoints) if name.startswith(".") and name.endswith(".tmp")}


def _resumes_logged(run_dir: Path) -> int:
    log = run_dir / "logs" / "log.txt"
    return log.read_text(encoding="utf-8").count("resuming from") if log.is_file() else 0


def _kill_at(run_dir: Path, moment: str, rng: random.Random, resume: bool) -> bool:
    """Start (or resume) training and SIGKILL it at `moment`; False when it finished first.

    after_save: as soon as last.pt is replaced; during_save: as soon as a checkpoint's temp
    file exists; random: a random delay (up to 1.5 s) after the resume began training.
    """
    checkpoints = run_dir / "checkpoints"
    inode, resumes, stale = _last_inode(checkpoints), _resumes_logged(run_dir), _temp_files(checkpoints)
    ready = {
        "after_save": lambda: _last_inode(checkpoints) not in (None, inode),
        "during_save": lambda: bool(_temp_files(checkpoints) - stale),
        "random": lambda: _resumes_logged(run_dir) > resumes,
    }[moment]
    process = start_training("exp", run_dir.name, *(["--resume"] if resume else []))
    try:
        deadline = time.monotonic() + BOUND_S
        while not ready():
            if process.poll() is not None:
                assert process.returncode == 0, process.stderr.read()
                return False
            assert time.monotonic() < deadline, f"no {moment} moment within {BOUND_S} s"
            time.sleep(0.0005 if moment == "during_save" else 0.005)
        if moment == "random":
            time.sleep(rng.uniform(0, 1.5))  # the kill's moment itself is what is tested
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=BOUND_S)
        return process.returncode == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def _check_every_step_once(run_dir: Path) -> None:
    """Every step once; each column present exactly on the rows where the loop logs it."""
    frame = read_metrics(run_dir)
    assert frame["step"].tolist() == list(range(STEPS))
    epoch_end = np.isin(frame["step"], np.arange(STEPS_PER_EPOCH - 1, STEPS, STEPS_PER_EPOCH))
    for column in (*EVERY_STEP, *EPOCH_END, *LAST_STEP):
        assert column in frame.columns, f"column {column} is missing"
        present = frame[column].notna().to_numpy()
        expected = (
            np.ones(STEPS, bool) if column in EVERY_STEP
            else epoch_end if column in EPOCH_END
            else frame["step"].to_numpy() == STEPS - 1
        )
        holes = frame["step"][present != expected].tolist()
        assert not holes, f"{column} is wrong at steps {holes}"
    assert frame["epoch"].dropna().tolist() == list(range(1, EPOCHS + 1))
    assert tensorboard_steps(run_dir, "train/loss") == list(range(STEPS))
    assert tensorboard_steps(run_dir, "val/loss") == list(range(STEPS_PER_EPOCH - 1, STEPS, STEPS_PER_EPOCH))


def _kill_loop(run: str, moments: list[str], seed: int) -> int:
    """Kill at each moment in turn (the first must be after_save: a resume needs a checkpoint),
    resume to the end, check the outputs; returns the number of kills (resumes: kills + 1)."""
    rng = random.Random(seed)
    run_dir = make_run("exp", run, f"training.epochs={EPOCHS}")
    kills = 0
    for moment in moments:
        if not _kill_at(run_dir, moment, rng, resume=kills > 0):
            break  # the run finished before this moment came
        kills += 1
    finished = train("exp", run, "--resume", timeout=BOUND_S)
    assert finished.returncode == 0, finished.stderr
    _check_every_step_once(run_dir)
    return kills


@pytest.mark.timeout(240)
def test_sigkills_after_during_and_between_saves_leave_every_step_once_with_every_column():
    # The first two always come before the run ends (each needs one more save, and 6 epochs
    # give at least 2); the random kill may come after the end on a fast machine.
    kills = _kill_loop("killed", ["after_save", "during_save", "random"], seed=0)
    assert kills >= 2, "the run must be killed right after a save and during one"


@pytest.mark.skipif(not os.environ.get("DURABILITY_KILLS"), reason="long form: set DURABILITY_KILLS=N")
@pytest.mark.timeout(3600)
def test_long_sigkill_loop_leaves_every_step_once_with_every_column():
    total, rounds, killed = int(os.environ["DURABILITY_KILLS"]), 0, 0
    rng = random.Random(int(os.environ.get("DURABILITY_SEED", "1")))
    while killed < total:
        moments = ["after_save"] + [rng.choice(["after_save", "during_save", "random"]) for _ in range(5)]
        killed += _kill_loop(f"killed-{rounds}", moments, seed=rng.randrange(2**32))
        rounds += 1
    print(f"\ndurability: {killed} kills, {killed + rounds} resumes, {rounds} runs, {rounds * STEPS} steps checked")
