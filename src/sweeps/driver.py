"""The sweep driver: launch trials up to N at once, record how each ends, stop them all on a signal.

The driver talks to where trials run through an `Executor` (here: `sweeps.local`; on SLURM:
`sweeps.slurm`) and to what they try through a `Search` (`sweeps.trials.PlannedSearch` for
grid and random, `sweeps.optuna_search` for Optuna). It writes the state file after every
change, so that whatever kills it, a rerun of the same command continues where it stopped.
"""

import signal
import sys
import time
from dataclasses import dataclass
from types import FrameType
from typing import IO, Protocol

from sweeps.report import format_trials, log_tail, progress_line, sort_by_metric, state_counts
from sweeps.results import read_metric, trial_outcome
from sweeps.spec import SweepSpec
from sweeps.state import (
    FINISHED_STATES,
    SweepState,
    TrialRecord,
    check_unchanged,
    gone_trials,
    launch_reason,
    lock_sweep,
    read_state,
    state_file,
    sweep_dir,
    write_state,
)
from sweeps.trial_runs import create_trial_run, prepare_launch
from sweeps.trials import PlannedSearch, TrialPlan, total_trials
from training.signals import GracefulStop
from utils.runs.run import Run
from utils.runs.outputs import read_summary

STOP_TIMEOUT_SECONDS = 120.0  # a worker saves last.pt in seconds; after this it is killed
POLL_SECONDS = 0.2
EXECUTORS = ("local", "slurm")


class Executor(Protocol):
    """Where trials run. `launch` sets `record.pid` or `record.job_id`; codes are None when unknown."""

    def launch(self, record: TrialRecord, command: list[str]) -> None: ...
    def poll(self) -> list[tuple[TrialRecord, int | None]]: ...
    def running(self) -> int: ...
    def stop_all(self, signum: int, timeout: float) -> list[tuple[TrialRecord, int | None]]: ...
    def reattach(self, record: TrialRecord) -> bool: ...


class Search(Protocol):
    """What trials try: the next one to start, the command it runs, what its result teaches."""

    def next_trial(self, state: SweepState) -> TrialPlan | None: ...
    def trial_command(self, record: TrialRecord, resume: bool) -> list[str]: ...
    def finished(self, record: TrialRecord) -> None: ...


@dataclass(frozen=True)
class DriverOptions:
    """How the driver runs: trials at once, retries of a failed trial, the command to record."""

    workers: int = 1
    retries: int = 1
    command: str = ""  # recorded in each trial's meta.command
    stop_timeout: float = STOP_TIMEOUT_SECONDS


class DriverStop(GracefulStop):
    """SIGINT/SIGTERM set a flag; a second signal while the driver stops changes nothing.

    (A single run's GracefulStop raises KeyboardInterrupt on a second Ctrl-C; the driver must
    not, or it would leave its workers unrecorded.)
    """

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.request(signum)


def build_executor(name: str, spec: SweepSpec, experiment: str, workers: int) -> Executor:
    """The executor `--executor` names; building it checks its settings and creates nothing."""
    if name == "slurm":
        from sweeps.slurm import SlurmExecutor

        return SlurmExecutor(spec=spec, experiment=experiment, folder=sweep_dir(experiment, spec.name))
    from sweeps.local import LocalExecutor

    return LocalExecutor(experiment, workers)


def build_search(spec: SweepSpec, experiment: str) -> Search:
    """The search of the spec's method (Optuna opens or creates its study next to the state)."""
    if spec.method == "optuna":
        from sweeps.optuna_search import OptunaSearch

        return OptunaSearch(spec=spec, experiment=experiment, folder=sweep_dir(experiment, spec.name))
    return PlannedSearch(spec, experiment)


def run_sweep(spec: SweepSpec, experiment: str, executor: Executor, options: DriverOptions,
              out: IO[str] = sys.stdout) -> int:
    """Run (or continue) the sweep under its lock; the exit code: 0 all finished, 1 some did not,
    130/143 stopped by a signal."""
    with lock_sweep(experiment, spec.name):
        state = read_state(experiment, spec.name)
        if state is None:
            state = SweepState(spec.name, experiment, spec.raw, spec.fingerprint())
        check_unchanged(state, spec.fingerprint(), spec.source)
        write_state(state)
        search = build_search(spec, experiment)
        for note in getattr(search, "notes", ()):  # an Optuna study copied from an older sweep's SQLite
            print(note, file=out, flush=True)
        return SweepDriver(spec, state, search, executor, options, out).run()


