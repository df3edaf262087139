"""TensorBoard event files: scalars (one event per step), images, histograms, text, hparams.

Events go straight into the run's `logs/` folder, so `tensorboard --logdir experiments` lists
each run as `<exp>/<run>/logs`. This writer frames the events itself into one file it keeps
open, on the logger's thread: TensorBoard's `SummaryWriter` would add a thread of its own (on a
full disk it dies with a traceback on the console) and reopen the file at every flush (nothing
to fsync). So a full disk is one `DiskFullError` naming the file, and `sync()` fsyncs it before
each checkpoint. On resume, the new file starts with TensorBoard's purge marker at step T
(what `SummaryWriter(purge_step=T)` writes), so its readers drop every event at step >= T from
the earlier files and each step appears once. The hparams are written at `close()`, into the
same file, with the last value of every scalar as its metric.
Config: `logging.tensorboard` (TensorBoardConfig) turns it on.
"""

import functools
import itertools
import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from utils.config_fields import option
from utils.fileio import fsync_directory, reporting_disk_full
from utils.log.writers.base import Writer, WriterContext

INSTALL_HINT = "TensorBoard is not installed: `pip install tensorboard` (see requirements.txt)"
_FILE_NUMBERS = itertools.count()  # two writers of one process in one second get two files, zero-padded so
# that they sort in the order they were written (TensorBoard reads a folder's files in name order)


@dataclass(frozen=True, kw_only=True)
class TensorBoardConfig:
    """The TensorBoard writer's key in the config's `logging` section."""

    SECTION: ClassVar[str] = "logging"
    tensorboard: bool = option(True, "write TensorBoard events into logs/")


def flatten_config(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}; values TensorBoard cannot show become strings."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten_config(value, f"{name}."))
        elif isinstance(value, (bool, int, float, str)):
            flat[name] = value
        else:
            flat[name] = json.dumps(value)
    return flat


@functools.cache
def _histogram_bins() -> list[float]:
    """SummaryWriter's default ("tensorflow") bins: +-1e-12 growing by 10% up to 1e20, and 0."""
    edges = [1e-12]
    while edges[-1] * 1.1 < 1e20:
        edges.append(edges[-1] * 1.1)
    return [-edge for edge in reversed(edges)] + [0.0] + edges


class TensorBoardWriter(Writer):
    """Owns one event file in the run's log folder; `filename_suffix` ends its name."""

    name = "tensorboard"

    def __init__(self, log_dir: Path, purge_step: int | None = None, filename_suffix: str = "") -> None:
        try:
            from tensorboard.compat.proto.event_pb2 import Event, SessionLog
            from tensorboard.compat.proto.summary_pb2 import Summary
            from tensorboard.summary.writer.record_writer import RecordWriter
        except ImportError as exc:
            raise ImportError(f"{INSTALL_HINT} ({exc})") from exc
        self._event, self._summary = Event, Summary
        stamp = f"{int(time.time()):010d}.{socket.gethostname()}.{os.getpid()}.{next(_FILE_NUMBERS):06d}"
        self.path = Path(log_dir) / f"events.out.tfevents.{stamp}{filename_suffix}"
        with reporting_disk_full(self.path):
            self._file = open(self.path, "ab")
        self._records = RecordWriter(self._file)
        self._config: dict[str, Any] | None = None
        self._last: dict[str, float] = {}
        self._write(Event(file_version="brain.Event:2"))
        if purge_step is not None:
            self._write(Event(step=purge_step, file_version="brain.Event:2"))
            self._write(Event(step=purge_step, session_log=SessionLog(status=SessionLog.START)))
        self.sync()
        fsync_directory(self.path.parent)  # the new file's name survives a power cut too

    def _write(self, event: Any, step: int | None = None) -> None:
        event.wall_time = time.time()
        if step is not None:
            event.step = step
        with reporting_disk_full(self.path):
            self._records.write(event.SerializeToString())

    def _write_summary(self, summary: Any, step: int | None = None) -> None:
        self._write(self._event(summary=summary), step)

    def write_scalars(self, step: int, metrics: dict[str, float | int]) -> None:
        # One event with all values instead of one per add_scalar: several times cheaper.
        values = [self._summary.Value(tag=key, simple_value=float(v)) for key, v in metrics.items()]
        self._write_summary(self._summary(value=values), step)
        self._last.update(metrics)

    def write_image(self, name: str, image: np.ndarray, step: int) -> None:
        from torch.utils.tensorboard.summary import image as image_summary

        self._write_summary(image_summary(name, image, dataformats="HWC"), step)

    def write_histogram(self, name: str, values: np.ndarray, step: int) -> None:
        from torch.utils.tensorboard.summary import histogram

        finite = values[np.isfinite(values)]
        if finite.size:
            self._write_summary(histogram(name, finite, _histogram_bins()), step)

    def write_text(self, name: str, text: str, step: int) -> None:
        from torch.utils.tensorboard.summary import text as text_summary

        self._write_summary(text_summary(name, text), step)

    def write_config(self, config: dict[str, Any]) -> None:
        from torch.utils.tensorboard.summary import text as text_summary

        self._config = flatten_config(config)
        self._write_summary(text_summary("config", "```\n" + json.dumps(config, indent=2) + "\n```"), 0)

    def flush(self, force: bool = True) -> None:
        with reporting_disk_full(self.path):
            self._file.flush()

    def sync(self) -> None:
        self.flush()
        with reporting_disk_full(self.path):
            os.fsync(self._file.fileno())

    def close(self) -> None:
        try:
            if self._config is not None:
                self._write_hparams()
            self.flush()
        finally:
            self._file.close()

    def _write_hparams(self) -> None:
        from torch.utils.tensorboard.summary import hparams

        metrics = {key: float(value) for key, value in self._last.items()}
        for summary in hparams(self._config, metrics):
            self._write_summary(summary)


def start_tensorboard(context: WriterContext, options: TensorBoardConfig, /, **kwargs: Any) -> TensorBoardWriter:
    """The run's TensorBoard writer on `logs/`; kwargs: `filename_suffix`."""
    return TensorBoardWriter(context.log_dir, purge_step=context.resume_step, **kwargs)
