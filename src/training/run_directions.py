"""Which way each compared metric is better, as the tasks of the runs that logged it declare.

03_compare.py reads it for its tables; it lives in training because only the task registry knows
a task's metric directions (loading a task imports torch, so this is imported on use).
"""

import sys
from collections.abc import Iterable

from utils.configs import load_config_file
from utils.errors import TemplateError
from utils.runs.run import Run


def run_task_names(experiment: str, runs: Iterable[str]) -> dict[str, str | None]:
    """The `task` each run's config.json names (None when it names none or cannot be read)."""
    names: dict[str, str | None] = {}
    for run in runs:
        try:
            task = load_config_file(Run.require(experiment, run).config_file).get("task")
        except TemplateError:
            task = None
        names[run] = task if isinstance(task, str) else None
    return names


def load_tasks(names: Iterable[str]) -> dict[str, type | None]:
    """Each named task class from the registry (this imports torch); None, with a note on
    stderr, for a task that cannot be loaded."""
    from training.task import find_task

    tasks: dict[str, type | None] = {}
    for name in sorted(set(names)):
        try:
            tasks[name] = find_task(name)
        except Exception as error:  # a deleted or broken task file must not stop the comparison
            print(f"note: task {name!r} cannot be loaded ({type(error).__name__}: {error}); its metrics have no "
                  "direction unless --mode gives one", file=sys.stderr)
            tasks[name] = None
    return tasks


def task_directions(
    experiment: str, frames: dict[str, "pd.DataFrame"], metrics: list[str]  # noqa: F821
) -> dict[str, str | None]:
    """Each metric's direction as the tasks of the runs that logged it declare it; None where one
    declares none or they disagree: such a metric gets no winner, never a guessed one."""
    task_of = run_task_names(experiment, frames)
    tasks = load_tasks(name for name in task_of.values() if name is not None)
    directions: dict[str, str | None] = {}
    for metric in metrics:
        declared = {
            tasks[task_of[run]].direction(metric) if task_of[run] and tasks[task_of[run]] else None
            for run, frame in frames.items() if metric in frame.columns
        }
        directions[metric] = declared.pop() if len(declared) == 1 else None
    return directions
