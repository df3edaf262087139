"""A trial's run: its config resolved and checked once, by `_trial_config`, then created.

Every trial config is resolved (template, the spec's `set`, the trial's parameters) and checked
against the engine's, the writers' and the task's schema, and the spec's metric against the
task's metrics, before the first folder exists; so a typo in the spec creates nothing.
"""

import json
from typing import Any

from sweeps.spec import SweepSpec
from sweeps.state import SweepState, config_hash
from sweeps.trials import TrialPlan, as_overrides, edge_params, plan_trials, trial_overrides, trial_run_name
from utils.config_fields import flatten
from utils.configs import apply_overrides, load_config_file, load_config_template
from utils.errors import SweepSpecError, TemplateError
from utils.management import create_run, experiment_path
from utils.runs.run import Run
from utils.runs.new_run import with_meta
from utils.runs.outputs import existing_outputs, move_outputs_aside


def check_sweep(spec: SweepSpec, experiment: str, state: SweepState | None) -> None:
    """Check every trial config the sweep will create, and the metric; SweepSpecError names the fix.

    Grid and random trials are all known; for Optuna every bound and choice is checked, and the
    trials already in the state. A trial of the state that the plan now gives other parameter
    values, or whose config would now come out different (the template was edited), is an
    error naming the trial.
    """
    experiment_path(experiment)  # a bad experiment name fails here, before the configs
    base = _with_set(spec)
    plans = plan_trials(spec)
    if plans is None:
        for params in edge_params(spec):
            _trial_config(spec, base, f"{spec.name} (bounds)", params)
    else:
        for plan in plans:
            _trial_config(spec, base, plan.run, plan.params)
        _check_no_foreign_runs(spec, experiment, plans, state)
        _check_same_params(spec, plans, state)
    for record in state.trials if state is not None else []:
        config = _trial_config(spec, base, record.run, record.params)
        if record.config_hash and record.config_hash != config_hash(config):
            raise SweepSpecError(_changed_config_message(spec, experiment, record.run, config))


def _with_set(spec: SweepSpec) -> dict[str, Any]:
    """The template with the spec's `set` applied; errors say they come from `set`."""
    try:
        template = load_config_template(spec.config)
    except TemplateError as exc:
        raise SweepSpecError(f"{spec.source}: config: {exc}") from None
    try:
        return apply_overrides(template, as_overrides(spec.set))
    except TemplateError as exc:
        raise SweepSpecError(f"{spec.source}: set: {exc}") from None


def _trial_config(spec: SweepSpec, base: dict[str, Any], run: str, params: dict[str, Any]) -> dict[str, Any]:
    """The complete config of a trial (`base`: the template with the spec's `set`, from
    `_with_set`), with the spec's metric checked against its task: the one path by which both
    `check_sweep` and `create_trial_run` resolve a trial's config."""
    from training.run_config import check_metric, parse_run_config

    try:
        config = apply_overrides(base, as_overrides(params))
    except TemplateError as exc:
        raise SweepSpecError(f"{spec.source}: parameters: {exc}") from None
    parsed = parse_run_config(config, f"{spec.source} (trial {run})")
    check_metric("metric", spec.metric, parsed.task, spec.source)
    return parsed.raw


def task_mode(spec: SweepSpec) -> str:
    """The direction the task of the spec's config declares for the spec's metric: the `mode` of
    a spec that leaves it out."""
    from training.run_config import check_metric, metric_mode
    from training.task import find_task

    name = _with_set(spec).get("task")
    if not isinstance(name, str):
        raise SweepSpecError(f"{spec.source}: config {spec.config!r} names no task to give the direction of "
                             f"{spec.metric}; set 'task', or give the spec a 'mode' (max or min)")
    task = find_task(name)
    check_metric("metric", spec.metric, task, spec.source)
    return metric_mode("mode", spec.metric, None, task, spec.source)


def _changed_config_message(spec: SweepSpec, experiment: str, run: str, new: dict[str, Any]) -> str:
    try:
        old = flatten(load_config_file(Run.resolve(experiment, run).config_file))  # without meta
    except TemplateError:
        old = {}
    flat = flatten(new)
    keys = sorted(key for key in old.keys() | flat.keys() if old.get(key) != flat.get(key))
    return (
        f"{spec.source}: trial {run} of sweep {spec.name} would now get a different config "
        f"({', '.join(keys) or 'its config.json is gone'}): the template {spec.config!r} changed since the "
        "sweep started; restore it, or give the sweep a new name to start a new one; nothing was changed"
    )


