"""`copier update` brings a newer template version into a project that added its own task, and the
README's two copier blocks run as written (with the template at a local path)."""

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from copier_support import COPIER, VERSION, commit_all, conflicts_left, generate, git_env, make_template, readme_block, run

pytestmark = pytest.mark.slow

NEW_VERSION = "v1.1.0"
ENGINE_FILE = "src/training/signals.py"
ENGINE_CHANGE = '\n\nUPDATE_PROBE = "an engine change released in v1.1.0"\n'
START = readme_block("pipx run copier copy")
UPDATE = readme_block("copier update")


def release_engine_change(template: Path, env: dict[str, str]) -> None:
    """The template gains one engine commit, tagged NEW_VERSION."""
    engine = template / ENGINE_FILE
    engine.write_text(engine.read_text() + ENGINE_CHANGE)
    commit_all(template, env, "an engine change")
    run(["git", "tag", NEW_VERSION], template, env)


def add_own_task(project: Path) -> dict[str, bytes]:
    """What "Bring your own task" has a user add: a task file, its config and a test of it."""
    task = (project / "src/tasks/digits.py").read_text().replace('name = "digits"', 'name = "my_task"')
    config = (project / "config/default.json").read_text().replace('"task": "digits"', '"task": "my_task"')
    test = ('from training.task import find_task\n\n\ndef test_my_task_is_found():\n'
            '    assert find_task("my_task").name == "my_task"\n')
    files = {"src/tasks/my_task.py": task, "config/my_task.json": config, "tests/tasks/my_task/test_my_task.py": test}
    for relative, text in files.items():
        (project / relative).parent.mkdir(parents=True, exist_ok=True)
        (project / relative).write_text(text)
    return {relative: (project / relative).read_bytes() for relative in files}


def readme_update(project: Path, env: dict[str, str]) -> None:
    """The README's update block as written (its `copier` is this Python's)."""
    for line in UPDATE:
        command = shlex.split(line)
        assert command[0] == "copier"
        run([*COPIER, *command[1:]], project, env)


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A template tagged VERSION then NEW_VERSION (one engine commit), and a project generated from
    VERSION with the default answers and committed to git: each test updates a copy of it."""
    folder = tmp_path_factory.mktemp("update")
    env = git_env(folder)
    template = make_template(folder, env)
    project = generate(template, folder / "generated", env, keep_digits=True, keep_shapes=False)
    run(["git", "init", "--quiet"], project, env)
    commit_all(project, env, "generated")
    release_engine_change(template, env)
    return folder


def project_copy(released: Path, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    project = tmp_path / "demo"
    shutil.copytree(released / "generated", project, symlinks=True)
    return project, git_env(released)


def test_the_update_block_brings_an_engine_change_and_leaves_the_users_task_as_it_was(released, tmp_path):
    project, env = project_copy(released, tmp_path)
    own = add_own_task(project)
    commit_all(project, env, "my task")
    assert UPDATE == [f"copier update --defaults --vcs-ref {NEW_VERSION}"]

    readme_update(project, env)

    assert (project / ENGINE_FILE).read_text().endswith(ENGINE_CHANGE)
    assert {relative: (project / relative).read_bytes() for relative in own} == own
    assert conflicts_left(project) == []
    changed = run(["git", "status", "--porcelain"], project, env).stdout.split("\n")
    assert sorted(line[3:] for line in changed if line) == [".copier-answers.yml", "README.md", ENGINE_FILE]
    assert f"version\n`{NEW_VERSION}`" in (project / "README.md").read_text()
    assert yaml.safe_load((project / ".copier-answers.yml").read_text())["_commit"] == NEW_VERSION


def test_an_edited_engine_line_that_the_template_also_changed_gets_conflict_markers(released, tmp_path):
    """What the README promises a user who edited the engine: markers in the file, no silent loss."""
    project, env = project_copy(released, tmp_path)
    engine = project / ENGINE_FILE
    engine.write_text(engine.read_text() + '\n\nUPDATE_PROBE = "my own edit"\n')
    commit_all(project, env, "engine edited")

    readme_update(project, env)

    text = engine.read_text()
    assert "<<<<<<< before updating" in text and ">>>>>>> after updating" in text
    assert '"my own edit"' in text and '"an engine change released in v1.1.0"' in text


def test_the_start_block_generates_a_project_whose_make_train_trains(tmp_path, experiments_root):
    """The README's block with the template at a local path, the default answers (--defaults), and
    `make train` on this suite's .venv (one epoch) instead of a new one, which would take minutes."""
    env = git_env(tmp_path)
    template = make_template(tmp_path, env)
    venv = Path(sys.prefix)
    short = "TRAIN_ARGS=--set training.epochs=1 --set logging.wandb=false --set training.draw_every=null"
    script = []
    for line in START:
        if line.startswith("pipx run copier copy"):
            words = shlex.split(line)
            assert words[-2].startswith("https://") and VERSION in words
            line = shlex.join([*COPIER, "copy", "--defaults", *words[4:-2], str(template), words[-1]])
        elif line == "make train":
            line = shlex.join(["make", "-o", str(venv / ".installed-requirements"), "train", f"VENV={venv}", short])
        script.append(line)
    done = subprocess.run(["bash", "-c", "set -e\n" + "\n".join(script)], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    project = tmp_path / "my-project"
    assert (project / "src/tasks/digits.py").is_file() and (project / ".copier-answers.yml").is_file()
    assert run(["git", "status", "--porcelain"], project, env).stdout == ""
    runs = list((experiments_root / "example").glob("run-*/checkpoints/last.pt"))
    assert len(runs) == 1, done.stdout[-2000:]
