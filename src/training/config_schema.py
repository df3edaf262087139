"""The example's config contract: every key the training code reads, its type and its range.

`validate_config` runs before anything is built, so a typo or a wrong type fails in a second
with a message naming the key, not after minutes of training.
"""

from collections.abc import Callable
from typing import Any

from utils.configs import get_key
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
}


def validate_config(config: dict[str, Any], source: str = "config") -> None:
    """Raise ConfigKeyError for a missing key, ConfigValueError for a wrong type or range."""
    for key, (types, predicate, expected) in SCHEMA.items():
        try:
            value = get_key(config, key)
        except ConfigKeyError:
            raise ConfigKeyError(f"{source}: required key {key!r} is missing; add it (see config/default.json)") from None
        # bool is an int in Python; a boolean where a number is expected is a mistake
        wrong_type = not isinstance(value, types) or (isinstance(value, bool) and bool not in types)
        if wrong_type:
            names = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            raise ConfigValueError(f"{source}: {key}={value!r} has type {type(value).__name__}; expected {names}")
        if predicate is not None and not predicate(value):
            raise ConfigValueError(f"{source}: {key}={value!r} is not valid; expected {expected}")
