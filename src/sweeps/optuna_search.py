"""Optuna search: a TPE sampler proposes each trial when a worker is free, a median pruner judges
its epochs, and the study lives in `<sweep dir>/study.journal` (Optuna's journal storage, see
`sweeps.optuna_storage`), so a rerun of the sweep continues the same study.

The driver asks (`next_trial`) and tells (`finished`); a trial's process reports its epochs to
the same study (`sweeps.optuna_trial`). Optuna is imported only when a sweep uses it.
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeps.optuna_storage import migrate_sqlite_study, open_storage, study_path
from sweeps.spec import Choices, Space, SweepSpec
from sweeps.state import SweepState, TrialRecord, read_state
from sweeps.trials import TrialPlan, train_command, trial_run_name

if TYPE_CHECKING:
    import optuna

TRIAL_SCRIPT = Path(__file__).resolve().with_name("optuna_trial.py")
DIRECTIONS = {"max": "maximize", "min": "minimize"}
INSTALL_HINT = "optuna is not installed: `pip install optuna` (see requirements.txt)"
PRIMITIVES = (type(None), bool, int, float, str)


def import_optuna() -> Any:
    """The optuna module, quiet below warnings (the driver prints its own line per trial)."""
    try:
        import optuna
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


@dataclass(frozen=True)
class PruningRule:
    """The median pruner's settings. A trial's process rebuilds the same pruner from them.

    Steps are epochs, counted from 1: a trial can be pruned from `first_epoch` on, once
    `startup_trials` trials have completed. Optuna's default of 5 completed trials suits long
    sweeps but would never prune a sweep of 6; a third of the trials (1 to 5) completes first.
    """

    startup_trials: int
    first_epoch: int = 1

    @classmethod
    def for_trials(cls, trials: int) -> "PruningRule":
        return cls(startup_trials=min(5, max(1, trials // 3)))

    def build(self) -> "optuna.pruners.MedianPruner":
        optuna = import_optuna()
        return optuna.pruners.MedianPruner(n_startup_trials=self.startup_trials, n_warmup_steps=self.first_epoch)


def trial_by_number(study: "optuna.Study", number: int) -> "optuna.trial.Trial":
    """A live handle on an existing trial of `study`, to suggest, report or ask about pruning."""
    optuna = import_optuna()
    frozen = next((trial for trial in study.get_trials(deepcopy=False) if trial.number == number), None)
    if frozen is None:
        raise LookupError(f"study {study.study_name!r} has no trial number {number}")
    return optuna.trial.Trial(study, frozen._trial_id)


def suggest(trial: "optuna.trial.Trial", key: str, space: Space) -> Any:
    """The trial's value for `key`: floats or ints from a range, one of the choices otherwise.

    Choices that are not plain scalars (lists such as `model.channels`) go to Optuna as their
    JSON text, the only form its storage keeps for a categorical value.
    """
    if isinstance(space, Choices):
        values = list(space.values)
        if all(isinstance(value, PRIMITIVES) for value in values):
            return trial.suggest_categorical(key, values)
        return json.loads(trial.suggest_categorical(key, [json.dumps(value) for value in values]))
    if space.integer:
        return trial.suggest_int(key, space.low, space.high, log=space.log)
    return trial.suggest_float(key, float(space.low), float(space.high), log=space.log)


class OptunaSearch:
    """The search of an Optuna sweep (the driver's Search protocol), one trial at a time.

    A trial's number in the sweep is its Optuna trial number, so `<name>-003` is trial 3 of the
    study. A trial asked by a driver that was killed before it saved the trial in its state is
    still RUNNING in the study: the next driver takes it up instead of asking a new one, so the
    study never holds more than `trials` trials.
    """

    def __init__(self, spec: SweepSpec, experiment: str, folder: Path) -> None:
        """`folder` is the sweep's folder (`sweeps.state.sweep_dir`), where the study's journal
        lives. The SQLite study of a sweep started before the journal is copied into it first;
        `self.notes` then says so, for the driver to print."""
        assert spec.trials is not None, "spec.py requires trials for optuna sweeps"
        optuna = import_optuna()
        self.spec = spec
        self.experiment = experiment
        self.rule = PruningRule.for_trials(spec.trials)
        folder.mkdir(parents=True, exist_ok=True)
        migrated = migrate_sqlite_study(folder, spec.name)
        self.notes = [migrated] if migrated else []
        self.storage_path = study_path(folder)
        self.study = optuna.create_study(
            study_name=spec.name, storage=open_storage(self.storage_path), load_if_exists=True,
            direction=DIRECTIONS[spec.mode], pruner=self.rule.build(),
        )
        # The sampler's random state is not in the study: seeded with spec.seed alone, a rerun
        # would draw its first trials' values again. The trials so far move it on, reproducibly.
        # TPE's constant liar (its default) counts running trials as bad, so parallel workers
        # are not given the same region.
        done_so_far = len(self.study.get_trials(deepcopy=False))
        self.study.sampler = optuna.samplers.TPESampler(seed=spec.seed + done_so_far)
        self._handed_out: set[int] = set()
        state = read_state(experiment, spec.name)
        if state is not None:
            self._catch_up(state)

    def next_trial(self, state: SweepState) -> TrialPlan | None:
        """The next trial to start: an orphan of a killed driver first, else a new one; None
        once the study has `trials` trials."""
        known = {record.optuna_number for record in state.trials} | self._handed_out
        trial = self._orphan(known) or self._ask(state)
        if trial is None:
            return None
        self._handed_out.add(trial.number)
        params = {key: suggest(trial, key, space) for key, space in self.spec.parameters.items()}
        return TrialPlan(trial.number, trial_run_name(self.spec, trial.number), params, optuna_number=trial.number)

    def _catch_up(self, state: SweepState) -> None:
        """On opening, tell the study about trials the state has as done or pruned but the study
        as running: their driver was killed between saving its state and telling the study."""
        optuna = import_optuna()
        running = {trial.number for trial in self.study.get_trials(
            deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))}
        for record in state.trials:
            if record.optuna_number in running and record.state in ("done", "pruned"):
                self.finished(record)

    def _orphan(self, known: set[int | None]) -> "optuna.trial.Trial | None":
        optuna = import_optuna()
        running = self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
        numbers = sorted(trial.number for trial in running if trial.number not in known)
        return trial_by_number(self.study, numbers[0]) if numbers else None

    def _ask(self, state: SweepState) -> "optuna.trial.Trial | None":
        total = max(len(state.trials), len(self.study.get_trials(deepcopy=False)))
        return self.study.ask() if total < self.spec.trials else None

    def trial_command(self, record: TrialRecord, resume: bool) -> list[str]:
        """`optuna_trial.py <study options> -- <02_train.py arguments>`, after the Python executable."""
        assert record.optuna_number is not None, f"trial {record.run} has no Optuna trial number"
        return [
            str(TRIAL_SCRIPT), "--storage", str(self.storage_path), "--study", self.spec.name,
            "--trial-number", str(record.optuna_number), "--metric", self.spec.metric,
            "--startup-trials", str(self.rule.startup_trials), "--first-epoch", str(self.rule.first_epoch),
            "--", *train_command(self.experiment, record.run, resume)[1:],
        ]

    def finished(self, record: TrialRecord) -> None:
        """Tell the study how the trial ended: its best value, pruned, or failed.

        An interrupted trial stays RUNNING: the rerun resumes it as the same Optuna trial.
        Telling twice (a driver killed after telling, before saving its state) is a no-op.
        """
        optuna = import_optuna()
        states = optuna.trial.TrialState
        if record.state == "done" and record.best is not None:
            self.study.tell(record.optuna_number, record.best, skip_if_finished=True)
        elif record.state == "pruned":
            self.study.tell(record.optuna_number, state=states.PRUNED, skip_if_finished=True)
        elif record.state in ("done", "failed"):
            self.study.tell(record.optuna_number, state=states.FAIL, skip_if_finished=True)
        else:
            assert record.state == "interrupted", f"trial {record.run} is not finished: {record.state}"
