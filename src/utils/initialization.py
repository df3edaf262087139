"""Run initialization shared by `01_initialize.py` and code that creates runs itself.

A run's `config.json` is the resolved template plus a `meta` block that records where the run
came from: when, from which commit, by which command, from which template and overrides.
"""

from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from utils.configs import apply_overrides, load_config_template, template_path
from utils.git_info import git_summary
from utils.management import RunInfo, create_run, require_new_run

DEFAULT_TEMPLATE = "default"
# validate(config, source) raises a TemplateError naming the key, or returns the config complete
# (defaults filled in); 01_initialize passes training.run_config's check (utils imports no training).
Validator = Callable[[dict[str, Any], str], dict[str, Any]]


def build_run_meta(
    experiment: str, run: str, template: str | None, overrides: Sequence[str], command: str,
    extra_meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The `meta` block of a new run's config (`template` None: no template, recorded as null).

    `extra_meta` adds keys of the caller's (a sweep records its name, trial number and params).
    """
    return {
        "experiment": experiment,
        "run": run,
        "created": datetime.now().astimezone().isoformat(timespec="seconds"),
        "git": git_summary(),
        "command": command,
        "config_template": None if template is None else {"name": template, "path": str(template_path(template))},
        "overrides": list(overrides),
        **(extra_meta or {}),
    }


def resolve_template(template: str | None, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Template + overrides; with no template (None) the overrides alone, so that every key the
    schema declares takes its default (`--set task=NAME` is then the whole config)."""
    return apply_overrides({} if template is None else load_config_template(template), list(overrides))


def resolve_run_config(
    experiment: str,
    run: str,
    template: str | None = DEFAULT_TEMPLATE,
    overrides: Sequence[str] = (),
    command: str = "",
    extra_meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Template + overrides + `meta`: the config a new run is created with."""
    config = resolve_template(template, overrides)
    config["meta"] = build_run_meta(experiment, run, template, overrides, command, extra_meta)
    return config


def config_source(template: str | None, overrides: Sequence[str]) -> str:
    """Where a resolved config came from, for error messages: the template file (+ overrides)."""
    if template is None:
        return "--set (no template)"
    path = str(template_path(template))
    return f"{path} with overrides" if overrides else path


def initialize_run(
    experiment: str,
    run: str,
    template: str | None = DEFAULT_TEMPLATE,
    overrides: Sequence[str] = (),
    command: str = "",
    validate: Validator | None = None,
    extra_meta: dict[str, Any] | None = None,
) -> Path:
    """Create the run folder with its resolved `config.json`; never touches an existing run.

    Names, the existing run, the template, the overrides and (with `validate`) the resolved
    config are all checked before anything is created, so a mistake leaves the disk as it was;
    `validate` returns the config to write (complete, with every default filled in);
    `extra_meta` goes into the `meta` block.
    """
    require_new_run(experiment, run)
    config = resolve_run_config(experiment, run, template, overrides, command, extra_meta)
    if validate is not None:
        config = validate(config, config_source(template, overrides))
    return create_run(experiment, run, config)


def format_run_table(rows: Sequence[RunInfo]) -> str:
    """A plain-text table of experiments, runs and creation times (a run of None shows '-')."""
    table = [("EXPERIMENT", "RUN", "CREATED")]
    table += [(row.experiment, row.run or "-", row.created) for row in rows]
    widths = [max(len(line[col]) for line in table) for col in range(2)]
    return "\n".join(
        f"{exp:<{widths[0]}}  {run:<{widths[1]}}  {created}" for exp, run, created in table
    )
