"""The config a new run is created with: the resolved template (or, for a fork, another run's
config), then a `meta` block that records where the run came from (when, from which commit, by
which command, template and overrides; a fork's `parent`).

The caller that knows the schema (`01_initialize.py`, a sweep trial through
`training.run_config`) checks the config between `resolve_template` and `management.create_run`;
nothing here validates, so this module needs no torch and no task.
"""

import shlex
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from utils.configs import apply_overrides, load_config_file, load_config_template, template_path
from utils.errors import RunExistsError
from utils.git_info import git_summary
from utils.management import create_run
from utils.runs.reference import require_run_reference
from utils.runs.run import Run

DEFAULT_TEMPLATE = "default"


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


def with_meta(
    config: dict[str, Any], experiment: str, run: str, template: str | None, overrides: Sequence[str],
    command: str, extra_meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The config as `create_run` writes it: `config` (checked, complete) and its `meta` block last."""
    return {**config, "meta": build_run_meta(experiment, run, template, overrides, command, extra_meta)}


def resolve_parent(reference: str, overrides: Sequence[str] = ()) -> tuple[dict[str, Any], Run]:
    """A fork's config: the run `reference` (`EXP/RUN`) names, its config.json without its
    `meta` block, with `overrides` applied; and that run (the new run's `meta.parent`). Only the
    config is taken: none of the parent's outputs. RunNotFoundError (exit 2) for a missing run."""
    parent = require_run_reference(reference, "--from")
    config = {key: value for key, value in load_config_file(parent.config_file).items() if key != "meta"}
    return apply_overrides(config, list(overrides)), parent


def config_source(template: str | None, overrides: Sequence[str]) -> str:
    """Where a resolved config came from, for error messages: the template file (+ overrides)."""
    if template is None:
        return "--set (no template)"
    path = str(template_path(template))
    return f"{path} with overrides" if overrides else path


def ensure_run(run: Run, template: str | None = None) -> None:
    """Create the run like `01_initialize.py` would when it has no config.json (the Logger's
    path for a script that logs without a run made first), and any sub-folder it lacks.

    Its config is the `meta` block plus the template named (a name in `config/` or a path), or
    nothing else: a run created here never gets some task's config copied in silently. An
    existing config.json is never touched.
    """
    if not run.config_file.is_file():
        if template is not None and (type(template) is not str or not template):
            raise TypeError(f"config_template must be a template name or a path, got {template!r}")
        config = load_config_template(template) if template is not None else {}
        config = with_meta(config, run.experiment, run.run, template, (), shlex.join(sys.argv),
                           {"created_by": "utils.logging.Logger"})
        try:
            create_run(run.experiment, run.run, config)
        except RunExistsError:
            pass  # created meanwhile by another process: use it as it is
    for folder in run.subfolders:
        folder.mkdir(parents=True, exist_ok=True)
