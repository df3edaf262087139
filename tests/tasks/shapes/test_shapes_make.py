"""`make train TASK=shapes` trains the shapes example (here, next to its task: it leaves with it)."""

import subprocess

from conftest import REPO_ROOT, subprocess_env


def test_make_train_task_shapes_initializes_from_the_shapes_template():
    dry_run = subprocess.run(["make", "-n", "train", "TASK=shapes"], capture_output=True, text=True, timeout=120,
                             cwd=REPO_ROOT, env=subprocess_env(), check=False)
    assert dry_run.returncode == 0, dry_run.stderr
    assert "-r shapes-" in dry_run.stdout and "-c shapes" in dry_run.stdout
