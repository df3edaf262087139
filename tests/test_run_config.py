"""A run's whole config: the engine's, the writers' and the task's keys, checked at once, with
errors that name the key, the value and what was expected."""

import copy
from pathlib import Path

import pytest

from conftest import run_script
from training.run_config import config_classes, parse_run_config
from training.task import find_task
from training.trainer_config import TrainingConfig
from utils.config_fields import all_specs
from utils.configs import load_config_template
from utils.errors import ConfigKeyError, ConfigValueError
from utils.management import create_run

DEFAULT = load_config_template("default")


def _with(dotted: str, value) -> dict:
    config = copy.deepcopy(DEFAULT)
    *parents, last = dotted.split(".")
    node = config
    for part in parents:
        node = node[part]
    node[last] = value
    return config


def _without(dotted: str) -> dict:
    config = copy.deepcopy(DEFAULT)
    *parents, last = dotted.split(".")
    node = config
    for part in parents:
        node = node[part]
    del node[last]
    return config


def test_the_shipped_default_config_is_valid_and_complete():
    parsed = parse_run_config(DEFAULT)
    assert parsed.task.name == "digits" and parsed[TrainingConfig].epochs == 15
    assert parsed.raw == DEFAULT, "config/default.json spells out every key"


@pytest.mark.parametrize("key", sorted(set(all_specs(config_classes(find_task("digits")))) - {"task"}))
def test_a_missing_key_takes_its_declared_default(key):
    spec = all_specs(config_classes(find_task("digits")))[key]
    section, _, name = key.rpartition(".")
    assert (parse_run_config(_without(key)).raw[section][name] if section else parse_run_config(_without(key)).raw[name]) == spec.default


def test_the_task_key_is_required_and_an_unknown_task_lists_the_known_ones():
    with pytest.raises(ConfigKeyError, match="'task' is missing.*digits"):
        parse_run_config(_without("task"))
    with pytest.raises(ConfigValueError, match=r"task='digitz' is unknown; known tasks: .*digits"):
        parse_run_config(_with("task", "digitz"))


@pytest.mark.parametrize(
    "key, value, expected",
    [
        ("data.batch_size", "64", "expected int"),
        ("data.batch_size", True, "expected int"),  # a bool is not a number here
        ("data.batch_size", 0, "> 0"),
        ("data.val_fraction", 1.5, "< 1"),
        ("optimizer.name", "adam", "'adamw' or 'sgd'"),
        ("model.channels", [32], "two positive integers"),
        ("model.channels", [32, 0], "> 0"),
        ("training.best_mode", "up", "'min' or 'max'"),
        ("training.best_metric", "train/loss", "choose one of val/loss, val/accuracy"),
        ("training.best_metric", "val/f1", "choose one of val/loss, val/accuracy"),
        ("training.grad_clip", None, None),  # null switches clipping off
        ("logging.wandb_tags", "a", "list of str"),
        ("logging.wandb_tags", ["a", 1], "list of str"),
        ("logging.wandb_tags", [], None),
        ("optimizer.lr", 1, None),  # an int where a float is declared
    ],
)
def test_wrong_types_and_values_name_the_key_and_the_expectation(key, value, expected):
    config = _with(key, value)
    if expected is None:
        parse_run_config(config)
        return
    with pytest.raises(ConfigValueError, match=expected) as error:
        parse_run_config(config, "run/config.json")
    assert key in str(error.value) and "run/config.json" in str(error.value)


@pytest.mark.parametrize(
    "key, value, suggestion",
    [
        ("training.epoch", 1, "training.epochs"),
        ("optimiser", {"lr": 0.1}, "optimizer"),
        ("data.batchsize", 32, "data.batch_size"),
        ("logging.wandb_tag", ["a"], "logging.wandb_tags"),
        ("model.channel", 3, "model.channels"),
    ],
)
def test_unknown_keys_are_named_with_the_closest_known_key(key, value, suggestion):
    with pytest.raises(ConfigKeyError) as error:
        parse_run_config(_with(key, value), "run/config.json")
    message = str(error.value)
    assert message.startswith("run/config.json: unknown key '"), message
    assert key.split(".")[0] in message and suggestion.split(".")[0] in message
    assert "did you mean" in message and suggestion.split(".")[0] in message.split("did you mean")[1]


def test_an_unknown_key_without_a_close_match_lists_the_sections():
    known = "data, debug, distributed, early_stopping, logging, model"
    with pytest.raises(ConfigKeyError, match=rf"unknown key 'zzz'; the known sections are {known}"):
        parse_run_config(_with("zzz", 1))


