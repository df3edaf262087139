"""A session's claim on its run: an exclusive lock, and no path it writes leading out of the run.

Two sessions writing one run interleave CSV rows and TensorBoard files, so a session holds
`flock` on `<run>/session.lock` from its start to its end; the kernel releases it when the
process dies, however it dies. While held, the file holds the holder's pid (emptied at release)
so that a refused session can name it. It lies beside config.json, where `--restart` does not
move it. A symlink planted in the run (`logs/log.txt -> /elsewhere`) would make the session
write outside the experiments root, so the claim refuses such a run, naming the link.
"""

import fcntl
import os
from pathlib import Path

from utils.errors import RunBusyError, RunLinkError
from utils.fileio import FILE_MODE, machine_error
from utils.runs.run import Run


# folders a library fills itself, links included (W&B links its core log into ~/.cache/wandb)
_LIBRARY_FOLDERS = ("wandb",)


_HELD: set[int] = set()  # the lock files this process holds open


class RunLock:
    """The open lock file of a claimed run; `release` empties it and lets the next session in."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path, self._fd = path, fd
        _HELD.add(fd)

    def release(self) -> None:
        if self._fd < 0:
            return
        try:
            os.ftruncate(self._fd, 0)  # the pid of a session that ended names no holder
        except OSError:
            pass  # a full or read-only disk: the stale pid is harmless, the lock still goes
        _HELD.discard(self._fd)
        os.close(self._fd)
        self._fd = -1


def _close_in_forked_child() -> None:
    """A forked child (a DataLoader worker) shares the lock until it closes its copy: without
    this, workers outliving a SIGKILLed session would hold its run for seconds more."""
    for fd in _HELD:
        try:
            os.close(fd)
        except OSError:
            pass
    _HELD.clear()


os.register_at_fork(after_in_child=_close_in_forked_child)


def claim_run(run: Run) -> RunLock:
    """Lock the run for this process, or raise RunBusyError (exit 2) naming the holder's pid.

    RunLinkError (exit 2) names a link that leads out of the run; a folder that cannot be
    written (read-only, full) is a RunIOError (exit 1) naming the path.
    """
    check_no_link_leads_out(run)
    path = run.lock_file
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)
    except OSError as error:
        raise machine_error(error, path) from error
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        busy = RunBusyError(
            f"run {run.name} is in use by another training session (pid {holder}, lock {path}); wait "
            f"for it to end or stop it (kill {holder}), then try again; nothing was changed"
        )
        busy.pid = int(holder) if holder.isdigit() else 0
        raise busy from None
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    except OSError as error:
        os.close(fd)
        raise machine_error(error, path) from error
    return RunLock(path, fd)


def check_no_link_leads_out(run: Run) -> None:
    """Raise RunLinkError naming the first symlink, among the paths a session writes, whose
    target lies outside the run folder (links inside it, such as W&B's `latest-run`, pass)."""
    written = [run.config_file, run.lock_file, run.archive, *run.subfolders]
    for path in written:
        _check_link(path, run.path)
        if path.is_dir() and not path.is_symlink():
            for folder, subfolders, files in os.walk(path):  # does not descend into linked folders
                for name in (*subfolders, *files):
                    _check_link(Path(folder) / name, run.path)
                subfolders[:] = [name for name in subfolders if name not in _LIBRARY_FOLDERS]


def _check_link(path: Path, run_dir: Path) -> None:
    if not path.is_symlink():
        return
    try:
        target = path.resolve()
    except (OSError, RuntimeError):  # a loop of links: nowhere a session could write
        target = Path(os.readlink(path))
    if not target.is_relative_to(run_dir):
        raise RunLinkError(
            f"{path} is a symlink to {target}, outside the run {run_dir}: a session would write "
            "there; replace the link with a real file or folder (e.g. rm it), then try again; nothing was changed"
        )
