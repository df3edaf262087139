"""The two commands: `make train` trains a fresh run; installs are skipped when nothing changed."""

import subprocess

import pytest

from conftest import REPO_ROOT, subprocess_env


def _make(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", *args], capture_output=True, text=True, timeout=timeout,
        cwd=REPO_ROOT, env=subprocess_env(), check=False,
    )


def test_an_unchanged_requirements_file_skips_the_install():
    # under `make test` this is a no-op; run directly, it brings the stamp up to date first
    assert _make("venv").returncode == 0
    dry_run = _make("-n", "test")
    assert dry_run.returncode == 0, dry_run.stderr
    assert "pip install" not in dry_run.stdout
    assert "pytest" in dry_run.stdout


def test_a_newer_requirements_file_triggers_the_install(tmp_path):
    dry_run = _make("-n", "-W", "requirements.txt", "test")
    assert "pip install" in dry_run.stdout and "requirements.txt" in dry_run.stdout


@pytest.mark.slow
def test_make_train_initializes_and_trains_a_fresh_run(experiments_root):
    result = _make("train", "RUN=from-make", "TRAIN_ARGS=--set training.epochs=1 --set logging.wandb=false --set training.draw_every=null")
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = experiments_root / "example" / "from-make"
    assert (run_dir / "checkpoints" / "last.pt").is_file()
    assert "tensorboard --logdir" in result.stdout


def test_make_train_names_each_run_with_a_new_timestamp():
    dry_run = _make("-n", "train")
    assert dry_run.returncode == 0, dry_run.stderr
    assert "01_initialize.py -e example -r run-" in dry_run.stdout


def test_make_bench_installs_the_anchors_and_make_test_does_not():
    bench = _make("-n", "bench")
    assert bench.returncode == 0, bench.stderr
    test = _make("-n", "test")
    assert test.returncode == 0, test.stderr
    assert "requirements-bench.txt" not in test.stdout
    anchors = (REPO_ROOT / "requirements-bench.txt").read_text()
    assert "lightning==" in anchors and "-r requirements.txt" in anchors
    stamp = REPO_ROOT / ".venv" / ".installed-requirements-bench"
    if not stamp.exists() or stamp.stat().st_mtime < (REPO_ROOT / "requirements-bench.txt").stat().st_mtime:
        assert "pip install --disable-pip-version-check -q -r requirements-bench.txt" in bench.stdout
