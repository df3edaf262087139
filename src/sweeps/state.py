"""A sweep's state on disk: `<EXP>/sweeps/<NAME>/state.json`, rewritten atomically after each change.

The state is the one record of which trial ran with which parameters and how it ended, so a
rerun knows what to continue, `--status` what to print and `03_compare.py --sweep` what to
tabulate. A lock file beside it keeps a second driver off a sweep that is running.
"""

import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from utils.errors import SweepBusyError, SweepSpecError
from utils.fileio import atomic_write_text
from utils.management import experiment_path
from utils.runs.run import Run
from utils.names import validate_name

TRIAL_STATES = ("pending", "running", "done", "failed", "pruned", "interrupted")
FINISHED_STATES = ("done", "pruned")
STATE_VERSION = 1
SWEEPS_DIR = "sweeps"
STATE_FILE = "state.json"
LOCK_FILE = "driver.lock"


@dataclass
class TrialRecord:
    """One trial as the state file keeps it."""

    number: int
    run: str                      # "<name>-<NNN>"
    params: dict[str, Any]        # dotted key -> value, as swept
    config_hash: str = ""         # sha256 of the run's config.json without "meta" ("" before the run exists)
    state: str = "pending"        # one of TRIAL_STATES
    attempts: int = 0             # launches so far
    failures: int = 0             # launches that failed (retried while failures <= --retries)
    exit_code: int | None = None
    best: float | None = None     # best value of the spec's metric in the trial's CSV
    final: float | None = None    # last value of the spec's metric
    job_id: str | None = None     # SLURM/submitit job id (None locally)
    optuna_number: int | None = None
    pid: int | None = None        # local worker pid while running (a rerun waits for it to exit)


@dataclass
class SweepState:
    """The whole state of one sweep: its spec as loaded, the spec's fingerprint, its trials."""

    name: str
    experiment: str
    spec: dict[str, Any]
    fingerprint: dict[str, Any]
    trials: list[TrialRecord] = field(default_factory=list)

    def trial(self, number: int) -> TrialRecord | None:
        return next((record for record in self.trials if record.number == number), None)


def launch_reason(record: TrialRecord, retries: int) -> str | None:
    """What a driver starting now does with the trial: "start" (pending), "resume" (interrupted),
    "retry" (failed, with retries left), or None (finished, running, or failed for good)."""
    if record.state == "pending":
        return "start"
    if record.state == "interrupted":
        return "resume"
    if record.state == "failed" and record.failures <= retries:
        return "retry"
    return None


def gone_trials(state: SweepState) -> list[TrialRecord]:
    """Finished trials whose run folder is gone (deleted by hand): no longer done, whatever the
    state says; the driver runs them again from the start, --status and --dry-run say so."""
    return [record for record in state.trials
            if record.state in FINISHED_STATES and not Run.resolve(state.experiment, record.run).path.is_dir()]


def sweep_dir(experiment: str, name: str) -> Path:
    """`<root>/<EXP>/sweeps/<NAME>`, checked to lie inside the experiments root (not created)."""
    validate_name(name, "sweep name")
    return experiment_path(experiment) / SWEEPS_DIR / name


def state_file(experiment: str, name: str) -> Path:
    return sweep_dir(experiment, name) / STATE_FILE


def list_sweeps(experiment: str) -> list[str]:
    """The experiment's sweeps that have a state file, sorted (to name them when one is unknown)."""
    folder = experiment_path(experiment) / SWEEPS_DIR
    if not folder.is_dir():
        return []
    return sorted(path.name for path in folder.iterdir() if (path / STATE_FILE).is_file())


def read_state(experiment: str, name: str) -> SweepState | None:
    """The sweep's state, or None when the sweep has not started."""
    path = state_file(experiment, name)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"version {data.get('version')!r}, expected {STATE_VERSION}")
        return SweepState(
            name=data["name"], experiment=data["experiment"], spec=data["spec"],
            fingerprint=data["fingerprint"], trials=[TrialRecord(**record) for record in data["trials"]],
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise SweepSpecError(
            f"sweep state {path} cannot be read ({exc}); it is only ever replaced whole, so it was "
            "edited or copied in: restore it, or move the sweep folder aside to start over"
        ) from None


def write_state(state: SweepState) -> None:
    """Replace the state file atomically: a reader (or a rerun after a kill) sees a whole state."""
    path = state_file(state.experiment, state.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "version": STATE_VERSION, "name": state.name, "experiment": state.experiment, "spec": state.spec,
        "fingerprint": state.fingerprint, "trials": [asdict(record) for record in state.trials],
    }
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")


def changed_fields(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The fingerprint fields whose values differ, sorted."""
    return sorted(key for key in old.keys() | new.keys() if old.get(key) != new.get(key))


def check_unchanged(state: SweepState, fingerprint: dict[str, Any], source: str) -> None:
    """A rerun whose spec (`source`, with `fingerprint`) differs in a field that matters:
    SweepSpecError naming the fields, never a silent mix of two sweeps."""
    fields = changed_fields(state.fingerprint, fingerprint)
    if fields:
        raise SweepSpecError(
            f"{source}: sweep {state.name} of {state.experiment} was started with a different "
            f"{', '.join(fields)} ({state_file(state.experiment, state.name)} keeps the old spec); restore "
            "them to continue it, or give the sweep a new name to start another; nothing was changed"
        )


def config_hash(config: dict[str, Any]) -> str:
    """sha256 of a run config without `meta`: two trials hash alike when they train alike."""
    body = {key: value for key, value in config.items() if key != "meta"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode("utf-8")).hexdigest()


@contextmanager
def lock_sweep(experiment: str, name: str) -> Iterator[None]:
    """Hold the sweep's lock file (`fcntl.flock`) for as long as the driver runs.

    A second driver on the same sweep would launch the same trials twice; it gets
    SweepBusyError (exit 2) instead. The kernel drops the lock when the holder dies, even by
    SIGKILL, so a stale lock never blocks a rerun.
    """
    path = sweep_dir(experiment, name) / LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise SweepBusyError(
                f"sweep {name} of {experiment} is being run by another driver (pid {holder}); "
                "wait for it to end, or stop it (Ctrl-C / kill PID) and rerun this command"
            ) from None
        handle.truncate(0)
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
