"""The writers a run can start, by name: each with its config class and its start function.

A backend is one Writer class plus one entry here. Its config class is a typed section (see
utils.config_fields) with `SECTION = "logging"` and a bool field named like the writer, the
enable key (`logging.csv`, `logging.wandb`, ...); its other fields are the writer's options.

    register_writer("mlflow", MlflowConfig, start_mlflow)  # start(context, options, **kwargs)

`Logger.start_writers(config["logging"])` starts every writer whose enable key is true, and the
engine validates the `logging` section with `writer_config_sections()`. Importing this module
imports no tensorboard, wandb or torch: writers import those when they start.
"""

import dataclasses
import typing
from collections.abc import Callable, Mapping
from typing import Any

from utils.config_fields import ParsedConfig, all_specs, parse_config
from utils.log.writers.base import Writer
from utils.log.writers.csv_writer import CsvConfig, start_csv
from utils.log.writers.tensorboard_writer import TensorBoardConfig, start_tensorboard
from utils.log.writers.wandb_writer import WandbConfig, start_wandb

SECTION = "logging"
StartWriter = Callable[..., Writer]  # start(context: WriterContext, options, **kwargs) -> Writer


@dataclasses.dataclass(frozen=True)
class WriterEntry:
    """One registered backend: its name (= its enable key), config class and start function."""

    name: str
    config_class: type
    start: StartWriter

    def default_options(self, **values: Any) -> Any:
        """The config class with the writer enabled, `values` set and other keys at their defaults."""
        return self.config_class(**{self.name: True, **values})


_WRITERS: dict[str, WriterEntry] = {}  # in registration order: the order writers start in


def register_writer(name: str, config_class: type, start: StartWriter) -> None:
    """Make a backend startable by name and by its enable key `logging.<name>` in a config.

    `config_class` is a dataclass with `SECTION = "logging"` and a bool field `name`; `start`
    is called as `start(context, options, **kwargs)` and returns the Writer.
    """
    if type(name) is not str or not name.isidentifier():
        raise ValueError(f"writer name {name!r} must be an identifier (it is also a config key)")
    if name in _WRITERS:
        raise ValueError(f"a writer named {name!r} is already registered; unregister_writer({name!r}) first")
    _check_config_class(name, config_class)
    if not callable(start):
        raise TypeError(f"start of writer {name!r} must be callable as start(context, options, **kwargs)")
    all_specs([*writer_config_sections(), config_class])  # a key declared twice raises ValueError
    _WRITERS[name] = WriterEntry(name, config_class, start)


def unregister_writer(name: str) -> None:
    """Forget a registered writer (a test's or a plugin's); Loggers already running keep theirs."""
    writer_entry(name)
    del _WRITERS[name]


def writer_entry(name: str) -> WriterEntry:
    """The registered writer `name`; KeyError naming the registered ones otherwise."""
    if name not in _WRITERS:
        raise KeyError(f"no writer named {name!r} is registered; registered: {', '.join(_WRITERS)}")
    return _WRITERS[name]


def writer_config_sections() -> list[type]:
    """The config classes of every registered writer: together they declare `logging.*`."""
    return [entry.config_class for entry in _WRITERS.values()]


def enabled_writers(section: Mapping[str, Any] | ParsedConfig) -> list[tuple[WriterEntry, Any]]:
    """The writers whose enable key is true, with their options, in registration order.

    `section` is the config's `logging` section as a dict (validated here: an unknown key or a
    wrong type raises ConfigKeyError / ConfigValueError) or a config already parsed with
    `writer_config_sections()` among its classes.
    """
    entries = list(_WRITERS.values())
    if not isinstance(section, ParsedConfig):
        if not isinstance(section, Mapping):
            raise TypeError(f"expected the config's logging section (a dict), got {type(section).__name__}")
        classes = [entry.config_class for entry in entries]
        section = parse_config({SECTION: dict(section)}, classes, source="logging section")
    chosen = []
    for entry in entries:
        if entry.config_class not in section:
            raise ValueError(
                f"the parsed config has no {entry.config_class.__name__} (writer {entry.name!r}): "
                "parse it with writer_config_sections() among its classes"
            )
        options = section[entry.config_class]
        if getattr(options, entry.name):
            chosen.append((entry, options))
    return chosen


def _check_config_class(name: str, config_class: type) -> None:
    if not dataclasses.is_dataclass(config_class) or getattr(config_class, "SECTION", None) != SECTION:
        raise ValueError(
            f"config class of writer {name!r} must be a dataclass with SECTION = {SECTION!r} "
            "(see utils.config_fields)"
        )
    hints = typing.get_type_hints(config_class)
    if hints.get(name) is not bool:
        raise ValueError(
            f"config class {config_class.__name__} must declare the enable key `{name}: bool` "
            f"(logging.{name} turns writer {name!r} on)"
        )


register_writer("csv", CsvConfig, start_csv)
register_writer("tensorboard", TensorBoardConfig, start_tensorboard)
register_writer("wandb", WandbConfig, start_wandb)
