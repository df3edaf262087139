"""env.sh sourced by real shells: idempotent environment, the helper functions and their usage."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import REPO_ROOT

ENV_SH = REPO_ROOT / "env.sh"
SHELLS = [
    "bash",
    pytest.param("zsh", marks=pytest.mark.skipif(shutil.which("zsh") is None, reason="no zsh")),
]


def shell_env(**extra: str) -> dict[str, str]:
    """The test environment without an active venv or PYTHONPATH, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(extra)
    return env


def run_shell(
    shell: str, script: str, cwd: Path = REPO_ROOT, **extra: str
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [shell, "-c", script], cwd=cwd, env=shell_env(**extra), capture_output=True, text=True,
        timeout=120, check=False,
    )


def parse_env(raw: str) -> dict[str, str]:
    pairs = (item.split("=", 1) for item in raw.split("\0") if "=" in item)
    # `_` and SHLVL describe how the shell ran `env` (zsh execs the last command), not env.sh
    return {key: value for key, value in pairs if key not in ("_", "SHLVL")}


@pytest.mark.parametrize("shell", SHELLS)
def test_sourcing_twice_changes_nothing(shell: str, tmp_path: Path) -> None:
    script = f'source "{ENV_SH}"; env -0 > once; source "{ENV_SH}"; env -0 > twice'
    result = run_shell(shell, script, cwd=tmp_path, PYTHONPATH="/some/lib")
    assert result.returncode == 0, result.stderr
    once = parse_env((tmp_path / "once").read_text())
    twice = parse_env((tmp_path / "twice").read_text())
    assert once == twice
    assert once["PYTHONPATH"] == f"{REPO_ROOT / 'src'}:/some/lib"
    assert once["PROJECT_ROOT"] == str(REPO_ROOT)
    if (REPO_ROOT / ".venv" / "bin" / "activate").is_file():
        assert once["VIRTUAL_ENV"] == str(REPO_ROOT / ".venv")
        assert once["PATH"].split(":").count(str(REPO_ROOT / ".venv" / "bin")) == 1


@pytest.mark.parametrize("shell", SHELLS)
def test_source_by_relative_path_from_another_folder(shell: str, tmp_path: Path) -> None:
    relative = os.path.relpath(ENV_SH, tmp_path)
    script = f'source "{relative}" && printf "%s\\n" "$PYTHONPATH" "$PROJECT_ROOT"'
    result = run_shell(shell, script, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [str(REPO_ROOT / "src"), str(REPO_ROOT)]


def test_src_is_importable_after_sourcing(tmp_path: Path) -> None:
    script = f'source "{ENV_SH}" && python3 -c "import utils.names; print(utils.names.__file__)"'
    result = run_shell("bash", script, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(REPO_ROOT / "src" / "utils" / "names.py")


def test_experiments_root_keeps_a_user_value_else_defaults_to_the_repo(tmp_path: Path) -> None:
    script = f'source "{ENV_SH}" && echo "$EXPERIMENTS_ROOT"'
    kept = run_shell("bash", script, EXPERIMENTS_ROOT=str(tmp_path / "mine"))
    assert kept.stdout.strip() == str(tmp_path / "mine")
    env_without = f'unset EXPERIMENTS_ROOT; {script}'
    assert run_shell("bash", env_without).stdout.strip() == str(REPO_ROOT / "experiments")


def test_works_under_nounset(tmp_path: Path) -> None:
    result = run_shell("bash", f'set -u; source "{ENV_SH}"; setup', cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "setexp NAME" in result.stdout


@pytest.mark.parametrize("shell", SHELLS)
def test_setexp_setrun_setup(shell: str, experiments_root: Path) -> None:
    script = f'source "{ENV_SH}"; setexp exp1; setrun run1; setup; echo "$CURRENT_EXP/$CURRENT_RUN"'
    result = run_shell(shell, script)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:2] == ["experiment: exp1", "run: run1"]
    assert [line.split(None, 1) for line in lines[2:5]] == [
        ["experiment:", "exp1"], ["run:", "run1"], ["root:", str(experiments_root)]
    ]
    assert lines[5] == "exp1/run1"


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize(
    ("call", "usage"),
    [("setexp", "usage: setexp NAME"), ("setrun", "usage: setrun NAME"),
     ("setexp ''", "usage: setexp NAME"), ("setexp a b", "usage: setexp NAME"),
     ("initrun", "usage: initrun"), ("export CURRENT_EXP=e; initrun", "usage: initrun"),
     ("tboard 80x", "usage: tboard [PORT]"), ("tboard 1 2", "usage: tboard [PORT]")],
)
def test_missing_or_bad_argument_prints_one_usage_line(shell: str, call: str, usage: str) -> None:
    result = run_shell(shell, f'source "{ENV_SH}" >/dev/null; {call} >/dev/null; echo "rc=$?"')
    assert result.stdout.strip() == "rc=2"
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(usage), result.stderr


@pytest.mark.parametrize("shell", SHELLS)
def test_initrun_creates_the_current_run_passing_options_through(
    shell: str, experiments_root: Path
) -> None:
    script = f'source "{ENV_SH}"; setexp e1; setrun r1; initrun --set seed=3'
    result = run_shell(shell, script)
    assert result.returncode == 0, result.stderr
    config = json.loads((experiments_root / "e1" / "r1" / "config.json").read_text())
    assert config["seed"] == 3
    assert "python src/02_train.py -e e1 -r r1" in result.stdout
    again = run_shell(shell, script)
    assert again.returncode == 2 and "already exists" in again.stderr


@pytest.mark.parametrize("shell", SHELLS)
def test_tboard_runs_tensorboard_on_localhost_over_the_root(
    shell: str, tmp_path: Path, experiments_root: Path
) -> None:
    fake = tmp_path / "fakebin"
    fake.mkdir()
    (fake / "tensorboard").write_text('#!/bin/sh\nprintf "%s\\n" "$@"\n')
    (fake / "tensorboard").chmod(0o755)
    prefix = f'source "{ENV_SH}"; PATH="{fake}:$PATH";'
    with_port = run_shell(shell, f"{prefix} tboard 6123")
    assert with_port.returncode == 0, with_port.stderr
    assert with_port.stdout.splitlines() == [
        "--logdir", str(experiments_root), "--host", "127.0.0.1", "--port", "6123"
    ]
    default = run_shell(shell, f"{prefix} tboard")
    assert default.stdout.splitlines() == ["--logdir", str(experiments_root), "--host", "127.0.0.1"]


def test_tboard_without_tensorboard_says_how_to_install(tmp_path: Path) -> None:
    script = f'source "{ENV_SH}"; PATH=/usr/bin:/bin; tboard; echo "rc=$?"'
    result = run_shell("bash", script, cwd=tmp_path)
    assert result.stdout.strip() == "rc=1"
    assert "pip install -r" in result.stderr and "requirements.txt" in result.stderr
