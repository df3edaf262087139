"""The NaN/Inf guard's diagnosis: which debugged layer first produced NaN or Inf, and why."""

from typing import Any

import torch
from torch import Tensor, nn

from utils.debugging.layers import first_tensor


def holds_non_finite(tensor: Tensor | None) -> bool:
    """Whether `tensor` is a floating-point tensor holding NaN or Inf (synchronises its device).

    One sum first: NaN and Inf propagate through it, so a finite sum clears the tensor without the
    tensor-sized mask `isfinite` builds (that mask cost as much as the forward pass of the digits
    CNN). Only a non-finite sum, which finite values can also give by overflowing, is confirmed
    element by element.
    """
    if tensor is None or not tensor.is_floating_point():
        return False
    total = tensor.sum(dtype=torch.float64 if tensor.dtype == torch.float64 else torch.float32)
    return not bool(torch.isfinite(total)) and not bool(torch.isfinite(tensor).all())


class FiniteGuard:
    """Checks debugged layers' outputs and output gradients, remembering within one forward which
    layers ran and whether their outputs were finite, so a non-finite output can be blamed on the
    layer itself, the code since the previous debugged layer, or the model's input."""

    def __init__(self) -> None:
        self._model_inputs: tuple | None = None  # the running forward's arguments
        self._outputs_finite: dict[str, bool] = {}  # layers run in this forward, in order

    def start_forward(self, model_inputs: tuple) -> None:
        """A forward of the whole model begins with these arguments."""
        self._model_inputs, self._outputs_finite = model_inputs, {}

    def end_forward(self) -> None:
        """The forward ended (or was abandoned, e.g. stopped by the guard itself)."""
        self._model_inputs, self._outputs_finite = None, {}

    def check(self, name: str, module: nn.Module, tensor: Tensor, direction: str, step: int,
              inputs: Any) -> str | None:
        """None if `tensor` (the output in the "forward" direction, else the output's gradient)
        is finite; otherwise a message naming the layer, the counts, the step and the cause."""
        finite = not holds_non_finite(tensor)
        if direction == "forward":
            cause = "" if finite else self._forward_cause(name, inputs)
            self._outputs_finite.pop(name, None)  # a layer run twice counts where it ran last
            self._outputs_finite[name] = finite
        else:
            cause = "every gradient reached before it was finite"
        if finite:
            return None
        what = "output" if direction == "forward" else "gradient w.r.t. the output"
        nan, inf = int(torch.isnan(tensor).sum()), int(torch.isinf(tensor).sum())
        return (f"{what} of layer '{name}' ({type(module).__name__}, shape {tuple(tensor.shape)}) holds "
                f"{nan} NaN and {inf} Inf values at step {step} in the {direction} pass; {cause}")

    def _forward_cause(self, name: str, inputs: Any) -> str:
        """Where the NaN/Inf in `name`'s output came from: the layer itself, the code run since the
        previous debugged layer (e.g. a torch.log in forward), or the data fed to the model."""
        if not holds_non_finite(first_tensor(inputs)):
            return "its input was finite, so this layer produced them"
        previous = next((other for other in reversed(self._outputs_finite)
                         if not other.startswith(f"{name}.")), None)  # a container's children ran inside it
        if previous is not None and not self._outputs_finite[previous]:
            return f"its input was already non-finite, as was the output of the previous debugged layer '{previous}'"
        model_input = None if self._model_inputs is None else first_tensor(self._model_inputs)
        if model_input is None:
            return "its input was already non-finite"
        if holds_non_finite(model_input):
            return "the model's input was already non-finite (check the data)"
        if previous is None:
            return (f"its input was non-finite although the model's input was finite: "
                    f"the code before '{name}' produced them")
        return (f"its input was non-finite although the output of the previous debugged layer '{previous}' was "
                f"finite: the code between '{previous}' and '{name}' produced them")
