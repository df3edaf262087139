"""Shared fixtures: every test gets its own experiments root in tmp_path, W&B offline.

Property tests explore fresh random examples on every run by default (profile "dev"); CI sets
HYPOTHESIS_PROFILE=ci (see .ci/run) so that every CI run tries the same examples.
"""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import settings

REPO_ROOT = Path(__file__).resolve().parents[1]
SRC = REPO_ROOT / "src"

# No deadline in either: a per-example time limit is a timing assertion, and flaky on busy cores.
settings.register_profile("dev", deadline=None, derandomize=False)  # explicit: hypothesis derandomizes when CI is set
settings.register_profile("ci", deadline=None, derandomize=True, database=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or "dev")


@pytest.fixture(autouse=True)
def experiments_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the experiments root at a fresh temp folder so tests never touch the repo's."""
    root = tmp_path / "experiments"
    root.mkdir()
    monkeypatch.setenv("EXPERIMENTS_ROOT", str(root))
    monkeypatch.setenv("WANDB_MODE", "offline")
    # `make test` runs two workers on two cores: one thread per process (the subprocesses' torch
    # and BLAS) instead of four threads fighting over two cores
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DISABLE_GIT", "true")
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "wandb-cache"))
    monkeypatch.setenv("WANDB_DATA_DIR", str(tmp_path / "wandb-data"))
    for name in ("WANDB_API_KEY", "RANK", "WORLD_SIZE", "LOCAL_RANK", "CURRENT_EXP", "CURRENT_RUN"):
        monkeypatch.delenv(name, raising=False)
    return root


@pytest.fixture
def tmpfs_mount(tmp_path: Path):
    """Mount real size-limited tmpfs folders in tmp_path: `tmpfs_mount("3m")` -> its path.

    Tests run as root in CI; where mounting is impossible the test is skipped with the reason.
    Every mount is undone at teardown.
    """
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mounts: list[Path] = []

    def mount(size: str) -> Path:
        point = tmp_path / f"tmpfs-{len(mounts)}"
        point.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(point)],
                              capture_output=True, text=True, timeout=30)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        mounts.append(point)
        return point

    yield mount
    for point in reversed(mounts):
        subprocess.run(["umount", "-l", str(point)], check=True, timeout=30)


def subprocess_env(**extra: str) -> dict[str, str]:
    """The current (fixture-patched) environment with `src` importable, plus `extra`."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(SRC) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def run_script(script: str, *args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess:
    """Run `python src/<script> args...` bounded in time, capturing text output (forked from the
    prewarmed interpreter: tests/prewarmed.py)."""
    from prewarmed import run

    return run([sys.executable, str(SRC / script), *args], timeout=timeout, env=subprocess_env(**env), cwd=REPO_ROOT)


def run_in_group(command: list[str], *, timeout: float, **kwargs) -> subprocess.CompletedProcess:
    """`subprocess.run` in a new process group; on a timeout the whole group is killed.

    For launchers such as torchrun, whose workers would outlive a kill of the launcher alone.
    Scripts and torchrun start forked from the prewarmed interpreter (tests/prewarmed.py), unless
    a `preexec_fn` is to run in the child.
    """
    from prewarmed import popen

    start = subprocess.Popen if "preexec_fn" in kwargs else popen
    with start(command, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
               **kwargs) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)



def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-only", action="append", default=[], metavar="NODEID_PREFIX",
                     help="collect every test given, run only those whose node id starts with one of these "
                          "(repeatable): one pytest checks that every test module imports and runs a few")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    prefixes = tuple(config.getoption("--run-only"))
    if prefixes:
        kept = [item for item in items if item.nodeid.startswith(prefixes)]
        config.hook.pytest_deselected(items=[item for item in items if not item.nodeid.startswith(prefixes)])
        items[:] = kept
    _slow_modules_first(items)


def _slow_modules_first(items: list[pytest.Item]) -> None:
    """The modules holding `slow` tests run first, each module's tests still together (its
    fixtures are built once): the two workers then end on short tests instead of one of them
    idling while the other runs a 15 s torchrun or sweep test last."""
    slow = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow)  # stable: the order within each group stays
