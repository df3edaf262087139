"""Deleting an example deletes its tests and leaves the rest green: the tree's rooms are separate."""

import shutil
import subprocess
import sys

import pytest

from conftest import REPO_ROOT, subprocess_env

pytestmark = pytest.mark.slow

# The tests closest to the seam: config checking, run creation, the README, the tasks left.
FAST_SUBSET = ["tests/test_run_config.py", "tests/tasks", "tests/test_engine_toy_task.py",
               "tests/test_readme.py::test_the_config_tables_are_the_ones_the_declarations_generate",
               "tests/test_readme.py::test_every_readme_command_is_run_here_or_covered_elsewhere"]


def test_a_copy_without_the_shapes_task_and_its_tests_still_passes(tmp_path):
    copy = tmp_path / "repo"
    ignore = shutil.ignore_patterns(".pytest_cache")  # __pycache__ stays: pytest's rewritten asserts, valid
    for folder in ("src", "config", "tests"):
        shutil.copytree(REPO_ROOT / folder, copy / folder, ignore=ignore)
    for name in ("pytest.ini", "README.md", "env.sh", "Makefile"):
        shutil.copy2(REPO_ROOT / name, copy / name)
    (copy / ".venv").symlink_to(REPO_ROOT / ".venv")
    (copy / ".ci").mkdir()
    shutil.copy2(REPO_ROOT / ".ci" / "run", copy / ".ci" / "run")
    for path in sorted(copy.rglob("*shapes*"), reverse=True):  # what copier.yml leaves out: `**/*shapes*`
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()

    env = subprocess_env()
    env["PYTHONPATH"] = str(copy / "src")
    # one pytest: every test module must import (a collection error fails the run), the subset runs
    only = [argument for prefix in FAST_SUBSET for argument in ("--run-only", prefix)]
    result = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-v", "-n", "0",
                             "-m", "not slow", "tests", *only], capture_output=True, text=True, timeout=240,
                            cwd=copy, env=env, check=False)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    summary = result.stdout.splitlines()[-1]
    assert " passed" in summary and " deselected" in summary and "failed" not in summary, summary
    assert "tests/tasks/digits/" in result.stdout and "tests/tasks/shapes" not in result.stdout
