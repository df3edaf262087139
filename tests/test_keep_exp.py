"""keep_exp.sh on a fake repo: .gitkeep in exactly the empty folders it owns, dry run, reruns."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import REPO_ROOT

SCRIPT = REPO_ROOT / "keep_exp.sh"

EMPTY_OWNED = ["experiments/exp one/run a/logs", "experiments/empty exp", "data/raw data",
               "data/-dash", "experiments/new\nline"]


@pytest.fixture
def fake_repo(tmp_path: Path) -> Path:
    """A repo layout with empty folders inside and outside experiments/, data/, config/."""
    repo = tmp_path / "my repo"
    for folder in EMPTY_OWNED:
        (repo / folder).mkdir(parents=True)
    (repo / "experiments" / "exp one" / "run a" / "config.json").write_text("{}")
    (repo / "experiments" / "kept").mkdir()
    (repo / "experiments" / "kept" / ".gitkeep").write_text("")
    (repo / "data" / "processed").mkdir()
    (repo / "data" / "processed" / "x.csv").write_text("a\n")
    (repo / "config").mkdir()
    (repo / "config" / "default.json").write_text("{}")
    for outside in ("src/empty_pkg", "other", ".git/refs"):
        (repo / outside).mkdir(parents=True)
    shutil.copy2(SCRIPT, repo / "keep_exp.sh")
    return repo


def files(repo: Path) -> set[str]:
    return {str(p.relative_to(repo)) for p in repo.rglob("*")}


def run_keep(repo: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(repo / "keep_exp.sh"), *args], cwd=cwd, capture_output=True, text=True, timeout=60,
        check=False,
    )


def test_script_is_executable() -> None:
    assert os.access(SCRIPT, os.X_OK)


def test_gitkeep_goes_into_exactly_the_empty_owned_folders(fake_repo: Path, tmp_path: Path) -> None:
    before = files(fake_repo)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = run_keep(fake_repo, cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    added = files(fake_repo) - before
    assert added == {f"{folder}/.gitkeep" for folder in EMPTY_OWNED}
    assert files(fake_repo) >= before
    assert "created experiments/empty exp/.gitkeep" in result.stdout
    assert list(elsewhere.iterdir()) == []


def test_dry_run_lists_and_writes_nothing(fake_repo: Path) -> None:
    before = files(fake_repo)
    result = run_keep(fake_repo, "--dry-run", cwd=fake_repo / "src")
    assert result.returncode == 0, result.stderr
    assert files(fake_repo) == before
    assert result.stdout.count("would create ") == len(EMPTY_OWNED)
    assert "would create data/raw data/.gitkeep" in result.stdout


def test_second_run_changes_nothing(fake_repo: Path) -> None:
    assert run_keep(fake_repo, cwd=fake_repo).returncode == 0
    after_first = files(fake_repo)
    second = run_keep(fake_repo, cwd=fake_repo)
    assert second.returncode == 0
    assert files(fake_repo) == after_first
    assert "nothing to do" in second.stdout


def test_relative_invocation_and_missing_top_folders(fake_repo: Path) -> None:
    shutil.rmtree(fake_repo / "data")
    result = subprocess.run(
        ["./my repo/keep_exp.sh"], cwd=fake_repo.parent, capture_output=True, text=True,
        timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (fake_repo / "experiments" / "empty exp" / ".gitkeep").is_file()
    assert not (fake_repo / "data").exists()


def test_unknown_option_is_a_usage_error(fake_repo: Path) -> None:
    before = files(fake_repo)
    result = run_keep(fake_repo, "--force", cwd=fake_repo)
    assert result.returncode == 2
    assert result.stderr.strip() == "usage: keep_exp.sh [--dry-run]"
    assert files(fake_repo) == before
