"""Shutting down a task's DataLoader workers when a session ends, on every path.

Persistent workers live as long as their loader's iterator. At interpreter exit,
multiprocessing stops its daemonic children with SIGTERM and joins them, but the workers ignore
SIGTERM (so that a signal reaches only the main process, which saves a checkpoint): the join
never returns and a finished run never exits. Shutting them down explicitly avoids that.
"""

from typing import Any

from torch.utils.data import DataLoader


def find_loaders(container: Any) -> list[DataLoader]:
    """The DataLoaders among an object's attributes (or the object itself)."""
    if isinstance(container, DataLoader):
        return [container]
    return [value for value in vars(container).values() if isinstance(value, DataLoader)]


def close_loaders(container: Any) -> None:
    """Stop the worker processes of every DataLoader in `container`; idempotent.

    Uses the iterator's own shutdown (the one its finaliser would run), then drops the
    iterator, so a later `iter(loader)` starts fresh workers.
    """
    for loader in find_loaders(container):
        iterator = getattr(loader, "_iterator", None)
        if iterator is not None and hasattr(iterator, "_shutdown_workers"):
            iterator._shutdown_workers()
        loader._iterator = None
