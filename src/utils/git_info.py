"""Git facts about the code a run was made with (commit, dirty flag, diff); never raises."""

import subprocess
from pathlib import Path

from utils.configs import REPO_ROOT


def _git(*args: str, cwd: Path = REPO_ROOT) -> str | None:
    try:
        result = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout if result.returncode == 0 else None


def git_commit(cwd: Path = REPO_ROOT) -> str | None:
    """The HEAD commit hash, or None outside a git checkout or before the first commit."""
    out = _git("rev-parse", "HEAD", cwd=cwd)
    return out.strip() if out else None


def git_is_dirty(cwd: Path = REPO_ROOT) -> bool | None:
    """True when tracked files have uncommitted changes; None when git cannot tell."""
    out = _git("status", "--porcelain", "--untracked-files=no", cwd=cwd)
    return None if out is None else bool(out.strip())


def git_diff(cwd: Path = REPO_ROOT) -> str:
    """The uncommitted diff of tracked files against HEAD ('' when clean or unknown)."""
    return _git("diff", "HEAD", cwd=cwd) or ""


def git_summary(cwd: Path = REPO_ROOT) -> dict[str, object]:
    """`{"commit": ..., "dirty": ...}` for config metadata and logs."""
    return {"commit": git_commit(cwd), "dirty": git_is_dirty(cwd)}
