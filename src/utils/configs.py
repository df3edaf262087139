"""Config templates and run configs: strict JSON on disk, dotted-key overrides in code."""

import copy
import difflib
import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from utils.errors import ConfigKeyError, ConfigNotFoundError, ConfigSyntaxError, ConfigValueError
from utils.fileio import atomic_write_text

REPO_ROOT = Path(__file__).resolve().parents[2]  # the one definition; src/ is its import root
CONFIG_DIR = REPO_ROOT / "config"


def _reject_constant(token: str) -> Any:
    raise ValueError(f"{token} is not valid JSON (write null or a number)")


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def parse_json_strict(text: str, source: str) -> Any:
    """Parse strict JSON (no NaN/Infinity, no duplicate keys); errors name file, line, column."""
    try:
        return json.loads(
            text, parse_constant=_reject_constant, object_pairs_hook=_reject_duplicates
        )
    except json.JSONDecodeError as exc:
        raise ConfigSyntaxError(
            f"{source}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    except ValueError as exc:
        raise ConfigSyntaxError(f"{source}: invalid JSON: {exc}") from None


def available_templates(config_dir: Path = CONFIG_DIR) -> list[str]:
    """Names of the templates in `config/` (file names without `.json`)."""
    return sorted(p.stem for p in config_dir.glob("*.json"))


def template_path(name: str, config_dir: Path = CONFIG_DIR) -> Path:
    """`config/NAME.json` for a bare name; a name with a path separator or `.json` is a path."""
    if "/" in name or name.endswith(".json"):
        return Path(name).expanduser().resolve()
    return config_dir / f"{name}.json"


def load_config_file(path: Path) -> dict[str, Any]:
    """Read a JSON object from `path` with strict parsing."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigNotFoundError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigSyntaxError(f"{path}: cannot be read as UTF-8 text: {exc}") from None
    config = parse_json_strict(text, str(path))
    if not isinstance(config, dict):
        raise ConfigSyntaxError(f"{path}: the top level must be a JSON object {{...}}")
    return config


def load_config_template(name: str, config_dir: Path = CONFIG_DIR) -> dict[str, Any]:
    """Load a template by name (`default` -> config/default.json) or by path."""
    path = template_path(name, config_dir)
    if not path.is_file():
        choices = ", ".join(available_templates(config_dir)) or "none"
        raise ConfigNotFoundError(
            f"config template {name!r} not found at {path}; available templates: {choices}"
        )
    return load_config_file(path)


def dump_config(config: dict[str, Any]) -> str:
    """Serialise a config as readable strict JSON (raises ConfigValueError on NaN/inf)."""
    try:
        return json.dumps(config, indent=2, allow_nan=False) + "\n"
    except ValueError as exc:
        raise ConfigValueError(f"config cannot be saved as strict JSON: {exc}") from None


def save_config_file(path: Path, config: dict[str, Any]) -> None:
    """Write a config atomically."""
    atomic_write_text(path, dump_config(config))


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split 'a.b=value' into (['a', 'b'], value); the value is JSON if it parses, else text."""
    if "=" not in text:
        raise ConfigKeyError(f"override {text!r} has no '=': write key.sub=value")
    key, raw = text.split("=", 1)
    parts = key.strip().split(".")
    if not key.strip() or any(not part for part in parts):
        raise ConfigKeyError(f"override {text!r} has an empty key: write key.sub=value")
    try:
        value = json.loads(raw, parse_constant=_reject_constant)
    except ValueError:
        return parts, raw
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigValueError(f"override {text!r}: {raw} is out of range for a JSON number")
    return parts, value


def apply_overrides(config: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of `config` with each 'key.sub=value' applied.

    An override may name a key, or a section, that the config leaves out: a template need not
    spell out every key, so whether a key exists is the schema's call, made right after
    (`utils.config_fields.parse_config` names the closest declared key). A section given whole
    (`training={"epochs": 3}`) is merged into the section, never replacing its other keys. A
    section cannot become a plain value or the reverse (ConfigValueError).
    """
    result = copy.deepcopy(config)
    for text in overrides:
        parts, value = parse_override(text)
        node = result
        for depth, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                key = ".".join(parts[: depth + 1])
                raise ConfigKeyError(f"override {text!r}: {key!r} is a plain value, not a section")
            node = child
        key, current = ".".join(parts), node.get(parts[-1])
        if isinstance(current, dict) and not isinstance(value, dict):
            raise ConfigValueError(f"override {text!r}: {key!r} is a section; set its keys one by one ({key}.sub=value)")
        if isinstance(value, dict) and parts[-1] in node and not isinstance(current, dict):
            raise ConfigValueError(f"override {text!r}: {key!r} is a plain value, not a section")
        if isinstance(value, dict):
            node[parts[-1]] = {**(current or {}), **value}
        else:
            node[parts[-1]] = value
    return result


def closest_key(key: str, known: Iterable[str]) -> str | None:
    """The known key spelled most like `key` (difflib's ratio of at least 0.6), or None."""
    matches = difflib.get_close_matches(key, list(known), n=1)
    return matches[0] if matches else None
