"""Refuse a model too large to allocate while its config is checked, before a run exists.

The task's model is built on the `meta` device (shapes only, no memory, a few milliseconds)
and its weights and buffers are compared with the memory this machine has available. Only a
model whose weights alone cannot be allocated is refused: training needs more (gradients and
the optimizer's state, about 4x the weights with AdamW), but where that lands depends on the
device, so that part is left to the training itself.
"""

import os
from pathlib import Path

import torch

from training.task import Task, TaskContext
from utils.config_fields import ParsedConfig, flatten
from utils.errors import ConfigValueError

MEMINFO = Path("/proc/meminfo")


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux: MemAvailable; elsewhere the
    physical memory), or None when the system does not say."""
    try:
        for line in MEMINFO.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024  # the value is in kB
    except OSError:
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def build_meta_model(task: type[Task], config: ParsedConfig, seed: int) -> torch.nn.Module | None:
    """The task's model on the meta device (shapes, no memory); None for a model that cannot be
    built without its data (e.g. sized in `build_datasets`)."""
    context = TaskContext(config, seed, torch.device("meta"))
    try:
        with torch.device("meta"):
            return task(context).build_model()
    except Exception:  # checked by the real build at training start, which reports its own error
        return None


def model_size(task: type[Task], config: ParsedConfig, seed: int) -> tuple[int, int] | None:
    """(parameters, bytes of weights and buffers) of the task's model built on the meta device;
    None for a model that cannot be built without its data."""
    model = build_meta_model(task, config, seed)
    if model is None:
        return None
    weights = sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))
    return sum(p.numel() for p in model.parameters()), weights


def check_model_fits(task: type[Task], config: ParsedConfig, seed: int, source: str) -> None:
    """ConfigValueError (exit 2) naming the model's keys when its weights exceed the memory available."""
    size, available = model_size(task, config, seed), available_memory()
    if size is None or available is None or size[1] <= available:
        return
    parameters, needed = size
    keys = {key: value for key, value in flatten(config.raw).items() if key.startswith("model.")}
    shown = ", ".join(f"{key}={value!r}" for key, value in keys.items()) or "its config"
    raise ConfigValueError(
        f"{source}: the {task.name!r} model has {parameters:,} parameters ({needed / 2**30:,.1f} GiB), "
        f"more than the {available / 2**30:,.1f} GiB of memory available: make it smaller ({shown})"
    )
