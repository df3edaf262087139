"""The hang watchdog: a rank that waits too long names the ranks that did not arrive, and all exit.

Without it, a rank that stops arriving (a deadlock, a stuck data loader, a dead GPU) leaves every
other rank waiting in a collective for NCCL's timeout or for ever, and nobody says which rank or
where. Here the main thread marks where it is: the phases of each step (data, forward, backward
with DDP's gradient all-reduce, optimizer step) with a few attribute writes, and each agreement
point and barrier (`training.distributed`) also in the store that torchrun's rendezvous already
provides. A thread per rank wakes every `min(1 s, timeout / 5)`; when its rank has been in one
phase longer than `distributed.hang_timeout_s`, or another rank raised the alarm in the store, it
dumps every thread's Python stack (`faulthandler`) to `logs/hang-rank<N>.txt`, publishes where its
rank is, and rank 0 names on the console and in log.txt the ranks that are behind and where each
is. Then every rank exits `EXIT_HANG` instead of waiting for ever.

The thread never waits on a peer: it reads only keys it has checked exist, and every wait is
bounded. Disabled (one process, or `hang_timeout_s = null`) marking costs a tuple assignment.
"""

import faulthandler
import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from utils.config_fields import option
from utils.distributed_info import get_rank, get_world_size

EXIT_HANG = 124  # like timeout(1): the job was ended because it stopped making progress


@dataclass(frozen=True, kw_only=True)
class DistributedConfig:
    """The `distributed` section: what happens when a rank stops arriving."""

    SECTION: ClassVar[str] = "distributed"
    hang_timeout_s: float | None = option(
        300.0, "under torchrun, seconds a rank may spend in one phase of a step, an agreement or a "
        "barrier before every rank dumps its stack to logs/hang-rank<N>.txt and exits 124 (null: never; "
        "raise it above the longest step, the first compiled one included, and the longest checkpoint write)", gt=0,
    )


