"""Command-line pieces the scripts share: the -e/-r name options and their environment fallback,
a parser whose usage errors are one line, integer options with a lower bound.

A name left off the command line comes from CURRENT_EXP / CURRENT_RUN (set by env.sh's
`setexp` / `setrun`), so every script resolves names the same way and says the same thing when
one is missing.
"""

import argparse
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from utils.errors import MissingNameError


@dataclass(frozen=True)
class NameOption:
    """How a kind of name is given: its flags, its environment variable, its env.sh setter."""

    short: str
    long: str
    variable: str
    setter: str


NAME_OPTIONS: dict[str, NameOption] = {
    "experiment": NameOption("-e", "--experiment", "CURRENT_EXP", "setexp"),
    "run": NameOption("-r", "--run", "CURRENT_RUN", "setrun"),
}


class StoreName(argparse.Action):
    """Store a name exactly as typed, so that `--run=--` reaches name validation as '--'.

    argparse before Python 3.11.8 / 3.12.2 (CPython gh-109475) drops a '--' given as an
    option's own value (`--run=--`, `-r--`) and hands the action an empty list; '--' is the
    only value that turns into one.
    """

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        setattr(namespace, self.dest, "--" if values == [] else values)


class OneLineParser(argparse.ArgumentParser):
    """argparse whose usage errors are one line on stderr and exit 2, like every other bad input
    (instead of the usage block followed by the message)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def int_at_least(least: int) -> Callable[[str], int]:
    """An argparse `type`: an integer >= `least`; anything else is a usage error saying so."""

    def parse(text: str) -> int:
        try:
            value: int | None = int(text)
        except ValueError:
            value = None
        if value is None or value < least:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer >= {least}")
        return value

    return parse


def add_name_option(parser: argparse.ArgumentParser, kind: str) -> None:
    """Add `-e/--experiment` (kind "experiment") or `-r/--run` (kind "run") to `parser`."""
    option = NAME_OPTIONS[kind]
    parser.add_argument(
        option.short, option.long, metavar="NAME", action=StoreName,
        help=f"{kind} name (default: ${option.variable})",
    )


def name_or_env(given: str | None, kind: str) -> str | None:
    """The name from the command line, else from the environment; None when neither has one.

    A name given on the command line wins even when empty (validation then rejects it), so
    `-e "$UNSET_VAR"` fails loudly instead of quietly using $CURRENT_EXP.
    """
    if given is not None:
        return given
    return os.environ.get(NAME_OPTIONS[kind].variable) or None


def require_name(given: str | None, kind: str) -> str:
    """`name_or_env`, or `MissingNameError` naming the flag and the environment variable."""
    name = name_or_env(given, kind)
    if name is None:
        option = NAME_OPTIONS[kind]
        raise MissingNameError(
            f"no {kind} name: pass {option.short}/{option.long} NAME or set {option.variable} "
            f"(env.sh: {option.setter} NAME)"
        )
    return name
