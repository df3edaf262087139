"""TensorBoard event files: scalars (one event per step), images, histograms, text, hparams.

Events go straight into the run's `logs/` folder, so `tensorboard --logdir experiments` lists
each run as `<exp>/<run>/logs`. On resume, `purge_step=T` makes TensorBoard's readers drop
every event at step >= T from the earlier files, so each step appears once. The hparams are
written at `close()`, into the same folder, with the last value of every scalar as its metric.
Config: `logging.tensorboard` (TensorBoardConfig) turns it on.
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from utils.config_fields import option
from utils.log.writers.base import Writer, WriterContext

INSTALL_HINT = "TensorBoard is not installed: `pip install tensorboard` (see requirements.txt)"


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


class TensorBoardWriter(Writer):
    """Wraps one `SummaryWriter` on the run's log folder."""

    name = "tensorboard"

    def __init__(self, log_dir: Path, purge_step: int | None = None, **kwargs: Any) -> None:
        try:
            from tensorboard.compat.proto.summary_pb2 import Summary
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:
            raise ImportError(f"{INSTALL_HINT} ({exc})") from exc
        kwargs.setdefault("flush_secs", 10)
        self._summary = Summary
        self._writer = SummaryWriter(log_dir=str(log_dir), purge_step=purge_step, **kwargs)
        self._config: dict[str, Any] | None = None
        self._last: dict[str, float] = {}

    @property
    def log_dir(self) -> str:
        return self._writer.log_dir

    def write_scalars(self, step: int, metrics: dict[str, float | int]) -> None:
        # One event with all values instead of one per add_scalar: several times cheaper.
        values = [self._summary.Value(tag=key, simple_value=float(v)) for key, v in metrics.items()]
        self._writer.file_writer.add_summary(self._summary(value=values), step)
        self._last.update(metrics)

    def write_image(self, name: str, image: np.ndarray, step: int) -> None:
        self._writer.add_image(name, image, step, dataformats="HWC")

    def write_histogram(self, name: str, values: np.ndarray, step: int) -> None:
        finite = values[np.isfinite(values)]
        if finite.size:
            self._writer.add_histogram(name, finite, step)

    def write_text(self, name: str, text: str, step: int) -> None:
        self._writer.add_text(name, text, step)

    def write_config(self, config: dict[str, Any]) -> None:
        self._config = flatten_config(config)
        self._writer.add_text("config", "```\n" + json.dumps(config, indent=2) + "\n```", 0)

    def flush(self, force: bool = True) -> None:
        self._writer.flush()

    def close(self) -> None:
        if self._config is not None:
            self._write_hparams()
        self._writer.close()

    def _write_hparams(self) -> None:
        from torch.utils.tensorboard.summary import hparams

        metrics = {key: float(value) for key, value in self._last.items()}
        file_writer = self._writer.file_writer
        for summary in hparams(self._config, metrics):
            file_writer.add_summary(summary)


def start_tensorboard(context: WriterContext, options: TensorBoardConfig, /, **kwargs: Any) -> TensorBoardWriter:
    """The run's TensorBoard writer on `logs/`; kwargs go to `SummaryWriter`."""
    return TensorBoardWriter(context.log_dir, purge_step=context.resume_step, **kwargs)