class HangWatchdog:
    """Marks where this rank is; a thread ends the job when a phase lasts past the timeout."""

    def __init__(self) -> None:
        # (phases entered so far, phase, step, monotonic time entered or None when not timed):
        # one tuple, so the thread reads a consistent position without a lock
        self._where: tuple[int, str, int | None, float | None] = (0, "start", None, None)
        self._store: Any = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._logs = Path()
        self._timeout = 0.0
        self._prefix = ""

    def enter(self, phase: str, step: int | None = None) -> None:
        """This rank starts `phase` (of `step`, else of the step it was in); timed from now."""
        entered, _, last_step, _ = self._where
        self._where = (entered + 1, phase, last_step if step is None else step, time.monotonic())

    def leave(self) -> None:
        """This rank does work no peer waits for (evaluation, writing a checkpoint): not timed."""
        entered, phase, step, _ = self._where
        self._where = (entered, phase, step, None)

    @contextmanager
    def agreement(self, phase: str) -> Iterator[None]:
        """Around a collective every rank makes: written to the store, timed until it returns."""
        self.enter(phase)
        if self._store is not None:
            self._set(f"at/{get_rank()}", self._record())
        try:
            yield
        finally:
            self.leave()

    def start(self, logs: Path, timeout: float | None) -> None:
        """Watch this rank under an initialised process group; a no-op otherwise."""
        import torch.distributed as dist

        if timeout is None or get_world_size() < 2 or not dist.is_initialized() or self._thread is not None:
            return
        self._store = dist.distributed_c10d._get_default_store()
        # a restarted torchrun attempt shares the store: its keys must not see the last attempt's alarm
        self._prefix = f"hang_watchdog/{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}/"
        self._logs, self._timeout = logs, timeout
        self._stopping.clear()
        self._thread = threading.Thread(target=self._watch, name="hang-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop watching (the session is over); idempotent."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._thread, self._store = None, None
        self._where = (0, "start", None, None)

    # -- the thread -------------------------------------------------------------------------
    def _watch(self) -> None:
        poll = min(1.0, self._timeout / 5)
        while not self._stopping.wait(poll):
            since = self._where[3]
            own = since is not None and time.monotonic() - since > self._timeout
            if own or self._has("alarm"):
                try:
                    self._fire(raised=own)
                finally:  # whatever went wrong while reporting, the process must not wait for ever
                    os._exit(EXIT_HANG)

    def _fire(self, raised: bool) -> None:
        """Dump the stack, publish where this rank is, report on rank 0 (the caller exits)."""
        rank = get_rank()
        self._set(f"stuck/{rank}", self._record())
        if raised:
            self._add("alarm")
        stack_file = self._logs / f"hang-rank{rank}.txt"
        with open(stack_file, "w") as file:
            file.write(f"rank {rank}: {self._describe(json.loads(self._record()))}\n")
            file.flush()
            faulthandler.dump_traceback(file=file, all_threads=True)
        grace = 2 * min(1.0, self._timeout / 5) + 2.0  # every peer's thread has seen the alarm by then
        if rank == 0:
            self._report(grace)
            self._add("reported")
        else:
            self._wait_for(lambda: self._has("reported"), grace + 15.0)

    def _report(self, grace: float) -> None:
        """Rank 0: name the ranks that are behind and where each is, on the console and in log.txt."""
        world = get_world_size()
        self._wait_for(lambda: all(self._has(f"stuck/{r}") for r in range(world)), grace)
        records = {r: self._read(f"stuck/{r}") or self._read(f"at/{r}") for r in range(world)}
        furthest = max((rec["entered"] for rec in records.values() if rec), default=0)
        behind = [r for r, rec in records.items() if rec is None or rec["entered"] < furthest]
        own = json.loads(self._record())
        places = "; ".join(
            f"rank {r} " + (self._describe(records[r]) if records[r] else "never reported where it is")
            for r in (behind or range(world))
        )
        verdict = "did not arrive" if behind else "all in the same phase (see their stacks)"
        message = (
            f"hang: rank 0 waited more than {self._timeout:g} s (distributed.hang_timeout_s) "
            f"{self._describe(own)}; {verdict}: {places}. Stacks in {self._logs}/hang-rank<N>.txt; "
            f"every rank exits {EXIT_HANG}"
        )
        self._log(message)

    def _log(self, message: str) -> None:
        """On the console and in log.txt through the Logger when one is open (bounded: the main
        thread is stuck, and a stuck writer must not keep the process alive)."""
        from utils.logging import LOGGER, is_active

        if not is_active():
            print(message, file=sys.stderr, flush=True)
            return
        writer = threading.Thread(target=lambda: (LOGGER.error(message), LOGGER.flush()), daemon=True)
        writer.start()
        writer.join(timeout=10)

    # -- store access: never raises, never waits for a key that is not there ----------------
    def _record(self) -> str:
        entered, phase, step, since = self._where
        waited = None if since is None else round(time.monotonic() - since, 1)
        return json.dumps({"entered": entered, "phase": phase, "step": step, "waited_s": waited})

    @staticmethod
    def _describe(record: dict[str, Any]) -> str:
        step = "before the first step" if record["step"] is None else f"at step {record['step']}"
        waited = f" for {record['waited_s']} s" if record.get("waited_s") else ""
        return f"in {record['phase']} {step}{waited}"

    def _set(self, key: str, value: str) -> None:
        try:
            self._store.set(self._prefix + key, value)
        except (RuntimeError, OSError):  # the store is gone with torchrun: nothing to tell
            pass

    def _add(self, key: str) -> None:
        try:
            self._store.add(self._prefix + key, 1)
        except (RuntimeError, OSError):
            pass

    def _has(self, key: str) -> bool:
        try:
            return bool(self._store.check([self._prefix + key]))
        except (RuntimeError, OSError):
            return False

    def _read(self, key: str) -> dict[str, Any] | None:
        if not self._has(key):
            return None
        try:
            return json.loads(self._store.get(self._prefix + key))
        except (RuntimeError, OSError, ValueError):
            return None

    @staticmethod
    def _wait_for(condition: Any, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.05)


WATCHDOG = HangWatchdog()  # the session starts it, the loop and `training.distributed` mark it
