"""The logger's background thread: takes queued records, converts them, feeds every writer.

The caller only validates and enqueues; this thread turns accelerator tensors into numbers
(one transfer per device and dtype per batch of records, so a GPU is synchronised here and
never on the training thread), turns images into uint8 arrays and calls the writers. It also
flushes the writers about once a second. It wakes every `tick` seconds (or at once for a flush,
a close or a full queue), not at every record: a wake-up per training step would take the
GIL and a core from the training loop fifty times a second for no gain. A full queue blocks
the caller (nothing is dropped).
A writer that raises is taken out of service and its error is handed to the caller at the
next `raise_pending_error()`.
"""

import queue
import sys
import threading
import time
from typing import Any

import numpy as np

from utils.log.writers.base import Writer

SCALARS, IMAGE, HISTOGRAM, TEXT, CONFIG, ADD_WRITER, FLUSH, CLOSE = range(8)
MAX_BATCH = 1024


class WriterError(RuntimeError):
    """A logging backend failed in the background; raised on the caller's next call."""


class LogWorker:
    """One daemon thread and its bounded queue; `put` is the only call on the hot path."""

    def __init__(self, maxsize: int = 10_000, flush_seconds: float = 1.0, tick: float = 0.2) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize)
        self._wake = threading.Event()
        self._flush_seconds, self._tick = flush_seconds, tick
        self._maxsize = maxsize
        self._writers: list[Writer] = []
        self.errors: list[WriterError] = []  # read by the Logger to skip checks when empty
        self._thread = threading.Thread(target=self._run, name="utils.logging", daemon=True)
        self._thread.start()

    def put(self, item: tuple) -> None:
        """Enqueue a record; wakes the thread early only when the queue is half full."""
        self._queue.put(item)
        if self._queue.qsize() > self._maxsize // 2:
            self._wake.set()

    def _put_now(self, item: tuple) -> None:
        """Enqueue a control record and wake the thread at once."""
        self._queue.put(item)
        self._wake.set()

    def add_writer(self, writer: Writer) -> None:
        """Start feeding `writer` with everything enqueued from now on."""
        self._put_now((ADD_WRITER, writer))

    def flush(self) -> None:
        """Block until everything enqueued so far is written and flushed by every writer."""
        done = threading.Event()
        self._put_now((FLUSH, done))
        done.wait()

    def close(self) -> None:
        """Write and flush everything, close every writer, stop the thread."""
        self._put_now((CLOSE, None))
        self._thread.join()

    def raise_pending_error(self) -> None:
        """Raise the oldest background failure not yet reported (each is raised once)."""
        if self.errors:
            error = self.errors.pop(0)
            raise error from error.__cause__

    def _run(self) -> None:
        next_flush = time.monotonic() + self._flush_seconds
        while True:
            self._wake.wait(timeout=max(0.0, min(self._tick, next_flush - time.monotonic())))
            self._wake.clear()
            batch = []
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if len(batch) == MAX_BATCH:
                self._wake.set()  # more is waiting: come straight back
            try:
                if not self._process(batch):
                    return
            except Exception as exc:  # a bug here must not leave flush() waiting forever
                self._record(exc, "the logging thread")
                for item in batch:
                    if item[0] == FLUSH:
                        item[1].set()
                    elif item[0] == CLOSE:
                        return
            if time.monotonic() >= next_flush:
                self._call_writers("flush", False)
                next_flush = time.monotonic() + self._flush_seconds

    def _process(self, batch: list[tuple]) -> bool:
        """Handle one batch in order; False once CLOSE was handled."""
        try:
            self._convert_device_tensors(batch)
        except Exception as exc:
            self._record(exc, "tensor conversion")
            batch = [item for item in batch if item[0] != SCALARS]
        for item in _merge_steps(batch):
            kind = item[0]
            if kind == SCALARS:
                self._call_writers("write_scalars", item[1], item[2])
            elif kind == ADD_WRITER:
                self._writers.append(item[1])
            elif kind == FLUSH:
                self._call_writers("flush", True)
                item[1].set()
            elif kind == CLOSE:
                self._close_writers()
                return False
            else:
                self._handle_media(item)
        return True

    def _handle_media(self, item: tuple) -> None:
        kind = item[0]
        try:
            if kind == IMAGE:
                from visualization.helper_functions import to_uint8_image

                _, name, image, step, options = item
                self._call_writers("write_image", name, to_uint8_image(image, **options), step)
            elif kind == HISTOGRAM:
                _, name, values, step = item
                self._call_writers("write_histogram", name, _to_float_array(values), step)
            elif kind == TEXT:
                self._call_writers("write_text", *item[1:])
            elif kind == CONFIG:
                self._call_writers("write_config", item[1])
        except Exception as exc:
            self._record(exc, f"converting {item[1]!r}" if kind != CONFIG else "config")

    def _call_writers(self, method: str, *args: Any) -> None:
        for writer in list(self._writers):
            try:
                getattr(writer, method)(*args)
            except Exception as exc:
                self._writers.remove(writer)
                self._record(exc, f"the {writer.name} writer ({method})", stopped=True)
                try:
                    writer.close()
                except Exception:
                    pass  # the first failure is the one worth reporting

    def _close_writers(self) -> None:
        for writer in self._writers:
            try:
                writer.close()
            except Exception as exc:
                self._record(exc, f"the {writer.name} writer (close)")
        self._writers = []

    def _record(self, exc: Exception, where: str, stopped: bool = False) -> None:
        tail = "; it writes nothing more in this run" if stopped else ""
        error = WriterError(f"logging failed in {where}: {type(exc).__name__}: {exc}{tail}")
        error.__cause__ = exc
        self.errors.append(error)

    @staticmethod
    def _convert_device_tensors(batch: list[tuple]) -> None:
        """Replace accelerator tensors in SCALARS records by numbers, one transfer per group."""
        groups: dict[tuple, list[tuple[dict, str]]] = {}
        for item in batch:
            if item[0] == SCALARS and item[3]:
                for key, value in item[2].items():
                    if type(value) not in (int, float):
                        groups.setdefault((value.device, value.dtype), []).append((item[2], key))
        if not groups:
            return
        torch = sys.modules["torch"]
        for slots in groups.values():
            values = torch.stack([metrics[key] for metrics, key in slots]).tolist()  # (n,)
            for (metrics, key), number in zip(slots, values):
                metrics[key] = number


def _merge_steps(batch: list[tuple]) -> list[tuple]:
    """Join consecutive SCALARS records of one step, so each writer sees the step once."""
    merged: list[tuple] = []
    for item in batch:
        last = merged[-1] if merged else None
        if item[0] == SCALARS and last is not None and last[0] == SCALARS and last[1] == item[1]:
            last[2].update(item[2])  # the dicts are the logger's own copies
            continue
        merged.append(item)
    return merged


def _to_float_array(values: Any) -> np.ndarray:
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(values, torch.Tensor):
        values = values.detach().to("cpu", torch.float64).numpy()
    return np.asarray(values, dtype=np.float64).reshape(-1)
