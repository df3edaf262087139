"""Graceful stop on SIGTERM/SIGINT: the first sets a flag, the loop saves and exits cleanly.

A second SIGINT raises KeyboardInterrupt at once, for a user who really wants out. Outside the
session, `02_train.py` makes a SIGTERM exit 143 rather than kill the process (see
`exit_on_late_sigterm`).
"""

import signal
from types import FrameType

EXIT_CODES = {signal.SIGTERM: 143, signal.SIGINT: 130}


class GracefulStop:
    """Installs the handlers on `install()`, restores the previous ones on `restore()`."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        """True once SIGTERM or SIGINT has arrived."""
        return self.signum is not None

    @property
    def exit_code(self) -> int:
        """128 + signal number (143 for SIGTERM, 130 for SIGINT), 0 when no signal came."""
        return EXIT_CODES.get(self.signum, 128 + self.signum) if self.signum else 0

    def request(self, signum: int) -> None:
        """Record a stop request (also used when another rank asked to stop)."""
        if self.signum is None:
            self.signum = signum

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt("second SIGINT: stopping at once")
        self.request(signum)

    def install(self) -> "GracefulStop":
        for signum in EXIT_CODES:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()


def exit_on_late_sigterm() -> None:
    """For the CLI's process: a SIGTERM outside the training session exits 143, never kills it.

    Every rank of a stopped run exits 143, and torchrun's agent sends SIGTERM to the workers still
    running as soon as one has exited non-zero. Those are on their way out, and the interpreter's
    teardown (seconds, with torch loaded) resets Python's handlers to the default action, which
    would kill them (exit -15). Here a SIGTERM before or after the session raises SystemExit(143),
    and once the session is over, `ignore_sigterm` lets the process end with its own exit code.
    """

    def leave(signum: int, frame: FrameType | None) -> None:
        ignore_sigterm()
        raise SystemExit(EXIT_CODES[signal.SIGTERM])

    signal.signal(signal.SIGTERM, leave)


def ignore_sigterm() -> None:
    """Ignore SIGTERM in every thread until the process ends: unlike a Python handler, an ignored
    signal stays ignored through the interpreter's teardown."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
