"""The sweep spec: a strict JSON file read once into a frozen `SweepSpec`, or a one-line error.

Only the shape of the spec is checked here (keys, types, spaces, the `slurm` resources). Whether
`parameters` and `set` name real config keys and `metric` a metric the task logs needs the config
template and the task, and is checked by `sweeps.trial_runs.check_sweep` before anything is created.
"""

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from utils.configs import closest_key, load_config_file
from utils.errors import ConfigNotFoundError, InvalidNameError, SweepSpecError
from utils.names import validate_name

METHODS = ("grid", "random", "optuna")
MODES = ("max", "min")
REQUIRED_KEYS = ("name", "method", "parameters", "metric")
OPTIONAL_KEYS = ("mode", "config", "set", "trials", "seed", "slurm")
RESOURCE_KEYS = ("partition", "time_min", "gpus_per_trial", "cpus_per_trial")


@dataclass(frozen=True)
class Choices:
    """A parameter drawn from a list of values (every one of them, in a grid)."""

    values: tuple[Any, ...]


@dataclass(frozen=True)
class Range:
    """A parameter drawn from [low, high]; integers when both bounds are, log-uniform with `log`."""

    low: int | float
    high: int | float
    log: bool = False

    @property
    def integer(self) -> bool:
        return isinstance(self.low, int) and isinstance(self.high, int)


Space = Choices | Range


@dataclass(frozen=True)
class SlurmResources:
    """The spec's `slurm` block: what each trial's job asks for (a key left out: the default here,
    or the cluster's for partition and CPUs). Only `--executor slurm` uses it, but it is checked
    with the rest of the spec, so that a typo in it fails a local sweep too."""

    partition: str | None = None
    time_min: int = 60
    gpus_per_trial: int = 0
    cpus_per_trial: int | None = None


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
    check_keys(raw, REQUIRED_KEYS, OPTIONAL_KEYS, source, "the spec")
    method = _choice(raw, "method", METHODS, source)
    fixed = _typed(raw, "set", dict, source, {})
    parameters = _parameters(raw["parameters"], method, source)
    both = sorted(set(fixed) & set(parameters))
    if both:
        raise SweepSpecError(f"{source}: {', '.join(map(repr, both))} is both swept in 'parameters' and fixed "
                             "in 'set'; keep it in one of them")
    spec = SweepSpec(
        name=_name(raw["name"], source),
        method=method,
        parameters=parameters,
        metric=_typed(raw, "metric", str, source),
        mode=_choice(raw, "mode", MODES, source) if raw.get("mode") is not None else "",
        config=_typed(raw, "config", str, source, "default"),
        set=fixed,
        trials=_trials(raw.get("trials"), method, source),
        seed=_seed(raw.get("seed", 0), source),
        slurm=parse_resources(_typed(raw, "slurm", dict, source, {}), source),
        source=source,
        raw=raw,
    )
    if spec.mode:
        return spec
    from sweeps.trial_runs import task_mode  # imports torch and the task, for a spec without `mode`

    mode = task_mode(spec)
    return replace(spec, mode=mode, raw={**raw, "mode": mode})


def check_keys(data: dict[str, Any], required: tuple[str, ...], optional: tuple[str, ...], source: str,
               where: str) -> None:
    """SweepSpecError for an unknown key of `data` (naming the closest known one) or a missing
    required one; `where` says which part of the spec `data` is ("the spec", "'slurm'", ...)."""
    known = (*required, *optional)
    for key in data:
        if key not in known:
            guess = closest_key(key, known)
            hint = f"did you mean {guess!r}? " if guess else ""
            raise SweepSpecError(f"{source}: unknown key {key!r} in {where}; {hint}known keys: {', '.join(known)}")
    missing = [key for key in required if key not in data]
    if missing:
        raise SweepSpecError(f"{source}: {where} needs {', '.join(map(repr, missing))}")


def _typed(raw: dict[str, Any], key: str, kind: type, source: str, default: Any = None) -> Any:
    value = raw.get(key, default)
    if not isinstance(value, kind):
        expected = {str: "a string", dict: "a JSON object {...}"}[kind]
        raise SweepSpecError(f"{source}: {key!r} must be {expected}, got {value!r}")
    return value


def _choice(raw: dict[str, Any], key: str, choices: tuple[str, ...], source: str) -> str:
    value = raw[key]
    if value not in choices:
        raise SweepSpecError(f"{source}: {key}={value!r} is not one of {', '.join(choices)}")
    return value


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
    if not _is_int(trials) or trials < 1:
        raise SweepSpecError(f"{source}: trials={trials!r} must be a positive integer")
    if trials > MAX_TRIALS:
        raise SweepSpecError(f"{source}: trials={trials} is {TOO_MANY}; split the search into several sweeps")
    return trials


def _seed(seed: Any, source: str) -> int:
    if not _is_int(seed) or seed < 0:
        raise SweepSpecError(f"{source}: seed={seed!r} must be an integer >= 0")
    return seed


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
        check_keys(value, ("choices",), (), where, "choices")
        if not isinstance(value["choices"], list):
            raise SweepSpecError(f"{where}: 'choices' must be a list of values")
        space = Choices(tuple(value["choices"]))
    elif isinstance(value, dict):
        space = _range(value, where)
    else:
        raise SweepSpecError(f"{where}: expected a list of values, {{\"choices\": [...]}} or "
                             f"{{\"low\": a, \"high\": b, \"log\": false}}, got {value!r}")
    if isinstance(space, Choices) and not space.values:
        raise SweepSpecError(f"{where}: the list of values is empty: an empty grid has no trial")
    return space


def _range(value: dict[str, Any], where: str) -> Range:
    check_keys(value, ("low", "high"), ("log",), where, "a range")
    low, high, log = value["low"], value["high"], value.get("log", False)
    if not all(_is_number(bound) for bound in (low, high)):
        raise SweepSpecError(f"{where}: low and high must be numbers, got {low!r} and {high!r}")
    if not isinstance(log, bool):
        raise SweepSpecError(f"{where}: log must be true or false, got {log!r}")
    if not low < high:
        raise SweepSpecError(f"{where}: low={low!r} must be below high={high!r}")
    if log and low <= 0:
        raise SweepSpecError(f"{where}: a log range needs low > 0, got low={low!r}")
    return Range(low, high, log)


def parse_resources(block: dict[str, Any], source: str) -> SlurmResources:
    """The `slurm` block checked key by key; SweepSpecError (exit 2) names the key and the fix."""
    check_keys(block, (), RESOURCE_KEYS, source, "'slurm'")
    if "partition" in block and not (isinstance(block["partition"], str) and block["partition"]):
        raise SweepSpecError(f"{source}: slurm.partition must be a partition name, got {block['partition']!r}")
    for key, least in {"time_min": 1, "gpus_per_trial": 0, "cpus_per_trial": 1}.items():
        value = block.get(key, least)
        if not _is_int(value) or value < least:
            raise SweepSpecError(f"{source}: slurm.{key} must be an integer >= {least}, got {value!r}")
    return SlurmResources(**block)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)
