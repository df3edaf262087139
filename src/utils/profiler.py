"""Time named code sections honestly: a tree of calls, cheap when off, GPU-aware.

    with PROFILER.section("train_step"):
        with PROFILER.section("forward"):
            ...
    print(PROFILER.report())          # tree table; write_report() puts it in logs/profile.txt

CPU sections use `time.perf_counter_ns`. With `cuda=True` a section records CUDA events on the
current stream and resolves them only when read, so profiling adds no synchronisation; with
`synchronize=True` the device is synchronised at both ends for wall-clock semantics. Each
thread has its own stack and tree (no locks on the hot path); reports merge them by path.
"""

import threading
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from time import perf_counter_ns
from typing import Any, TypeVar

from utils.helper_functions import write_to_logs
from utils.logging import LOGGER

F = TypeVar("F", bound=Callable[..., Any])
MAX_PENDING_EVENTS = 10_000


class _Node:
    """One section at one place in the tree; times in nanoseconds."""

    __slots__ = ("calls", "children", "max", "min", "total")

    def __init__(self) -> None:
        self.calls, self.total, self.min, self.max = 0, 0, 0, 0
        self.children: dict[str, _Node] = {}

    def add(self, elapsed: int) -> None:
        if self.calls == 0 or elapsed < self.min:
            self.min = elapsed
        if elapsed > self.max:
            self.max = elapsed
        self.calls += 1
        self.total += elapsed

    def merge(self, other: "_Node") -> None:
        """Fold `other` (the same path in another thread's tree) into this node."""
        if other.calls:
            self.min = other.min if self.calls == 0 else min(self.min, other.min)
            self.max = max(self.max, other.max)
        self.calls += other.calls
        self.total += other.total
        for name, child in other.children.items():
            self.children.setdefault(name, _Node()).merge(child)


