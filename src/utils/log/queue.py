"""The logger's background thread: takes queued records, converts them, feeds every writer.

The caller only validates and enqueues; this thread turns accelerator tensors into numbers
(utils.log.records: one transfer per device and dtype per batch of records, so a GPU is
synchronised here and never on the training thread), turns images into uint8 arrays and calls
the writers. It also
flushes the writers about once a second. It wakes every `tick` seconds (or at once for a flush,
a close or a half-full queue), not at every record: a wake-up per training step would take the
GIL and a core from the training loop fifty times a second for no gain. A full queue blocks
the caller (nothing is dropped).
The queue is bounded twice: by records (`maxsize`) and by the bytes of media it holds
(`max_bytes`, default 256 MiB): an image counts from `put_media` until the thread has written
it, so a caller logging images faster than they are encoded waits instead of piling gigabytes
of copies into memory. Scalars are not counted and take the unchanged `put`.
A writer that raises is taken out of service and its error is handed to the caller at the
next `raise_pending_error()`.
"""

import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from utils.log.records import (
    ADD_WRITER, CLOSE, CONFIG, FLUSH, HISTOGRAM, IMAGE, SCALARS, TEXT, convert_device_tensors, media_bytes, merge_steps,
    to_float_array,
)
from utils.log.writers.base import Writer

MAX_BATCH = 1024
MEDIA_QUEUE_BYTES = 256 * 2**20  # default byte budget for media waiting to be written


class WriterError(RuntimeError):
    """A logging backend failed in the background; raised on the caller's next call."""


