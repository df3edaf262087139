"""The SLURM executor: one submitit job per trial with the spec's `slurm` resources
(`sweeps.spec.SlurmResources`, checked when the spec is loaded).

A job requeues itself on timeout or preemption and resumes its run (`sweeps.slurm_job`); its
id is kept in the sweep state, so a rerun of the driver reattaches to jobs still queued or
running instead of submitting them again. Stopping the driver (Ctrl-C, SIGTERM) cancels its
jobs, whose trials save and exit 143; a SIGKILLed driver leaves them running for the rerun.

`SWEEP_SUBMITIT_CLUSTER=local` runs the jobs through submitit's local executor (processes on
this machine, with its timeouts and requeue), as the tests do.
"""

import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sweeps.local import CONSOLE_FILE, is_trial_process
from sweeps.spec import SlurmResources, SweepSpec
from sweeps.state import TrialRecord
from utils.configs import REPO_ROOT
from utils.errors import SweepSpecError
from utils.runs.run import Run

CLUSTER_ENV = "SWEEP_SUBMITIT_CLUSTER"
CLUSTERS = ("slurm", "local")
SUBMITIT_DIR = "submitit"
NO_RESULT_CODE = 1  # a job that ended without the trial's exit code (cancelled, out of memory, ...)
POLL_SECONDS = 0.5
INSTALL_HINT = "submitit is not installed: `pip install submitit` (see requirements.txt)"


def submitit_parameters(resources: SlurmResources) -> dict[str, Any]:
    """AutoExecutor parameters: one node, one task; the task starts torchrun for several GPUs."""
    return {
        "slurm_partition": resources.partition, "timeout_min": resources.time_min,
        "gpus_per_node": resources.gpus_per_trial, "cpus_per_task": resources.cpus_per_trial,
        "nodes": 1, "tasks_per_node": 1,
    }


def trial_argv(command: list[str], gpus: int) -> list[str]:
    """The trial's full command: Python, or torchrun with one rank per GPU (as the engine runs
    under torchrun). `--resume` is left to the job, which adds it once the run has a checkpoint."""
    command = [arg for arg in command if arg != "--resume"]
    if gpus > 1:
        return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={gpus}", *command]
    return [sys.executable, *command]


def import_submitit() -> Any:
    try:
        import submitit
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    return submitit


@dataclass
class Tracked:
    """A trial's job being watched; `adopted` when a previous driver submitted it."""

    record: TrialRecord
    job: Any  # submitit.Job
    adopted: bool = False


