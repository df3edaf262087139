"""copier generates a working project from a tagged copy of HEAD, for every answer to the two questions."""

import json
import sys
from pathlib import Path

import pytest
import yaml

from copier_support import EXAMPLES, VERSION, files_naming, generate, git_env, make_template, run

ANSWERS = [(True, False), (True, True), (False, True), (False, False)]  # (keep_digits, keep_shapes)
# the generated project's tests closest to what the answers change: the tasks kept, the config
# templates and their W&B project (the whole fast suite takes minutes: see README "Start a new project")
FAST_SUBSET = ["tests/tasks", "tests/test_configs.py",
               "tests/test_logging_registry.py::test_the_registered_config_classes_declare_exactly_the_logging_keys_of_default_json"]


@pytest.fixture(scope="module")
def template_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tagged template for the module; it holds the git config too."""
    folder = tmp_path_factory.mktemp("copier")
    make_template(folder, git_env(folder))
    return folder


@pytest.fixture
def template(template_folder: Path, experiments_root: Path) -> tuple[Path, dict[str, str]]:
    """The template and this test's environment (its own experiments root)."""
    return template_folder / "template", git_env(template_folder)


@pytest.mark.parametrize("keep_digits, keep_shapes", ANSWERS)
def test_the_answers_decide_which_examples_arrive_and_nothing_of_the_others_remains(template, tmp_path,
                                                                                    keep_digits, keep_shapes):
    source, env = template
    project = generate(source, tmp_path / "demo", env, keep_digits=keep_digits, keep_shapes=keep_shapes)
    kept = {"digits": keep_digits, "shapes": keep_shapes, "starter": not keep_digits}
    for task, present in kept.items():
        assert (project / "src" / "tasks" / f"{task}.py").is_file() == present, task
        assert (project / "tests" / "tasks" / task).is_dir() == present, task
    assert (project / "config" / "shapes.json").is_file() == keep_shapes
    readme = (project / "README.md").read_text()
    for example in EXAMPLES:
        assert (f"<!-- config-table:{example} -->" in readme) == kept[example], example
        if not kept[example]:
            assert files_naming(project, example) == [], f"{example} is left out but named there"

    task = "digits" if keep_digits else "starter"  # the task of default.json, which make train trains
    config = json.loads((project / "config" / "default.json").read_text())
    assert config["task"] == task and config["logging"]["wandb_project"] == "demo project"
    assert f"\nDEFAULT_TASK := {task}\n" in (project / "Makefile").read_text()
    dry_run = run(["make", "-n", "-o", ".venv/.installed-requirements", "train"], project, env).stdout
    assert "-r run-" in dry_run and "-c default" in dry_run
    assert readme.startswith("# demo project\n") and "<!-- example:" not in readme
    assert f"cp src/tasks/{task}.py src/tasks/my_task.py" in readme, "Bring your own task starts from default.json's task"
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert answers["_commit"] == VERSION and (answers["keep_digits"], answers["keep_shapes"]) == (keep_digits, keep_shapes)
    assert_the_rest_is_copied_as_it_is(source, project, env)


def assert_the_rest_is_copied_as_it_is(source: Path, project: Path, env: dict[str, str]) -> None:
    """The template's own files stay out; every file that arrives unrendered is byte- and mode-identical."""
    tracked = [path for path in run(["git", "ls-files", "-z"], source, env).stdout.split("\0") if path]
    rendered = {path.removesuffix(".jinja") for path in tracked if path.endswith(".jinja")}
    for path in tracked:
        if path.endswith(".jinja") or path == "copier.yml" or path.startswith("tests/template/"):
            assert not (project / path).exists(), path
        elif path not in rendered and (project / path).exists():
            assert (project / path).read_bytes() == (source / path).read_bytes(), path
            assert (project / path).stat().st_mode == (source / path).stat().st_mode, path
    assert (project / "src/training/trainer.py").is_file() and (project / ".ci/run").stat().st_mode & 0o111


@pytest.fixture(scope="module")
def starter_project(template_folder: Path) -> Path:
    """A project generated with both examples left out (the starter task only), shared by the module."""
    return generate(template_folder / "template", template_folder / "starter-project", git_env(template_folder),
                    keep_digits=False, keep_shapes=False)


@pytest.mark.slow
def test_a_project_without_examples_trains_its_starter_task_through_its_own_clis(template, starter_project,
                                                                                   experiments_root):
    """One epoch of its config/default.json, created and trained by its own 01_initialize and 02_train."""
    _, env = template
    project_env = {**env, "PYTHONPATH": str(starter_project / "src")}
    run([sys.executable, "src/01_initialize.py", "-e", "first", "-r", "one", "--set", "training.epochs=1",
         "--set", "logging.wandb=false"], starter_project, project_env)
    trained = run([sys.executable, "src/02_train.py", "-e", "first", "-r", "one", "--device", "cpu"],
                  starter_project, project_env, timeout=240)
    assert "test/mae" in trained.stdout
    assert (experiments_root / "first" / "one" / "checkpoints" / "best.pt").is_file()


@pytest.mark.slow
def test_a_project_without_examples_collects_every_test_and_passes_those_the_answers_touch(template, starter_project):
    _, env = template
    project_env = {**env, "PYTHONPATH": str(starter_project / "src")}
    # one pytest: every test module must import (a collection error fails the run), the subset runs
    engine = "tests/test_engine_toy_task.py::test_the_engine_imports_no_task"  # the engine's tests stay
    only = [argument for prefix in (*FAST_SUBSET, engine) for argument in ("--run-only", prefix)]
    tests = run([sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", "-n", "0", "-m", "not slow", "tests",
                 *only], starter_project, project_env, timeout=240)
    summary = tests.stdout.splitlines()[-1]
    assert " passed" in summary and " deselected" in summary and "failed" not in summary and "error" not in summary
    assert f"{engine}[" in tests.stdout and "tests/tasks/starter/" in tests.stdout
