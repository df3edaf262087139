"""The local executor: trials as `02_train.py` processes on this machine, N at a time.

Each worker runs in its own session, so a Ctrl-C in the terminal reaches only the driver, which
forwards it to every worker's process group; each gets an equal share of the CPU threads and,
with GPUs, one of them. A worker asks the kernel for SIGTERM when the driver dies
(PR_SET_PDEATHSIG), so a SIGKILLed driver's workers save and exit instead of running on.
"""

import ctypes
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from sweeps.state import TrialRecord
from utils.runs.run import Run

CONSOLE_FILE = "console.txt"  # in the run's logs/: the worker's stdout and stderr, every attempt
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
POLL_SECONDS = 0.2


@dataclass
class Worker:
    """A trial running here: its process (None when adopted from a previous driver) and slot."""

    record: TrialRecord
    slot: int
    process: subprocess.Popen | None = None
    console: IO[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.record.pid is not None
        return self.record.pid


class LocalExecutor:
    """Runs up to `workers` trials at once as child processes (see the module docstring)."""

    def __init__(self, experiment: str, workers: int, gpus: list[str] | None = None) -> None:
        self.experiment = experiment
        self.workers = workers
        self.gpus = visible_gpus() if gpus is None else gpus
        self.active: list[Worker] = []

    def launch(self, record: TrialRecord, command: list[str]) -> None:
        """Start `python <command>` for the trial; its output is appended to logs/console.txt."""
        slot = self._free_slot()
        console = open(Run.resolve(self.experiment, record.run).logs / CONSOLE_FILE, "ab")
        try:
            process = subprocess.Popen(
                [sys.executable, *command], stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT,
                env=worker_env(slot, self.workers, self.gpus), start_new_session=True,
                preexec_fn=die_with_parent(os.getpid()),
            )
        except BaseException:
            console.close()
            raise
        record.pid = process.pid
        self.active.append(Worker(record, slot, process, console))

    def reattach(self, record: TrialRecord) -> bool:
        """Whether a trial a previous driver launched still runs; if so it is watched until it ends.

        Its exit code cannot be known (it is not our child): `poll` reports None for it.
        """
        if record.pid is None or not is_trial_process(record.pid, record.run):
            return False
        self.active.append(Worker(record, self._free_slot()))
        return True

    def poll(self) -> list[tuple[TrialRecord, int | None]]:
        """Trials that ended since the last poll, with their exit codes (None: adopted worker)."""
        ended = [worker for worker in self.active if not self._alive(worker)]
        return [self._release(worker) for worker in ended]

    def running(self) -> int:
        return len(self.active)

    def stop_all(self, signum: int, timeout: float) -> list[tuple[TrialRecord, int | None]]:
        """Send `signum` to every worker's process group, wait up to `timeout` s, then SIGKILL."""
        for worker in self.active:
            _signal_group(worker.pid, signum)
        deadline = time.monotonic() + timeout
        while any(self._alive(worker) for worker in self.active) and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
        for worker in self.active:
            if self._alive(worker):
                _signal_group(worker.pid, signal.SIGKILL)
                _wait_gone(worker, self._alive)
        return self.poll()

    def _alive(self, worker: Worker) -> bool:
        if worker.process is not None:
            return worker.process.poll() is None
        return is_trial_process(worker.pid, worker.record.run)

    def _release(self, worker: Worker) -> tuple[TrialRecord, int | None]:
        """Forget an ended worker; whatever it left in its process group is killed."""
        self.active.remove(worker)
        _signal_group(worker.pid, signal.SIGKILL)  # e.g. orphaned DataLoader workers
        if worker.console is not None:
            worker.console.close()
        worker.record.pid = None
        return worker.record, None if worker.process is None else worker.process.returncode

    def _free_slot(self) -> int:
        taken = {worker.slot for worker in self.active}
        return next(slot for slot in range(len(self.active) + 1) if slot not in taken)


def worker_env(slot: int, workers: int, gpus: list[str]) -> dict[str, str]:
    """The environment of the worker in `slot`: its share of CPU threads and its GPU.

    OMP_NUM_THREADS is cores // workers unless the user set it; with G GPUs, slot k gets GPU
    k mod G through CUDA_VISIBLE_DEVICES, so 02_train's `--device auto` picks it as cuda:0.
    """
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(max(1, available_cores() // workers)))
    if gpus:
        env["CUDA_VISIBLE_DEVICES"] = gpus[slot % len(gpus)]
    return env


def available_cores() -> int:
    """Cores this process may run on (the affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        return os.cpu_count() or 1


def visible_gpus() -> list[str]:
    """CUDA device ids the workers may use, without importing torch.

    `CUDA_VISIBLE_DEVICES` when set (empty or -1: none), else one id per `nvidia-smi -L` line,
    else none.
    """
    given = os.environ.get("CUDA_VISIBLE_DEVICES")
    if given is not None:
        ids = [part.strip() for part in given.split(",") if part.strip()]
        return [] if not ids or ids[0] == "-1" else ids
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        listing = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(index) for index, line in enumerate(l for l in listing.splitlines() if l.startswith("GPU "))]


def die_with_parent(parent: int) -> Callable[[], None] | None:
    """A `preexec_fn` that makes the child get SIGTERM when the driver dies (Linux; None elsewhere).

    If the driver died between the fork and the prctl, the child's parent is already another
    process: the child then sends itself the signal it missed.
    """
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)

    def set_death_signal() -> None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGTERM)

    return set_death_signal


def is_trial_process(pid: int, run: str) -> bool:
    """Whether `pid` is a live (not zombie) process training `run` (guards against pid reuse)."""
    proc = Path(f"/proc/{pid}")
    if not Path("/proc/self").exists():  # no procfs: the best check is that the pid exists
        return _pid_exists(pid)
    try:
        status = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        command = (proc / "cmdline").read_bytes().split(b"\0")
    except (OSError, IndexError):
        return False
    return status not in ("Z", "X") and run.encode() in command


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _signal_group(pid: int, signum: int) -> None:
    """Signal the process group led by `pid` (each worker leads its own session); gone is fine."""
    try:
        os.killpg(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _wait_gone(worker: Worker, alive: Callable[[Worker], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while alive(worker) and time.monotonic() < deadline:
        time.sleep(0.05)
