"""The example's config contract: every key checked, errors name the key and what is expected."""

import copy

import pytest

from training.config_schema import SCHEMA, validate_config
from utils.configs import load_config_template
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