class LogWorker:
    """One daemon thread and its bounded queue; `put` is the only call on the hot path.

    `on_first_wait(name)` is called once, on the caller's thread, after the first `put_media`
    that had to wait for room (the Logger turns it into a warning).
    """

    def __init__(
        self,
        maxsize: int = 10_000,
        flush_seconds: float = 1.0,
        tick: float = 0.2,
        max_bytes: int = MEDIA_QUEUE_BYTES,
        on_first_wait: Callable[[str], None] | None = None,
    ) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize)
        self._wake = threading.Event()
        self._flush_seconds, self._tick = flush_seconds, tick
        self._maxsize, self._max_bytes = maxsize, max_bytes
        self._room = threading.Condition()  # guards the byte counts below and _closed
        self._held = self._high_water = 0
        self._unreleased = 0  # bytes of the batch in hand not yet released (thread only)
        self._seconds_waited = 0.0
        self._closed = False
        self._on_first_wait, self._warned = on_first_wait, False
        self._writers: list[Writer] = []
        self.errors: list[WriterError] = []  # read by the Logger to skip checks when empty
        self._thread = threading.Thread(target=self._run, name="utils.logging", daemon=True)
        self._thread.start()

    def put(self, item: tuple) -> None:
        """Enqueue a record; wakes the thread early only when the queue is half full."""
        self._queue.put(item)
        if self._queue.qsize() > self._maxsize // 2:
            self._wake.set()

    def put_media(self, item: tuple) -> bool:
        """Enqueue a media record once its bytes fit the budget; False if closed meanwhile.

        The caller waits while the media queued plus this record would exceed `max_bytes`;
        a record larger than the whole budget passes once the queue holds no media.
        """
        size = media_bytes(item)
        with self._room:
            waited = not self._fits(size)
            if waited:
                self._wait_for_room(size)
            if self._closed:
                return False
            self._held += size
            self._high_water = max(self._high_water, self._held)
            first_wait = waited and not self._warned
            self._warned = self._warned or waited
        self._queue.put(item)
        if self._held > self._max_bytes // 2 or self._queue.qsize() > self._maxsize // 2:
            self._wake.set()
        if first_wait and self._on_first_wait is not None:
            self._on_first_wait(item[1])
        return True

    @property
    def bytes_high_water(self) -> int:
        """The most bytes of media the queue has held at once."""
        return self._high_water

    @property
    def seconds_waited(self) -> float:
        """Total time callers of `put_media` have waited for room."""
        return self._seconds_waited

    def _fits(self, size: int) -> bool:
        return self._held == 0 or self._held + size <= self._max_bytes

    def _wait_for_room(self, size: int) -> None:
        """Wait (in `_room`) until `size` bytes fit, the worker closes or its thread is gone."""
        start = time.monotonic()
        self._wake.set()  # the thread need not sleep out its tick: someone is waiting
        while not (self._fits(size) or self._closed or not self._thread.is_alive()):
            self._room.wait(timeout=1.0)
        self._seconds_waited += time.monotonic() - start

    def _release(self, size: int) -> None:
        """The thread is done with `size` bytes of media: let waiting callers in."""
        if size:
            with self._room:
                self._held -= size
                self._unreleased -= size
                self._room.notify_all()

    def _put_now(self, item: tuple) -> None:
        """Enqueue a control record and wake the thread at once."""
        self._queue.put(item)
        self._wake.set()

    def add_writer(self, writer: Writer) -> None:
        """Start feeding `writer` with everything enqueued from now on."""
        self._put_now((ADD_WRITER, writer))

    def flush(self, durable: bool = False) -> None:
        """Block until everything enqueued so far is written and flushed by every writer;
        `durable` makes each writer `sync()` (fsync) instead of `flush(True)`."""
        done = threading.Event()
        self._put_now((FLUSH, done, durable))
        done.wait()

    def close(self) -> None:
        """Write and flush everything, close every writer, stop the thread.

        A caller still waiting in `put_media` gets False: its record comes after the close.
        """
        with self._room:
            self._closed = True
            self._room.notify_all()
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
            batch: deque[tuple] = deque()
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if len(batch) == MAX_BATCH:
                self._wake.set()  # more is waiting: come straight back
            self._unreleased = sum(map(media_bytes, batch))
            try:
                if not self._process(batch):
                    return
            except Exception as exc:  # a bug here must not leave flush() waiting forever
                self._record(exc, "the logging thread")
                for item in batch:  # the records not handled yet
                    if item[0] == FLUSH:
                        item[1].set()
                    elif item[0] == CLOSE:
                        return
            finally:
                batch.clear()
                self._release(self._unreleased)  # what a failure or a CLOSE left unwritten
            if time.monotonic() >= next_flush:
                self._call_writers("flush", False)
                next_flush = time.monotonic() + self._flush_seconds

    def _process(self, batch: deque[tuple]) -> bool:
        """Handle one batch in order, taking each record out of `batch`; False after CLOSE.

        A record leaves `batch` before it is handled, so an image's memory is freed when its
        bytes are released, not when the whole batch is done.
        """
        convert_device_tensors(batch, self._record)
        merge_steps(batch)
        while batch:
            item = batch.popleft()
            kind = item[0]
            if kind == SCALARS:
                if item[2]:  # empty when every value of the record failed to convert
                    self._call_writers("write_scalars", item[1], item[2])
            elif kind == ADD_WRITER:
                self._writers.append(item[1])
            elif kind == FLUSH:
                if item[2]:
                    self._call_writers("sync")
                else:
                    self._call_writers("flush", True)
                item[1].set()
            elif kind == CLOSE:
                self._close_writers()
                return False
            else:
                size = media_bytes(item)
                self._handle_media(item)
                del item  # free the payload before a waiting caller copies the next one
                self._release(size)
        return True

    def _handle_media(self, item: tuple) -> None:
        kind = item[0]
        try:
            if kind == IMAGE:
                from utils.log.images import to_uint8_image

                _, name, image, step, options = item
                self._call_writers("write_image", name, to_uint8_image(image, **options), step)
            elif kind == HISTOGRAM:
                _, name, values, step = item
                self._call_writers("write_histogram", name, to_float_array(values), step)
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
