"""Weights & Biases: offline unless credentials exist, never prompts, resumable by stored id.

Mode: a `mode=` argument wins, then `WANDB_MODE`; otherwise online when an API key is found
(`WANDB_API_KEY` or a netrc entry for the W&B host), else offline. An online start that fails
or exceeds `init_timeout` seconds falls back to offline with a warning. The run lives in
`logs/wandb/`; its id is kept in `logs/wandb_run_id.txt` so a resumed Logger continues it.
An online W&B run ignores steps at or below the last step it already has; to rewind it to the
resume step pass `resume_from=f"{run_id}?_step={T}"` through `initialize_wandb(**kwargs)`.
`close()` (the Logger's `finish()`) returns once the run's `.wandb` file is complete on disk,
unless another W&B run of the process is still open (see `WandbWriter.close`).
Config: `logging.wandb`, `logging.wandb_project`, `logging.wandb_tags` (WandbConfig).

Each `run.log` costs about 200 µs of this process's CPU (a protobuf, a socket send and a round
trip through W&B's asyncio thread, all under the GIL the training loop needs), so the writer
holds a step's values until the logging thread's next flush (about once a second) and then
sends one `run.log` per step: records of one step that arrive apart (the epoch's means, the
validation metrics, a drawing) cost one call, not one each. A hard kill loses at most that
second of W&B history; the CSV and TensorBoard are unaffected.
"""

import html
import netrc
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlparse

import numpy as np

from utils.config_fields import option
from utils.fileio import atomic_write_text
from utils.log.writers.base import Writer, WriterContext

RUN_ID_FILE = "wandb_run_id.txt"
INSTALL_HINT = "wandb is not installed: `pip install wandb` (see requirements.txt)"
DEFAULT_INIT_TIMEOUT = 30.0


@dataclass(frozen=True, kw_only=True)
class WandbConfig:
    """The W&B writer's keys in the config's `logging` section."""

    SECTION: ClassVar[str] = "logging"
    wandb: bool = option(True, "log to Weights & Biases (offline without credentials)")
    wandb_project: str = option("pytorch-template", "the W&B project of the run")
    wandb_tags: list[str] = option([], "the W&B run's tags")


def has_wandb_credentials() -> bool:
    """True when an API key is available without asking: env var or netrc entry for the host."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname or ""
    path = os.environ.get("NETRC") or os.path.expanduser("~/.netrc")
    try:
        return netrc.netrc(path).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def choose_mode(kwargs: dict[str, Any]) -> str | None:
    """The mode to pass to `wandb.init` (None lets wandb read `WANDB_MODE`)."""
    if "mode" in kwargs:
        return kwargs.pop("mode")
    if os.environ.get("WANDB_MODE"):
        return None
    return "online" if has_wandb_credentials() else "offline"


def read_run_id(log_dir: Path) -> str | None:
    """The W&B run id stored by an earlier start of this run, if any."""
    path = log_dir / RUN_ID_FILE
    if not path.is_file():
        return None
    return path.read_text(encoding="utf-8").strip() or None


def start_wandb_run(
    project: str, log_dir: Path, resume: bool, warn: Callable[[str], None], **kwargs: Any
) -> Any:
    """`wandb.init` with our defaults; returns the run and stores its id in `log_dir`."""
    try:
        import wandb
    except ImportError as exc:
        raise ImportError(f"{INSTALL_HINT} ({exc})") from exc
    mode = choose_mode(kwargs)
    (log_dir / "wandb").mkdir(parents=True, exist_ok=True)
    kwargs.setdefault("dir", str(log_dir))
    kwargs.setdefault("reinit", "create_new")
    stored_id = read_run_id(log_dir) if resume else None
    if stored_id and "id" not in kwargs:
        kwargs.update(id=stored_id, resume="allow")
    if "settings" not in kwargs:
        kwargs["settings"] = wandb.Settings(init_timeout=DEFAULT_INIT_TIMEOUT, console="off")
    try:
        run = wandb.init(project=project, mode=mode, **kwargs)
    except Exception as exc:  # wandb raises several types for network and auth problems
        if mode == "offline" or os.environ.get("WANDB_MODE") == "offline":
            raise
        warn(f"W&B could not start online ({type(exc).__name__}: {exc}); logging offline instead")
        run = wandb.init(project=project, mode="offline", **kwargs)
    atomic_write_text(log_dir / RUN_ID_FILE, run.id + "\n")
    return run


class WandbWriter(Writer):
    """Feeds one W&B run; media are wrapped in W&B's own types."""

    name = "wandb"

    def __init__(self, run: Any) -> None:
        import wandb

        self._wandb = wandb
        self.run = run
        self._pending: dict[int, dict[str, Any]] = {}  # step -> every value of it since the last flush

    def _hold(self, step: int, values: dict[str, Any]) -> None:
        self._pending.setdefault(step, {}).update(values)

    def write_scalars(self, step: int, metrics: dict[str, float | int]) -> None:
        self._hold(step, metrics)

    def write_image(self, name: str, image: np.ndarray, step: int) -> None:
        self._hold(step, {name: self._wandb.Image(image)})

    def write_histogram(self, name: str, values: np.ndarray, step: int) -> None:
        finite = values[np.isfinite(values)]
        if finite.size:
            self._hold(step, {name: self._wandb.Histogram(finite)})

    def write_text(self, name: str, text: str, step: int) -> None:
        self._hold(step, {name: self._wandb.Html(f"<pre>{html.escape(text)}</pre>")})

    def flush(self, force: bool = True) -> None:
        """Send what was held: one `run.log` per step, in ascending steps."""
        pending, self._pending = self._pending, {}
        for step in sorted(pending):
            self.run.log(pending[step], step=step)

    def write_config(self, config: dict[str, Any]) -> None:
        self.run.config.update(config, allow_val_change=True)

    def close(self) -> None:
        """Send what is held, finish the run and return only once its `.wandb` file is complete on disk.

        `run.finish()` waits until W&B's service process has the exit record, but the service
        writes and closes the transaction log after it returns (asynchronously, when it gets
        the fire-and-forget "finish" message): right after `finish()` the file may still hold
        only its 7-byte header. `wandb.teardown()` waits for the service process this process
        started to exit, which closes every file (W&B's own sweep agent does the same between
        runs); the next `wandb.init` starts a new one. Teardown would also end any other open
        W&B run of this process, so it runs only when none is left; otherwise this run's file
        is complete once the last W&B run of the process finishes.
        """
        self.flush()
        self.run.finish()
        if _open_wandb_run() is None:
            try:
                self._wandb.teardown()
            except SystemExit as exc:  # teardown exits when the service failed; we are a thread
                raise RuntimeError(f"W&B's service process ended with exit code {exc.code}") from None


def _open_wandb_run() -> Any:
    """The most recent W&B run of this process that is not finished, or None."""
    from wandb.sdk import wandb_setup

    return wandb_setup.singleton().most_recent_active_run


def start_wandb(context: WriterContext, options: WandbConfig, /, **kwargs: Any) -> WandbWriter:
    """Start the run's W&B run (resuming the stored one on resume); kwargs go to `wandb.init`.

    The configured tags are passed only when there are some, so an explicit `tags=` wins and
    an empty list leaves a resumed run's tags alone.
    """
    if options.wandb_tags:
        kwargs.setdefault("tags", list(options.wandb_tags))
    resume = context.resume_step is not None
    run = start_wandb_run(options.wandb_project, context.log_dir, resume, context.warn, **kwargs)
    return WandbWriter(run)
