"""The sweep spec: a strict JSON file read once into a frozen `SweepSpec`, or a one-line error.

Only the shape of the spec is checked here (keys, types, spaces, the `slurm` resources), with
the keys declared as `utils.config_fields` classes like a run config's sections. Whether
`parameters` and `set` name real config keys and `metric` a metric the task logs needs the config
template and the task, and is checked by `sweeps.trial_runs.check_sweep` before anything is created.
"""

import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar, Literal

from utils.config_fields import REQUIRED, ParsedConfig, option, parse_config, suggest
from utils.configs import load_config_file
from utils.errors import ConfigKeyError, ConfigNotFoundError, ConfigValueError, InvalidNameError, SweepSpecError
from utils.names import validate_name

_FINITE = (math.isfinite, "a finite number")


@dataclass(frozen=True, kw_only=True)
class SpecKeys:
    """The spec's top-level keys but the two free objects (`FREE_OBJECTS`)."""

    SECTION: ClassVar[str] = ""
    name: str = option(REQUIRED, "the sweep's name; its trials are runs <name>-000, <name>-001, ...")
    method: Literal["grid", "random", "optuna"] = option(REQUIRED, "how trials are drawn")
    metric: str = option(REQUIRED, "the validation metric a trial is ranked by (val/NAME)")
    mode: Literal["min", "max"] | None = option(None, "whether a larger or a smaller metric is better; "
                                                 "null: the direction the task declares")
    config: str = option("default", "the template each trial starts from (config/NAME.json or a path)")
    trials: int | None = option(None, "how many trials random and optuna run (a grid runs every combination)",
                                ge=1)
    seed: int = option(0, "seeds the draws of random and optuna", ge=0)


# Objects of dotted config keys, checked against the task's schema by sweeps.trial_runs.
FREE_OBJECTS = {"parameters": "dotted config keys -> values to sweep", "set": "dotted config keys -> fixed values"}


@dataclass(frozen=True)
class Choices:
    """A parameter drawn from a list of values (every one of them, in a grid)."""

    values: tuple[Any, ...]


@dataclass(frozen=True, kw_only=True)
class ChoiceKeys:
    """`{"choices": [...]}`, a parameter's space read into `Choices`."""

    SECTION: ClassVar[str] = ""
    choices: list = option(REQUIRED, "the values to draw from")


@dataclass(frozen=True)
class Range:
    """A parameter drawn from [low, high]; integers when both bounds are, log-uniform with `log`."""

    SECTION: ClassVar[str] = ""
    low: int | float = option(REQUIRED, "the lowest value", check=_FINITE)
    high: int | float = option(REQUIRED, "the highest value", check=_FINITE)
    log: bool = option(False, "draw log-uniformly")

    def __post_init__(self) -> None:
        if not self.low < self.high:
            raise ValueError(f"low={self.low!r} must be below high={self.high!r}")
        if self.log and self.low <= 0:
            raise ValueError(f"a log range needs low > 0, got low={self.low!r}")

    @property
    def integer(self) -> bool:
        return isinstance(self.low, int) and isinstance(self.high, int)


Space = Choices | Range


@dataclass(frozen=True)
class SlurmResources:
    """The spec's `slurm` block: what each trial's job asks for (a key left out: the default here,
    or the cluster's for partition and CPUs). Only `--executor slurm` uses it, but it is checked
    with the rest of the spec, so that a typo in it fails a local sweep too."""

    SECTION: ClassVar[str] = "slurm"
    partition: str | None = option(None, "the partition to submit to (null: the cluster's default)",
                                   check=(bool, "a partition name"))
    time_min: int = option(60, "each trial's time limit in minutes", ge=1)
    gpus_per_trial: int = option(0, "GPUs per trial", ge=0)
    cpus_per_trial: int | None = option(None, "CPUs per trial (null: the cluster's default)", ge=1)


@dataclass(frozen=True, kw_only=True)
class SweepSpec:
    """A validated spec; `raw` is the JSON as loaded (with the `mode` used when it was left out),
    kept in the sweep's state file."""

    name: str
    method: str
    parameters: dict[str, Space]
    metric: str
    mode: str
    config: str = "default"
    set: dict[str, Any] = field(default_factory=dict)
    trials: int | None = None
    seed: int = 0
    slurm: SlurmResources = field(default_factory=SlurmResources)
    source: str = "spec"
    raw: dict[str, Any] = field(default_factory=dict)

    def fingerprint(self) -> dict[str, Any]:
        """Every field that changes what the trials compute (all but `slurm`), defaults filled in.

        A rerun compares it with the one in the state file: a difference is an error naming
        the fields, never a silent mix of two sweeps.
        """
        return {
            "name": self.name, "config": self.config, "method": self.method,
            "parameters": self.raw["parameters"], "metric": self.metric, "mode": self.mode,
            "set": self.set, "trials": self.trials, "seed": self.seed,
        }


def load_spec(path: Path) -> SweepSpec:
    """Read and check a spec file; SweepSpecError (exit 2) names the key and the fix."""
    try:
        raw = load_config_file(path)
    except ConfigNotFoundError:
        raise SweepSpecError(f"sweep spec {path} does not exist; pass -s path/to/spec.json") from None
    return parse_spec(raw, str(path))


