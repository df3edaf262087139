"""The example's config contract: every key checked, errors name the key and what is expected."""

import copy
from pathlib import Path

import pytest
from conftest import run_script

from training.config_schema import SCHEMA, validate_config
from utils.configs import load_config_template
from utils.management import create_run
from utils.errors import ConfigKeyError, ConfigValueError

DEFAULT = load_config_template("default")


def _without(dotted: str) -> dict:
    config = copy.deepcopy(DEFAULT)
    *parents, last = dotted.split(".")
    node = config
    for part in parents:
        node = node[part]
    del node[last]
    return config


def _with(dotted: str, value) -> dict:
    config = copy.deepcopy(DEFAULT)
    *parents, last = dotted.split(".")
    node = config
    for part in parents:
        node = node[part]
    node[last] = value
    return config


def test_the_shipped_default_config_is_valid():
    validate_config(DEFAULT)


@pytest.mark.parametrize("key", sorted(SCHEMA))
def test_every_required_key_is_named_when_missing(key):
    with pytest.raises(ConfigKeyError, match=f"'{key}' is missing"):
        validate_config(_without(key), "run/config.json")


@pytest.mark.parametrize(
    "key, value, expected",
    [
        ("data.batch_size", "64", "expected int"),
        ("data.batch_size", True, "expected int"),  # a bool is not a number here
        ("data.batch_size", 0, "> 0"),
        ("data.val_fraction", 1.5, "between 0 and 1"),
        ("optimizer.name", "adam", "'adamw' or 'sgd'"),
        ("model.name", "resnet", "'digits_cnn'"),
        ("model.channels", [32], "two positive integers"),
        ("training.best_mode", "up", "'min' or 'max'"),
        ("training.best_metric", "train/loss", "validation metric"),
        ("training.grad_clip", None, None),  # null switches clipping off
        ("logging.wandb_tags", "a", "a list of strings"),
        ("logging.wandb_tags", ["a", 1], "a list of strings"),
        ("logging.wandb_tags", [], None),
    ],
)
def test_wrong_types_and_values_name_the_key_and_the_expectation(key, value, expected):
    config = _with(key, value)
    if expected is None:
        validate_config(config)
        return
    with pytest.raises(ConfigValueError, match=expected) as error:
        validate_config(config, "run/config.json")
    assert key in str(error.value) and "run/config.json" in str(error.value)


@pytest.mark.parametrize(
    "key, value, suggestion",
    [
        ("training.epoch", 1, "training.epochs"),
        ("optimiser", {"lr": 0.1}, "optimizer"),
        ("data.batchsize", 32, "data.batch_size"),
        ("logging.wandb_tag", ["a"], "logging.wandb_tags"),
        ("model.channels_extra", 3, "model.channels"),
    ],
)
def test_unknown_keys_are_named_with_the_closest_known_key(key, value, suggestion):
    with pytest.raises(ConfigKeyError) as error:
        validate_config(_with(key, value), "run/config.json")
    message = str(error.value)
    assert message.startswith(f"run/config.json: unknown key '{key}'"), message
    assert f"did you mean '{suggestion}'?" in message


def test_an_unknown_key_without_a_close_match_points_to_the_default_config():
    with pytest.raises(ConfigKeyError, match=r"unknown key 'zzz'.*config/default.json"):
        validate_config(_with("zzz", 1))


def test_the_meta_block_written_at_initialization_is_allowed():
    validate_config({**DEFAULT, "meta": {"created": "now", "anything": [1, {"x": None}]}})


def test_training_refuses_a_run_whose_config_has_an_unknown_key(experiments_root: Path):
    config = _with("optimiser", {"lr": 0.1})
    config["training"]["epochs"] = 1  # keep the pre-fix failure (a full training run) short
    config["logging"].update(wandb=False, tensorboard=False)
    run = create_run("exp", "typo", config)
    result = run_script("02_train.py", "-e", "exp", "-r", "typo", "--device", "cpu", timeout=240)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "unknown key 'optimiser'" in result.stderr
    assert "did you mean 'optimizer'?" in result.stderr
    assert list((run / "checkpoints").iterdir()) == []