class SweepDriver:
    """One driver session over a sweep's state (see the module docstring)."""

    def __init__(self, spec: SweepSpec, state: SweepState, search: Search, executor: Executor,
                 options: DriverOptions, out: IO[str]) -> None:
        self.spec, self.state, self.search, self.executor = spec, state, search, executor
        self.options, self.out = options, out
        self.total = total_trials(spec)
        self.stop = DriverStop()
        self.launched_at: dict[int, float] = {}
        self.resumable: set[int] = set()  # interrupted trials this session continues

    def run(self) -> int:
        """Adopt what a previous driver left running, then launch, watch and record until done."""
        self.stop.install()
        try:
            self._adopt_previous()
            while not self.stop.requested:
                self._record_ended(self.executor.poll(), stopping=False)
                more = self._fill_slots()
                if not more and self.executor.running() == 0:
                    return self._finish()
                time.sleep(POLL_SECONDS)
            return self._stop_workers()
        except BaseException:
            if self.executor.running():
                self._record_ended(self.executor.stop_all(signal.SIGTERM, self.options.stop_timeout), stopping=True)
            raise
        finally:
            write_state(self.state)
            self.stop.restore()

    def _adopt_previous(self) -> None:
        """Trials a killed driver left 'running': watched while alive, else continued; finished
        trials whose run folder was deleted: run again from the start."""
        for record in gone_trials(self.state):
            self._say(f"{record.run} was {record.state}, but its run folder "
                      f"{Run.resolve(self.state.experiment, record.run).path} is gone; it runs again from the start")
            record.state, record.exit_code, record.best, record.final = "pending", None, None, None
        for record in self.state.trials:
            if record.state == "running" and self.executor.reattach(record):
                self._say(f"{record.run} was started by a previous driver and still runs; waiting for it")
            elif record.state in ("running", "interrupted"):
                record.state, record.pid = "interrupted", None
                self.resumable.add(record.number)
        write_state(self.state)

    def _fill_slots(self) -> bool:
        """Launch trials while a slot is free; False when nothing is left to launch."""
        while self.executor.running() < self.options.workers and not self.stop.requested:
            record = self._next_record()
            if record is None:
                return False
            self._launch(record)
        return True

    def _next_record(self) -> TrialRecord | None:
        """Interrupted trials first (they hold progress), then retries, then new trials."""
        waiting = [record for record in self.state.trials
                   if launch_reason(record, self.options.retries) is not None
                   and (record.state != "interrupted" or record.number in self.resumable)]
        order = {"resume": 0, "retry": 1, "start": 2}
        if waiting:
            return min(waiting, key=lambda r: (order[launch_reason(r, self.options.retries)], r.number))
        plan = self.search.next_trial(self.state)
        if plan is None:
            return None
        record = TrialRecord(plan.number, plan.run, plan.params, optuna_number=plan.optuna_number)
        self.state.trials.append(record)
        write_state(self.state)
        return record

    def _launch(self, record: TrialRecord) -> None:
        """Create the trial's run if needed, then start it, resuming from its checkpoint if it has one."""
        plan = TrialPlan(record.number, record.run, record.params, record.optuna_number)
        record.config_hash = create_trial_run(self.spec, self.state.experiment, plan, self.options.command)
        resume = prepare_launch(self.state.experiment, record.run)
        record.state, record.exit_code = "running", None
        record.attempts += 1
        self.resumable.discard(record.number)
        self.executor.launch(record, self.search.trial_command(record, resume))
        self.launched_at[record.number] = time.monotonic()
        write_state(self.state)

    def _record_ended(self, ended: list[tuple[TrialRecord, int | None]], stopping: bool) -> None:
        for record, code in ended:
            run = Run.resolve(self.state.experiment, record.run)
            record.exit_code = code
            record.best, record.final = read_metric(run.metrics_csv, self.spec.metric, self.spec.mode)
            record.state = trial_outcome(code, read_summary(run), stopping)
            if record.state == "failed":
                record.failures += 1
            elif record.state == "interrupted" and code is None:
                self.resumable.add(record.number)  # its driver died; this one continues it
            write_state(self.state)
            if launch_reason(record, self.options.retries) != "retry":  # Optuna: FAIL only after the last retry
                self.search.finished(record)
            self._report_ended(record)

    def _report_ended(self, record: TrialRecord) -> None:
        finished = sum(r.state in FINISHED_STATES for r in self.state.trials)
        started = self.launched_at.pop(record.number, None)
        seconds = None if started is None else time.monotonic() - started
        self._say(progress_line(record, finished, self.total, self.spec.metric, seconds))
        if record.state == "failed" and record.failures <= self.options.retries:
            self._say(f"  exit code {record.exit_code}; retrying ({record.failures} of {self.options.retries} retries)")
        elif record.state == "failed":
            self._say(f"  exit code {record.exit_code}; giving up after {record.failures} failed attempts")

    def _stop_workers(self) -> int:
        """Forward the signal to every worker, wait for them to save, record them; 130/143."""
        name = signal.Signals(self.stop.signum).name
        self._say(f"stopping: {name} sent to {self.executor.running()} running trials; waiting for them to "
                  f"save (at most {self.options.stop_timeout:.0f} s)")
        self._record_ended(self.executor.stop_all(self.stop.signum, self.options.stop_timeout), stopping=True)
        self._say(self._table(f"stopped by {name}") + "\nrerun the same command to continue")
        return self.stop.exit_code

    def _finish(self) -> int:
        """The final table, sorted by the metric, and the logs of trials that failed for good."""
        gave_up = [r for r in self.state.trials if r.state == "failed"]
        lines = [self._table("finished" if not gave_up else "ended")]
        for record in gave_up:
            lines += [f"{record.run} failed {record.failures} times (exit code {record.exit_code}):",
                      log_tail(self.state.experiment, record)]
        unfinished = [r for r in self.state.trials if r.state not in FINISHED_STATES]
        if unfinished:
            lines.append(f"{len(unfinished)} trials did not finish; fix the cause, then rerun this command "
                         "(--retries N allows more attempts)")
        self._say("\n".join(lines))
        return 1 if unfinished or len(self.state.trials) < self.total else 0

    def _table(self, how: str) -> str:
        ordered = sort_by_metric(self.state.trials, self.spec.mode)
        head = (f"sweep {self.spec.name} {how}: {state_counts(self.state.trials, self.total)}; "
                f"{self.spec.metric} ({self.spec.mode}); state in {state_file(self.state.experiment, self.spec.name)}")
        return f"{head}\n{format_trials(ordered)}"

    def _say(self, text: str) -> None:
        print(text, file=self.out, flush=True)