def parse_spec(raw: dict[str, Any], source: str) -> SweepSpec:
    """The spec in `raw` (a parsed JSON object) checked key by key."""
    declared = parse_declared({key: value for key, value in raw.items() if key not in FREE_OBJECTS},
                              [SpecKeys, SlurmResources], source, known=FREE_OBJECTS)
    keys = declared[SpecKeys]
    if "parameters" not in raw:
        raise SweepSpecError(f"{source}: required key 'parameters' is missing ({FREE_OBJECTS['parameters']})")
    fixed = raw.get("set", {})
    if not isinstance(fixed, dict):
        raise SweepSpecError(f"{source}: 'set' must be a JSON object {{...}} of {FREE_OBJECTS['set']}, got {fixed!r}")
    parameters = _parameters(raw["parameters"], keys.method, source)
    both = sorted(set(fixed) & set(parameters))
    if both:
        raise SweepSpecError(f"{source}: {', '.join(map(repr, both))} is both swept in 'parameters' and fixed "
                             "in 'set'; keep it in one of them")
    spec = SweepSpec(
        name=_name(keys.name, source),
        method=keys.method,
        parameters=parameters,
        metric=keys.metric,
        mode=keys.mode or "",
        config=keys.config,
        set=fixed,
        trials=_trials(keys.trials, keys.method, source),
        seed=keys.seed,
        slurm=declared[SlurmResources],
        source=source,
        raw=raw,
    )
    if spec.mode:
        return spec
    from sweeps.trial_runs import task_mode  # imports torch and the task, for a spec without `mode`

    mode = task_mode(spec)
    return replace(spec, mode=mode, raw={**raw, "mode": mode})


def parse_declared(data: Any, owners: list[type], where: str, known: Iterable[str] = ()) -> ParsedConfig:
    """`data` read with the declared classes (`utils.config_fields`); its errors, and a key that is
    neither declared nor in `known`, become a SweepSpecError naming the key and the closest one."""
    if not isinstance(data, dict):
        raise SweepSpecError(f"{where}: expected a JSON object {{...}}, got {data!r}")
    names = {*known, *(name for owner in owners for name in _top_names(owner))}
    for key in data:
        if key not in names:
            raise SweepSpecError(f"{where}: unknown key {key!r}{suggest(key, names)}")
    try:
        return parse_config(data, owners, where)
    except (ConfigKeyError, ConfigValueError) as exc:
        raise SweepSpecError(str(exc)) from None


def _top_names(owner: type) -> list[str]:
    """The top-level keys a class declares: its section, or its keys when it has none."""
    section = getattr(owner, "SECTION", "")
    return [section] if section else list(owner.__dataclass_fields__)


def _name(name: Any, source: str) -> str:
    """A name that makes valid run names `<name>-NNN` (trials are runs of the experiment)."""
    try:
        validate_name(name, "sweep name")
        validate_name(f"{name}-000", "sweep name")
    except InvalidNameError as exc:
        raise SweepSpecError(f"{source}: {exc} (trial runs are named <name>-000, <name>-001, ...)") from None
    return name


# Each trial is a run folder, and every planned trial's config is checked before the first one
# starts (about 2.5 ms each: 25 s for the largest sweep); a larger plan is a typo or many sweeps.
MAX_TRIALS = 10_000
TOO_MANY = f"more than a sweep runs (at most {MAX_TRIALS}: each trial is a run, and each is checked up front)"


def _trials(trials: Any, method: str, source: str) -> int | None:
    if method == "grid":
        if trials is not None:
            raise SweepSpecError(f"{source}: 'trials' is for random and optuna; a grid runs every combination")
        return None
    if trials is None:
        raise SweepSpecError(f"{source}: method {method!r} needs 'trials': how many trials to run")
    if trials > MAX_TRIALS:
        raise SweepSpecError(f"{source}: trials={trials} is {TOO_MANY}; split the search into several sweeps")
    return trials


def _parameters(parameters: Any, method: str, source: str) -> dict[str, Space]:
    if not isinstance(parameters, dict):
        raise SweepSpecError(f"{source}: 'parameters' must be an object of dotted config keys, got {parameters!r}")
    if not parameters:
        raise SweepSpecError(f"{source}: 'parameters' is empty: an empty grid has no trial; name at least one key")
    spaces = {key: _space(key, value, method, source) for key, value in parameters.items()}
    combinations = math.prod(len(space.values) for space in spaces.values()) if method == "grid" else 0
    if combinations > MAX_TRIALS:
        raise SweepSpecError(f"{source}: the grid's {combinations} combinations are {TOO_MANY}; sweep fewer "
                             "values, or draw 'trials' of them with method random")
    return spaces


def _space(key: str, value: Any, method: str, source: str) -> Space:
    """A list (the values), {"choices": [...]} or {"low", "high", "log"}; a grid takes lists only."""
    where = f"{source}: parameter {key!r}"
    if isinstance(value, list):
        space: Space = Choices(tuple(value))
    elif isinstance(value, dict) and method == "grid":
        raise SweepSpecError(f"{where}: a grid takes a list of values; ranges and choices are for random and optuna")
    elif isinstance(value, dict) and "choices" in value:
        space = Choices(tuple(parse_declared(value, [ChoiceKeys], where)[ChoiceKeys].choices))
    elif isinstance(value, dict):
        space = parse_declared(value, [Range], where)[Range]
    else:
        raise SweepSpecError(f"{where}: expected a list of values, {{\"choices\": [...]}} or "
                             f"{{\"low\": a, \"high\": b, \"log\": false}}, got {value!r}")
    if isinstance(space, Choices) and not space.values:
        raise SweepSpecError(f"{where}: the list of values is empty: an empty grid has no trial")
    return space
