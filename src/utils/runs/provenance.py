"""Where a run came from: the machine, the software and the code of every session that worked on
it, one JSON line per session in `<run>/logs/sessions.jsonl`.

A run resumed on another machine, or evaluated a week later with other package versions, keeps
each environment beside the one before. When the code was not committed (a task added as the
README says lives in untracked files) the diff, untracked source files included, is saved as
`logs/git_diff-<session>.patch`, so `git apply` on the recorded commit rebuilds the code.

    from utils.runs.provenance import environment_record, session_record

    with session_record(run, kind="evaluate", argv=sys.argv) as record:
        record.add(checkpoint="best.pt")  # any JSON fields of the caller's
        ...                               # the work; its exit status is recorded in any case

The record is written when the block ends, however it ends (an exception, a signal's
KeyboardInterrupt or SystemExit), with the exit status the CLI returns: the block may set
`record.exit_status`, else it is 0, or the exception's (usage error 2, SIGINT 130,
anything else 1). Only global rank 0 gathers and writes; on other ranks the record is inert.
"""

import getpass
import importlib.metadata
import json
import os
import platform
import secrets
import shlex
import socket
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from utils.configs import REPO_ROOT
from utils.distributed_info import get_world_size, is_main_process
from utils.errors import DiskFullError, TemplateError
from utils.fileio import atomic_write_text
from utils.git_info import git_diff, git_state
from utils.runs.run import Run

SESSIONS_FILE = "sessions.jsonl"  # in the run's logs/
PATCH_NAME = "git_diff-{session}.patch"  # in the run's logs/, beside sessions.jsonl


def installed_packages() -> dict[str, str]:
    """`{distribution: version}` of every installed distribution (importlib.metadata), by name."""
    found: dict[str, str] = {}
    for distribution in importlib.metadata.distributions():
        name, version = _name_and_version(distribution)
        if name and version and name not in found:  # the first on sys.path wins, as for an import
            found[name] = version
    return dict(sorted(found.items(), key=lambda item: item[0].lower()))


def _name_and_version(distribution: importlib.metadata.Distribution) -> tuple[str | None, str | None]:
    """Name and Version from the metadata's header lines. `.metadata` and `.version` run the email
    parser over the whole file (long descriptions included) on every access: with 111 packages
    that was 0.14 s of CPU at every session start (0.016 s this way)."""
    text = distribution.read_text("METADATA") or distribution.read_text("PKG-INFO") or ""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():  # the headers end at the first blank line
            break
        key, colon, value = line.partition(":")
        if colon and key in ("Name", "Version"):
            fields.setdefault(key, value.strip())
    return fields.get("Name"), fields.get("Version")