class _NullSection:
    """The shared do-nothing context manager a disabled profiler hands out."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc_info: object) -> None:
        return None


NULL_SECTION = _NullSection()


class _Section:
    """Context manager for one section name; stateless, so one instance serves every thread."""

    __slots__ = ("name", "profiler")

    def __init__(self, profiler: "Profiler", name: str):
        self.profiler, self.name = profiler, name

    def __enter__(self) -> None:
        self.profiler._enter(self.name)

    def __exit__(self, *exc_info: object) -> None:
        self.profiler._exit()


class Profiler:
    """Aggregating section timer. `enabled` is the switch: when False, `section()` returns a
    shared null context manager and records nothing."""

    def __init__(self, *, enabled: bool = True, cuda: bool = False, synchronize: bool = False,
                 log_every: int = 0, logger: Any = None):
        if (cuda or synchronize) and not _cuda_available():
            raise ValueError("Profiler(cuda=True or synchronize=True) needs a CUDA device: use the defaults on CPU")
        _check_log_every(log_every)
        self.enabled, self.cuda, self.synchronize = enabled, cuda, synchronize
        self.log_every, self.logger = log_every, LOGGER if logger is None else logger
        self._local = threading.local()
        self._roots: list[_Node] = []  # one per thread that ever entered a section
        self._roots_lock = threading.Lock()
        self._sections: dict[str, _Section] = {}
        self._pending: list[tuple[_Node, Any, Any]] = []  # CUDA events not yet read
        self._pending_lock = threading.Lock()
        self._logged: dict[str, tuple[int, float]] = {}  # path -> (calls, total ms) at the last log

    def configure(self, *, enabled: bool | None = None, log_every: int | None = None) -> dict[str, Any]:
        """Switch recording on or off and set how often `step` logs; returns the settings before,
        so the caller can restore them (the engine does, around each training session, for the
        global PROFILER that tasks open their sections on). None leaves a setting as it is."""
        previous = {"enabled": self.enabled, "log_every": self.log_every}
        if log_every is not None:
            _check_log_every(log_every)
            self.log_every = log_every
        if enabled is not None:
            self.enabled = enabled
        return previous

    # --- recording -------------------------------------------------------------------------
    def section(self, name: str) -> _Section | _NullSection:
        """Context manager timing `name` nested under the section open in this thread."""
        if not self.enabled:
            return NULL_SECTION
        section = self._sections.get(name)
        if section is None:
            section = self._sections.setdefault(name, _Section(self, name))
        return section

    def timed(self, name: str | None = None) -> Callable[[F], F]:
        """Decorator timing every call of a function as section `name` (default: its qualname).

        The switch is read at each call, so decorating while disabled costs only that check.
        """

        def decorate(function: F) -> F:
            label = name or function.__qualname__

            @wraps(function)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                if not self.enabled:
                    return function(*args, **kwargs)
                with self.section(label):
                    return function(*args, **kwargs)

            return wrapper  # type: ignore[return-value]

        return decorate

    def _stack(self) -> list[Any]:
        try:
            return self._local.stack
        except AttributeError:
            root = _Node()
            with self._roots_lock:
                self._roots.append(root)
            self._local.stack = [(root, 0, False)]
            return self._local.stack

    def _enter(self, name: str) -> None:
        stack = self._stack()
        children = stack[-1][0].children
        node = children.get(name)
        if node is None:
            node = children[name] = _Node()
        if self.cuda or self.synchronize:
            stack.append((node, self._start_device_timing(), True))
        else:
            stack.append((node, perf_counter_ns(), False))

    def _exit(self) -> None:
        node, start, on_device = self._local.stack.pop()
        if on_device:
            self._stop_device_timing(node, start)
        else:
            node.add(perf_counter_ns() - start)

    def _start_device_timing(self) -> Any:
        """A CUDA event on the current stream, or (synchronising mode) the clock after a sync."""
        import torch

        if self.synchronize:
            torch.cuda.synchronize()
            return perf_counter_ns()
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        return event

    def _stop_device_timing(self, node: _Node, start: Any) -> None:
        import torch

        if self.synchronize:
            torch.cuda.synchronize()
            node.add(perf_counter_ns() - start)
            return
        end = torch.cuda.Event(enable_timing=True)
        end.record()
        with self._pending_lock:
            self._pending.append((node, start, end))
            overflowing = len(self._pending) >= MAX_PENDING_EVENTS
        if overflowing:
            self._resolve_pending()

    def _resolve_pending(self) -> None:
        """Read CUDA events into their nodes; waits for the GPU, so it runs only when reading
        (or when MAX_PENDING_EVENTS are waiting, to bound memory)."""
        with self._pending_lock:
            for node, start, end in self._pending:
                end.synchronize()
                node.add(int(start.elapsed_time(end) * 1e6))  # ms -> ns
            self._pending = []

    # --- reading ---------------------------------------------------------------------------
    def tree(self) -> _Node:
        """All threads' trees merged by path (a fresh copy; the root holds no time itself)."""
        self._resolve_pending()
        merged = _Node()
        with self._roots_lock:
            roots = list(self._roots)
        for root in roots:
            merged.merge(root)
        return merged

    def reset(self) -> None:
        """Forget every recorded time (threads keep working; their new sections start afresh)."""
        self._resolve_pending()
        with self._roots_lock:
            for root in self._roots:
                root.children.clear()
        self._logged.clear()

    def to_dict(self) -> dict[str, Any]:
        """Nested JSON-ready dict: name -> calls, total/mean/min/max in ms, share of parent, children."""
        return _nodes_to_dict(self.tree())

    def report(self) -> str:
        """The tree as a text table: calls, total, mean, min, max (ms) and % of the parent."""
        from utils.profiling.report import format_tree

        return format_tree(self.to_dict())

    def write_report(self, directory: str | Path | None = None, filename: str = "profile.txt") -> Path:
        """Write `report()` to `directory` (default: the run's logs folder) and return the path."""
        return write_to_logs(self.logger, self.report(), filename, directory)

    def step(self, step: int) -> None:
        """Call once per training step: every `log_every` steps, log section means as time/<path>."""
        if self.log_every and self.enabled and step % self.log_every == 0:
            self.log_means(step)

    def log_means(self, step: int) -> None:
        """Log each section's mean time in ms since the previous log as `time/<path>`."""
        from utils.profiling.report import flatten_paths

        means = {}
        for path, calls, total_ms in flatten_paths(self.to_dict()):
            last_calls, last_total_ms = self._logged.get(path, (0, 0.0))
            if calls > last_calls:
                means[f"time/{path}"] = (total_ms - last_total_ms) / (calls - last_calls)
            self._logged[path] = (calls, total_ms)
        if means:
            self.logger.log(means, step=step)


def _nodes_to_dict(parent: _Node) -> dict[str, Any]:
    base = parent.total or sum(child.total for child in parent.children.values())
    return {
        name: {
            "calls": node.calls,
            "total_ms": node.total / 1e6,
            "mean_ms": node.total / node.calls / 1e6 if node.calls else 0.0,
            "min_ms": node.min / 1e6,
            "max_ms": node.max / 1e6,
            "share_of_parent": node.total / base if base else 0.0,
            "children": _nodes_to_dict(node),
        }
        for name, node in parent.children.items()
    }


def _check_log_every(log_every: int) -> None:
    if log_every < 0:
        raise ValueError(f"log_every={log_every} must be 0 (never) or a positive number of steps")


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


PROFILER = Profiler()
