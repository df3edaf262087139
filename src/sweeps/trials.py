"""The trials of a sweep: their parameters, run names, config overrides and training commands.

A grid and a random search know every trial before the first one starts (`PlannedSearch`);
Optuna chooses each one as results arrive (`sweeps.optuna_search`). Both hand the driver
`TrialPlan`s and build the command a trial runs.
"""

import itertools
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from sweeps.spec import Choices, Space, SweepSpec
from sweeps.state import SweepState, TrialRecord
from utils.configs import REPO_ROOT

TRAIN_SCRIPT = REPO_ROOT / "src" / "02_train.py"


@dataclass(frozen=True)
class TrialPlan:
    """A trial to start: its number in the sweep, its run name and its parameter values.

    `optuna_number` is the study's own trial number when Optuna chose the parameters.
    """

    number: int
    run: str
    params: dict[str, Any]
    optuna_number: int | None = None


def trial_run_name(spec: SweepSpec, number: int) -> str:
    """`<name>-000`, `<name>-001`, ...: a normal run of the experiment."""
    return f"{spec.name}-{number:03d}"


def total_trials(spec: SweepSpec) -> int:
    """How many trials the sweep runs: every grid combination, or `trials`."""
    if spec.method == "grid":
        return math.prod(len(space.values) for space in spec.parameters.values())
    assert spec.trials is not None  # spec.py requires it for random and optuna
    return spec.trials


def plan_grid(spec: SweepSpec) -> list[TrialPlan]:
    """Every combination, numbered over the keys sorted by name, the last varying fastest.

    A trial is its parameter values: the order of the keys in the spec (the table's columns) must
    not change which values trial N has, or a rerun of a reordered spec would run some twice.
    """
    keys = sorted(spec.parameters)
    values = [spec.parameters[key].values for key in keys]
    return [
        TrialPlan(number, trial_run_name(spec, number), _in_spec_order(spec, dict(zip(keys, combination))))
        for number, combination in enumerate(itertools.product(*values))
    ]


def plan_random(spec: SweepSpec) -> list[TrialPlan]:
    """`trials` draws from one NumPy Generator seeded by `spec.seed`, trial after trial, each
    trial's keys drawn in sorted order (as in a grid, the spec's order of keys changes nothing).

    The same spec always gives the same trials, so a rerun finds the same plan.
    """
    rng = np.random.default_rng(spec.seed)
    return [
        TrialPlan(number, trial_run_name(spec, number),
                  _in_spec_order(spec, {key: draw(spec.parameters[key], rng) for key in sorted(spec.parameters)}))
        for number in range(total_trials(spec))
    ]


def _in_spec_order(spec: SweepSpec, params: dict[str, Any]) -> dict[str, Any]:
    """`params` with its keys in the spec's order, the order tables show them in."""
    return {key: params[key] for key in spec.parameters}


def draw(space: Space, rng: np.random.Generator) -> Any:
    """One value of `space` as a plain JSON value (log-uniform for a log range)."""
    if isinstance(space, Choices):
        return space.values[int(rng.integers(len(space.values)))]
    if space.integer:
        if space.log:
            value = math.exp(rng.uniform(math.log(space.low), math.log(space.high + 1)))
            return min(int(value), space.high)
        return int(rng.integers(space.low, space.high + 1))
    if space.log:
        return float(math.exp(rng.uniform(math.log(space.low), math.log(space.high))))
    return float(rng.uniform(space.low, space.high))


def plan_trials(spec: SweepSpec) -> list[TrialPlan] | None:
    """Every trial of a grid or random sweep; None for Optuna, which chooses them one by one."""
    planners = {"grid": plan_grid, "random": plan_random}
    return planners[spec.method](spec) if spec.method in planners else None


def edge_params(spec: SweepSpec) -> list[dict[str, Any]]:
    """Parameter sets that together use every bound and every choice of the spec once.

    When trials are chosen as results arrive, their configs cannot be checked up front; these
    can: each value of each parameter, the others at their first value.
    """
    edges = {key: _edges(space) for key, space in spec.parameters.items()}
    base = {key: values[0] for key, values in edges.items()}
    return [{**base, key: value} for key, values in edges.items() for value in values]


def _edges(space: Space) -> list[Any]:
    return list(space.values) if isinstance(space, Choices) else [space.low, space.high]


def as_overrides(values: dict[str, Any]) -> list[str]:
    """`key=<json>` overrides for `utils.configs.apply_overrides`, one per dotted key."""
    return [f"{key}={json.dumps(value)}" for key, value in values.items()]


def trial_overrides(spec: SweepSpec, params: dict[str, Any]) -> list[str]:
    """A trial's overrides: the spec's `set`, then the trial's parameters."""
    return [*as_overrides(spec.set), *as_overrides(params)]


def train_command(experiment: str, run: str, resume: bool) -> list[str]:
    """`02_train.py -e EXP -r RUN [--resume]`, the arguments after the Python executable."""
    return [str(TRAIN_SCRIPT), "-e", experiment, "-r", run, *(["--resume"] if resume else [])]


class PlannedSearch:
    """The search of a grid or random sweep: the next planned trial not yet in the state."""

    def __init__(self, spec: SweepSpec, experiment: str) -> None:
        plans = plan_trials(spec)
        assert plans is not None, "Optuna sweeps use sweeps.optuna_search.OptunaSearch"
        self.plans = plans
        self.experiment = experiment

    def next_trial(self, state: SweepState) -> TrialPlan | None:
        started = {record.number for record in state.trials}
        return next((plan for plan in self.plans if plan.number not in started), None)

    def trial_command(self, record: TrialRecord, resume: bool) -> list[str]:
        return train_command(self.experiment, record.run, resume)

    def finished(self, record: TrialRecord) -> None:
        """Nothing to learn from a result: every trial was planned up front."""
