"""Trial runs: every config checked before anything exists, created as 01_initialize does, relaunched cleanly."""

import json
from pathlib import Path

import pytest

from sweeps.spec import parse_spec
from sweeps.state import SweepState, TrialRecord
from sweeps.trial_runs import check_sweep, create_trial_run, prepare_launch
from sweeps.trials import plan_grid
from utils.configs import load_config_file, load_config_template
from utils.errors import SweepSpecError, TemplateError
from utils.management import create_run

SPEC = {
    "name": "sw", "method": "grid", "parameters": {"optimizer.lr": [0.001, 0.003]},
    "metric": "val/accuracy", "mode": "max", "set": {"training.epochs": 2},
}


def make_spec(**changes):
    return parse_spec({**SPEC, **changes}, "spec.json")


def make_state(spec) -> SweepState:
    return SweepState(spec.name, "exp", spec.raw, spec.fingerprint())


def test_a_good_sweep_passes_and_creates_nothing(experiments_root: Path) -> None:
    check_sweep(make_spec(), "exp", None)
    check_sweep(make_spec(method="optuna", trials=3, parameters={"model.dropout": {"low": 0.0, "high": 0.5}}),
                "exp", None)
    assert not any(experiments_root.iterdir())


@pytest.mark.parametrize("changes, fragment", [
    ({"parameters": {"optimizer.lrr": [0.1]}}, "(trial sw-000): unknown key 'optimizer.lrr'; did you mean 'optimizer.lr'?"),
    ({"set": {"training.epoch": 2}}, "did you mean 'training.epochs'?"),
    ({"metric": "val/f1"}, "metric='val/f1' is not a metric of task 'digits'; choose one of val/loss, val/accuracy"),
    ({"metric": "train/loss"}, "choose one of val/loss, val/accuracy"),
    ({"parameters": {"model.hidden": [16, -1]}}, "(trial sw-001): model.hidden=-1 is out of range"),
    ({"config": "no-such-template"}, "config: config template 'no-such-template' not found"),
    ({"method": "optuna", "trials": 2, "parameters": {"model.dropout": {"low": 0.0, "high": 1.5}}},
     "model.dropout=1.5 is out of range"),
])
def test_a_bad_trial_config_or_metric_is_named_and_nothing_is_created(experiments_root, changes, fragment) -> None:
    spec = make_spec(**changes)
    with pytest.raises(TemplateError) as caught:
        check_sweep(spec, "exp", None)
    assert fragment in str(caught.value) and str(caught.value).startswith("spec.json")
    assert not any(experiments_root.iterdir())


def test_a_trial_run_is_created_complete_with_its_sweep_meta(experiments_root: Path) -> None:
    spec = make_spec()
    plan = plan_grid(spec)[1]
    digest = create_trial_run(spec, "exp", plan, "04_sweep.py -e exp")
    config = load_config_file(experiments_root / "exp" / "sw-001" / "config.json")
    assert config["meta"]["sweep"] == {"name": "sw", "number": 1, "params": {"optimizer.lr": 0.003}}
    assert config["meta"]["command"] == "04_sweep.py -e exp"
    assert config["optimizer"]["lr"] == 0.003 and config["training"]["epochs"] == 2
    assert "eval_every" in config["training"], "defaults filled in, as 01_initialize writes them"
    assert create_trial_run(spec, "exp", plan, "again") == digest, "its own existing run is reused"
    assert load_config_file(experiments_root / "exp" / "sw-001" / "config.json") == config


def test_a_run_of_the_same_name_that_is_not_the_trial_is_refused(experiments_root: Path) -> None:
    create_run("exp", "sw-000", load_config_template("default"))
    spec = make_spec()
    with pytest.raises(SweepSpecError, match="exists and is not trial 0 of sweep sw"):
        check_sweep(spec, "exp", None)
    with pytest.raises(SweepSpecError, match="exists and is not trial 0 of sweep sw"):
        create_trial_run(spec, "exp", plan_grid(spec)[0], "")


def test_a_template_edited_since_the_sweep_started_is_named_by_its_changed_keys(experiments_root, tmp_path) -> None:
    template = tmp_path / "mine.json"
    template.write_text(json.dumps(load_config_template("default")))
    spec = make_spec(config=str(template))
    state = make_state(spec)
    plan = plan_grid(spec)[0]
    state.trials.append(TrialRecord(0, plan.run, plan.params, create_trial_run(spec, "exp", plan, ""), "done"))
    check_sweep(spec, "exp", state)
    edited = load_config_template(str(template))
    edited["data"]["batch_size"] = 32
    template.write_text(json.dumps(edited))
    with pytest.raises(SweepSpecError, match=r"trial sw-000 of sweep sw would now get a different config "
                                             r"\(data.batch_size\)"):
        check_sweep(spec, "exp", state)


def test_a_relaunch_resumes_from_a_checkpoint_or_starts_over_with_partial_outputs_moved_aside(experiments_root):
    spec = make_spec()
    create_trial_run(spec, "exp", plan_grid(spec)[0], "")
    run = experiments_root / "exp" / "sw-000"
    assert prepare_launch("exp", "sw-000") is False
    (run / "logs" / "metrics.csv").write_text("step,train/loss\n0,2.3\n")
    assert prepare_launch("exp", "sw-000") is False
    assert not (run / "logs" / "metrics.csv").exists()
    assert [p.name for p in (run / "restarted").glob("*/logs/metrics.csv")] == ["metrics.csv"]
    (run / "checkpoints" / "last.pt").write_bytes(b"a checkpoint")
    assert prepare_launch("exp", "sw-000") is True
