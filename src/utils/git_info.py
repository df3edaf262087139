"""Git facts about the code a run was made with (commit, dirty flag, diff); never raises.

Untracked source files count: a task added as the README says lives in untracked files until it
is committed, and a run made with it cannot be rebuilt from the commit alone. So an untracked,
not ignored file makes the tree dirty and goes into the diff, unless it is not source: anything
under data/ or experiments/, a virtual environment, a cache, a symlink, or a file over 1 MiB
(those are named in `GitState.left_out` instead). Every git call is bounded in time; outside a
git checkout, or without git, the answers are None and ''.
"""

import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from utils.configs import REPO_ROOT

GIT_TIMEOUT_S = 10  # one git call
DIFF_BUDGET_S = 30  # every call of one `git_diff` together
NOT_SOURCE_TOP = frozenset({"data", "experiments", ".venv", "venv", "wandb"})  # first path component
NOT_SOURCE_ANYWHERE = frozenset({
    "__pycache__", ".pytest_cache", ".hypothesis", ".mypy_cache", ".ruff_cache", ".ipynb_checkpoints",
})
MAX_UNTRACKED_BYTES = 1 << 20


def _git(*args: str, cwd: Path = REPO_ROOT, ok: tuple[int, ...] = (0,), timeout: float = GIT_TIMEOUT_S) -> str | None:
    """git's stdout, or None when git is missing, times out or exits with a code not in `ok`."""
    try:
        result = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=max(timeout, 0.1), check=False,
        )
    except (OSError, subprocess.SubprocessError, UnicodeDecodeError):
        return None
    return result.stdout if result.returncode in ok else None


@dataclass
class GitState:
    """The checkout's commit and dirty flag; `untracked` the untracked source files the diff
    holds, `left_out` the untracked files it does not hold, each with the reason."""

    commit: str | None
    dirty: bool | None
    untracked: list[str] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)


def git_commit(cwd: Path = REPO_ROOT) -> str | None:
    """The HEAD commit hash, or None outside a git checkout or before the first commit."""
    out = _git("rev-parse", "HEAD", cwd=cwd)
    return out.strip() if out else None


def git_state(cwd: Path = REPO_ROOT) -> GitState:
    """Commit, dirty flag (tracked changes or untracked source files) and the untracked files."""
    commit = git_commit(cwd)
    tracked = _git("status", "--porcelain", "--untracked-files=no", cwd=cwd)
    others = _git("ls-files", "--others", "--exclude-standard", "-z", cwd=cwd)
    if tracked is None or others is None:
        return GitState(commit, None)
    untracked, left_out = [], []
    for name in sorted(filter(None, others.split("\0"))):
        reason = _not_source(cwd, name)
        if reason is None:
            untracked.append(name)
        elif reason:
            left_out.append(f"{name} ({reason})")
    return GitState(commit, bool(tracked.strip()) or bool(untracked), untracked, left_out)


def _not_source(cwd: Path, name: str) -> str | None:
    """Why an untracked file is not source ('' for data, runs and caches, never worth naming),
    or None when it is."""
    parts = Path(name).parts
    if parts[0] in NOT_SOURCE_TOP or NOT_SOURCE_ANYWHERE.intersection(parts):
        return ""
    path = cwd / name
    if path.is_symlink() or not path.is_file():
        return "not a regular file"
    size = path.stat().st_size
    if size > MAX_UNTRACKED_BYTES:
        return f"{size:,} bytes, over the {MAX_UNTRACKED_BYTES:,} kept"
    return None


def git_is_dirty(cwd: Path = REPO_ROOT) -> bool | None:
    """True when tracked files have uncommitted changes or untracked source files exist; None
    when git cannot tell."""
    return git_state(cwd).dirty


def git_diff(cwd: Path = REPO_ROOT, state: GitState | None = None) -> str:
    """The uncommitted diff against HEAD, untracked source files included as new files ('' when
    clean or unknown); `git apply` on the commit rebuilds the tree. `state` saves a second look."""
    state = state or git_state(cwd)
    deadline = time.monotonic() + DIFF_BUDGET_S
    parts = [_git("diff", "HEAD", "--binary", cwd=cwd) or ""]
    for name in state.untracked:
        left = deadline - time.monotonic()
        if left <= 0:
            state.left_out.append(f"{name} (out of the {DIFF_BUDGET_S} s for the diff)")
            continue
        added = _git("diff", "--no-index", "--binary", "--", "/dev/null", name, cwd=cwd, ok=(0, 1), timeout=left)
        if added is None:
            state.left_out.append(f"{name} (git diff failed or ran out of time)")
        parts.append(added or "")
    return "".join(parts)


def git_summary(cwd: Path = REPO_ROOT) -> dict[str, object]:
    """`{"commit": ..., "dirty": ...}` for config metadata and logs."""
    state = git_state(cwd)
    return {"commit": state.commit, "dirty": state.dirty}
