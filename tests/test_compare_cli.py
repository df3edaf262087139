"""src/03_compare.py as a real subprocess on runs whose metrics.csv a real Logger wrote."""

import math
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

import test_engine_toy_task  # noqa: F401  registers toy_regression, whose metrics are bare names
from compare_support import log_values, metric_block
import prewarmed
from conftest import REPO_ROOT, SRC, run_script, subprocess_env
from training.task import Task, register_task
from utils.logging import Logger
from utils.management import create_run, experiment_path

TESTS = Path(__file__).resolve().parent


@register_task
class R2Task(Task):
    """A regression task that declares r2 larger-is-better; 03_compare only reads its directions."""

    name = "toy_r2"
    metrics = {"loss": "min", "r2": "max"}


def _compare_with_test_tasks(*args: str) -> subprocess.CompletedProcess:
    """03_compare.py as a user runs it, after this module registered its tasks."""
    env = subprocess_env()
    env["PYTHONPATH"] = f"{TESTS}:{env['PYTHONPATH']}"
    command = [sys.executable, str(TESTS / "with_tasks.py"), "test_compare_cli", str(SRC / "03_compare.py"), *args]
    return prewarmed.run(command, timeout=120, env=env, cwd=REPO_ROOT)


def _log_run(run: str, rate: float, steps: int = 100) -> None:
    """train/loss every step; val/loss and val/accuracy every 20 steps; `rate` sets the speed."""
    create_run("exp", run, {"task": "digits", "seed": 0})
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
    create_run("exp", "empty", {"task": "digits", "seed": 0})
    return experiment_path("exp")


def test_default_compares_validation_metrics_and_writes_plots(experiment):
    result = run_script("03_compare.py", "-e", "exp")
    assert result.returncode == 0, result.stderr
    loss = metric_block(result.stdout, "val/loss")
    assert [line.split()[:2] for line in loss[:2]] == [["*", "fast"], ["slow", f"{2 * math.exp(-99 / 60) + 0.1:.6g}"]]
    assert loss[0].split()[2:] == [f"{2 * math.exp(-99 / 20) + 0.1:.6g}", "99", f"{2 * math.exp(-99 / 20) + 0.1:.6g}", "99"]
    assert loss[2].split() == ["empty", "no", "metrics", "yet"]
    accuracy = metric_block(result.stdout, "val/accuracy")
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
    train = metric_block(result.stdout, "train/loss")
    assert "train/loss (max is best)" in result.stdout
    assert [line.split()[:3] for line in train] == [["*", "fast", "2"], ["*", "slow", "2"]]  # a tie at step 0
    assert metric_block(result.stdout, "val/accuracy")[0].split()[:2] == ["*", "fast"]
    assert "empty" not in result.stdout
    assert not list(experiment.glob("comparison_*.png"))


def test_a_task_from_a_test_file_declares_r2_larger_is_better_and_an_undeclared_metric_gets_no_winner():
    log_values("reg", "good", "toy_r2", {0: {"val/r2": 0.5, "val/loss": 0.3}, 1: {"val/r2": 0.9, "val/loss": 0.2}})
    log_values("reg", "poor", "toy_r2", {0: {"val/r2": 0.2, "val/loss": 0.6}, 1: {"val/r2": 0.4, "val/loss": 0.5}})
    log_values("reg", "toy-a", "toy_regression", {0: {"val/mae": 0.3, "val/loss": 0.1}})  # mae: a bare name
    log_values("reg", "toy-b", "toy_regression", {0: {"val/mae": 0.1, "val/loss": 0.4}})
    result = _compare_with_test_tasks("-e", "reg", "--no-plot")
    assert result.returncode == 0, result.stderr
    assert "val/r2 (max is best)" in result.stdout
    assert [line.split()[:2] for line in metric_block(result.stdout, "val/r2")[:2]] == [["*", "good"], ["poor", "0.4"]]
    assert "val/mae (direction unknown: no winner; --mode val/mae=max or =min chooses one)" in result.stdout
    assert [line.split() for line in metric_block(result.stdout, "val/mae")[:2]] == [
        ["toy-a", "-", "-", "0.3", "0"], ["toy-b", "-", "-", "0.1", "0"],  # in order, final values only, no '*'
    ]
    assert metric_block(result.stdout, "val/loss")[0].split()[:2] == ["*", "toy-a"]  # both tasks minimise `loss`
    chosen = _compare_with_test_tasks("-e", "reg", "--no-plot", "--mode", "val/mae=min")
    assert chosen.returncode == 0, chosen.stderr
    assert metric_block(chosen.stdout, "val/mae")[0].split()[:2] == ["*", "toy-b"]


def test_runs_whose_tasks_disagree_or_cannot_be_loaded_get_no_winner():
    log_values("mixed", "known", "digits", {0: {"val/accuracy": 0.9}})
    log_values("mixed", "gone", "deleted_task", {0: {"val/accuracy": 0.5}})
    result = run_script("03_compare.py", "-e", "mixed", "--no-plot")
    assert result.returncode == 0, result.stderr
    assert "note: task 'deleted_task' cannot be loaded" in result.stderr and "Traceback" not in result.stderr
    assert "val/accuracy (direction unknown" in result.stdout
    assert "*" not in "".join(metric_block(result.stdout, "val/accuracy"))


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
    assert metric_block(result.stdout, "val/loss")[0].split()[:2] == ["*", "fast"]


def test_an_explicit_experiment_wins_over_current_exp_even_when_empty(experiment):
    result = run_script("03_compare.py", "-e", "", "--no-plot", CURRENT_EXP="exp")
    assert result.returncode == 2
    assert "invalid experiment name ''" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_help_shows_examples():
    result = run_script("03_compare.py", "--help")
    assert result.returncode == 0
    assert "examples:" in result.stdout and "--mode val/f1=max" in result.stdout
