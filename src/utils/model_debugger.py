"""See inside a model: capture outputs, gradients and weights per layer, guard against NaN/Inf.

    with ModelDebugger(model, layers=["features.*"], mode="every", every=100, log_stats=True) as dbg:
        train(...)                  # statistics logged as debug/<layer>/<kind>_<stat>
    print(dbg.summary())

A step is one forward pass of the attached model (`dbg.step` counts them; set it to align with
the trainer's global step). Captured tensors are detached clones; statistics stay on the
tensor's device until read. After `detach()` the model carries none of the debugger's hooks.
"""

import sys
from collections.abc import Iterable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from utils.errors import NonFiniteError
from utils.helper_functions import count_parameters, write_to_logs
from utils.logging import LOGGER
from utils.debugging.captures import KEEP, Captures
from utils.debugging.guard import FiniteGuard
from utils.debugging.layers import Selector, first_tensor, select_layers
from utils.debugging.summary import format_summary

CAPTURE_KINDS = ("output", "grad", "params", "param_grads")
MODES = ("once", "every", "always")
GUARDS = ("off", "raise", "breakpoint", "record")


class ModelDebugger:
    """Hooks on chosen layers that capture tensors or statistics and guard against NaN/Inf.

    capture: any of "output" (forward output), "grad" (gradient w.r.t. that output), "params"
      (the layer's parameters as used in the forward) and "param_grads" (their gradients).
    keep: "stats" (on-device statistics of the latest captured step), "tensors" (detached clones
      in a buffer of the last `buffer_size` captures per layer and kind) or "both".
    mode: "once" (the next forward and its backward, then detach), "every" (steps divisible by
      `every`) or "always". The guard acts on every step while attached.
    guard: "raise" a NonFiniteError or call `breakpoint()` (so PYTHONBREAKPOINT decides) at the
      first layer, in execution order, whose output or output gradient holds NaN or Inf, or
      "record" its message in `non_finite` and go on (the engine's `debug.nan_guard` decides after
      the step, on every rank alike). The check synchronises with the device once per layer and
      step: use it to hunt, not always.
    log_stats: log each captured step's statistics to `logger` (default: the global LOGGER).
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        layers: Iterable[Selector] | Selector | None = None,
        capture: Sequence[str] = CAPTURE_KINDS,
        keep: str = "stats",
        buffer_size: int = 4,
        mode: str = "always",
        every: int = 1,
        guard: str = "off",
        log_stats: bool = False,
        logger: Any = None,
        start_step: int = 0,
    ):
        for option, value, allowed in (("keep", keep, KEEP), ("mode", mode, MODES), ("guard", guard, GUARDS)):
            if value not in allowed:
                raise ValueError(f"{option}={value!r} is not one of {', '.join(allowed)}")
        unknown = sorted(set(capture) - set(CAPTURE_KINDS))
        if unknown:
            raise ValueError(f"capture={list(capture)!r} has unknown kinds {unknown}: use {', '.join(CAPTURE_KINDS)}")
        if every < 1 or buffer_size < 1:
            raise ValueError(f"every={every} and buffer_size={buffer_size} must both be at least 1")
        self.model = model
        self.layers = select_layers(model, layers)
        self.capture = frozenset(capture)
        self.mode, self.every, self.guard = mode, every, guard
        self.log_stats, self.step = log_stats, start_step
        self.logger = LOGGER if logger is None else logger
        self._captures = Captures(keep, buffer_size)
        self._guard = FiniteGuard() if guard != "off" else None
        self.non_finite: str | None = None  # guard="record": the first finding's message
        self._shapes: dict[str, tuple[int, ...]] = {}
        self._handles: list[RemovableHandle] = []
        self._pass_handles: list[RemovableHandle] = []
        self._attached = False
        self._capturing = False
        self._current_step = start_step
        self._once_started = False
        self._unlogged_step: int | None = None
        self._pending: set[Any] = set()  # once-mode: output/parameter gradients still to come
        self._forward_done = False

    # --- attach / detach -------------------------------------------------------------------
    def attach(self) -> "ModelDebugger":
        """Install the hooks; returns self so `dbg = ModelDebugger(m).attach()` reads naturally."""
        if self._attached:
            raise RuntimeError("this ModelDebugger is already attached: detach() it first")
        self._once_started, self._pending = False, set()
        self._handles.append(self.model.register_forward_pre_hook(self._on_step_start))
        self._handles.append(self.model.register_forward_hook(self._on_step_end))
        for name, module in self.layers.items():
            self._handles.append(module.register_forward_hook(partial(self._on_forward, name)))
            if "param_grads" in self.capture:
                for pname, param in self._trainable(module):
                    self._handles.append(param.register_hook(partial(self._on_param_grad, name, pname, param)))
        self._attached = True
        return self

    def detach(self) -> None:
        """Remove every hook (module, parameter and pending output-gradient hooks); log what is due."""
        for handle in (*self._handles, *self._pass_handles):
            handle.remove()
        self._handles, self._pass_handles = [], []
        self._attached = False
        if self._guard is not None:
            self._guard.end_forward()  # a forward the guard stopped never ended
        self._captures.new_step()
        self._flush_log()

    @property
    def attached(self) -> bool:
        """Whether the hooks are installed (a `once` debugger detaches itself)."""
        return self._attached

    def __enter__(self) -> "ModelDebugger":
        return self.attach()

    def __exit__(self, *exc_info: object) -> None:
        if self._attached:
            self.detach()

    # --- reading results -------------------------------------------------------------------
    def stats(self) -> dict[str, dict[str, dict[str, float]]]:
        """Latest captured statistics as floats: layer -> kind -> stat (synchronises once)."""
        return self._captures.stats()

    def stat_tensors(self) -> dict[str, dict[str, dict[str, Tensor]]]:
        """Latest captured statistics as on-device 0-d tensors (no synchronisation)."""
        return self._captures.stat_tensors()

    def tensors(self, layer: str, kind: str = "output") -> list[Tensor]:
        """Captured clones for `layer` and `kind` ("output", "grad", "weight", "weight_grad", ...), oldest first."""
        return self._captures.tensors(layer, kind)

    def summary(self) -> str:
        """Table of every debugged layer: type, output shape, trainable parameters, statistics."""
        rows = []
        for name, module in self.layers.items():
            shape = self._shapes.get(name)
            rows.append((name, type(module).__name__, "x".join(map(str, shape)) if shape else "-",
                         count_parameters(module)))
        return format_summary(rows, self.stats())

    def write_summary(self, directory: str | Path | None = None, filename: str = "model_debug.txt") -> Path:
        """Write `summary()` to `directory` (default: the run's logs folder of the logger)."""
        return write_to_logs(self.logger, self.summary(), filename, directory)

    # --- hooks -----------------------------------------------------------------------------
    def _on_step_start(self, module: nn.Module, args: Any) -> None:
        self._flush_log()
        if self.mode == "once" and self._once_started:
            self._capturing = False  # the captured step's backward never completed: give up on it
            self.detach()
            return
        self._captures.new_step()
        self._current_step, self.step = self.step, self.step + 1
        self._capturing = self.mode != "every" or self._current_step % self.every == 0
        self._once_started = True
        self._pass_handles = []
        self._forward_done = False
        if self._guard is not None:
            self._guard.start_forward(args)
        if self._capturing and self.log_stats:
            self._unlogged_step = self._current_step
        if self._capturing and "params" in self.capture:
            self._record_params()

    def _on_step_end(self, module: nn.Module, args: Any, output: Any) -> None:
        self._forward_done = True
        if self._guard is not None:
            self._guard.end_forward()
        self._finish_once_if_done()

    def _on_forward(self, name: str, module: nn.Module, args: Any, output: Any) -> None:
        tensor = first_tensor(output)
        if tensor is None:
            return
        step, capturing = self._current_step, self._capturing
        if capturing or name not in self._shapes:
            self._shapes[name] = tuple(tensor.shape)
        if capturing and "output" in self.capture:
            self._captures.record(name, "output", tensor)
        if self._guard is not None:
            self._check_finite(name, module, tensor, "forward", step, args)
        if not tensor.requires_grad:
            return
        wants_grad = capturing and "grad" in self.capture
        if wants_grad or self._guard is not None:
            token = object()
            hook = partial(self._on_output_grad, name, module, step, wants_grad, token)
            self._pass_handles.append(tensor.register_hook(hook))
            if wants_grad and self.mode == "once":
                self._pending.add(token)
        if capturing and self.mode == "once" and "param_grads" in self.capture:
            self._pending.update(id(p) for _, p in self._trainable(module))

    def _on_output_grad(self, name: str, module: nn.Module, step: int, wants_grad: bool, token: object,
                        grad: Tensor) -> None:
        if not self._attached:
            return
        if wants_grad:
            self._captures.record(name, "grad", grad)
        if self._guard is not None:
            self._check_finite(name, module, grad, "backward", step, None)
        self._pending.discard(token)
        self._finish_once_if_done()

    def _on_param_grad(self, name: str, pname: str, param: Tensor, grad: Tensor) -> None:
        if not (self._attached and self._capturing):
            return
        self._captures.record(name, f"{pname}_grad", grad)
        self._pending.discard(id(param))
        self._finish_once_if_done()

    # --- helpers ---------------------------------------------------------------------------
    def _record_params(self) -> None:
        """The debugged layers' parameters as this forward is about to use them (an optimizer
        step after the backward cannot alter what is captured)."""
        self._captures.record_many([(name, pname, param) for name, module in self.layers.items()
                                    for pname, param in module.named_parameters()])

    def _check_finite(self, name: str, module: nn.Module, tensor: Tensor, direction: str, step: int,
                      inputs: Any) -> None:
        """Raise, break or record (as `guard` says) if `tensor` holds NaN or Inf; only called with a guard."""
        if self.non_finite is not None:
            return  # recorded: the first finding is the one that explains the others
        message = self._guard.check(name, module, tensor, direction, step, inputs)
        if message is None:
            return
        if self.guard == "record":
            self.non_finite = message
            return
        if self.guard == "raise":
            raise NonFiniteError(message + ". Use guard='breakpoint' to inspect it in a debugger.")
        print(f"ModelDebugger: {message}", file=sys.stderr)
        self._break(name, module, tensor, step)

    @staticmethod
    def _break(name: str, module: nn.Module, tensor: Tensor, step: int) -> None:
        """Stop here with `name`, `module`, `tensor` and `step` in scope; PYTHONBREAKPOINT decides how."""
        breakpoint()

    def _finish_once_if_done(self) -> None:
        if self.mode == "once" and self._attached and self._forward_done and not self._pending:
            self.detach()

    def _flush_log(self) -> None:
        """Log the statistics of the last captured step, once its backward has had its chance to run."""
        if self._unlogged_step is None:
            return
        step, self._unlogged_step = self._unlogged_step, None
        values = {f"debug/{layer}/{kind}_{stat}": value
                  for layer, kinds in self.stat_tensors().items() for kind, stats in kinds.items()
                  for stat, value in stats.items()}
        if values:
            self.logger.log(values, step=step)

    @staticmethod
    def _trainable(module: nn.Module) -> list[tuple[str, nn.Parameter]]:
        return [(name, p) for name, p in module.named_parameters() if p.requires_grad]

