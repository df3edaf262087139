"""Names: the validation rule, sanitising, and that no name ever escapes the experiments root."""

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from conftest import REPO_ROOT, SRC, subprocess_env
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from utils.errors import InvalidNameError
from utils.names import NAME_PATTERN, sanitize_name, validate_name


@pytest.mark.parametrize("name", ["a", "A1", "run-1", "exp_2.b", "9lives", "x" * 128, "a..b"])
def test_valid_names_are_returned_unchanged(name: str) -> None:
    assert validate_name(name, "run name") == name


@pytest.mark.parametrize(
    "name",
    ["", " ", ".", "..", "../x", "a/b", "a\\b", "/abs", "x\0y", "a\nb", "a\n", "-a", "_a", ".a",
     "a b", "é", "x" * 129, "n" * 200],
)
def test_invalid_names_raise_naming_kind_and_rule(name: str) -> None:
    with pytest.raises(InvalidNameError, match="invalid experiment name") as info:
        validate_name(name, "experiment name")
    assert "A-Z a-z 0-9" in str(info.value)
    assert "\n" not in str(info.value)


def test_long_name_is_shortened_in_the_message() -> None:
    with pytest.raises(InvalidNameError) as info:
        validate_name("n" * 200, "run name")
    assert len(str(info.value)) < 200


def test_non_string_name_is_rejected() -> None:
    with pytest.raises(InvalidNameError, match="must be a string"):
        validate_name(3, "run name")


@pytest.mark.parametrize(
    ("tag", "expected"),
    [("val/conf matrix", "val_conf_matrix"), ("../../etc", "etc"), ("///", "unnamed"),
     ("loss", "loss"), ("a\0b", "a_b")],
)
def test_sanitize_name_examples(tag: str, expected: str) -> None:
    assert sanitize_name(tag) == expected


@given(st.text())
def test_sanitized_names_are_always_valid_names(tag: str) -> None:
    assert NAME_PATTERN.fullmatch(sanitize_name(tag))


def load_cli() -> ModuleType:
    spec = importlib.util.spec_from_file_location("init_cli_names", SRC / "01_initialize.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def snapshot(folder: Path, skip: Path) -> set[str]:
    return {str(p) for p in folder.rglob("*") if p != skip and skip not in p.parents}


PATHLIKE = st.lists(
    st.sampled_from(["..", ".", "/", "\\", "~", "a", "-", " ", "\n", "\0", "x" * 60, "$HOME"]),
    max_size=6,
).map("".join)

NAMES = st.one_of(st.text(), PATHLIKE, st.from_regex(NAME_PATTERN, fullmatch=True))


def test_arbitrary_names_never_create_anything_outside_the_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A deep root, so that `..`, `../..` and `../../..` would all land inside tmp_path.
    root = tmp_path / "one" / "two" / "three" / "experiments"
    root.mkdir(parents=True)
    monkeypatch.setenv("EXPERIMENTS_ROOT", str(root))
    monkeypatch.chdir(tmp_path / "one")
    cli = load_cli()
    before = snapshot(tmp_path, root)

    @settings(max_examples=150, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(experiment=NAMES, run=NAMES)
    @example(experiment="", run="--")  # argparse used to turn `--run=--` into []
    @example(experiment="--", run="a")
    def check(experiment: str, run: str) -> None:
        code = cli.main([f"--experiment={experiment}", f"--run={run}"])
        valid = NAME_PATTERN.fullmatch(experiment) and NAME_PATTERN.fullmatch(run)
        err = capsys.readouterr().err
        if valid:
            assert code == 0 or "already exists" in err
            assert (root / experiment / run / "config.json").is_file()
        else:
            assert code == 2 and err.startswith("error: invalid") and err.count("\n") == 1
        assert snapshot(tmp_path, root) == before

    check()


def test_ci_runs_property_tests_derandomized_while_developers_explore() -> None:
    ci_script = (REPO_ROOT / ".ci" / "run").read_text()
    assert re.search(r"^export HYPOTHESIS_PROFILE=ci$", ci_script, flags=re.M), ci_script
    probe = "import conftest, hypothesis; print(hypothesis.settings.default.derandomize)"
    seen = {}
    for profile in ("ci", ""):
        env = subprocess_env(PYTHONPATH=f"{REPO_ROOT / 'tests'}:{SRC}", HYPOTHESIS_PROFILE=profile)
        result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                                timeout=60, env=env, cwd=REPO_ROOT, check=False)
        assert result.returncode == 0, result.stderr
        seen[profile] = result.stdout.strip()
    assert seen == {"ci": "True", "": "False"}