class SlurmExecutor:
    """Runs each trial as a submitit job (the driver's Executor protocol, see the module docstring)."""

    def __init__(self, spec: SweepSpec, experiment: str, folder: Path) -> None:
        """`folder` is the sweep's folder (`sweeps.state.sweep_dir`); submitit keeps its files in
        `<folder>/submitit/`."""
        self.resources = spec.slurm
        self.cluster = _choose_cluster(import_submitit())
        self.experiment = experiment
        self.folder = (folder / SUBMITIT_DIR).absolute()
        self.tracked: list[Tracked] = []
        self._executor: Any = None  # submitit.AutoExecutor, made at the first launch (it creates the folder)

    @property
    def executor(self) -> Any:
        if self._executor is None:
            export_import_root()
            self._executor = import_submitit().AutoExecutor(folder=self.folder, cluster=self.cluster)
            self._executor.update_parameters(**submitit_parameters(self.resources))
        return self._executor

    def launch(self, record: TrialRecord, command: list[str]) -> None:
        """Submit the trial's job and keep its id in the record.

        A job of this trial that is still alive (a stopped driver's job still saving) is watched
        instead: a second job would train the same run at the same time.
        """
        previous = self._adopt(record)
        if previous is not None and not self._done(previous):
            self.tracked.append(previous)
            return
        from sweeps.slurm_job import TrialJob  # imports submitit: only once a job is submitted

        run = Run.resolve(self.experiment, record.run)
        job = TrialJob(trial_argv(command, self.resources.gpus_per_trial), str(REPO_ROOT),
                       str(run.last_checkpoint), str(run.logs / CONSOLE_FILE))
        self.executor.update_parameters(name=record.run)
        submitted = self.executor.submit(job)
        record.job_id = str(submitted.job_id)
        self.tracked.append(Tracked(record, submitted))

    def reattach(self, record: TrialRecord) -> bool:
        """Watch the trial's job if it is queued, running, or ended with a result not yet read."""
        tracked = self._adopt(record)
        if tracked is None or self._done(tracked) and not tracked.job.paths.result_pickle.exists():
            return False
        self.tracked.append(tracked)
        return True

    def poll(self) -> list[tuple[TrialRecord, int]]:
        """Trials whose job ended since the last poll, with the trial's exit code."""
        ended = [tracked for tracked in self.tracked if self._done(tracked)]
        for tracked in ended:
            self.tracked.remove(tracked)
        return [(tracked.record, self._exit_code(tracked)) for tracked in ended]

    def running(self) -> int:
        return len(self.tracked)

    def stop_all(self, signum: int, timeout: float) -> list[tuple[TrialRecord, int | None]]:
        """Cancel every job (each trial gets SIGTERM, saves and exits 143) and wait up to
        `timeout` s; a job still ending then is reported with None and left to finish."""
        for tracked in self.tracked:
            if not self._done(tracked):
                self._cancel(tracked)
        deadline = time.monotonic() + timeout
        while any(not self._done(tracked) for tracked in self.tracked) and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
        ended: list[tuple[TrialRecord, int | None]] = list(self.poll())
        ended += [(tracked.record, None) for tracked in self.tracked]
        self.tracked.clear()
        return ended

    def _adopt(self, record: TrialRecord) -> Tracked | None:
        """The job a previous launch of this trial submitted (None when there is none)."""
        if record.job_id is None:
            return None
        submitit = import_submitit()
        job_class = {"slurm": submitit.SlurmJob, "local": submitit.LocalJob}[self.cluster]
        return Tracked(record, job_class(folder=self.folder, job_id=record.job_id), adopted=True)

    def _done(self, tracked: Tracked) -> bool:
        """Whether the job ended. A local job a previous driver started is not our child: its
        controller process (whose pid is the job id) is looked up instead."""
        if self.cluster == "local" and tracked.adopted:
            return not is_trial_process(int(tracked.job.job_id), str(self.folder))
        return tracked.job.done()

    def _cancel(self, tracked: Tracked) -> None:
        """SLURM's scancel sends SIGTERM to every process of the job; submitit's local controller
        forwards SIGTERM to the job, which forwards it to the trial."""
        if self.cluster == "local":
            try:
                os.kill(int(tracked.job.job_id), signal.SIGTERM)
            except ProcessLookupError:
                pass
        else:
            tracked.job.cancel(check=False)

    def _exit_code(self, tracked: Tracked) -> int:
        """The trial's exit code, the job's return value; a job that ended without one (cancelled,
        killed, timed out too often) counts as failed, with submitit's reason in console.txt."""
        job = tracked.job
        if job.paths.result_pickle.exists():
            problem = job.exception()
            if problem is None:
                return int(job.result())
            reason = str(problem)
        else:
            reason = f"no result (state {job.state}); see {job.paths.stdout} and {job.paths.stderr}"
        console = Run.resolve(self.experiment, tracked.record.run).logs / CONSOLE_FILE
        with open(console, "a", encoding="utf-8") as handle:
            handle.write(f"\nsubmitit job {job.job_id} ended without the trial's exit code: {reason}\n")
        return NO_RESULT_CODE


def _choose_cluster(submitit: Any) -> str:
    """`SWEEP_SUBMITIT_CLUSTER`, else SLURM when this machine has it; an error names the fix."""
    cluster = os.environ.get(CLUSTER_ENV) or None
    if cluster is None and submitit.AutoExecutor.which() != "slurm":
        raise SweepSpecError(
            "--executor slurm: SLURM is not available here (srun is not on PATH); run the sweep on the "
            f"cluster, use --executor local, or set {CLUSTER_ENV}=local to run the jobs here through submitit"
        )
    cluster = cluster or "slurm"
    if cluster not in CLUSTERS:
        raise SweepSpecError(f"{CLUSTER_ENV}={cluster!r} is not one of {', '.join(CLUSTERS)}")
    return cluster


def export_import_root() -> None:
    """Put `src/` on PYTHONPATH: submitit runs jobs with this environment and unpickles the
    trial's job there, which imports `sweeps.slurm_job`."""
    src = str(REPO_ROOT / "src")
    paths = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    if src not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([src, *filter(None, paths)])
