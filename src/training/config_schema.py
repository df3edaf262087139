"""The example's config contract: every key the training code reads, its type and its range.

`validate_config` runs when a run is created (01_initialize.py) and again before anything is
built (02_train.py), so a typo, an unknown key or a wrong type fails in a second with a message
naming the key, not after minutes of training. It imports no torch, so the light CLI can use it.
"""

from collections.abc import Callable, Iterator
from typing import Any

from utils.configs import closest_key, get_key
from utils.errors import ConfigKeyError, ConfigValueError

Check = tuple[tuple[type, ...], Callable[[Any], bool] | None, str]

_POSITIVE = (lambda v: v > 0, "> 0")
_NON_NEGATIVE = (lambda v: v >= 0, ">= 0")
_FRACTION = (lambda v: 0 < v < 1, "between 0 and 1")


def _rule(types: tuple[type, ...], condition: tuple[Callable[[Any], bool], str] | None = None) -> Check:
    predicate, text = condition if condition else (None, "")
    return types, predicate, text


_NUMBER = (int, float)
SCHEMA: dict[str, Check] = {
    "seed": _rule((int,), _NON_NEGATIVE),
    "deterministic": _rule((bool,)),
    "data.dataset": _rule((str,), (lambda v: v == "digits", "'digits'")),
    "data.val_fraction": _rule(_NUMBER, _FRACTION),
    "data.test_fraction": _rule(_NUMBER, _FRACTION),
    "data.batch_size": _rule((int,), _POSITIVE),
    "data.num_workers": _rule((int,), _NON_NEGATIVE),
    "model.name": _rule((str,), (lambda v: v == "digits_cnn", "'digits_cnn' (see models/digits_cnn.py)")),
    "model.channels": _rule((list,), (lambda v: len(v) == 2 and all(isinstance(c, int) and c > 0 for c in v), "two positive integers")),
    "model.hidden": _rule((int,), _POSITIVE),
    "model.dropout": _rule(_NUMBER, (lambda v: 0 <= v < 1, "in [0, 1)")),
    "optimizer.name": _rule((str,), (lambda v: v in ("adamw", "sgd"), "'adamw' or 'sgd'")),
    "optimizer.lr": _rule(_NUMBER, _POSITIVE),
    "optimizer.weight_decay": _rule(_NUMBER, _NON_NEGATIVE),
    "scheduler.name": _rule((str,), (lambda v: v in ("cosine", "constant"), "'cosine' or 'constant'")),
    "scheduler.warmup_epochs": _rule((int,), _NON_NEGATIVE),
    "training.epochs": _rule((int,), _POSITIVE),
    "training.grad_clip": _rule((*_NUMBER, type(None)), (lambda v: v is None or v > 0, "> 0 or null")),
    "training.amp": _rule((bool,)),
    "training.eval_every": _rule((int,), _POSITIVE),
    "training.checkpoint_every": _rule((int,), _POSITIVE),
    "training.keep_checkpoints": _rule((int,), _POSITIVE),
    "training.best_metric": _rule((str,), (lambda v: v.startswith("val/"), "a validation metric such as 'val/accuracy'")),
    "training.best_mode": _rule((str,), (lambda v: v in ("min", "max"), "'min' or 'max'")),
    "logging.csv": _rule((bool,)),
    "logging.tensorboard": _rule((bool,)),
    "logging.wandb": _rule((bool,)),
    "logging.wandb_project": _rule((str,)),
    "logging.wandb_tags": _rule((list,), (lambda v: all(isinstance(t, str) for t in v), "a list of strings")),
}
SECTIONS = frozenset(key.rsplit(".", 1)[0] for key in SCHEMA if "." in key)
# Written by utils.initialization (where the run came from); its contents are free-form.
FREE_FORM = frozenset({"meta"})


def _unknown_keys(config: dict[str, Any], prefix: str = "") -> Iterator[str]:
    """The dotted keys the schema does not know; an unknown section is named once, not its keys."""
    for key, value in config.items():
        dotted = prefix + key
        if dotted in SECTIONS and isinstance(value, dict):
            yield from _unknown_keys(value, dotted + ".")
        elif dotted not in SCHEMA and dotted not in SECTIONS and dotted not in FREE_FORM:
            yield dotted


def _unknown_key_message(source: str, key: str) -> str:
    guess = closest_key(key, [*sorted(SCHEMA), *sorted(SECTIONS)])
    hint = f"did you mean {guess!r}?" if guess else "the known keys are those of config/default.json"
    return f"{source}: unknown key {key!r}; {hint}"


def validate_config(config: dict[str, Any], source: str = "config") -> None:
    """Raise ConfigKeyError for an unknown or missing key, ConfigValueError for a wrong type or range.

    Every key must be in SCHEMA (the top-level `meta` block excepted), so that a misspelt key
    fails here instead of leaving its default in force without a word.
    """
    unknown = next(_unknown_keys(config), None)
    if unknown is not None:
        raise ConfigKeyError(_unknown_key_message(source, unknown))
    for key, (types, predicate, expected) in SCHEMA.items():
        try:
            value = get_key(config, key)
        except ConfigKeyError:
            raise ConfigKeyError(f"{source}: required key {key!r} is missing; add it (see config/default.json)") from None
        # bool is an int in Python; a boolean where a number is expected is a mistake
        wrong_type = not isinstance(value, types) or (isinstance(value, bool) and bool not in types)
        if wrong_type:
            names = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            detail = f" ({expected})" if expected else ""
            raise ConfigValueError(f"{source}: {key}={value!r} has type {type(value).__name__}; expected {names}{detail}")
        if predicate is not None and not predicate(value):
            raise ConfigValueError(f"{source}: {key}={value!r} is not valid; expected {expected}")
