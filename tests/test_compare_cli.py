"""src/03_compare.py as a real subprocess on runs whose metrics.csv a real Logger wrote."""

import math
from pathlib import Path

import pytest
from PIL import Image

from conftest import run_script
from utils.logging import Logger
from utils.management import create_run, experiment_path


def _log_run(run: str, rate: float, steps: int = 100) -> None:
    """train/loss every step; val/loss and val/accuracy every 20 steps; `rate` sets the speed."""
    create_run("exp", run, {"seed": 0})
    logger = Logger("exp", run)
    logger.initialize_csv()
    for step in range(steps):
        logger.log({"train/loss": 2 * math.exp(-step / rate)}, step)
        if step % 20 == 19:
            value = math.exp(-step / rate)
            logger.log({"val/loss": 2 * value + 0.1, "val/accuracy": 1 - value}, step)
    logger.finish()


@pytest.fixture
def experiment() -> Path:
    """Runs `fast` (better) and `slow`, plus `empty` that has not logged anything yet."""
    _log_run("fast", rate=20.0)
    _log_run("slow", rate=60.0)
    create_run("exp", "empty", {"seed": 0})
    return experiment_path("exp")


def _block(stdout: str, metric: str) -> list[str]:
    """The table lines of one metric (header line excluded)."""
    blocks = [block.splitlines() for block in stdout.strip().split("\n\n")]
    return next(lines[2:] for lines in blocks if lines[0].startswith(metric + " ("))


def test_default_compares_validation_metrics_and_writes_plots(experiment):
    result = run_script("03_compare.py", "-e", "exp")
    assert result.returncode == 0, result.stderr
    loss = _block(result.stdout, "val/loss")
    assert [line.split()[:2] for line in loss[:2]] == [["*", "fast"], ["slow", f"{2 * math.exp(-99 / 60) + 0.1:.6g}"]]
    assert loss[0].split()[2:] == [f"{2 * math.exp(-99 / 20) + 0.1:.6g}", "99", f"{2 * math.exp(-99 / 20) + 0.1:.6g}", "99"]
    assert loss[2].split() == ["empty", "no", "metrics", "yet"]
    accuracy = _block(result.stdout, "val/accuracy")
    assert "val/accuracy (max is best)" in result.stdout and "val/loss (min is best)" in result.stdout
    assert accuracy[0].split()[:2] == ["*", "fast"]
    assert "train/loss" not in result.stdout  # default: val/ and test/ metrics only
    for name in ("comparison_val_loss.png", "comparison_val_accuracy.png"):
        assert f"plot: {experiment / name}" in result.stdout
        with Image.open(experiment / name) as image:
            assert image.format == "PNG"


def test_chosen_runs_short_metric_name_and_mode_override(experiment):
    result = run_script(
        "03_compare.py", "-e", "exp", "-r", "slow", "fast", "-m", "accuracy", "train/loss",
        "--mode", "train/loss=max", "--no-plot",
    )
    assert result.returncode == 0, result.stderr
    train = _block(result.stdout, "train/loss")
    assert "train/loss (max is best)" in result.stdout
    assert [line.split()[:3] for line in train] == [["*", "fast", "2"], ["*", "slow", "2"]]  # a tie at step 0
    assert _block(result.stdout, "val/accuracy")[0].split()[:2] == ["*", "fast"]
    assert "empty" not in result.stdout
    assert not list(experiment.glob("comparison_*.png"))


def test_experiment_whose_runs_have_no_metrics_yet_is_listed(experiment):
    create_run("fresh", "r1", {"seed": 0})
    result = run_script("03_compare.py", "-e", "fresh", "-m", "val/loss")
    assert result.returncode == 0, result.stderr
    assert "r1: no metrics yet" in result.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["-e", "nope"], "experiment 'nope' does not exist"),
        (["-e", "exp", "-r", "ghost"], "run exp/ghost does not exist"),
        (["-e", "exp", "-m", "val/f1"], "unknown metric 'val/f1': available metrics are train/loss, val/loss"),
        (["-e", "exp", "-m", "loss"], "metric 'loss' is ambiguous: matches train/loss, val/loss"),
        (["-e", "exp", "--mode", "val/loss=up"], "--mode 'val/loss=up': expected METRIC=max"),
        (["-e", "exp", "--bogus"], "unrecognized arguments: --bogus"),
        ([], "no experiment name: pass -e/--experiment NAME or set CURRENT_EXP"),
        (["-e", ""], "invalid experiment name ''"),
    ],
)
def test_usage_errors_exit_2_with_one_line(experiment, args, message):
    result = run_script("03_compare.py", *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr


def test_experiment_falls_back_to_current_exp(experiment):
    result = run_script("03_compare.py", "--no-plot", CURRENT_EXP="exp")
    assert result.returncode == 0, result.stderr
    assert _block(result.stdout, "val/loss")[0].split()[:2] == ["*", "fast"]


def test_an_explicit_experiment_wins_over_current_exp_even_when_empty(experiment):
    result = run_script("03_compare.py", "-e", "", "--no-plot", CURRENT_EXP="exp")
    assert result.returncode == 2
    assert "invalid experiment name ''" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_help_shows_examples():
    result = run_script("03_compare.py", "--help")
    assert result.returncode == 0
    assert "examples:" in result.stdout and "--mode val/f1=max" in result.stdout
