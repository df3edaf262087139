"""The shared name options: flags, the CURRENT_EXP / CURRENT_RUN fallback, the missing-name error."""

import argparse

import pytest

from utils.cli import add_name_option, name_or_env, require_name
from utils.errors import MissingNameError


def parser() -> argparse.ArgumentParser:
    built = argparse.ArgumentParser()
    add_name_option(built, "experiment")
    add_name_option(built, "run")
    return built


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["-e", "x", "-r", "y"], ("x", "y")),
        (["--experiment=x", "--run=y"], ("x", "y")),
        (["--experiment=", "--run=--"], ("", "--")),
        (["-e--", "-r-x"], ("--", "-x")),
        ([], (None, None)),
    ],
)
def test_name_options_keep_the_value_as_typed(argv: list[str], expected: tuple) -> None:
    args = parser().parse_args(argv)
    assert (args.experiment, args.run) == expected


def test_help_names_the_environment_variables() -> None:
    text = parser().format_help()
    assert "$CURRENT_EXP" in text and "$CURRENT_RUN" in text


def test_a_name_falls_back_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CURRENT_EXP", "env-exp")
    monkeypatch.setenv("CURRENT_RUN", "")
    assert name_or_env(None, "experiment") == "env-exp"
    assert name_or_env("cli", "experiment") == "cli"
    assert name_or_env("", "experiment") == ""  # given wins, and validation rejects it
    assert name_or_env(None, "run") is None  # an empty variable counts as unset
    assert require_name(None, "experiment") == "env-exp"


@pytest.mark.parametrize(
    ("kind", "fragments"),
    [("experiment", ("-e/--experiment", "CURRENT_EXP", "setexp")),
     ("run", ("-r/--run", "CURRENT_RUN", "setrun"))],
)
def test_a_missing_name_names_the_flag_and_the_variable(kind: str, fragments: tuple) -> None:
    with pytest.raises(MissingNameError, match=f"^no {kind} name: pass") as info:
        require_name(None, kind)
    assert all(fragment in str(info.value) for fragment in fragments)
