"""Writers by registry: the config's `logging` section starts them; a backend is one class + one entry."""

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pandas as pd
import pytest
from test_logging_tensorboard import read_events, scalar_steps
from test_logging_wandb import read_wandb_records, wandb_file, wandb_history

import utils.logging as ulog
from utils.config_fields import all_specs, option, parse_config
from utils.errors import ConfigKeyError, ConfigValueError
from utils.log.writers.base import Writer, WriterContext
from utils.log.writers.registry import register_writer, unregister_writer, writer_config_sections
from utils.logging import Logger

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_LOGGING = json.loads((REPO_ROOT / "config" / "default.json").read_text())["logging"]
WRITERS_OFF = {"csv": False, "tensorboard": False, "wandb": False}


@dataclass(frozen=True, kw_only=True)
class MemoryConfig:
    SECTION: ClassVar[str] = "logging"
    memory: bool = option(False, "keep every scalar in memory")
    memory_label: str = option("mem", "a label the writer keeps")


class MemoryWriter(Writer):
    """A whole backend: keeps every scalar by step; started as `MemoryWriter(context, options)`."""

    name = "memory"
    started: ClassVar[list["MemoryWriter"]] = []

    def __init__(self, context: WriterContext, options: MemoryConfig) -> None:
        self.log_dir, self.label = context.log_dir, options.memory_label
        self.rows: dict[int, dict[str, float | int]] = {}
        self.closed = False
        MemoryWriter.started.append(self)

    def write_scalars(self, step: int, metrics: dict[str, float | int]) -> None:
        self.rows.setdefault(step, {}).update(metrics)  # a step may arrive more than once

    def close(self) -> None:
        self.closed = True


@pytest.fixture(autouse=True)
def finish_loggers():
    yield
    for logger in list(ulog._active):
        logger.finish()


@pytest.fixture
def memory_writer():
    register_writer("memory", MemoryConfig, MemoryWriter)
    MemoryWriter.started.clear()
    yield MemoryWriter.started
    unregister_writer("memory")


def log_steps(logger: Logger, steps: int = 25) -> dict[int, dict[str, float]]:
    """Log two calls per step (the second adds a key); returns what each step holds."""
    import torch

    expected = {}
    for step in range(steps):
        logger.log({"train/loss": 1.0 / (step + 1), "train/acc": step / steps}, step=step)
        logger.log({"train/lr": torch.tensor(0.5 * step, dtype=torch.float64)}, step=step)
        expected[step] = {"train/loss": 1.0 / (step + 1), "train/acc": step / steps, "train/lr": 0.5 * step}
    return expected


@pytest.mark.parametrize("parsed", [False, True], ids=["section dict", "parsed config"])
def test_a_writer_registered_in_a_test_is_started_by_its_config_key_and_gets_every_scalar(memory_writer, parsed):
    section = {**WRITERS_OFF, "memory": True, "memory_label": "run-a"}
    if parsed:
        section = parse_config({"logging": section}, writer_config_sections())
    logger = Logger("exp", "memory")
    logger.start_writers(section)
    expected = log_steps(logger)
    logger.flush()
    (writer,) = memory_writer
    assert (writer.label, writer.log_dir, writer.closed) == ("run-a", logger.get_path("log"), False)
    logger.finish()
    assert writer.rows == expected and writer.closed


def test_a_writer_whose_enable_key_is_false_or_absent_is_not_started(memory_writer):
    Logger("exp", "off").start_writers({**WRITERS_OFF, "memory_label": "unused"})
    Logger("exp", "off2").start_writers({**WRITERS_OFF, "memory": False})
    assert memory_writer == []


def test_the_logging_section_is_validated_before_any_writer_starts(memory_writer):
    logger = Logger("exp", "invalid")
    with pytest.raises(ConfigKeyError, match=r"unknown key 'logging.memory_lable'.*'logging.memory_label'"):
        logger.start_writers({**WRITERS_OFF, "memory": True, "memory_lable": "x"})
    with pytest.raises(ConfigValueError, match=r"logging.memory='yes' has type str; expected bool"):
        logger.start_writers({**WRITERS_OFF, "memory": "yes"})
    assert memory_writer == []


