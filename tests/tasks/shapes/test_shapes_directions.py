"""03_compare ranks the shapes task's metrics by the directions the task declares."""

import copy

from compare_support import log_values, metric_block
from conftest import run_script
from sweeps.spec import parse_spec
from training.early_stopping import EarlyStoppingConfig
from training.run_config import parse_run_config
from training.task import find_task
from training.trainer_config import TrainingConfig
from utils.configs import load_config_template

SHARP = {0: {"val/miou": 0.4, "val/loss": 0.9}, 1: {"val/miou": 0.8, "val/loss": 0.5}}
BLURRY = {0: {"val/miou": 0.3, "val/loss": 1.0}, 1: {"val/miou": 0.5, "val/loss": 0.7}}


def test_the_shapes_task_declares_a_larger_miou_better():
    log_values("seg", "sharp", "shapes", SHARP)
    log_values("seg", "blurry", "shapes", BLURRY)
    result = run_script("03_compare.py", "-e", "seg", "--no-plot")
    assert result.returncode == 0, result.stderr
    assert "val/miou (max is best)" in result.stdout
    assert [line.split()[:4] for line in metric_block(result.stdout, "val/miou")] == [
        ["*", "sharp", "0.8", "1"], ["blurry", "0.5", "1", "0.5"],
    ]
    assert metric_block(result.stdout, "val/loss")[0].split()[:2] == ["*", "sharp"]


def test_the_shapes_task_declares_miou_and_accuracy_larger_is_better():
    shapes = find_task("shapes")
    assert shapes.metric_directions() == {"loss": "min", "miou": "max", "accuracy": "max"}
    assert [shapes.direction(name) for name in ("val/miou", "test/miou", "train/epoch_accuracy", "train/loss")] == [
        "max", "max", "max", "min",
    ]


def test_null_modes_and_a_sweep_without_mode_follow_the_declared_miou_direction():
    config = copy.deepcopy(load_config_template("shapes"))
    config["training"].update(best_metric="val/miou", best_mode=None)
    config["early_stopping"].update(metric="val/miou", mode=None, patience=2)
    parsed = parse_run_config(config)
    assert parsed[TrainingConfig].best_mode == "max" and parsed[EarlyStoppingConfig].mode == "max"
    spec = {"name": "s", "method": "grid", "config": "shapes", "parameters": {"optimizer.lr": [0.001]},
            "metric": "val/miou"}
    assert parse_spec(spec, "spec.json").mode == "max"
