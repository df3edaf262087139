"""See inside a model: capture outputs, gradients and weights per layer, guard against NaN/Inf.

    with ModelDebugger(model, layers=["features.*"], mode="every", every=100, log_stats=True) as dbg:
        train(...)                  # statistics logged as debug/<layer>/<kind>_<stat>
    print(dbg.summary())

A step is one forward pass of the attached model (`dbg.step` counts them; set it to align with
the trainer's global step). Captured tensors are detached clones; statistics stay on the
tensor's device until read. After `detach()` the model carries none of the debugger's hooks.
"""

import sys
from collections import deque
from collections.abc import Iterable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from utils.helper_functions import count_parameters
from utils.logging import LOGGER
from utils.debugging.layers import Selector, first_tensor, select_layers
from utils.debugging.memo import StatsMemo
from utils.debugging.stats import STAT_NAMES, compute_stats_many, format_summary, to_floats

CAPTURE_KINDS = ("output", "grad", "params", "param_grads")
MODES = ("once", "every", "always")
KEEP = ("stats", "tensors", "both")
GUARDS = ("off", "raise", "breakpoint")


class NonFiniteError(RuntimeError):
    """The guard found NaN or Inf in a layer's output or in the gradient flowing back into it."""


class ModelDebugger:
    """Hooks on chosen layers that capture tensors or statistics and guard against NaN/Inf.

    capture: any of "output" (forward output), "grad" (gradient w.r.t. that output), "params"
      (the layer's parameters as used in the forward) and "param_grads" (their gradients).
    keep: "stats" (on-device statistics of the latest captured step), "tensors" (detached clones
      in a buffer of the last `buffer_size` captures per layer and kind) or "both".
    mode: "once" (the next forward and its backward, then detach), "every" (steps divisible by
      `every`) or "always". The guard acts on every step while attached.
    guard: "raise" a NonFiniteError or call `breakpoint()` (so PYTHONBREAKPOINT decides) at the
      first layer, in execution order, whose output or output gradient holds NaN or Inf. The
      check synchronises with the device once per layer and step: use it to hunt, not always.
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
        self.capture, self.keep, self.buffer_size = frozenset(capture), keep, buffer_size
        self.mode, self.every, self.guard = mode, every, guard
        self.log_stats, self.step = log_stats, start_step
        self.logger = LOGGER if logger is None else logger
        self._stats: dict[str, dict[str, Tensor]] = {}  # layer -> kind -> (S,) statistics
        self._memo = StatsMemo()  # a step's aliases (Flatten, Identity, their gradients) are measured once
        self._buffers: dict[tuple[str, str], deque[Tensor]] = {}
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
        self._model_inputs: tuple | None = None  # guard: the running forward's arguments
        self._outputs_finite: dict[str, bool] = {}  # guard: layers run in this forward, in order

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
        self._model_inputs, self._outputs_finite = None, {}  # a forward the guard stopped never ended
        self._memo.clear()
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
        return to_floats(self._stats)

    def stat_tensors(self) -> dict[str, dict[str, dict[str, Tensor]]]:
        """Latest captured statistics as on-device 0-d tensors (no synchronisation)."""
        return {layer: {kind: dict(zip(STAT_NAMES, vector.unbind(), strict=True)) for kind, vector in kinds.items()}
                for layer, kinds in self._stats.items()}

    def tensors(self, layer: str, kind: str = "output") -> list[Tensor]:
        """Captured clones for `layer` and `kind` ("output", "grad", "weight", "weight_grad", ...), oldest first."""
        return list(self._buffers.get((layer, kind), ()))

    def summary(self) -> str:
        """Table of every debugged layer: type, output shape, trainable parameters, statistics."""
        floats = self.stats()
        rows = []
        for name, module in self.layers.items():
            shape = self._shapes.get(name)
            rows.append((name, type(module).__name__, "x".join(map(str, shape)) if shape else "-",
                         count_parameters(module)))
        ordered = {layer: dict(sorted(kinds.items(), key=lambda kv: self._kind_order(kv[0])))
                   for layer, kinds in floats.items()}
        return format_summary(rows, ordered)

    def write_summary(self, directory: str | Path | None = None, filename: str = "model_debug.txt") -> Path:
        """Write `summary()` to `directory` (default: the run's logs folder of the logger)."""
        folder = Path(directory) if directory is not None else Path(self.logger.get_path("log"))
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / filename
        path.write_text(self.summary(), encoding="utf-8")
        return path

    # --- hooks -----------------------------------------------------------------------------
    def _on_step_start(self, module: nn.Module, args: Any) -> None:
        self._flush_log()
        if self.mode == "once" and self._once_started:
            self._capturing = False  # the captured step's backward never completed: give up on it
            self.detach()
            return
        self._memo.clear()
        self._current_step, self.step = self.step, self.step + 1
        self._capturing = self.mode != "every" or self._current_step % self.every == 0
        self._once_started = True
        self._pass_handles = []
        self._forward_done = False
        if self.guard != "off":
            self._model_inputs, self._outputs_finite = args, {}
        if self._capturing and self.log_stats:
            self._unlogged_step = self._current_step
        if self._capturing and "params" in self.capture:
            self._record_params()

    def _on_step_end(self, module: nn.Module, args: Any, output: Any) -> None:
        self._forward_done = True
        self._model_inputs, self._outputs_finite = None, {}
        self._finish_once_if_done()

    def _on_forward(self, name: str, module: nn.Module, args: Any, output: Any) -> None:
        tensor = first_tensor(output)
        if tensor is None:
            return
        step, capturing = self._current_step, self._capturing
        if capturing or name not in self._shapes:
            self._shapes[name] = tuple(tensor.shape)
        if capturing and "output" in self.capture:
            self._record(name, "output", tensor)
        if self.guard != "off":
            self._check_finite(name, module, tensor, "forward", step, args)
        if not tensor.requires_grad:
            return
        wants_grad = capturing and "grad" in self.capture
        if wants_grad or self.guard != "off":
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
            self._record(name, "grad", grad)
        if self.guard != "off":
            self._check_finite(name, module, grad, "backward", step, None)
        self._pending.discard(token)
        self._finish_once_if_done()

    def _on_param_grad(self, name: str, pname: str, param: Tensor, grad: Tensor) -> None:
        if not (self._attached and self._capturing):
            return
        self._record(name, f"{pname}_grad", grad)
        self._pending.discard(id(param))
        self._finish_once_if_done()

    # --- helpers ---------------------------------------------------------------------------
    def _record(self, name: str, kind: str, tensor: Tensor) -> None:
        """Keep statistics and/or a detached clone (never a view that later writes would change)."""
        if self.keep != "tensors":
            self._stats.setdefault(name, {})[kind] = self._memo.measure(tensor)
        if self.keep != "stats":
            buffer = self._buffers.setdefault((name, kind), deque(maxlen=self.buffer_size))
            buffer.append(tensor.detach().clone())

    def _record_params(self) -> None:
        """The debugged layers' parameters as this forward is about to use them (an optimizer
        step after the backward cannot alter what is captured)."""
        self._record_many([(name, pname, param) for name, module in self.layers.items()
                           for pname, param in module.named_parameters()])

    def _record_many(self, items: Sequence[tuple[str, str, Tensor]]) -> None:
        """`_record` for many tensors, with the statistics of the small ones batched."""
        if self.keep != "tensors":
            for (name, kind, _), stats in zip(items, compute_stats_many([t for *_, t in items]), strict=True):
                self._stats.setdefault(name, {})[kind] = stats
        if self.keep != "stats":
            for name, kind, tensor in items:
                buffer = self._buffers.setdefault((name, kind), deque(maxlen=self.buffer_size))
                buffer.append(tensor.detach().clone())

    def _check_finite(self, name: str, module: nn.Module, tensor: Tensor, direction: str, step: int,
                      inputs: Any) -> None:
        finite = not _holds_non_finite(tensor)
        if direction == "forward":
            cause = "" if finite else self._forward_cause(name, inputs)
            self._outputs_finite.pop(name, None)  # a layer run twice counts where it ran last
            self._outputs_finite[name] = finite
        else:
            cause = "every gradient reached before it was finite"
        if finite:
            return
        what = "output" if direction == "forward" else "gradient w.r.t. the output"
        nan, inf = int(torch.isnan(tensor).sum()), int(torch.isinf(tensor).sum())
        message = (f"{what} of layer '{name}' ({type(module).__name__}, shape {tuple(tensor.shape)}) holds "
                   f"{nan} NaN and {inf} Inf values at step {step} in the {direction} pass; {cause}")
        if self.guard == "raise":
            raise NonFiniteError(message + ". Use guard='breakpoint' to inspect it in a debugger.")
        print(f"ModelDebugger: {message}", file=sys.stderr)
        self._break(name, module, tensor, step)

    def _forward_cause(self, name: str, inputs: Any) -> str:
        """Where the NaN/Inf in `name`'s output came from: the layer itself, the code run since the
        previous debugged layer (e.g. a torch.log in forward), or the data fed to the model."""
        if not _holds_non_finite(first_tensor(inputs)):
            return "its input was finite, so this layer produced them"
        previous = next((other for other in reversed(self._outputs_finite)
                         if not other.startswith(f"{name}.")), None)  # a container's children ran inside it
        if previous is not None and not self._outputs_finite[previous]:
            return f"its input was already non-finite, as was the output of the previous debugged layer '{previous}'"
        model_input = None if self._model_inputs is None else first_tensor(self._model_inputs)
        if model_input is None:
            return "its input was already non-finite"
        if _holds_non_finite(model_input):
            return "the model's input was already non-finite (check the data)"
        if previous is None:
            return (f"its input was non-finite although the model's input was finite: "
                    f"the code before '{name}' produced them")
        return (f"its input was non-finite although the output of the previous debugged layer '{previous}' was "
                f"finite: the code between '{previous}' and '{name}' produced them")

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
    def _kind_order(kind: str) -> tuple[int, str, bool]:
        """output, grad, then each parameter followed by its gradient (weight, weight_grad, bias...)."""
        return ({"output": 0, "grad": 1}.get(kind, 2), kind.removesuffix("_grad"), kind.endswith("_grad"))

    @staticmethod
    def _trainable(module: nn.Module) -> list[tuple[str, nn.Parameter]]:
        return [(name, p) for name, p in module.named_parameters() if p.requires_grad]


def _holds_non_finite(tensor: Tensor | None) -> bool:
    """Whether `tensor` is a floating-point tensor holding NaN or Inf (synchronises its device)."""
    return tensor is not None and tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())
