"""Config templates and overrides: strict JSON, errors that name file/line/key, --set by dotted key."""

import json
import math
from pathlib import Path

import pytest

from utils.configs import (
    CONFIG_DIR,
    apply_overrides,
    available_templates,
    closest_key,
    dump_config,
    load_config_file,
    load_config_template,
    parse_json_strict,
    parse_override,
    save_config_file,
    template_path,
)
from utils.errors import ConfigKeyError, ConfigNotFoundError, ConfigSyntaxError, ConfigValueError

BASE = {"seed": 0, "optimizer": {"name": "adamw", "lr": 0.003}, "tags": []}


def test_default_template_is_strict_json_with_the_documented_sections() -> None:
    config = load_config_template("default")
    assert config == json.loads((CONFIG_DIR / "default.json").read_text())
    for section in ("data", "model", "optimizer", "scheduler", "training", "logging"):
        assert isinstance(config[section], dict)
    assert "default" in available_templates()


def test_template_path_takes_a_name_or_a_path(tmp_path: Path) -> None:
    assert template_path("default") == CONFIG_DIR / "default.json"
    assert template_path(str(tmp_path / "x.json")) == tmp_path / "x.json"
    assert template_path("sub/dir") == Path("sub/dir").resolve()


def test_missing_template_lists_the_available_ones(tmp_path: Path) -> None:
    (tmp_path / "alpha.json").write_text("{}")
    (tmp_path / "beta.json").write_text("{}")
    with pytest.raises(ConfigNotFoundError, match=r"'gamma' not found .*alpha, beta"):
        load_config_template("gamma", config_dir=tmp_path)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('{\n  "a": 1,\n}', "line 3, column 1"),
        ('{"a": NaN}', "NaN is not valid JSON"),
        ('{"a": Infinity}', "Infinity is not valid JSON"),
        ('{"a": 1, "a": 2}', "duplicate key 'a'"),
        ("", "line 1, column 1"),
    ],
)
def test_invalid_json_names_the_file_and_the_place(
    tmp_path: Path, text: str, fragment: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(ConfigSyntaxError) as info:
        load_config_file(path)
    assert str(path) in str(info.value) and fragment in str(info.value)


def test_top_level_must_be_an_object(tmp_path: Path) -> None:
    path = tmp_path / "list.json"
    path.write_text("[1, 2]")
    with pytest.raises(ConfigSyntaxError, match="top level must be a JSON object"):
        load_config_file(path)


def test_non_utf8_file_is_a_syntax_error(tmp_path: Path) -> None:
    path = tmp_path / "latin.json"
    path.write_bytes(b'{"a": "\xff"}')
    with pytest.raises(ConfigSyntaxError, match="UTF-8"):
        load_config_file(path)


def test_missing_file_is_config_not_found(tmp_path: Path) -> None:
    with pytest.raises(ConfigNotFoundError, match="does not exist"):
        load_config_file(tmp_path / "nope.json")


def test_save_and_load_round_trip_without_leftover_temp_files(tmp_path: Path) -> None:
    folder = tmp_path / "configs"
    folder.mkdir()
    save_config_file(folder / "c.json", BASE)
    assert load_config_file(folder / "c.json") == BASE
    assert [p.name for p in folder.iterdir()] == ["c.json"]


def test_dump_refuses_nan() -> None:
    with pytest.raises(ConfigValueError, match="strict JSON"):
        dump_config({"loss": math.nan})


@pytest.mark.parametrize(
    ("text", "parts", "value"),
    [
        ("seed=3", ["seed"], 3),
        ("optimizer.lr=1e-4", ["optimizer", "lr"], 1e-4),
        ("a.b=true", ["a", "b"], True),
        ("a=null", ["a"], None),
        ('a=[1, "x"]', ["a"], [1, "x"]),
        ('a={"k": 1}', ["a"], {"k": 1}),
        ("name=resnet", ["name"], "resnet"),
        ("name=", ["name"], ""),
        ("expr=a=b", ["expr"], "a=b"),
        ("v=NaN", ["v"], "NaN"),
    ],
)
def test_parse_override_reads_json_else_text(text: str, parts: list[str], value: object) -> None:
    assert parse_override(text) == (parts, value)


@pytest.mark.parametrize("text", ["seed", "=1", "a..b=1", ".a=1", "a.=1"])
def test_malformed_override_is_a_key_error(text: str) -> None:
    with pytest.raises(ConfigKeyError, match="key.sub=value"):
        parse_override(text)


def test_out_of_range_number_is_a_value_error() -> None:
    with pytest.raises(ConfigValueError, match="out of range"):
        parse_override("lr=1e999")


def test_apply_overrides_changes_a_copy() -> None:
    result = apply_overrides(BASE, ["optimizer.lr=0.1", "seed=5", "tags=[\"x\"]"])
    assert result == {"seed": 5, "optimizer": {"name": "adamw", "lr": 0.1}, "tags": ["x"]}
    assert BASE["optimizer"]["lr"] == 0.003 and BASE["tags"] == []


def test_later_override_wins() -> None:
    assert apply_overrides(BASE, ["seed=1", "seed=2"])["seed"] == 2


def test_an_override_may_add_a_key_or_a_section_the_config_leaves_out() -> None:
    """A template need not spell out every key: the schema, not the template, decides what exists
    (a typo is named by `parse_config`, see tests/test_run_config.py)."""
    result = apply_overrides(BASE, ["optimizer.beta=0.9", "training.grad_clip=0.5", "extra=1"])
    assert result["optimizer"] == {"name": "adamw", "lr": 0.003, "beta": 0.9}
    assert result["training"] == {"grad_clip": 0.5} and result["extra"] == 1
    assert "training" not in BASE and "beta" not in BASE["optimizer"]


def test_a_section_given_whole_merges_into_the_section() -> None:
    result = apply_overrides(BASE, ['optimizer={"lr": 0.1}', 'training={"epochs": 3}'])
    assert result["optimizer"] == {"name": "adamw", "lr": 0.1}, "the section's other keys stay"
    assert result["training"] == {"epochs": 3}


@pytest.mark.parametrize(
    ("key", "expected"),
    [("training.epoch", "training.epochs"), ("optimiser", "optimizer"), ("zzz", None)],
)
def test_closest_key_suggests_a_near_spelling_or_nothing(key: str, expected: str | None) -> None:
    known = ["training.epochs", "training.eval_every", "optimizer", "optimizer.lr", "seed"]
    assert closest_key(key, known) == expected


def test_key_below_a_plain_value_is_an_error() -> None:
    with pytest.raises(ConfigKeyError, match="'seed' is a plain value, not a section"):
        apply_overrides(BASE, ["seed.x=1"])


def test_section_and_plain_value_cannot_replace_each_other() -> None:
    with pytest.raises(ConfigValueError, match="'optimizer' is a section"):
        apply_overrides(BASE, ["optimizer=3"])
    with pytest.raises(ConfigValueError, match="'seed' is a plain value"):
        apply_overrides(BASE, ['seed={"a": 1}'])


def test_json_error_parser_reports_source_name() -> None:
    with pytest.raises(ConfigSyntaxError, match=r"^my source: invalid JSON at line 1, column 2"):
        parse_json_strict("{x}", "my source")
