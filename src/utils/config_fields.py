"""Typed config sections: each component declares its keys once, as a dataclass, next to its code.

    @dataclass(frozen=True, kw_only=True)
    class LoaderConfig:
        SECTION: ClassVar[str] = "data"
        batch_size: int = option(64, "samples per batch and rank", gt=0)

A field's type comes from its annotation (int, float, bool, str, X | None, list[T],
Literal[...]), its default and one-line doc from `option`, its range from `gt`/`ge`/`lt`/`le`.
A check across keys of one class goes in its `__post_init__`, raising ValueError with a message
that names the keys, their values and the fix; `parse_config` reports it with the source.
`parse_config` reads a config dict with a set of such classes: several classes may share a
section (the engine's `data.batch_size` beside a task's `data.val_fraction`), an unknown key is
a ConfigKeyError naming the closest known key (or, for a key a class lists in `RENAMED`, its
replacement), and a wrong type or range a ConfigValueError naming the key, the value and what
was expected. Code then reads typed fields, not strings.
"""

import dataclasses
import difflib
import types
import typing
from collections.abc import Callable, Iterable
from typing import Any, Literal

from utils.configs import closest_key
from utils.errors import ConfigKeyError, ConfigValueError

ROOT = ""  # the SECTION of top-level keys (seed, task, ...)
REQUIRED: Any = dataclasses.MISSING  # `option(REQUIRED, ...)`: a key every config must set
FREE_SECTIONS = ("meta",)  # written by utils.runs.new_run, never validated


def option(
    default: Any,
    doc: str,
    *,
    gt: float | None = None,
    ge: float | None = None,
    lt: float | None = None,
    le: float | None = None,
    check: tuple[Callable[[Any], bool], str] | None = None,
) -> Any:
    """A dataclass field with its default, its doc and its range (or a custom check)."""
    if default is REQUIRED:
        return dataclasses.field(metadata={"doc": doc, "bounds": {}, "check": check})
    factory = (lambda: list(default)) if isinstance(default, list) else None
    bounds = {"gt": gt, "ge": ge, "lt": lt, "le": le}
    metadata = {"doc": doc, "bounds": {k: v for k, v in bounds.items() if v is not None}, "check": check}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass(frozen=True)
class FieldSpec:
    """One key of a config: where it lives, its type, default, range and doc."""

    section: str
    name: str
    annotation: Any
    default: Any
    doc: str
    bounds: dict[str, float]
    check: tuple[Callable[[Any], bool], str] | None

    @property
    def key(self) -> str:
        return f"{self.section}.{self.name}" if self.section else self.name

    def describe_type(self) -> str:
        return type_name(self.annotation)

    def describe_range(self) -> str:
        symbols = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}
        parts = [f"{symbols[k]} {v if isinstance(v, int) else format(v, 'g')}" for k, v in self.bounds.items()]
        if self.check is not None:
            parts.append(self.check[1])
        return ", ".join(parts)


def field_specs(owner: type) -> list[FieldSpec]:
    """The declared keys of one config class, in declaration order."""
    hints = typing.get_type_hints(owner)
    section = getattr(owner, "SECTION", ROOT)
    specs = []
    for item in dataclasses.fields(owner):
        if item.default is not dataclasses.MISSING:
            default = item.default
        elif item.default_factory is not dataclasses.MISSING:
            default = item.default_factory()
        else:
            default = REQUIRED
        specs.append(FieldSpec(
            section, item.name, hints[item.name], default, item.metadata.get("doc", ""),
            item.metadata.get("bounds", {}), item.metadata.get("check"),
        ))
    return specs


def all_specs(owners: Iterable[type]) -> dict[str, FieldSpec]:
    """Every key of every class, by dotted key; two classes declaring one key is a bug."""
    specs: dict[str, FieldSpec] = {}
    for owner in owners:
        for spec in field_specs(owner):
            if spec.key in specs:
                raise ValueError(f"config key {spec.key!r} is declared twice (by {owner.__name__} too)")
            specs[spec.key] = spec
    return specs


def renamed_keys(owners: Iterable[type]) -> dict[str, str]:
    """Old dotted key -> its replacement, from each class's `RENAMED = {"old": "new"}` (names in
    its section), so that a config written for an older template is told what to write now."""
    renamed: dict[str, str] = {}
    for owner in owners:
        section = getattr(owner, "SECTION", ROOT)
        prefix = f"{section}." if section else ""
        renamed.update({prefix + old: prefix + new for old, new in getattr(owner, "RENAMED", {}).items()})
    return renamed