def environment_record(argv: Sequence[str] | None = None, repo: Path = REPO_ROOT) -> dict[str, Any]:
    """The machine, the software and the code this process runs with, as JSON values.

    Host, user, Python, torch, CUDA and cuDNN versions, GPU names, CPU count, world size, the
    command line (`argv`, default `sys.argv`), every installed distribution's version and the git
    commit and dirty flag of `repo` (untracked source files count as dirty; see utils.git_info).

        >>> environment_record()["git"]
        {'commit': '3f2a...', 'dirty': True}
    """
    import torch

    cuda = torch.cuda.is_available()
    state = git_state(repo)
    return {
        "host": socket.gethostname(),
        "user": _user(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "gpus": [torch.cuda.get_device_name(index) for index in range(torch.cuda.device_count())] if cuda else [],
        "cpu_count": os.cpu_count(),
        "world_size": get_world_size(),
        "command": shlex.join(sys.argv if argv is None else argv),
        "python_executable": sys.executable,
        "git": {"commit": state.commit, "dirty": state.dirty},
        "packages": installed_packages(),
    }


def _user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and no LOGNAME/USER (some containers)
        return None


def exit_status_of(error: BaseException | None) -> int:
    """The exit code a CLI of this template returns for a session that ended with `error`."""
    if error is None:
        return 0
    if isinstance(error, SystemExit):
        return error.code if isinstance(error.code, int) else 1
    if isinstance(error, KeyboardInterrupt):
        return 130
    return 2 if isinstance(error, TemplateError) else 1


@dataclass
class SessionRecord:
    """One session's record, gathered at its start and written at its end (rank 0 only)."""

    run: Run
    kind: str
    session: str
    started: datetime
    fields: dict[str, Any] = field(default_factory=dict)
    patch: str = ""
    exit_status: int | None = None
    written: bool = False

    @property
    def patch_path(self) -> Path:
        return self.run.logs / PATCH_NAME.format(session=self.session)

    def add(self, **fields: Any) -> None:
        """Add JSON fields of the caller's (a fine-tuned run's source, an evaluated checkpoint)."""
        self.fields.update(fields)

    def describe(self) -> str:
        """One line for log.txt: the session, the commit and where the diff goes."""
        git = self.fields.get("git", {})
        saved = f", diff in logs/{self.patch_path.name}" if self.patch else ""
        return f"session {self.session} ({self.kind}): git commit {git.get('commit')} (dirty: {git.get('dirty')}{saved})"

    def end(self, error: BaseException | None = None) -> None:
        """Append the record to `logs/sessions.jsonl` (and save the diff), once; never raises,
        so that the session's own outcome is what the caller sees (a failure here is printed).

        The exit status is `exit_status` when the session set it (as it returned), else the one
        `error`, the exception that ends the session, gives (0 without one)."""
        if self.written or not is_main_process():
            return
        self.written = True
        ended = datetime.now().astimezone()
        status = self.exit_status if self.exit_status is not None else exit_status_of(error)
        record = {
            "session": self.session, "kind": self.kind,
            "start": self.started.isoformat(timespec="seconds"), "end": ended.isoformat(timespec="seconds"),
            "duration_s": round((ended - self.started).total_seconds(), 3), "exit_status": status,
            **({"error": _one_line(error)} if status and error is not None else {}),
            **self.fields,
        }
        try:
            self.run.logs.mkdir(parents=True, exist_ok=True)  # a --restart may have moved it aside
            if self.patch:
                atomic_write_text(self.patch_path, self.patch)
            _append_line(self.run.logs / SESSIONS_FILE, json.dumps(record, default=str))
        except OSError as exc:
            if isinstance(error, DiskFullError) or isinstance(getattr(error, "__cause__", None), DiskFullError):
                return  # the session's own one line already names the full disk; a second would repeat it
            print(f"warning: the session record of {self.run.name} was not written: {exc}", file=sys.stderr)


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _append_line(path: Path, line: str) -> None:
    """One write with O_APPEND: lines of sessions that end at once never interleave."""
    data = (line + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)  # the umask applies
    try:
        while data:
            data = data[os.write(fd, data):]
        os.fsync(fd)
    finally:
        os.close(fd)


def begin_session_record(
    run: Run, kind: str, argv: Sequence[str] | None = None, repo: Path = REPO_ROOT,
) -> SessionRecord:
    """Gather the environment and the diff now (the code this session starts with); nothing is
    written until `SessionRecord.end`. Pair with `end` in a `finally`, or use `session_record`."""
    started = datetime.now().astimezone()
    session = f"{started.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(3)}"
    record = SessionRecord(run, kind, session, started)
    if is_main_process():
        environment = environment_record(argv, repo)
        record.add(**environment)
        if environment["git"]["dirty"]:
            state = git_state(repo)
            record.patch = git_diff(repo, state)
            environment["git"].update(
                patch=record.patch_path.name if record.patch else None,
                untracked=state.untracked, left_out=state.left_out,
            )
    return record


@contextmanager
def session_record(
    run: Run, kind: str, argv: Sequence[str] | None = None, repo: Path = REPO_ROOT,
) -> Iterator[SessionRecord]:
    """`begin_session_record` ... `end`, around a block: the record is written however it ends.

        with session_record(run, kind="evaluate", argv=sys.argv) as record:
            record.add(checkpoint="best.pt")
    """
    record = begin_session_record(run, kind, argv, repo)
    try:
        yield record
    except BaseException as error:
        record.exit_status = exit_status_of(error)
        record.end(error)
        raise
    record.end()
