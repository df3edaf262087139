"""Validation of experiment/run names and sanitising of names used as file names."""

import re

from utils.errors import InvalidNameError

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
NAME_RULE = "1-128 characters from A-Z a-z 0-9 . _ -, starting with a letter or digit"


def validate_name(name: object, kind: str = "name") -> str:
    """Return `name` if it is a valid experiment/run name, else raise `InvalidNameError`.

    The pattern alone rules out path separators, `..`, absolute paths, whitespace, NUL and
    newlines, so a valid name can never point outside its parent folder.
    """
    if not isinstance(name, str):
        raise InvalidNameError(f"{kind} must be a string, got {type(name).__name__}")
    if NAME_PATTERN.fullmatch(name) is None:
        shown = repr(name) if len(name) <= 60 else repr(name[:57]) + "..."
        raise InvalidNameError(f"invalid {kind} {shown}: use {NAME_RULE}")
    return name


def sanitize_name(name: str, max_length: int = 128) -> str:
    """Turn an arbitrary tag (e.g. 'val/conf matrix') into a safe file name ('val_conf_matrix')."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._-")
    cleaned = cleaned[:max_length]
    return cleaned or "unnamed"
