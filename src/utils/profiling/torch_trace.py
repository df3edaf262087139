"""A `torch.profiler` session with a wait/warmup/active schedule that writes a trace file.

    with trace_steps(wait=1, warmup=1, active=3) as prof:   # trace lands in the run's logs/
        for batch in loader:
            train_step(batch)
            prof.step()

The trace (`<worker>.<timestamp>.pt.trace.json`) opens in TensorBoard's profiler view and in
Perfetto (ui.perfetto.dev). Only the `active` steps are recorded, after `wait` skipped and
`warmup` steps that absorb the profiler's own start-up cost.
"""

from collections.abc import Callable
from pathlib import Path
from typing import Any

TRACE_SUBDIR = "torch_profiler"


def trace_steps(
    directory: str | Path | None = None,
    *,
    wait: int = 1,
    warmup: int = 1,
    active: int = 3,
    repeat: int = 1,
    record_shapes: bool = False,
    profile_memory: bool = False,
    with_stack: bool = False,
    worker_name: str | None = None,
    logger: Any = None,
    on_ready: Callable[[Any], None] | None = None,
) -> "torch.profiler.profile":  # noqa: F821
    """A configured, not yet started `torch.profiler.profile`; call `.step()` once per step.

    `directory` defaults to `<run>/logs/torch_profiler` of `logger` (default: the global
    LOGGER). CUDA activity is recorded too when a GPU is present. `on_ready(prof)` runs after
    each trace is written, e.g. to log `prof.key_averages().table()`.
    """
    import torch
    from torch.profiler import ProfilerActivity, profile, schedule, tensorboard_trace_handler

    for option, value, minimum in (("wait", wait, 0), ("warmup", warmup, 0), ("active", active, 1),
                                   ("repeat", repeat, 0)):
        if value < minimum:
            raise ValueError(f"{option}={value} must be at least {minimum}")
    if directory is None:
        if logger is None:
            from utils.logging import LOGGER as logger
        directory = Path(logger.get_path("log")) / TRACE_SUBDIR
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    write_trace = tensorboard_trace_handler(str(folder), worker_name=worker_name)

    def trace_ready(prof: profile) -> None:
        write_trace(prof)
        if on_ready is not None:
            on_ready(prof)

    activities = [ProfilerActivity.CPU]
    if torch.cuda.is_available():
        activities.append(ProfilerActivity.CUDA)
    return profile(
        activities=activities,
        schedule=schedule(wait=wait, warmup=warmup, active=active, repeat=repeat),
        on_trace_ready=trace_ready,
        record_shapes=record_shapes,
        profile_memory=profile_memory,
        with_stack=with_stack,
    )