def _check_no_foreign_runs(spec: SweepSpec, experiment: str, plans: list[TrialPlan], state: SweepState | None) -> None:
    """A planned trial's run name taken by a run that is not that trial: exit 2 before starting."""
    for plan in plans:
        record = state.trial(plan.number) if state is not None else None
        if record is None or not record.config_hash:
            if not trial_run_is_ours(spec, experiment, plan.number, missing_ok=True):
                raise SweepSpecError(_foreign_message(spec, experiment, plan.number))


def _check_same_params(spec: SweepSpec, plans: list[TrialPlan], state: SweepState | None) -> None:
    """A trial of the state that the plan now numbers with other values (a state written before
    trials were numbered over sorted keys, or edited): exit 2, or a rerun would run some twice."""
    planned = {plan.number: plan.params for plan in plans}
    for record in state.trials if state is not None else []:
        if planned.get(record.number) != record.params:
            now = json.dumps(planned[record.number]) if record.number in planned else "no trial"
            raise SweepSpecError(
                f"{spec.source}: trial {record.run} of sweep {spec.name} ran with {json.dumps(record.params)}, "
                f"but the spec now plans {now} as trial {record.number}; a trial keeps its values: finish "
                "the sweep with the code and spec that started it, or give the sweep a new name to start "
                "another; nothing was changed"
            )


def sweep_meta(spec: SweepSpec, plan: TrialPlan) -> dict[str, Any]:
    """What a trial's `config.json` records in `meta.sweep`."""
    return {"sweep": {"name": spec.name, "number": plan.number, "params": plan.params}}


def trial_run_is_ours(spec: SweepSpec, experiment: str, number: int, missing_ok: bool) -> bool:
    """Whether the run named for trial `number` is that trial (a missing run counts as `missing_ok`)."""
    run = Run.resolve(experiment, trial_run_name(spec, number))
    if not run.path.exists():
        return missing_ok
    try:
        sweep = load_config_file(run.config_file).get("meta", {}).get("sweep", {})
    except TemplateError:
        return False
    return isinstance(sweep, dict) and (sweep.get("name"), sweep.get("number")) == (spec.name, number)


def _foreign_message(spec: SweepSpec, experiment: str, number: int) -> str:
    run = trial_run_name(spec, number)
    return (
        f"run {experiment}/{run} exists and is not trial {number} of sweep {spec.name}; give the sweep "
        "another name in the spec, or move that run out of the experiment; nothing was changed"
    )


def create_trial_run(spec: SweepSpec, experiment: str, plan: TrialPlan, command: str) -> str:
    """Create the trial's run with the config `_trial_config` resolves, unless it exists; returns
    its config hash.

    A run that exists and is this trial (a driver was killed between creating it and saving the
    state) is reused; one that is not raises SweepSpecError.
    """
    run = Run.resolve(experiment, plan.run)
    if not run.path.exists():
        config = _trial_config(spec, _with_set(spec), plan.run, plan.params)
        overrides = trial_overrides(spec, plan.params)
        create_run(experiment, plan.run,
                   with_meta(config, experiment, plan.run, spec.config, overrides, command, sweep_meta(spec, plan)))
    elif not trial_run_is_ours(spec, experiment, plan.number, missing_ok=False):
        raise SweepSpecError(_foreign_message(spec, experiment, plan.number))
    return config_hash(load_config_file(run.config_file))


def prepare_launch(experiment: str, run_name: str) -> bool:
    """Whether the trial continues with `--resume`; a run with outputs but no checkpoint is cleared.

    `--resume` needs a checkpoint, and a plain start refuses a run that has outputs; a trial
    stopped before its first checkpoint has such outputs (a CSV, events), which are moved
    aside into `restarted/<time>/` as `--restart` does, so that it starts over cleanly.
    """
    run = Run.resolve(experiment, run_name)
    if any(run.checkpoints.glob("*.pt")):
        return True
    if existing_outputs(run):
        move_outputs_aside(run)
    return False
