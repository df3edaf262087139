"""Metric directions: a task declares them next to its metrics; best.pt, early stopping and a
sweep's ranking default to them, and a direction nobody declared is a usage error naming the fix."""

import copy

import pytest

import test_engine_toy_task  # noqa: F401  registers toy_regression, whose metrics are bare names
from sweeps.spec import parse_spec
from training.early_stopping import EarlyStoppingConfig
from training.run_config import parse_run_config
from training.task import Task, find_task, register_task
from training.trainer_config import TrainingConfig
from utils.configs import load_config_template
from utils.errors import ConfigValueError


def _config(template: str = "default", **sections: dict) -> dict:
    """A template with whole keys of its sections replaced (a value None removes the key)."""
    config = copy.deepcopy(load_config_template(template))
    for section, keys in sections.items():
        for key, value in keys.items():
            if value is None:
                config[section].pop(key, None)
            else:
                config[section][key] = value
    return config


def test_the_shipped_tasks_declare_what_larger_is_better():
    assert find_task("digits").metric_directions() == {"loss": "min", "accuracy": "max"}
    digits = find_task("digits")
    assert [digits.direction(name) for name in ("val/accuracy", "test/accuracy", "train/epoch_accuracy", "train/loss")] == [
        "max", "max", "max", "min",
    ]
    assert digits.direction("lr") is None and digits.direction("time/forward") is None
    assert digits.direction("val/f1") is None


def test_a_tuple_of_bare_names_still_works_with_only_loss_known():
    toy = find_task("toy_regression")
    assert toy.metrics == ("loss", "mae") and toy.metric_directions() == {"loss": "min", "mae": None}


def test_a_direction_that_is_neither_min_nor_max_is_refused_at_registration():
    class Sideways(Task):
        name = "sideways"
        metrics = {"loss": "min", "r2": "up"}

    with pytest.raises(ValueError, match=r"Sideways.metrics\['r2'\]='up': use 'min', 'max' or None"):
        register_task(Sideways)


@pytest.mark.parametrize("template, metric, expected", [
    ("default", "val/accuracy", "max"), ("default", "val/loss", "min"),
])
def test_a_null_best_mode_and_early_stopping_mode_follow_the_task(template, metric, expected):
    config = _config(template, training={"best_metric": metric, "best_mode": None},
                     early_stopping={"metric": metric, "mode": None, "patience": 2})
    parsed = parse_run_config(config)
    assert parsed[TrainingConfig].best_mode == expected
    assert parsed[EarlyStoppingConfig].mode == expected
    # config.json keeps null: a best_metric changed later (--set at a resume) gets its own direction
    assert parsed.raw["training"]["best_mode"] is None and parsed.raw["early_stopping"]["mode"] is None


def test_a_given_mode_wins_over_the_task():
    config = _config(training={"best_metric": "val/accuracy", "best_mode": "min"})
    assert parse_run_config(config)[TrainingConfig].best_mode == "min"


def test_an_undeclared_direction_with_a_null_mode_is_a_usage_error_naming_the_fix():
    config = copy.deepcopy(test_engine_toy_task.CONFIG)
    config["training"] = {"best_metric": "val/mae"}
    with pytest.raises(ConfigValueError) as caught:
        parse_run_config(config)
    message = str(caught.value)
    assert "training.best_mode is not set and task 'toy_regression' does not declare whether" in message
    assert "set training.best_mode to 'min' or 'max'" in message and "metrics = {..., 'mae': 'max'}" in message

    config["training"] = {"best_metric": "val/mae", "best_mode": "min"}
    assert parse_run_config(config)[EarlyStoppingConfig].mode == "min"  # early stopping watches val/loss
    config["early_stopping"] = {"metric": "val/mae"}  # disabled: its direction is never needed
    assert parse_run_config(config)[EarlyStoppingConfig].mode is None
    config["early_stopping"]["patience"] = 3
    with pytest.raises(ConfigValueError, match="early_stopping.mode is not set"):
        parse_run_config(config)


def test_a_sweep_spec_without_mode_ranks_by_the_direction_its_task_declares():
    spec = {"name": "s", "method": "grid", "parameters": {"optimizer.lr": [0.001]}, "metric": "val/accuracy"}
    parsed = parse_spec(spec, "spec.json")
    assert parsed.mode == "max" and parsed.raw["mode"] == "max"  # the state file records the mode used
    assert parse_spec({**spec, "metric": "val/loss"}, "spec.json").mode == "min"
    assert parse_spec({**spec, "mode": "min"}, "spec.json").mode == "min"
    with pytest.raises(ConfigValueError, match=r"metric='val/f1' is not a metric of task 'digits'"):
        parse_spec({**spec, "metric": "val/f1"}, "spec.json")
