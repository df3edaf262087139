"""A sweep's trial configs are checked as 01_initialize checks a run's: overrides see the schema,
and values that training could not use are refused before any trial exists (issue 16, items 13, 16)."""

import json
import sys
from pathlib import Path

import pytest

from conftest import REPO_ROOT, SRC, run_in_group, subprocess_env
from sweeps.spec import parse_spec
from sweeps.trial_runs import check_sweep, create_trial_run
from sweeps.trials import plan_grid
from utils.configs import load_config_file
from utils.errors import TemplateError

SPEC = {"name": "sw", "method": "grid", "parameters": {"optimizer.lr": [0.001, 0.003]},
        "metric": "val/accuracy", "mode": "max", "set": {"training.epochs": 2}}


def sparse_template(tmp_path: Path) -> str:
    """A template that spells out only the task and the best metric: every other key is a default."""
    path = tmp_path / "sparse.json"
    path.write_text(json.dumps({"task": "digits", "training": {"best_metric": "val/accuracy", "best_mode": "max"}}))
    return str(path)


def test_parameters_and_set_may_name_keys_the_template_leaves_out(tmp_path: Path, experiments_root: Path) -> None:
    spec = parse_spec({**SPEC, "config": sparse_template(tmp_path),
                       "parameters": {"optimizer.lr": [0.001, 0.003], "model.hidden": [16]},
                       "set": {"training.grad_clip": 0.5, "training": {"epochs": 2}}}, "spec.json")
    check_sweep(spec, "exp", None)
    create_trial_run(spec, "exp", plan_grid(spec)[1], "04_sweep.py")
    config = load_config_file(experiments_root / "exp" / "sw-001" / "config.json")
    assert (config["optimizer"]["lr"], config["model"]["hidden"]) == (0.003, 16)
    assert (config["training"]["grad_clip"], config["training"]["epochs"]) == (0.5, 2)
    assert config["training"]["best_metric"] == "val/accuracy", "a section given whole merges into the section"


@pytest.mark.parametrize("changes, fragments", [
    ({"set": {"task": "a.b"}}, ("task='a.b' is not a task name",)),
    ({"parameters": {"seed": [0, 2**64]}}, ("(trial sw-001)", f"seed={2**64} is out of range")),
    ({"parameters": {"data.val_fraction": [0.15, 0.9]}}, ("(trial sw-001)", "leave no training images")),
    ({"set": {"data.val_fraction": 0.0001}}, ("holds out 0 of the 1797 images",)),
    ({"parameters": {"model.hidden": [16, 10**10]}}, ("(trial sw-001)", "GiB of memory available")),
    ({"set": {"training.amp": True}}, ("training.amp was replaced by training.precision",)),
    ({"parameters": {"optimizer.lrr": [0.1]}}, ("unknown key 'optimizer.lrr'", "did you mean 'optimizer.lr'?")),
])
def test_a_trial_value_training_could_not_use_is_refused_before_anything_exists(
    experiments_root: Path, changes: dict, fragments: tuple,
) -> None:
    with pytest.raises(TemplateError) as caught:
        check_sweep(parse_spec({**SPEC, **changes}, "spec.json"), "exp", None)
    message = str(caught.value)
    assert message.startswith("spec.json") and all(fragment in message for fragment in fragments), message
    assert not any(experiments_root.iterdir())


def test_04_sweep_refuses_such_a_spec_in_one_line(tmp_path: Path, experiments_root: Path) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({**SPEC, "parameters": {"model.hidden": [16, 10**10]}}))
    command = [sys.executable, str(SRC / "04_sweep.py"), "-e", "exp", "-s", str(spec), "--dry-run"]
    result = run_in_group(command, timeout=120, env=subprocess_env(), cwd=REPO_ROOT)
    assert result.returncode == 2, result
    assert len(result.stderr.splitlines()) == 1 and "GiB of memory available" in result.stderr
    assert not any(experiments_root.iterdir())
