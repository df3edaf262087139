"""The run's plain files the Logger writes on the caller's thread: sub-folders by kind, log.txt,
architecture.txt and the git record. (The run itself is created by `utils.runs.new_run.ensure_run`;
metrics and media go through utils.log.writers.)
"""

import logging
import sys
from pathlib import Path
from typing import Any

from utils.fileio import atomic_write_text
from utils.helper_functions import count_parameters
from utils.runs.run import Run

LINE_FORMAT = "%(asctime)s %(levelname)s %(message)s"


def path_of_kind(run_folder: Path, kind: str) -> Path:
    """The sub-folder of a run for 'log', 'plot', 'checkpoint', 'visualization' or 'export' (Run's table)."""
    return Run("", "", run_folder).folder(kind)


class _ConsoleHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is at the time, so redirection and capture work."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


class _FileHandler(logging.FileHandler):
    """A line that cannot be written (a full disk) is left out of the file without the stdlib's
    "--- Logging error ---" traceback: it is on the console already, and the full disk ends the
    run through the writer or checkpoint that meets it, with one line."""

    def handleError(self, record: logging.LogRecord) -> None:
        pass


def open_text_log(path: Path) -> logging.Logger:
    """A private stdlib logger: lines `<time> <LEVEL> <message>` to stderr and appended to `path`.

    A record logged with `extra={"file_only": True}` goes to the file only (e.g. a whole config).
    """
    text = logging.Logger(f"utils.logging:{path}", logging.INFO)  # not in the global registry
    formatter = logging.Formatter(LINE_FORMAT)
    console = _ConsoleHandler()
    console.addFilter(lambda record: not getattr(record, "file_only", False))
    for handler in (console, _FileHandler(path, mode="a", encoding="utf-8")):
        handler.setFormatter(formatter)
        text.addHandler(handler)
    return text


def close_text_log(text: logging.Logger) -> None:
    """Close and detach the handlers of a logger made by `open_text_log`."""
    for handler in list(text.handlers):
        handler.close()
        text.removeHandler(handler)


def describe_architecture(model: Any) -> str:
    """The model's repr, then one line per module: name, type, parameters (own subtree)."""
    lines = [repr(model), "", f"{'module':<48} {'type':<24} {'parameters':>14} {'trainable':>14}"]
    for name, module in model.named_modules():
        total, trainable = count_parameters(module, trainable_only=False), count_parameters(module)
        kind = type(module).__name__
        lines.append(f"{name or '(model)':<48} {kind:<24} {total:>14,} {trainable:>14,}")
    total, trainable = count_parameters(model, trainable_only=False), count_parameters(model)
    lines += ["", f"total parameters: {total:,}", f"trainable parameters: {trainable:,}", ""]
    return "\n".join(lines)


def write_git_record(log_dir: Path) -> dict[str, object]:
    """`git.txt` (commit, dirty flag) and `git_diff.patch` (uncommitted diff, untracked source
    files included) in `log_dir`. A training session records this per session instead, in
    `sessions.jsonl` (utils.runs.provenance)."""
    from utils.git_info import git_diff, git_state

    state = git_state()
    atomic_write_text(log_dir / "git.txt", f"commit: {state.commit}\ndirty: {state.dirty}\n")
    atomic_write_text(log_dir / "git_diff.patch", git_diff(state=state))
    return {"commit": state.commit, "dirty": state.dirty}
