"""Where a run came from: the environment record, the git facts with untracked source files as
dirty, and one line per session in logs/sessions.jsonl written however the session ends.

In-process, on a temporary git repository: no training here (tests/test_lineage_digits.py reads
the records of real training sessions)."""

import json
import subprocess
from pathlib import Path

import pytest
import torch

from utils.errors import ConfigValueError
from utils.git_info import git_diff, git_state
from utils.management import create_run
from utils.runs.provenance import SESSIONS_FILE, environment_record, session_record
from utils.runs.run import Run

TASK = "class MyTask:\n    name = 'my_task'\n"


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True, timeout=30).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A committed checkout with a task added as the README says: an untracked file, beside
    untracked data, run outputs and a cache that are not source."""
    repo = tmp_path / "repo"
    (repo / "src" / "tasks").mkdir(parents=True)
    (repo / "src" / "engine.py").write_text("ENGINE = 1\n")
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "first")
    (repo / "src" / "tasks" / "my_task.py").write_text(TASK)
    for name in ("data/digits.csv", "experiments/e/r/config.json", "src/__pycache__/engine.cpython-311.pyc"):
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text("not source\n")
    (repo / "src" / "weights.bin").write_bytes(b"\0" * (2 << 20))  # over the 1 MiB kept
    return repo


def test_an_untracked_task_file_makes_the_tree_dirty_and_goes_into_the_diff(repo):
    state = git_state(repo)
    assert state.commit == _git(repo, "rev-parse", "HEAD").strip()
    assert state.dirty is True
    assert state.untracked == ["src/tasks/my_task.py"]
    assert [entry.split()[0] for entry in state.left_out] == ["src/weights.bin"]
    diff = git_diff(repo, state)
    assert "+++ b/src/tasks/my_task.py" in diff and "name = 'my_task'" in diff
    assert "digits.csv" not in diff and "experiments/" not in diff and "pycache" not in diff


def test_only_data_and_outputs_untracked_leave_the_tree_clean(repo):
    (repo / "src" / "tasks" / "my_task.py").unlink()
    (repo / "src" / "weights.bin").unlink()
    assert git_state(repo).dirty is False
    (repo / "src" / "engine.py").write_text("ENGINE = 2\n")  # a tracked change
    assert git_state(repo).dirty is True


def test_outside_a_git_checkout_the_git_facts_are_unknown_and_nothing_raises(tmp_path):
    assert environment_record(["x"], repo=tmp_path)["git"] == {"commit": None, "dirty": None}
    assert git_diff(tmp_path) == ""


def test_the_environment_record_holds_versions_machine_and_command(repo):
    record = environment_record(["src/02_train.py", "-e", "a b"], repo=repo)
    assert record["packages"]["torch"] == torch.__version__
    assert record["packages"]["pytest"] == pytest.__version__
    assert record["torch"] == torch.__version__ and record["cuda"] == torch.version.cuda
    assert record["world_size"] == 1 and record["cpu_count"] >= 1 and record["python"].count(".") == 2
    assert record["command"] == "src/02_train.py -e 'a b'"
    assert record["git"]["dirty"] is True
    json.dumps(record)  # plain JSON


def _records(run: Run) -> list[dict]:
    return [json.loads(line) for line in (run.logs / SESSIONS_FILE).read_text().splitlines()]


def test_a_session_record_saves_the_diff_that_rebuilds_the_untracked_task(repo, tmp_path):
    run = Run.resolve("exp", "run")
    create_run("exp", "run", {"task": "toy"})
    with session_record(run, "evaluate", ["05_evaluate.py"], repo=repo) as record:
        record.add(checkpoint="best.pt")
    (line,) = _records(run)
    assert line["kind"] == "evaluate" and line["exit_status"] == 0 and line["checkpoint"] == "best.pt"
    assert line["start"] <= line["end"] and line["git"]["untracked"] == ["src/tasks/my_task.py"]
    patch = run.logs / line["git"]["patch"]
    assert patch.name == f"git_diff-{line['session']}.patch"

    clone = tmp_path / "clone"
    _git(tmp_path, "clone", "-q", str(repo), str(clone))
    _git(clone, "apply", str(patch))
    assert (clone / "src" / "tasks" / "my_task.py").read_text() == TASK


@pytest.mark.parametrize(("error", "status"), [
    (ConfigValueError("bad key"), 2), (KeyboardInterrupt(), 130), (SystemExit(143), 143), (RuntimeError("boom"), 1),
])
def test_a_session_that_fails_or_is_stopped_is_recorded_with_its_exit_status(tmp_path, error, status):
    run = Run.resolve("exp", "run")
    create_run("exp", "run", {"task": "toy"})
    with pytest.raises(type(error)):
        with session_record(run, "train", ["02_train.py"], repo=tmp_path) as record:
            record.exit_status = 0  # an exception wins over a status set before it
            raise error
    (line,) = _records(run)
    assert line["exit_status"] == status
    assert line["error"].startswith(type(error).__name__)
    assert not list(run.logs.glob("git_diff-*.patch")), "no diff outside a checkout"


def test_sessions_append_one_line_each(tmp_path):
    run = Run.resolve("exp", "run")
    create_run("exp", "run", {"task": "toy"})
    for _ in range(2):
        with session_record(run, "train", ["02_train.py"], repo=tmp_path):
            pass
    first, second = _records(run)
    assert first["session"] != second["session"]