def test_a_renamed_key_names_its_replacement_and_its_choices():
    config = _with("training.amp", True)
    with pytest.raises(ConfigKeyError) as error:
        parse_run_config(config, "run/config.json")
    assert str(error.value) == (
        "run/config.json: training.amp was replaced by training.precision ('fp32' or 'bf16' or 'fp16'); "
        "remove training.amp and set training.precision instead (the README's config table says what it means)"
    )


def test_the_meta_block_written_at_initialization_is_kept_as_it_is():
    meta = {"created": "now", "anything": [1, {"x": None}]}
    assert parse_run_config({**DEFAULT, "meta": meta}).raw["meta"] == meta


def test_training_refuses_a_run_whose_config_has_an_unknown_key(experiments_root: Path):
    config = _with("optimiser", {"lr": 0.1})
    config["training"]["epochs"] = 1
    config["logging"].update(wandb=False, tensorboard=False)
    run = create_run("exp", "typo", config)
    result = run_script("02_train.py", "-e", "exp", "-r", "typo", "--device", "cpu", timeout=240)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "unknown key 'optimiser'" in result.stderr
    assert "did you mean 'optimizer'?" in result.stderr
    assert list((run / "checkpoints").iterdir()) == []


# ---- values that would fail only once training runs are refused with the config (issue 16, item 13) ----

@pytest.mark.parametrize(
    "key, value, fragments",
    [
        ("task", "a.b", ("task='a.b' is not a task name", "Python identifier", "known tasks: ")),
        ("task", "../../etc", ("task='../../etc' is not a task name",)),
        ("seed", 2**64, (f"seed={2**64}", "< 9223372036854775808")),
        ("data.val_fraction", 0.9, ("data.val_fraction=0.9 and data.test_fraction=0.15", "no training images")),
        ("data.val_fraction", 0.0001, ("data.val_fraction=0.0001 holds out 0 of the 1797 images", "at least 0.00056")),
        ("model.hidden", 10**10, ("'digits' model has 10,350,000,018,922 parameters", "model.hidden=10000000000",
                                  "make it smaller")),
    ],
)
def test_values_that_would_fail_in_training_are_refused_by_the_config_check(key, value, fragments):
    with pytest.raises(ConfigValueError) as error:
        parse_run_config(_with(key, value), "run/config.json")
    message = str(error.value)
    assert message.startswith("run/config.json: ") and "\n" not in message
    assert all(fragment in message for fragment in fragments), message


def test_the_largest_seed_torch_takes_with_the_epoch_added_is_accepted():
    assert parse_run_config(_with("seed", 2**63 - 1)).raw["seed"] == 2**63 - 1


def test_a_model_is_compared_with_the_memory_available(monkeypatch, tmp_path):
    import training.model_memory as model_memory

    meminfo = tmp_path / "meminfo"
    monkeypatch.setattr(model_memory, "MEMINFO", meminfo)
    meminfo.write_text("MemTotal: 100 kB\nMemAvailable:     400 kB\n")  # the default model needs ~600 KiB
    with pytest.raises(ConfigValueError, match=r"\(0.0 GiB\), more than the 0.0 GiB of memory available"):
        parse_run_config(DEFAULT)
    meminfo.write_text("MemAvailable:     800 kB\n")
    parse_run_config(DEFAULT)


# ---- a task file whose class registers another name (issue 16, item 18) ----

@pytest.fixture
def extra_task_folder(tmp_path, monkeypatch):
    """A second folder of the `tasks` package, for task files written by a test; the registry and
    the imported modules are restored afterwards."""
    import sys

    import tasks
    import training.task as task_module

    monkeypatch.setattr(tasks, "__path__", [*tasks.__path__, str(tmp_path)])
    monkeypatch.setattr(task_module, "_REGISTRY", dict(task_module._REGISTRY))
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        del sys.modules[name]


TASK_FILE = '''
from training.task import Task, register_task

{decorator}
class Other(Task):
    name = "other_name"
'''


def test_a_task_file_registering_another_name_names_the_file_the_name_and_the_fix(extra_task_folder):
    (extra_task_folder / "my_task.py").write_text(TASK_FILE.format(decorator="@register_task"))
    with pytest.raises(ConfigValueError) as error:
        parse_run_config(_with("task", "my_task"))
    assert str(error.value) == (
        f"config: task='my_task': {extra_task_folder / 'my_task.py'} registers the task 'other_name', not 'my_task'; a "
        "task's name and file name must match: write name = 'my_task' in its class, or rename the file to "
        "src/tasks/other_name.py and set task='other_name'"
    )


def test_a_task_file_registering_nothing_says_how_to_register(extra_task_folder):
    (extra_task_folder / "bare.py").write_text(TASK_FILE.format(decorator=""))
    with pytest.raises(ConfigValueError, match=r"bare.py registers no task; decorate its Task class with "
                                               r"@register_task and give it name = 'bare'"):
        parse_run_config(_with("task", "bare"))