def type_name(annotation: Any) -> str:
    """`int`, `float`, `list of int`, `'adamw' or 'sgd'`, `float or null` ..."""
    origin = typing.get_origin(annotation)
    if annotation is type(None):
        return "null"
    if origin is Literal:
        return " or ".join(repr(v) for v in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(type_name(arg) for arg in typing.get_args(annotation))
    if origin is list:
        return f"list of {type_name(typing.get_args(annotation)[0])}"
    return annotation.__name__


def matches(value: Any, annotation: Any) -> bool:
    """Whether a JSON value fits the annotation (a bool is no number; an int is a float)."""
    origin = typing.get_origin(annotation)
    if annotation is type(None):
        return value is None
    if origin is Literal:
        return any(value == choice and type(value) is type(choice) for choice in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return any(matches(value, arg) for arg in typing.get_args(annotation))
    if origin is list:
        (item,) = typing.get_args(annotation)
        return isinstance(value, list) and all(matches(v, item) for v in value)
    if isinstance(value, bool):
        return annotation is bool
    if annotation is float:
        return isinstance(value, (int, float))
    return isinstance(value, annotation)


def check_value(spec: FieldSpec, value: Any, source: str) -> Any:
    """The value (an int where a float is declared becomes a float), or ConfigValueError."""
    if not matches(value, spec.annotation):
        raise ConfigValueError(
            f"{source}: {spec.key}={value!r} has type {json_type(value)}; expected {spec.describe_type()}"
        )
    if value is None:
        return None
    tests = {"gt": lambda v, b: v > b, "ge": lambda v, b: v >= b, "lt": lambda v, b: v < b, "le": lambda v, b: v <= b}
    numbers = value if isinstance(value, list) else [value]
    bad_bound = any(not tests[k](v, b) for k, b in spec.bounds.items() for v in numbers)
    bad_check = spec.check is not None and not spec.check[0](value)
    if bad_bound or bad_check:
        raise ConfigValueError(f"{source}: {spec.key}={value!r} is out of range; expected {spec.describe_range()}")
    if spec.annotation is float and isinstance(value, int):
        return float(value)
    return value


def json_type(value: Any) -> str:
    names = {bool: "bool", int: "int", float: "float", str: "str", list: "list", dict: "object", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def suggest(key: str, known: Iterable[str]) -> str:
    """`; did you mean 'training.epochs'?` for the closest known key, else ''."""
    known = list(known)
    sections = sorted({k.partition(".")[0] for k in known if "." in k})
    close = closest_key(key, known)
    if close is None:  # a misspelt section: compare the section names alone
        section, _, rest = key.partition(".")
        close_section = closest_key(section, sections)
        if close_section is not None and rest:
            matches = difflib.get_close_matches(f"{close_section}.{rest}", known, n=1, cutoff=0.5)
            close = matches[0] if matches else None
        close = close or close_section
    if close:
        return f"; did you mean {close!r}?"
    return f"; the known sections are {', '.join(sections)}" if sections else ""


def flatten(config: dict[str, Any]) -> dict[str, Any]:
    """`{"a": {"b": 1}, "c": 2}` -> `{"a.b": 1, "c": 2}`, one level of sections deep."""
    flat: dict[str, Any] = {}
    for name, value in config.items():
        if name in FREE_SECTIONS:
            continue
        if isinstance(value, dict):
            if not value:
                flat[f"{name}."] = value  # an empty section still names itself
            flat.update({f"{name}.{key}": item for key, item in value.items()})
        else:
            flat[name] = value
    return flat


class ParsedConfig:
    """The validated config: one typed instance per config class, `config[LoaderConfig]`."""

    def __init__(self, sections: dict[type, Any], raw: dict[str, Any]) -> None:
        self._sections = sections
        self.raw = raw  # the complete config with defaults filled in, as written to config.json

    def __getitem__(self, owner: type[Any]) -> Any:
        return self._sections[owner]

    def __contains__(self, owner: type) -> bool:
        return owner in self._sections


def parse_config(config: dict[str, Any], owners: Iterable[type], source: str = "config") -> ParsedConfig:
    """Validate `config` against the classes and build them; missing keys take their default."""
    owners = list(owners)
    specs = all_specs(owners)
    sections = {spec.section for spec in specs.values() if spec.section}
    for name, value in config.items():
        if name in sections and not isinstance(value, dict):
            raise ConfigValueError(f"{source}: {name}={value!r} must be a section (an object of keys)")
        if isinstance(value, dict) and name not in sections and name not in FREE_SECTIONS:
            # an unknown section is named once, not key by key
            raise ConfigKeyError(f"{source}: unknown key {name!r}{suggest(name, set(specs) | sections)}")
    given = flatten(config)
    renamed = renamed_keys(owners)
    for key in given:
        if key in renamed:
            new = specs[renamed[key]]
            raise ConfigKeyError(
                f"{source}: {key} was replaced by {new.key} ({new.describe_type()}); remove {key} "
                f"and set {new.key} instead (the README's config table says what it means)"
            )
        if key.endswith(".") and key[:-1] in sections:
            continue  # a declared section given empty: every key takes its default
        if key not in specs:
            shown = key.rstrip(".")
            raise ConfigKeyError(f"{source}: unknown key {shown!r}{suggest(shown, specs)}")
    missing = [key for key, spec in specs.items() if spec.default is REQUIRED and key not in given]
    if missing:
        raise ConfigKeyError(f"{source}: required key {missing[0]!r} is missing ({specs[missing[0]].doc})")
    values = {key: check_value(spec, given[key], source) if key in given else spec.default for key, spec in specs.items()}
    built = {}
    for owner in owners:
        section = getattr(owner, "SECTION", ROOT)
        prefix = f"{section}." if section else ""
        try:
            built[owner] = owner(**{spec.name: values[prefix + spec.name] for spec in field_specs(owner)})
        except ValueError as exc:  # the class's own check across its keys (`__post_init__`)
            raise ConfigValueError(f"{source}: {exc}") from None
    return ParsedConfig(built, fill_defaults(config, specs, values))


def fill_defaults(config: dict[str, Any], specs: dict[str, FieldSpec], values: dict[str, Any]) -> dict[str, Any]:
    """The config as JSON with every declared key present, in the given config's order (keys it
    lacked follow their section's), free sections kept as they were."""
    complete: dict[str, Any] = {name: {} if isinstance(value, dict) else None for name, value in config.items()}
    for key, spec in specs.items():
        if spec.section:
            complete.setdefault(spec.section, {})[spec.name] = values[key]
        else:
            complete[spec.name] = values[key]
    for name in FREE_SECTIONS:
        if name in config:
            complete[name] = config[name]
    for name, value in config.items():  # order the keys of each section as given
        if isinstance(value, dict) and name not in FREE_SECTIONS:
            section = complete[name]
            complete[name] = {**{k: section[k] for k in value if k in section}, **section}
    return complete
