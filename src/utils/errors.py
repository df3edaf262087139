"""Exception types for user mistakes: one type per kind, each message says what and how to fix.

CLIs catch `TemplateError` and exit with code 2 and the message on one line. `RunIOError`
is not a user mistake but a failure of the machine (a full disk); CLIs exit 1 on it, and on
`NonFiniteError` (a NaN the guard stopped the training at).
"""


class TemplateError(Exception):
    """Base of every error caused by user input (names, configs, runs, checkpoints)."""


class InvalidNameError(TemplateError, ValueError):
    """An experiment or run name that is not allowed."""


class MissingNameError(TemplateError, ValueError):
    """An experiment or run name given neither on the command line nor in the environment."""


class ConfigNotFoundError(TemplateError, FileNotFoundError):
    """A config template or a run's config.json that does not exist."""


class ConfigSyntaxError(TemplateError, ValueError):
    """A config file that is not strict JSON."""


class ConfigKeyError(TemplateError, KeyError):
    """An override or lookup naming a key the config does not have, or a malformed override."""

    def __str__(self) -> str:  # KeyError would add quotes around the message
        return str(self.args[0]) if self.args else ""


class ConfigValueError(TemplateError, ValueError):
    """A config value of the wrong type or out of range."""


class ExperimentNotFoundError(TemplateError, FileNotFoundError):
    """An experiment folder that does not exist."""


class RunNotFoundError(TemplateError, FileNotFoundError):
    """A run folder that does not exist."""


class RunExistsError(TemplateError, FileExistsError):
    """A run that already exists and would be overwritten."""


class CheckpointError(TemplateError, RuntimeError):
    """A checkpoint that is missing, truncated or corrupt."""


class RunHasOutputsError(TemplateError):
    """A plain start of a run that has already trained (use --resume or --restart)."""


class RunBusyError(TemplateError):
    """A run another session holds right now (its lock names the pid)."""


class RunLinkError(TemplateError):
    """A path a session would write in a run that is a symlink leading out of the run."""


class OutputPathError(TemplateError, ValueError):
    """An output path given on the command line that a CLI will not write (outside the experiments
    root, in a missing folder, of the wrong kind)."""


class UnreadableCheckpointError(CheckpointError):
    """A checkpoint file that cannot be loaded; `reason` says why in one line, without the path."""

    def __init__(self, message: str, *, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason or message


class NonFiniteError(RuntimeError):
    """NaN or Inf in a layer's output or in the gradient flowing back into it, found by the model
    debugger's guard: the training failed, not the input or the machine (CLIs exit 1)."""


class RunIOError(Exception):
    """A file a run needs could not be written or read for a reason of the machine, not of input."""


class ExportError(Exception):
    """A model that cannot be exported, or whose export is further from the eager model than the
    format's tolerance; one line naming the format and the reason (a CLI exits 1: the model, not
    the command line, is at fault)."""

    def __init__(self, format: str, reason: str) -> None:
        super().__init__(f"{format}: {reason}")
        self.format, self.reason = format, reason


class DiskFullError(RunIOError, OSError):
    """A write that failed for lack of space (or quota); the message names the file and the sizes."""


class SweepSpecError(TemplateError, ValueError):
    """A sweep spec that is missing, malformed, or changed since its sweep started."""


class SweepBusyError(TemplateError):
    """A sweep that another driver is running right now."""
