"""`LOGGER`: the proxy importable anywhere that forwards to the active Logger.

The active Logger is the last one created and not finished; `utils.logging.Logger` adds itself
to `_active` when created and removes itself in `finish()`.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_active: list[Any] = []  # Loggers created and not finished; LOGGER uses the last


def is_active() -> bool:
    """True when `LOGGER` has an open Logger to forward to (else its calls raise)."""
    return bool(_active) and not getattr(_active[-1], "_finished", False)  # a forked child's copy is finished


@contextmanager
def forwarding_to(logger: Any) -> Iterator[None]:
    """LOGGER forwards to `logger` inside the block: with a NullLogger, what a task logs itself while
    a run is only evaluated (no Logger, no writers) is dropped instead of raising."""
    _active.append(logger)
    try:
        yield
    finally:
        _active.remove(logger)


class _LoggerProxy:
    """`LOGGER`: forwards every attribute to the active Logger (the last created, not finished)."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        if _active:
            return getattr(_active[-1], name)
        if name.startswith("__"):
            raise AttributeError(name)
        raise RuntimeError(
            f"LOGGER.{name}: no Logger is active; create one first with "
            "`Logger(exp_name, run_name)` (from utils.logging import Logger); code that may run "
            "outside a run can check `is_active()` or log to a `NullLogger()`"
        )

    def __repr__(self) -> str:
        return f"LOGGER -> {_active[-1]!r}" if _active else "LOGGER -> (no active Logger)"


LOGGER: Any = _LoggerProxy()
