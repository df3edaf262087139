"""The seam between the engine and a task: what a user writes to bring a model, data and metrics.

A task is one class with a few methods, registered under a name that the config's `task` key
selects. The engine (loop, session, checkpoints, resume, signals, DDP, logging) calls only
these methods and imports no task:

    @register_task
    class MyTask(Task):
        name = "my_task"
        config_sections = (MyData, MyModel)      # typed sections, see utils.config_fields
        metrics = {"loss": "min", "r2": "max"}  # what summarize() returns, and which way is better

        def build_datasets(self) -> Datasets: ...              # train/val/test torch Datasets
        def build_model(self) -> nn.Module: ...
        def train_step(self, model, batch) -> StepOutput: ...  # the loss of one batch
        def eval_step(self, model, batch) -> dict[str, Tensor]: ...  # sums over one batch
        def summarize(self, sums, split, step) -> dict[str, float]: ...  # sums over the split -> metrics
        def draw(self, model, batch, sums, split, step) -> dict[str, Any]: ...  # optional figures/images
        def predict(self, model, inputs): ...  # optional: raw inputs -> outputs (default model(inputs))
        def state_dict(self) / load_state_dict(self, state): ...  # optional preprocessing state
        def example_inputs(self) -> tuple[Tensor, ...]: ...  # optional: a batch to check exports with

The engine builds the loaders (so the data order, and with it an exact resume, is its
guarantee), moves batches to the device, sums `eval_step` over the batches and the ranks, and
logs what `summarize` and `draw` return, as `val/<name>` or `test/<name>`.

Each metric's direction ("min": smaller is better, "max": larger is) is declared next to its
name; `training.best_mode`, `early_stopping.mode`, a sweep's `mode` and `03_compare.py` read it.
"""

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from utils.config_fields import ParsedConfig
from utils.errors import ConfigValueError

TASK_PACKAGE = "tasks"  # `task: "NAME"` is found in src/tasks/NAME.py when not registered yet
Direction = Literal["min", "max"]  # whether a smaller or a larger value of a metric is better
DIRECTIONS: tuple[Direction, ...] = ("min", "max")
EXAMPLE_BATCH = 16  # samples in Task.example_inputs(): enough to see a batch, cheap to run through an export


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
    # name -> direction (None: not known); a tuple of bare names, as tasks were written before
    # directions, still works: `loss` is then "min" and the others unknown
    metrics: ClassVar[Mapping[str, Direction | None] | tuple[str, ...]] = {"loss": "min"}
    # FLOPs of one training sample's forward and backward pass (about 3x the forward's); with a
    # known GPU peak the engine logs perf/mfu (training.throughput). None: no MFU
    flops_per_sample: ClassVar[float | None] = None

    def __init__(self, context: TaskContext) -> None:
        self.context = context

    def section(self, owner: type) -> Any:
        """This task's typed config section, e.g. `self.section(MyTaskData).samples`."""
        return self.context.config[owner]

    def build_datasets(self) -> Datasets:
        raise NotImplementedError(f"{type(self).__name__}.build_datasets")

    def build_model(self) -> nn.Module:
        raise NotImplementedError(f"{type(self).__name__}.build_model")

    def shard_units(self, model: nn.Module) -> list[nn.Module]:
        """The submodules FSDP shards one by one under `training.parallel = "fsdp"` (each unit's
        weights are gathered only while it computes; the root takes the rest): by default each
        direct child that holds parameters. A transformer would name its blocks."""
        return [child for child in model.children() if any(True for _ in child.parameters())]

    def train_step(self, model: nn.Module, batch: Any) -> StepOutput:
        raise NotImplementedError(f"{type(self).__name__}.train_step")

    def eval_step(self, model: nn.Module, batch: Any) -> dict[str, torch.Tensor]:
        raise NotImplementedError(f"{type(self).__name__}.eval_step")

    def summarize(self, sums: dict[str, torch.Tensor], split: str, step: int) -> dict[str, float]:
        """The split's metrics from its sums. `split` ("val" or "test") and `step` say where what
        the task logs itself belongs: `LOGGER.log({f"{split}/extra": value}, step)`."""
        raise NotImplementedError(f"{type(self).__name__}.summarize")

    def draw(
        self, model: nn.Module, batch: Any, sums: dict[str, torch.Tensor], split: str, step: int,
    ) -> dict[str, Any]:
        """Figures or images to log for a split (name -> matplotlib Figure or image array)."""
        return {}

    def predict(self, model: nn.Module, inputs: Any) -> Any:
        """Outputs for raw inputs, in the task's own units (a class id, a mask): what a user of the
        trained model calls, see `training.inference.load_trained`. The model is in eval mode."""
        return model(inputs)

    def state_dict(self) -> dict[str, Any]:
        """Preprocessing state `predict` needs (a mean and std measured on the training split),
        saved in every checkpoint: plain numbers, lists, strings or tensors (weights-only loadable)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Take back what `state_dict` returned, without building any data set."""

    def example_inputs(self) -> tuple[torch.Tensor, ...]:
        """The model's positional inputs for one batch, batch dimension first: what `06_export.py`
        traces and checks an export with. The default takes the inputs of the test split's first
        EXAMPLE_BATCH samples, for batches that are (inputs, targets); override it otherwise."""
        datasets = self.build_datasets()
        loader = DataLoader(datasets.test, batch_size=EXAMPLE_BATCH, collate_fn=datasets.collate_fn)
        return (next(iter(loader))[0],)

    @classmethod
    def metric_directions(cls) -> dict[str, Direction | None]:
        """Each metric `summarize` returns and its direction (None: not declared)."""
        if isinstance(cls.metrics, Mapping):
            return dict(cls.metrics)
        return {name: "min" if name == "loss" else None for name in cls.metrics}

    @classmethod
    def direction(cls, metric: str) -> Direction | None:
        """The direction of a logged metric: `val/miou`, `test/miou` and `train/epoch_miou` read
        the declaration of `miou`, `train/loss` that of `loss`; None for one the task does not
        declare a direction for, or does not produce (`lr`, `time/forward`)."""
        split, _, name = metric.partition("/")
        if split == "train":
            name = "loss" if name == "loss" else name.removeprefix("epoch_") if name.startswith("epoch_") else ""
        elif split not in ("val", "test"):
            return None
        return cls.metric_directions().get(name)


