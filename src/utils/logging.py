"""The run's logger: one object every training script talks to, reachable anywhere as `LOGGER`.

    logger = Logger("example", "baseline")      # binds to experiments/example/baseline/
    logger.start_writers(config["logging"])     # the writers the config turns on (csv, wandb ...)
    # or by name, without a config: logger.initialize_csv(); logger.initialize_wandb("proj")
    for step, loss in enumerate(losses):
        LOGGER.log({"train/loss": loss}, step)  # validates, enqueues, returns (a few us)
    LOGGER.log_image("samples", images)         # media: step defaults to the last step logged
                                                # (waits when 256 MiB of media are unwritten)
    LOGGER.finish()                             # also runs at interpreter exit

`log` is off the hot path: a background thread (utils.log.queue) converts values and feeds the
writers, which are found by name in utils.log.writers.registry (a new backend is one Writer
class and one `register_writer` entry). `start_writers` and `initialize_*` both start writers
from that registry, and each writer runs once per Logger: starting a running one raises. Only global rank 0 writes; on other ranks every call
is a no-op.
A run the Logger creates (when `01_initialize.py` did not) holds the `meta` block and an empty
config, or the template named by `config_template=`; an existing config.json is never touched.
Resume: create `Logger(exp, run, resume_step=T)` with T the first step that will be logged
again (a checkpoint's `global_step`): metrics at steps >= T are removed from the CSV and
TensorBoard, and W&B continues the run id its writer stored in `logs/`.

After `finish()` a Logger is closed, on every rank: each call that would log or write raises
the same RuntimeError naming finish() (nothing is dropped without a word); `finish()` again,
`get_path`, `last_step` and `state_dict` still work. `LOGGER` then forwards to the previous
Logger still open; with none, every `LOGGER` call raises an error saying how to create one.
Code that may run without a run (a model's unit test, a notebook) asks `is_active()` or takes
a `NullLogger`, which accepts every call of the Logger's API and writes nothing.

Media are copied for the thread, so the queue also bounds their bytes (`media_queue_bytes`,
256 MiB by default): a loop that logs images faster than the writers encode them waits in
`log_image` rather than holding every copy, and the first wait warns once per run.
"""

import atexit
import os
import threading
from collections.abc import Mapping
from logging import ERROR, INFO, WARNING
from pathlib import Path
from typing import Any

from utils.config_fields import ParsedConfig
from utils.distributed_info import get_rank
from utils.log.files import close_text_log, open_text_log
from utils.log.media import LoggerMedia
from utils.log.null import NullLogger
from utils.log.proxy import LOGGER, _active, is_active
from utils.log.queue import MEDIA_QUEUE_BYTES, LogWorker, WriterError
from utils.log.records import SCALARS
from utils.log.run_records import LoggerRunRecords
from utils.log.values import MAX_STEP, STEP_COLUMN, check_byte_budget, check_step, key_error, step_key_error, to_number
from utils.log.writers.base import Writer, WriterContext
from utils.log.writers.png_writer import PngWriter
from utils.log.writers.registry import WriterEntry, enabled_writers, writer_entry
from utils.runs.new_run import ensure_run
from utils.runs.run import Run

__all__ = ["LOGGER", "Logger", "NullLogger", "WriterError", "is_active"]

_NUMBER_TYPES = (int, float)


