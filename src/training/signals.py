"""Graceful stop on SIGTERM/SIGINT: the first sets a flag, the loop saves and exits cleanly.

A second SIGINT raises KeyboardInterrupt at once, for a user who really wants out.
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
