"""A run the Logger creates itself: `meta` and an empty config, or the template the caller names."""

import json

import pytest

import utils.logging as ulog
from utils.errors import ConfigNotFoundError
from utils.logging import Logger
from utils.management import run_path
from utils.runs.run import Run


@pytest.fixture(autouse=True)
def finish_loggers():
    yield
    for logger in list(ulog._active):
        logger.finish()


def test_a_run_the_logger_creates_holds_meta_and_no_config_copied_from_a_default():
    Logger("diabetes", "r1")
    config = json.loads(Run.resolve("diabetes", "r1").config_file.read_text())
    assert list(config) == ["meta"]  # not the digits example's config/default.json
    meta = config["meta"]
    assert meta["created_by"] == "utils.logging.Logger"
    assert (meta["experiment"], meta["run"], meta["config_template"]) == ("diabetes", "r1", None)
    assert {"created", "git", "command", "overrides"} <= meta.keys()  # the same meta as the CLI's
    assert sorted(path.name for path in run_path("diabetes", "r1").iterdir()) == [
        "checkpoints", "config.json", "exports", "logs", "plots", "visualizations"]


def test_a_run_the_logger_creates_from_a_named_template_holds_that_template(tmp_path):
    template = tmp_path / "diabetes.json"
    template.write_text(json.dumps({"task": "diabetes", "optimizer": {"lr": 0.01}}))
    Logger("diabetes", "r2", config_template=str(template))
    config = json.loads(Run.resolve("diabetes", "r2").config_file.read_text())
    assert {key: value for key, value in config.items() if key != "meta"} == {
        "task": "diabetes", "optimizer": {"lr": 0.01}}
    assert config["meta"]["config_template"] == {"name": str(template), "path": str(template)}


def test_an_unknown_template_creates_nothing_and_names_the_templates_there_are():
    with pytest.raises(ConfigNotFoundError, match="config template 'diabets' not found.*available"):
        Logger("diabetes", "r3", config_template="diabets")
    assert not run_path("diabetes", "r3").exists()
    assert not ulog._active


def test_the_template_of_an_existing_run_is_left_alone():
    Logger("diabetes", "r4").finish()
    Logger("diabetes", "r4", config_template="default").finish()  # read only when creating
    assert list(json.loads(Run.resolve("diabetes", "r4").config_file.read_text())) == ["meta"]