class Logger(LoggerMedia, LoggerRunRecords):
    """Binds to `experiments/<exp>/<run>/`, creating the run when it has no config.json.

    Scalars, writers, the text log and the lifecycle live here; media calls in
    `utils.log.media.LoggerMedia`, the config, architecture and git records in
    `utils.log.run_records.LoggerRunRecords`.

    A created run holds the `meta` block and an empty config, or the template
    `config_template` names (a name in `config/` or a path to a .json file); the argument is
    only read when the run is created. `media_queue_bytes` bounds the memory held by media
    (images, figures, histograms, text) logged but not yet written; a caller beyond it waits.
    """

    def __init__(
        self,
        exp_name: "str | Run",
        run_name: str | None = None,
        *,
        resume_step: int | None = None,
        config_template: str | None = None,
        media_queue_bytes: int = MEDIA_QUEUE_BYTES,
    ) -> None:
        run = exp_name if isinstance(exp_name, Run) else Run.resolve(exp_name, run_name)
        self.run = run  # every path of the run, resolved once (the engine hands its own Run in)
        self.exp_name, self.run_name, self.path = run.experiment, run.run, run.path
        if resume_step is not None:
            resume_step = check_step(resume_step, "resume_step")
        self.resume_step = resume_step
        self._media_budget = check_byte_budget(media_queue_bytes, "media_queue_bytes")
        self._last_step = resume_step - 1 if resume_step else None  # T - 1 may still be amended
        self._enabled = get_rank() == 0
        self._finished = False
        self._forked = False  # set in a forked child, whose copy has no writer thread
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._started: dict[str, Writer | None] = {}  # each writer started, by name (None off rank 0)
        if self._enabled:
            ensure_run(run, config_template)
            self._text = open_text_log(self.get_path("log") / "log.txt")
            self._worker = LogWorker(max_bytes=self._media_budget, on_first_wait=self._warn_media_wait)
            self._put = self._worker.put
            self._errors = self._worker.errors
            self._worker.add_writer(PngWriter(self.get_path("visualization")))
            atexit.register(self.finish)
            resumed = f" (resuming at step {resume_step})" if resume_step is not None else ""
            self.info(f"logging run {run.name} to {self.path}{resumed}")
        _active.append(self)

    # -- writers ---------------------------------------------------------------------------
    def start_writers(self, logging_section: Mapping[str, Any] | ParsedConfig) -> None:
        """Start every registered writer whose enable key (`logging.<name>`) is true.

        `logging_section` is the config's `logging` section (validated against the registered
        writers' config classes) or a config parsed with `writer_config_sections()`.
        """
        self._check_open()
        self._start_writers([(entry, options, {}) for entry, options in enabled_writers(logging_section)])

    def initialize_csv(self, file_name: str = "metrics.csv") -> None:
        """Write scalars to `logs/<file_name>` (wide: one row per step)."""
        self._start_by_name("csv", {}, file_name=file_name)

    def initialize_tensorboard(self, **kwargs: Any) -> None:
        """Write TensorBoard events into `logs/`; kwargs: `filename_suffix` (ends the file name)."""
        self._start_by_name("tensorboard", {}, **kwargs)

    def initialize_wandb(self, project_name: str, **kwargs: Any) -> None:
        """Start a W&B run in `logs/wandb/` (offline without credentials); kwargs go to `wandb.init`.

        `finish()` returns once W&B has written the run's `.wandb` file completely (see
        utils.log.writers.wandb_writer for the one exception: another W&B run still open).
        """
        self._start_by_name("wandb", {"wandb_project": project_name}, **kwargs)

    def _start_by_name(self, name: str, options: dict[str, Any], /, **kwargs: Any) -> None:
        """Start writer `name` enabled, with `options` and its other config keys at their defaults."""
        self._check_open()
        entry = writer_entry(name)
        self._start_writers([(entry, entry.default_options(**options), kwargs)])

    def _start_writers(self, chosen: list[tuple[WriterEntry, Any, dict[str, Any]]]) -> None:
        """Start each (entry, options, kwargs) in order; refused on every rank alike, before any
        starts, when one is running already (a second CSV writer would write every row twice)."""
        running = [entry.name for entry, _, _ in chosen if entry.name in self._started]
        if running:
            raise RuntimeError(
                f"writer {running[0]!r} is already running for {self.exp_name}/{self.run_name}: "
                "start_writers() and initialize_<name>() both start writers, and each writer "
                "starts once per Logger; drop the second call"
            )
        for entry, options, kwargs in chosen:
            writer = None
            if self._enabled:
                context = WriterContext(log_dir=self.get_path("log"), resume_step=self.resume_step, warn=self.warning)
                writer = entry.start(context, options, **kwargs)
                self._worker.add_writer(writer)
                # Re-register so finish() runs before the exit hooks a writer's library added (W&B's).
                atexit.unregister(self.finish)
                atexit.register(self.finish)
            self._started[entry.name] = writer

    # -- hot path --------------------------------------------------------------------------
    def log(self, data: Mapping[str, Any], step: int) -> None:
        """Log scalars (numbers or one-element tensors) at `step`; returns without waiting."""
        if not self._enabled:
            if self._finished:
                self._check_open()
            return
        if self._errors or self._finished:
            self._check_open()
        if type(data) is not dict and not isinstance(data, Mapping):
            raise TypeError(f"log() takes a dict of metrics, got {type(data).__name__}")
        metrics = {}
        deferred = False
        for key, value in data.items():
            if type(key) is not str or not key:
                raise key_error(key)
            if type(value) not in _NUMBER_TYPES:
                value = to_number(key, value)
                deferred = deferred or type(value) not in _NUMBER_TYPES
            metrics[key] = value
        if not metrics:
            raise ValueError("log() got an empty dict: pass at least one metric")
        if STEP_COLUMN in metrics:
            raise step_key_error()
        if type(step) is not int or step < 0 or step > MAX_STEP:
            step = check_step(step, "step")
        with self._lock:
            last = self._last_step
            if last is not None and step < last:
                raise ValueError(
                    f"step {step} is smaller than the last logged step {last}; steps must not decrease"
                )
            self._put((SCALARS, step, metrics, deferred))
            self._last_step = step

    # -- text log --------------------------------------------------------------------------
    def info(self, message: str) -> None:
        """A line with timestamp and level on stderr and in `logs/log.txt`."""
        self._write_line(INFO, message)

    def warning(self, message: str) -> None:
        """Like `info`, at level WARNING."""
        self._write_line(WARNING, message)

    def error(self, message: str) -> None:
        """Like `info`, at level ERROR."""
        self._write_line(ERROR, message)

    def _write_line(self, level: int, message: str) -> None:
        if self._finished:
            self._check_open()
        if self._enabled:
            self._text.log(level, message)

    # -- state -----------------------------------------------------------------------------
    @property
    def last_step(self) -> int | None:
        """The last step logged (resume_step - 1 right after a resume), None before any."""
        return self._last_step

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint stores to resume logging: last step and W&B run id."""
        wandb = self._started.get("wandb")
        return {"last_step": self._last_step, "wandb_run_id": wandb.run.id if wandb is not None else None}

    def get_path(self, kind: str) -> Path:
        """The run's folder for 'log', 'plot', 'checkpoint', 'visualization' or 'export' (also on rank != 0)."""
        return self.run.folder(kind)

    def flush(self, *, durable: bool = False) -> None:
        """Block until everything logged so far is in every output; raise a writer's failure.

        `durable=True` also fsyncs what a resume cuts back to its checkpoint's step (CSV,
        TensorBoard): the checkpoint manager asks for it before a checkpoint becomes the
        resume point, so no row logged before it can be lost to a kill or a power cut.
        """
        self._check_open()
        if self._enabled:
            self._worker.flush(durable)
            self._worker.raise_pending_error()

    def finish(self) -> None:
        """Flush and close every writer and stop the thread; idempotent, also run at exit.

        Afterwards every call that would log or write raises. LOGGER then forwards to the
        previously created logger that is still open, if any.
        """
        if self._finished:
            return
        self._finished = True
        if self in _active:
            _active.remove(self)
        if not self._enabled:
            return
        atexit.unregister(self.finish)
        try:
            self._worker.close()
            self._worker.raise_pending_error()
        finally:
            close_text_log(self._text)

    def _check_open(self) -> None:
        """Raise when this Logger takes no more calls, or a writer's failure not yet reported."""
        if self._forked:
            raise RuntimeError(
                f"the Logger of {self.exp_name}/{self.run_name} belongs to process {self._pid}; a "
                "forked child (e.g. a DataLoader worker) cannot log: return the values to the "
                "main process and log them there"
            )
        if self._finished:
            raise RuntimeError(
                f"the Logger of {self.exp_name}/{self.run_name} is finished: finish() closed it, "
                "so it takes no more calls; create a new Logger to log again"
            )
        if self._enabled:
            self._worker.raise_pending_error()

    def __repr__(self) -> str:
        state = "active" if self._enabled else f"no-op on rank {get_rank()}"
        state = "finished" if self._finished else state
        return f"Logger({self.exp_name!r}, {self.run_name!r}, {state})"


def _close_in_forked_child() -> None:
    """A forked child inherits the loggers but not their thread: make its copies refuse calls."""
    for logger in _active:
        logger._forked = logger._finished = True


os.register_at_fork(after_in_child=_close_in_forked_child)
