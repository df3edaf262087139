"""A run's whole config: the engine's sections, the task's and the writers', checked at once.

Each section is declared next to the code that reads it (`LoaderConfig` in data_loading,
`OptimizerConfig` in optim, `TrainingConfig` in trainer_config, the writers' keys in their modules,
the task's in its file); this module only gathers them for the task the config names. Both
`01_initialize.py` and `02_train.py` call `parse_run_config`, so a mistake fails before a run is
created and again before anything is built; a sweep checks each trial's config through it too.
"""

from dataclasses import dataclass, replace
from typing import Any, ClassVar

from training.data_loading import LoaderConfig
from training.debugging import DebugConfig
from training.early_stopping import EarlyStoppingConfig
from training.hang_watchdog import DistributedConfig
from training.init_from import InitConfig
from training.model_memory import check_model_fits
from training.optim import OptimizerConfig, SchedulerConfig
from training.task import Task, available_tasks, find_task
from training.torch_profile import ProfileConfig
from training.trainer_config import TrainingConfig
from utils.config_fields import REQUIRED, ParsedConfig, option, parse_config
from utils.errors import ConfigKeyError, ConfigValueError
from utils.log.writers.registry import writer_config_sections


@dataclass(frozen=True, kw_only=True)
class RunSettings:
    """The top-level keys."""

    SECTION: ClassVar[str] = ""
    task: str = option(REQUIRED, "the task to train: NAME of a task in src/tasks/NAME.py (or one registered in code)")
    seed: int = option(
        0, "seeds Python, NumPy and torch; the task's data split and the data order (below 2**63: "
        "torch's generators take 64 bits, and the data order adds the epoch)", ge=0, lt=2**63,
    )
    deterministic: bool = option(False, "deterministic kernels: bit-identical reruns and resumes on the CPU")


ENGINE_SECTIONS: tuple[type, ...] = (
    RunSettings, LoaderConfig, OptimizerConfig, SchedulerConfig, TrainingConfig, InitConfig, EarlyStoppingConfig,
    DistributedConfig, DebugConfig, ProfileConfig,
)


@dataclass(frozen=True)
class RunConfig:
    """The parsed config and the task class it selects: `config[TrainingConfig].epochs`."""

    parsed: ParsedConfig
    task: type[Task]

    def __getitem__(self, owner: type) -> Any:
        return self.parsed[owner]

    @property
    def raw(self) -> dict[str, Any]:
        """The complete config as JSON (defaults filled in), as written to config.json."""
        return self.parsed.raw


def config_classes(task: type[Task]) -> list[type]:
    """Every config class a run of `task` reads: the engine's, the writers' and the task's."""
    return [*ENGINE_SECTIONS, *writer_config_sections(), *task.config_sections]


def parse_run_config(config: dict[str, Any], source: str = "config") -> RunConfig:
    """Validate the whole config for the task it names; ConfigKeyError/ConfigValueError (exit 2)."""
    name = config.get("task")
    if name is None:
        raise ConfigKeyError(f"{source}: required key 'task' is missing; known tasks: {', '.join(available_tasks())}")
    if not isinstance(name, str):
        raise ConfigValueError(f"{source}: task={name!r} must be the name of a task")
    try:
        task = find_task(name)
    except ConfigValueError as exc:
        raise ConfigValueError(f"{source}: {exc}") from None
    parsed = parse_config(config, config_classes(task), source)
    check_metric("training.best_metric", parsed[TrainingConfig].best_metric, task, source)
    check_metric("early_stopping.metric", parsed[EarlyStoppingConfig].metric, task, source)
    check_model_fits(task, parsed, parsed[RunSettings].seed, source)
    return RunConfig(with_task_directions(parsed, task, source), task)


def with_task_directions(parsed: ParsedConfig, task: type[Task], source: str) -> ParsedConfig:
    """The typed sections with a null `training.best_mode` or `early_stopping.mode` set to the
    direction the task declares for the metric. The raw config keeps null, so that a metric
    changed later (`--set training.best_metric=...` at a resume) gets its own direction."""
    training, stopping = parsed[TrainingConfig], parsed[EarlyStoppingConfig]
    sections = {owner: parsed[owner] for owner in config_classes(task)}
    best_mode = metric_mode("training.best_mode", training.best_metric, training.best_mode, task, source)
    sections[TrainingConfig] = replace(training, best_mode=best_mode)
    if stopping.patience is not None or task.direction(stopping.metric) is not None:  # unused while disabled
        mode = metric_mode("early_stopping.mode", stopping.metric, stopping.mode, task, source)
        sections[EarlyStoppingConfig] = replace(stopping, mode=mode)
    return ParsedConfig(sections, parsed.raw)


def metric_mode(key: str, metric: str, mode: str | None, task: type[Task], source: str) -> str:
    """`mode` when given, else the direction `task` declares for `metric`; a ConfigValueError
    naming both fixes when it declares none."""
    direction = mode or task.direction(metric)
    if direction is None:
        name = metric.rpartition("/")[2]
        raise ConfigValueError(
            f"{source}: {key} is not set and task {task.name!r} does not declare whether a smaller or a larger "
            f"{metric} is better; set {key} to 'min' or 'max', or declare it in the task: "
            f"metrics = {{..., {name!r}: 'max'}}"
        )
    return direction


def check_metric(key: str, metric: str, task: type[Task], source: str) -> None:
    """A metric the config watches must be one of the validation metrics the task produces."""
    known = [f"val/{name}" for name in task.metrics]
    if metric not in known:
        raise ConfigValueError(
            f"{source}: {key}={metric!r} is not a metric of task {task.name!r}; "
            f"choose one of {', '.join(known)}"
        )