def test_on_rank_one_start_writers_validates_but_starts_nothing(memory_writer, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    logger = Logger("exp", "ranked")
    with pytest.raises(ConfigKeyError):
        logger.start_writers({"csvv": True})
    logger.start_writers({**WRITERS_OFF, "memory": True})
    logger.log({"loss": 1.0}, step=0)
    assert memory_writer == []


def test_registering_rejects_a_taken_name_a_missing_enable_key_and_a_key_declared_twice(memory_writer):
    with pytest.raises(ValueError, match="already registered"):
        register_writer("memory", MemoryConfig, MemoryWriter)
    with pytest.raises(ValueError, match="enable key `other: bool`"):
        register_writer("other", MemoryConfig, MemoryWriter)

    @dataclass(frozen=True, kw_only=True)
    class Twice:
        SECTION: ClassVar[str] = "logging"
        twice: bool = option(False, "a writer that reuses a key")
        wandb_project: str = option("x", "already W&B's")

    with pytest.raises(ValueError, match="'logging.wandb_project' is declared twice"):
        register_writer("twice", Twice, MemoryWriter)
    assert Twice not in writer_config_sections()


def test_the_registered_config_classes_declare_exactly_the_logging_keys_of_default_json():
    specs = all_specs(writer_config_sections()).values()
    assert {spec.section for spec in specs} == {"logging"}
    assert {spec.name for spec in specs} == set(DEFAULT_LOGGING)
    declared = parse_config({}, writer_config_sections()).raw["logging"]
    # a project generated from the template names its own W&B project in default.json
    assert declared == {**DEFAULT_LOGGING, "wandb_project": declared["wandb_project"]}


def test_the_builtin_writers_start_from_the_config_section_with_their_options():
    logger = Logger("exp", "configured")
    logger.start_writers({**DEFAULT_LOGGING, "wandb_project": "registry-tests", "wandb_tags": ["a", "b"]})
    expected = log_steps(logger, steps=5)
    logger.finish()
    log_dir = logger.get_path("log")
    frame = pd.read_csv(log_dir / "metrics.csv")
    assert frame.set_index("step").to_dict("index") == expected
    assert scalar_steps(read_events(log_dir), "train/lr") == [(s, 0.5 * s) for s in range(5)]
    path = wandb_file(log_dir, logger.state_dict()["wandb_run_id"])
    (run,) = [r.run for r in read_wandb_records(path) if r.WhichOneof("record_type") == "run"]
    assert (run.project, list(run.tags)) == ("registry-tests", ["a", "b"])
    assert [row["train/lr"] for row in wandb_history(path)] == [0.5 * s for s in range(5)]


def test_the_registry_and_the_writer_config_classes_import_no_torch_tensorboard_or_wandb():
    code = (
        "import sys, utils.log.writers.registry as r; r.writer_config_sections(); "
        "print(sorted(m for m in ('torch', 'tensorboard', 'wandb') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={"PYTHONPATH": str(REPO_ROOT / "src"), "PATH": ""}, check=True)
    assert done.stdout.strip() == "[]"


def docstring_example(module) -> str:
    """The code block that opens a module's docstring: its 4-space indented lines, dedented."""
    lines = []
    for line in module.__doc__.splitlines()[1:]:
        if line.startswith("    "):
            lines.append(line[4:])
        elif lines:
            break
    return "\n".join(lines)


def test_the_module_docstring_example_runs_and_writes_every_csv_row_once():
    import numpy as np

    code = docstring_example(ulog)
    assert "start_writers" in code and "LOGGER.finish()" in code
    namespace = {
        "Logger": Logger, "LOGGER": ulog.LOGGER, "losses": [0.5, 0.25, 0.125],
        "config": {"logging": {**WRITERS_OFF, "csv": True}}, "images": np.zeros((8, 8, 3), dtype=np.uint8),
    }
    exec(compile(code, "utils/logging.py docstring", "exec"), namespace)
    frame = pd.read_csv(namespace["logger"].get_path("log") / "metrics.csv")
    assert frame["step"].tolist() == [0, 1, 2] and frame["train/loss"].tolist() == [0.5, 0.25, 0.125]


@pytest.mark.parametrize("rank", ["0", "1"])
def test_a_running_writer_is_refused_whether_started_by_config_or_by_name(monkeypatch, rank):
    monkeypatch.setenv("RANK", rank)
    logger = Logger("exp", f"twice{rank}")
    logger.start_writers({**WRITERS_OFF, "csv": True})
    with pytest.raises(RuntimeError, match=r"writer 'csv' is already running .* drop the second call"):
        logger.initialize_csv()
    logger.initialize_tensorboard()
    with pytest.raises(RuntimeError, match="writer 'tensorboard' is already running"):
        logger.start_writers({**WRITERS_OFF, "csv": False, "tensorboard": True})
    logger.log({"loss": 1.0}, step=0)
    logger.finish()
    if rank == "0":
        assert pd.read_csv(logger.get_path("log") / "metrics.csv")["step"].tolist() == [0]
