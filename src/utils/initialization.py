"""Run initialization shared by `01_initialize.py` and code that creates runs itself.

A run's `config.json` is the resolved template plus a `meta` block that records where the run
came from: when, from which commit, by which command, from which template and overrides.
"""

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from utils.configs import apply_overrides, load_config_template, template_path
from utils.git_info import git_summary
from utils.management import RunInfo, create_run, require_new_run

DEFAULT_TEMPLATE = "default"


def build_run_meta(
    experiment: str, run: str, template: str, overrides: Sequence[str], command: str
) -> dict[str, Any]:
    """The `meta` block of a new run's config."""
    return {
        "experiment": experiment,
        "run": run,
        "created": datetime.now().astimezone().isoformat(timespec="seconds"),
        "git": git_summary(),
        "command": command,
        "config_template": {"name": template, "path": str(template_path(template))},
        "overrides": list(overrides),
    }


def resolve_run_config(
    experiment: str,
    run: str,
    template: str = DEFAULT_TEMPLATE,
    overrides: Sequence[str] = (),
    allow_new: bool = False,
    command: str = "",
) -> dict[str, Any]:
    """Template + overrides + `meta`: the config a new run is created with."""
    config = apply_overrides(load_config_template(template), list(overrides), allow_new)
    config["meta"] = build_run_meta(experiment, run, template, overrides, command)
    return config


def initialize_run(
    experiment: str,
    run: str,
    template: str = DEFAULT_TEMPLATE,
    overrides: Sequence[str] = (),
    allow_new: bool = False,
    command: str = "",
) -> Path:
    """Create the run folder with its resolved `config.json`; never touches an existing run.

    Names, the existing run, the template and the overrides are all checked before anything
    is created, so a mistake leaves the disk as it was.
    """
    require_new_run(experiment, run)
    config = resolve_run_config(experiment, run, template, overrides, allow_new, command)
    return create_run(experiment, run, config)


def format_run_table(rows: Sequence[RunInfo]) -> str:
    """A plain-text table of experiments, runs and creation times (a run of None shows '-')."""
    table = [("EXPERIMENT", "RUN", "CREATED")]
    table += [(row.experiment, row.run or "-", row.created) for row in rows]
    widths = [max(len(line[col]) for line in table) for col in range(2)]
    return "\n".join(
        f"{exp:<{widths[0]}}  {run:<{widths[1]}}  {created}" for exp, run, created in table
    )