_REGISTRY: dict[str, type[Task]] = {}


def register_task(task: type[Task]) -> type[Task]:
    """Make a task class selectable by `task: <name>` in a config; usable as a decorator."""
    if not task.name:
        raise ValueError(f"{task.__name__} needs a `name`")
    for metric, direction in task.metric_directions().items():
        if direction is not None and direction not in DIRECTIONS:
            raise ValueError(f"{task.__name__}.metrics[{metric!r}]={direction!r}: use 'min', 'max' or None")
    _REGISTRY[task.name] = task
    return task


def find_task(name: str) -> type[Task]:
    """The registered task `name`, importing `tasks.<name>` first when it is not registered.

    ConfigValueError (exit 2) for a name that cannot be a module, or a module that registers
    no task of that name (naming the file, what it registers and the fix).
    """
    if name in _REGISTRY:
        return _REGISTRY[name]
    known = ", ".join(available_tasks()) or "none"
    if not name.isidentifier():
        raise ConfigValueError(
            f"task={name!r} is not a task name: a task `x` lives in src/{TASK_PACKAGE}/x.py, x a Python "
            f"identifier (letters, digits, _); known tasks: {known}"
        )
    module = f"{TASK_PACKAGE}.{name}"
    try:
        imported = importlib.import_module(module)
    except ModuleNotFoundError as error:
        if error.name not in (module, TASK_PACKAGE):
            raise
        raise ConfigValueError(
            f"task={name!r} is unknown; known tasks: {known} (a task `x` lives in src/{TASK_PACKAGE}/x.py "
            "and is registered with @register_task)"
        ) from None
    if name not in _REGISTRY:
        registered = sorted(task.name for task in _REGISTRY.values() if task.__module__ == module)
        file = imported.__file__
        if registered:
            raise ConfigValueError(
                f"task={name!r}: {file} registers the task {registered[0]!r}, not {name!r}; a task's "
                f"name and file name must match: write name = {name!r} in its class, or rename the file "
                f"to src/{TASK_PACKAGE}/{registered[0]}.py and set task={registered[0]!r}"
            )
        raise ConfigValueError(
            f"task={name!r}: {file} registers no task; decorate its Task class with @register_task "
            f"and give it name = {name!r}"
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
