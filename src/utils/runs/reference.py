"""`EXP/RUN`: how a config or a command names another run (a fork's `--from`, a fine-tune's
`training.init_from`)."""

from utils.errors import InvalidNameError, RunNotFoundError
from utils.names import validate_name
from utils.runs.run import Run


def require_run_reference(text: str, what: str) -> Run:
    """The existing run `text` names as `EXP/RUN`; InvalidNameError or RunNotFoundError (exit 2),
    prefixed with `what` (the option or key that named it).

        >>> require_run_reference("example/first", "--from").path
        PosixPath('.../experiments/example/first')
    """
    experiment, slash, run = text.partition("/")
    if not slash or "/" in run:
        raise InvalidNameError(f"{what}: {text!r} does not name a run; write EXP/RUN, e.g. example/first")
    try:
        found = Run.resolve(validate_name(experiment, "experiment"), validate_name(run, "run"))
    except InvalidNameError as exc:
        raise InvalidNameError(f"{what}: {exc}") from None
    if not found.config_file.is_file():
        raise RunNotFoundError(
            f"{what}: there is no run {found.name} (no {found.config_file}); "
            "`python src/01_initialize.py --list` lists the runs"
        )
    return found
