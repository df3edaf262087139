"""Why a checkpoint file, or its weights, cannot be used: one line without the file's path.

torch's own messages span many lines and advise re-running with `weights_only=False`, which
would run a planted file's code; these reasons never repeat that advice.
"""

import re
from pathlib import Path
from typing import Any

# torch's safe unpickler (torch/_weights_only_unpickler.py, 2.13) names a refused import
# "Unsupported global: GLOBAL x was not ..." or "unsupported GLOBAL x whose module m is blocked"
_UNSAFE_GLOBAL = re.compile(r"GLOBAL (\S+)")
# ... and refuses other code-running instructions with these words
_UNSAFE_WORDS = ("Unsupported operand", "unrecognized function", "Can only", "persistent")
_REFUSED_BY_SAFE_LOADER = "Weights only load failed"  # opens every refusal, with advice we never repeat
_TORCH_ADVICE = ("weights only load failed", "weights_only", "check the documentation", "please file an issue")
_ZIP_MAGIC = b"PK\x03\x04"  # torch.save writes a zip archive
_PICKLE_PROTO = 0x80  # a raw pickle (pickle.dump, torch's legacy format) starts with PROTO
_NAMES_SHOWN = 3  # keys named per kind of mismatch when a checkpoint does not fit the model


def why_not_an_archive(path: Path) -> str:
    """Why `path` is not a torch.save archive (a reason of its own for an empty file and a raw
    pickle, which torch would call 'mmap can only be used ...'), or '' when it looks like one."""
    with path.open("rb") as handle:
        head = handle.read(len(_ZIP_MAGIC))
    if not head:
        return "empty file (0 bytes): its save never wrote anything"
    if head == _ZIP_MAGIC:
        return ""
    if head[0] == _PICKLE_PROTO:
        return ("a raw pickle (pickle.dump or torch's legacy format), not a torch.save archive; "
                "it was not unpickled, the template never unpickles unsafely")
    return "truncated or corrupt (not a torch.save archive)"


def why_load_failed(error: BaseException) -> str:
    """Why torch.load refused a file, in one line: code it refused to run, else damage.

    torch's own advice (re-run with weights_only=False) invites running the code, so it is
    never repeated.
    """
    text = str(error)
    if _REFUSED_BY_SAFE_LOADER not in text:
        return f"truncated or corrupt ({one_line(error)})"
    cause = " ".join(line.strip().removeprefix("WeightsUnpickler error:").strip() for line in text.splitlines()
                     if line.strip() and not any(words in line.lower() for words in _TORCH_ADVICE))
    refused = _UNSAFE_GLOBAL.search(cause)
    if refused:
        return f"holds code that was not run (unsafe pickle global {refused.group(1)})"
    if any(words in cause for words in _UNSAFE_WORDS):
        return f"holds code that was not run (unsafe pickle instruction: {cause.split('. ')[0]})"
    return f"truncated or corrupt ({type(error).__name__}: {cause or 'refused by the safe loader'})"


def one_line(error: BaseException) -> str:
    """`error` with its type, its lines joined into one (torch's messages span many lines)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return f"{type(error).__name__}: {' '.join(lines)}" if lines else type(error).__name__


def describe_mismatch(saved: dict[str, Any], expected: dict[str, Any]) -> str:
    """How many keys are missing, unexpected and of the wrong shape, naming the first few of each."""
    missing = [key for key in expected if key not in saved]
    unexpected = [key for key in saved if key not in expected]
    wrong_shape = []
    for key, value in expected.items():
        saved_shape, model_shape = _shape_or_none(saved.get(key)), _shape_or_none(value)
        if None not in (saved_shape, model_shape) and saved_shape != model_shape:
            wrong_shape.append(f"{key}: checkpoint {saved_shape}, model {model_shape}")
    parts = [
        _count_and_name(missing, "missing key", "missing keys"),
        _count_and_name(unexpected, "unexpected key", "unexpected keys"),
        _count_and_name(wrong_shape, "key of the wrong shape", "keys of the wrong shape"),
    ]
    return ", ".join(part for part in parts if part)


def _shape_or_none(value: Any) -> tuple[int, ...] | None:
    """The shape of a tensor whose shape is known (not a lazy module's parameter), else None."""
    import torch

    if isinstance(value, torch.Tensor) and not torch.nn.parameter.is_lazy(value):
        return tuple(value.shape)
    return None


def _count_and_name(items: list[str], singular: str, plural: str) -> str:
    """'2 missing keys (a, b)': the count and the first `_NAMES_SHOWN` items ('' when none)."""
    if not items:
        return ""
    shown = ", ".join(items[:_NAMES_SHOWN]) + (", ..." if len(items) > _NAMES_SHOWN else "")
    return f"{len(items)} {singular if len(items) == 1 else plural} ({shown})"
