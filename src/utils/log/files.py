"""The run's plain files the Logger writes on the caller's thread: run folder (created when
missing, sub-folders by kind), log.txt, architecture.txt and the git record. (Metrics and media go through utils.log.writers.)
"""

import logging
import shlex
import sys
from pathlib import Path
from typing import Any

from utils.errors import RunExistsError
from utils.fileio import atomic_write_text
from utils.helper_functions import count_parameters
from utils.management import RUN_SUBDIRS, Run, create_run

LINE_FORMAT = "%(asctime)s %(levelname)s %(message)s"


def path_of_kind(run_folder: Path, kind: str) -> Path:
    """The sub-folder of a run for 'log', 'plot', 'checkpoint' or 'visualization' (Run's table)."""
    return Run("", "", run_folder).folder(kind)


def ensure_run(run: Run, template: str | None = None) -> None:
    """Create the run like `01_initialize.py` would when it has no config.json.

    Its config is the `meta` block plus the template named (a name in `config/` or a path), or
    nothing else: a run created here never gets some task's config copied in silently. An
    existing config.json is never touched.
    """
    if not run.config_file.is_file():
        config = _new_run_config(run.experiment, run.run, template)
        try:
            create_run(run.experiment, run.run, config)
        except RunExistsError:
            pass  # created meanwhile by another process: use it as it is
    for sub in RUN_SUBDIRS:
        (run.path / sub).mkdir(parents=True, exist_ok=True)


def _new_run_config(exp_name: str, run_name: str, template: str | None) -> dict[str, Any]:
    from utils.configs import load_config_template
    from utils.initialization import build_run_meta

    if template is not None and (type(template) is not str or not template):
        raise TypeError(f"config_template must be a template name or a path, got {template!r}")
    config = load_config_template(template) if template is not None else {}
    meta = build_run_meta(exp_name, run_name, template, (), shlex.join(sys.argv))
    meta["created_by"] = "utils.logging.Logger"
    config["meta"] = meta
    return config


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
    """`git.txt` (commit, dirty flag) and `git_diff.patch` (uncommitted diff) in `log_dir`."""
    from utils.git_info import git_diff, git_summary

    summary = git_summary()
    atomic_write_text(log_dir / "git.txt", f"commit: {summary['commit']}\ndirty: {summary['dirty']}\n")
    atomic_write_text(log_dir / "git_diff.patch", git_diff())
    return summary
