"""The `debug` section and what the loop calls at its step boundaries to see inside a run: the
model debugger's statistics, the NaN guard, anomaly mode, and the `profile` section's trace.

Every part is off by default, and off costs the loop two calls per step that return at once: no
hook on the model, no host read, no collective. The hooks go on the unwrapped model (inside DDP
or torch.compile) and are attached only for the micro-batches they watch, so evaluation and the
test pass are never seen.
"""

import contextlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from training.distributed import any_rank
from training.torch_profile import ProfileConfig, StepTrace
from utils.config_fields import ParsedConfig, option
from utils.distributed_info import get_rank, is_main_process
from utils.errors import ConfigValueError, NonFiniteError
from utils.helper_functions import unwrap_model
from utils.logging import LOGGER
from utils.model_debugger import ModelDebugger

CaptureKind = Literal["output", "grad", "params", "param_grads"]
NULL_CONTEXT = contextlib.nullcontext()


@dataclass(frozen=True, kw_only=True)
class DebugConfig:
    SECTION: ClassVar[str] = "debug"
    stats_every: int | None = option(
        None, "log statistics of the watched layers as debug/<layer>/<kind>_<stat> every N optimizer "
        "steps (global steps 0, N, 2N, ...; the first micro-batch of the step; rank 0; null: off)", gt=0,
    )
    layers: list[str] | None = option(
        None, "glob patterns of the layer names stats_every and nan_guard watch, e.g. [\"features.*\"] "
        "(null: every leaf layer)",
    )
    capture: list[CaptureKind] = option(
        ["output", "grad", "params", "param_grads"], "what stats_every measures: a layer's output, the "
        "gradient w.r.t. it, its parameters, their gradients",
    )
    nan_guard: Literal["off", "warn", "stop"] = option(
        "off", "at the first NaN/Inf in a watched layer's output or gradient, name the layer, the step "
        "and whether the data or the code between two layers made it: 'stop' ends the run (exit 1) "
        "before that step's optimizer step, last.pt keeping the last finite state for --resume; "
        "'warn' logs it once and goes on (one host read per layer and step; 'stop' adds one "
        "collective per step under torchrun)",
    )
    anomaly: bool = option(
        False, "torch.autograd's anomaly mode for the session: a NaN in the backward raises with the "
        "forward's traceback (slow: for hunting only)",
    )

    def __post_init__(self) -> None:
        if self.stats_every is not None and not self.capture:
            raise ValueError("debug.capture=[] with debug.stats_every set captures nothing: "
                             "name at least one of output, grad, params, param_grads")


class RunInspector:
    """What `debug` and `profile` turn on, driven by the loop: `micro_batch(step, first)` around
    each micro-batch's forward and backward, `before_optimizer(step)` before each optimizer step,
    `close()` at the session's end."""

    def __init__(self, debug: DebugConfig | None = None, trace: StepTrace | None = None,
                 model: nn.Module | None = None, device: torch.device | None = None) -> None:
        self.debug, self.trace, self.device = debug or DebugConfig(), trace, device
        self.stats = self.guard = None
        if model is not None:
            self.stats = self._debugger(model, capture=self.debug.capture, log_stats=True) \
                if self.debug.stats_every is not None and is_main_process() else None
            self.guard = self._debugger(model, capture=(), guard="record") if self.debug.nan_guard != "off" else None
        self._anomaly_before = torch.is_anomaly_enabled()
        if self.debug.anomaly:
            torch.autograd.set_detect_anomaly(True)
        self._watching = self.stats is not None or self.guard is not None or trace is not None

    def _debugger(self, model: nn.Module, **options: Any) -> ModelDebugger:
        try:
            return ModelDebugger(unwrap_model(model), layers=self.debug.layers, mode="always", **options)
        except ValueError as exc:  # a pattern that matches no layer
            raise ConfigValueError(f"debug.layers={self.debug.layers!r}: {exc}") from None

    def micro_batch(self, step: int, first: bool) -> contextlib.AbstractContextManager:
        """Around one micro-batch's forward and backward of optimizer step `step` (`first`: the
        step's first micro-batch): attaches the debuggers this step needs, for this pass only."""
        if not self._watching:
            return NULL_CONTEXT
        return self._watch(step, first)

    @contextlib.contextmanager
    def _watch(self, step: int, first: bool) -> Iterator[None]:
        if first and self.trace is not None:
            self.trace.at_step_start(step)
        with contextlib.ExitStack() as attached:
            if first and self.stats is not None and step % self.debug.stats_every == 0:
                self.stats.step = step
                attached.enter_context(self.stats)  # detaching logs the statistics at `step`
            if self.guard is not None:
                self.guard.step = step
                attached.enter_context(self.guard)
            yield

    def before_optimizer(self, step: int) -> None:
        """Act on the guard's finding of this step: 'warn' logs it once, 'stop' raises
        NonFiniteError on every rank at this same step (one collective), before the weights change."""
        if self.guard is None:
            return
        found = self.guard.non_finite
        if self.debug.nan_guard == "warn":
            if found is not None:
                _report(found)
                self.guard = None  # warned once; the rest of the run goes unguarded
            return
        if not any_rank(found is not None, self.device):
            return
        if found is not None and not is_main_process():
            _report(found)  # rank 0 logs the error it raises; the others write no log
        where = found or f"another rank found a NaN/Inf at step {step} (its stderr names the layer)"
        raise NonFiniteError(f"{where}; stopped before this step's optimizer step, so no checkpoint holds it: "
                             "fix the cause, then --resume goes on from the last checkpoint")

    def close(self) -> None:
        """Write a trace still open and restore anomaly mode (the next session in this process
        starts as this one found it)."""
        if self.trace is not None:
            self.trace.close()
        torch.autograd.set_detect_anomaly(self._anomaly_before)


def _report(message: str) -> None:
    """The guard's finding in log.txt (rank 0) or on this rank's stderr (the others write no log)."""
    if is_main_process():
        LOGGER.warning(f"nan_guard: {message}")
    else:
        print(f"rank {get_rank()}: nan_guard: {message}", file=sys.stderr, flush=True)


def open_inspector(config: ParsedConfig, model: nn.Module, device: torch.device) -> RunInspector:
    """The inspector the config's `debug` and `profile` sections ask for (ConfigValueError, exit 2,
    for a `debug.layers` pattern that matches no layer of the model)."""
    steps = config[ProfileConfig].torch_steps
    trace = StepTrace(*steps) if steps is not None and is_main_process() else None
    return RunInspector(config[DebugConfig], trace, model, device)
