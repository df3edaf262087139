"""Run initialization helpers: resolved config with meta, checks before creation, the table."""

import json
from datetime import datetime
from pathlib import Path

import pytest

from utils.configs import CONFIG_DIR, load_config_template
from utils.errors import ConfigKeyError, ConfigNotFoundError, ConfigValueError, RunExistsError
from utils.initialization import (
    build_run_meta,
    config_source,
    format_run_table,
    initialize_run,
    resolve_run_config,
)
from utils.management import RunInfo


def test_meta_records_origin() -> None:
    meta = build_run_meta("e", "r", "default", ["seed=1"], "cmd --x")
    assert datetime.fromisoformat(meta["created"]).tzinfo is not None
    assert set(meta["git"]) == {"commit", "dirty"}
    assert meta["command"] == "cmd --x"
    assert meta["config_template"] == {"name": "default", "path": str(CONFIG_DIR / "default.json")}
    assert meta["overrides"] == ["seed=1"]


def test_resolved_config_is_template_plus_overrides_plus_meta() -> None:
    config = resolve_run_config("e", "r", "default", ["seed=42"])
    meta = config.pop("meta")
    expected = load_config_template("default")
    expected["seed"] = 42
    assert config == expected
    assert (meta["experiment"], meta["run"]) == ("e", "r")


def test_initialize_run_writes_the_resolved_config(experiments_root: Path) -> None:
    path = initialize_run("e", "r", overrides=["training.epochs=2"], command="c")
    config = json.loads((path / "config.json").read_text())
    assert config["training"]["epochs"] == 2 and config["meta"]["command"] == "c"


def test_existing_run_is_reported_before_the_template_is_read(experiments_root: Path) -> None:
    initialize_run("e", "r")
    with pytest.raises(RunExistsError):
        initialize_run("e", "r", template="does-not-exist")


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [({"template": "nope"}, ConfigNotFoundError), ({"overrides": ["seed.x=1"]}, ConfigKeyError)],
)
def test_bad_template_or_override_creates_nothing(
    experiments_root: Path, kwargs: dict, error: type
) -> None:
    with pytest.raises(error):
        initialize_run("e", "r", **kwargs)
    assert list(experiments_root.iterdir()) == []


def test_validate_sees_the_resolved_config_and_its_source(experiments_root: Path) -> None:
    seen = []
    initialize_run("e", "r", overrides=["seed=3"], validate=lambda c, s: seen.append((c, s)) or c)
    [(config, source)] = seen
    assert config["seed"] == 3 and config["meta"]["run"] == "r"
    assert source == f"{CONFIG_DIR / 'default.json'} with overrides"
    assert config_source("default", []) == str(CONFIG_DIR / "default.json")


def test_a_config_the_validator_rejects_creates_nothing_and_what_it_returns_is_written(experiments_root: Path) -> None:
    def validate(config: dict, source: str) -> dict:
        if config["training"]["epochs"] == "abc":
            raise ConfigValueError(f"{source}: training.epochs='abc' has type str; expected int")
        return {**config, "added": True}

    with pytest.raises(ConfigValueError, match=r"training.epochs='abc'.*expected int"):
        initialize_run("e", "r", overrides=["training.epochs=abc"], validate=validate)
    assert list(experiments_root.iterdir()) == []
    path = initialize_run("e", "r", validate=validate)
    assert json.loads((path / "config.json").read_text())["added"] is True


def test_table_aligns_columns() -> None:
    table = format_run_table([RunInfo("long-experiment", "r", "t1"), RunInfo("e", None, "t2")])
    assert table.splitlines() == [
        "EXPERIMENT       RUN  CREATED",
        "long-experiment  r    t1",
        "e                -    t2",
    ]
