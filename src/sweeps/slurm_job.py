"""The submitit job of one trial: runs the trial's command as a child process and, when SLURM
(or submitit's local executor) signals a timeout or a preemption, has it save and requeues itself.

submitit calls `checkpoint()` on the preemption signal (USR2, `--signal` before the time limit):
the child gets SIGTERM, saves its checkpoint and exits 143; the job returns a new submission of
itself and submitit requeues it. The requeued job finds the run's `last.pt` and adds `--resume`,
so the trial continues in the same run folder with the same step counter and W&B run id (the
engine's exact resume). This module is unpickled on the compute node: it imports little.
"""

import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from types import FrameType

from submitit.helpers import Checkpointable, DelayedSubmission, JobEnvironment

from sweeps.local import die_with_parent

STOP_GRACE_S = 120.0  # how long a stopped trial may take to save before it is killed
WAIT_STEP_S = 0.2


@dataclass
class TrialJob(Checkpointable):
    """`argv` (without `--resume`) run in `cwd`, output appended to `console`.

    `last_checkpoint` is the run's last.pt: once it exists, every (re)start adds `--resume`.
    """

    argv: list[str]
    cwd: str
    last_checkpoint: str
    console: str

    def __post_init__(self) -> None:
        self._pid: int | None = None
        self._exit_code: int | None = None
        self._stop_signal: int | None = None  # a stop that came before the child existed

    def __call__(self) -> int:
        """Run the trial to its end; returns its exit code (02_train.py's: 0, 1, 2, 130, 143)."""
        argv = [*self.argv, "--resume"] if os.path.exists(self.last_checkpoint) else self.argv
        # The job is killed, not the trial, when the scheduler cancels it: SIGTERM goes on to the
        # trial, which saves and exits 143 (submitit would only log it).
        signal.signal(signal.SIGTERM, self._forward)
        with open(self.console, "ab") as console:
            child = subprocess.Popen(
                argv, cwd=self.cwd, stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT,
                preexec_fn=_child_setup(os.getpid()),
            )
        self._pid = child.pid
        if self._stop_signal is not None:
            self._forward(self._stop_signal, None)
        return self._wait(deadline=None)

    def checkpoint(self) -> DelayedSubmission:
        """submitit's hook on timeout or preemption: stop the trial (it saves), then requeue."""
        if self._pid is not None and self._exit_code is None:
            self._forward(signal.SIGTERM, None)
            if self._wait(deadline=time.monotonic() + STOP_GRACE_S) is None:
                os.kill(self._pid, signal.SIGKILL)
                self._wait(deadline=None)
        return DelayedSubmission(replace(self))

    def _forward(self, signum: int, frame: FrameType | None) -> None:
        self._stop_signal = signum
        if self._pid is not None and self._exit_code is None:
            os.kill(self._pid, signum)  # a zombie child still takes it; only _wait reaps it

    def _wait(self, deadline: float | None) -> int | None:
        """The child's exit code once it ends (None at the deadline).

        It polls with `os.waitpid` rather than `Popen.wait`: `checkpoint()` runs in a signal
        handler that may interrupt this very wait, and Popen's wait holds a lock it would need.
        """
        assert self._pid is not None
        while self._exit_code is None:
            pid, status = os.waitpid(self._pid, os.WNOHANG)
            if pid:
                code = os.waitstatus_to_exitcode(status)
                self._exit_code = code if code >= 0 else 128 - code
            elif deadline is not None and time.monotonic() >= deadline:
                return None
            else:
                time.sleep(WAIT_STEP_S)
        return self._exit_code


def _child_setup(parent: int) -> Callable[[], None]:
    """The child's `preexec_fn`: it ignores the preemption signal (it is the job's to handle;
    by default it would kill the trial unsaved) and gets SIGTERM if the job process dies."""
    preemption = getattr(signal, f"SIG{JobEnvironment.USR_SIG}")
    die = die_with_parent(parent)

    def setup() -> None:
        signal.signal(preemption, signal.SIG_IGN)
        if die is not None:
            die()

    return setup
