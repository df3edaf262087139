"""utils.runs.new_run: a new run's config (template, overrides, then meta) and where it came from."""

from datetime import datetime

from utils.configs import CONFIG_DIR, load_config_template
from utils.runs.new_run import build_run_meta, config_source, resolve_template, with_meta


def test_meta_records_origin() -> None:
    meta = build_run_meta("e", "r", "default", ["seed=1"], "cmd --x")
    assert datetime.fromisoformat(meta["created"]).tzinfo is not None
    assert set(meta["git"]) == {"commit", "dirty"}
    assert meta["command"] == "cmd --x"
    assert meta["config_template"] == {"name": "default", "path": str(CONFIG_DIR / "default.json")}
    assert meta["overrides"] == ["seed=1"]


def test_resolved_config_is_template_plus_overrides_then_meta_last() -> None:
    resolved = resolve_template("default", ["seed=42"])
    expected = load_config_template("default")
    expected["seed"] = 42
    assert resolved == expected
    config = with_meta(resolved, "e", "r", "default", ["seed=42"], "c", {"sweep": {"number": 3}})
    assert list(config) == [*expected, "meta"] and "meta" not in resolved
    meta = config["meta"]
    assert (meta["experiment"], meta["run"], meta["command"], meta["sweep"]) == ("e", "r", "c", {"number": 3})


def test_no_template_gives_the_overrides_alone() -> None:
    assert resolve_template(None, ["task=digits"]) == {"task": "digits"}
    assert build_run_meta("e", "r", None, [], "c")["config_template"] is None


def test_source_names_the_template_file_and_its_overrides() -> None:
    assert config_source("default", []) == str(CONFIG_DIR / "default.json")
    assert config_source("default", ["seed=3"]) == f"{CONFIG_DIR / 'default.json'} with overrides"
    assert config_source(None, ["task=digits"]) == "--set (no template)"
