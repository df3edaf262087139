"""The seam between the engine and a task: what a user writes to bring a model, data and metrics.

A task is one class with a few methods, registered under a name that the config's `task` key
selects. The engine (loop, session, checkpoints, resume, signals, DDP, logging) calls only
these methods and imports no task:

    @register_task
    class MyTask(Task):
        name = "my_task"
        config_sections = (MyData, MyModel)      # typed sections, see utils.config_fields
        metrics = ("loss", "r2")                # what summarize() returns, logged as val/<name>

        def build_datasets(self) -> Datasets: ...              # train/val/test torch Datasets
        def build_model(self) -> nn.Module: ...
        def train_step(self, model, batch) -> StepOutput: ...  # the loss of one batch
        def eval_step(self, model, batch) -> dict[str, Tensor]: ...  # sums over one batch
        def summarize(self, sums) -> dict[str, float]: ...    # sums over the split -> metrics
        def draw(self, model, batch, sums) -> dict[str, Any]: ...  # optional figures/images

The engine builds the loaders (so the data order, and with it an exact resume, is its
guarantee), moves batches to the device, sums `eval_step` over the batches and the ranks, and
logs what `summarize` and `draw` return.
"""

import importlib
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn
from torch.utils.data import Dataset

from utils.config_fields import ParsedConfig
from utils.errors import ConfigValueError

TASK_PACKAGE = "tasks"  # `task: "NAME"` is found in src/tasks/NAME.py when not registered yet


@dataclass
class Datasets:
    """The task's splits; `collate_fn` is passed to every loader when given."""

    train: Dataset
    val: Dataset
    test: Dataset
    collate_fn: Any = None


@dataclass
class StepOutput:
    """One training batch: the loss to minimise and extra batch means for the epoch line.

    `metrics` (e.g. {"accuracy": ...}) stay tensors on the device; the engine averages them
    over the epoch weighted by `count` and logs them as `train/epoch_<name>`.
    """

    loss: torch.Tensor
    count: int
    metrics: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskContext:
    """What a task may read while it builds: its config, the seed and where it runs."""

    config: ParsedConfig
    seed: int
    device: torch.device
    rank: int = 0
    world_size: int = 1


class Task:
    """Base class of a task: override the builders and the steps; `draw` is optional."""

    name: ClassVar[str] = ""
    config_sections: ClassVar[tuple[type, ...]] = ()
    metrics: ClassVar[tuple[str, ...]] = ("loss",)

    def __init__(self, context: TaskContext) -> None:
        self.context = context

    def section(self, owner: type) -> Any:
        """This task's typed config section, e.g. `self.section(MyTaskData).samples`."""
        return self.context.config[owner]

    def build_datasets(self) -> Datasets:
        raise NotImplementedError(f"{type(self).__name__}.build_datasets")

    def build_model(self) -> nn.Module:
        raise NotImplementedError(f"{type(self).__name__}.build_model")

    def train_step(self, model: nn.Module, batch: Any) -> StepOutput:
        raise NotImplementedError(f"{type(self).__name__}.train_step")

    def eval_step(self, model: nn.Module, batch: Any) -> dict[str, torch.Tensor]:
        raise NotImplementedError(f"{type(self).__name__}.eval_step")

    def summarize(self, sums: dict[str, torch.Tensor]) -> dict[str, float]:
        raise NotImplementedError(f"{type(self).__name__}.summarize")

    def draw(self, model: nn.Module, batch: Any, sums: dict[str, torch.Tensor]) -> dict[str, Any]:
        """Figures or images to log for a split (name -> matplotlib Figure or image array)."""
        return {}


_REGISTRY: dict[str, type[Task]] = {}


def register_task(task: type[Task]) -> type[Task]:
    """Make a task class selectable by `task: <name>` in a config; usable as a decorator."""
    if not task.name:
        raise ValueError(f"{task.__name__} needs a `name`")
    _REGISTRY[task.name] = task
    return task


def find_task(name: str) -> type[Task]:
    """The registered task `name`, importing `tasks.<name>` first when it is not registered."""
    if name not in _REGISTRY:
        try:
            importlib.import_module(f"{TASK_PACKAGE}.{name}")
        except ModuleNotFoundError as error:
            if error.name not in (f"{TASK_PACKAGE}.{name}", TASK_PACKAGE):
                raise
    if name not in _REGISTRY:
        raise ConfigValueError(
            f"task={name!r} is unknown; known tasks: {', '.join(available_tasks()) or 'none'} "
            f"(a task `x` lives in src/{TASK_PACKAGE}/x.py and is registered with @register_task)"
        )
    return _REGISTRY[name]


def available_tasks() -> list[str]:
    """Registered tasks plus the modules in src/tasks/ (not imported)."""
    import pkgutil

    try:
        package = importlib.import_module(TASK_PACKAGE)
        found = {module.name for module in pkgutil.iter_modules(package.__path__) if not module.name.startswith("_")}
    except ModuleNotFoundError:
        found = set()
    return sorted(found | set(_REGISTRY))
