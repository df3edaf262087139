"""Which layers the model debugger watches: selection by name, glob or type, through wrappers."""

import fnmatch
from collections.abc import Iterable
from typing import Any

from torch import Tensor, nn

from utils.helper_functions import unwrap_model

Selector = str | type[nn.Module]


def select_layers(model: nn.Module, selectors: Iterable[Selector] | Selector | None) -> dict[str, nn.Module]:
    """Layers by qualified name, glob pattern (`encoder.*.conv*`) or module type, in model order.

    `None` selects every leaf module. A selector that matches nothing raises ValueError, because
    a typo would otherwise silently debug nothing.
    """
    named = [(name, module) for name, module in unwrap_model(model).named_modules() if name]
    if selectors is None:
        leaves = {name: module for name, module in named if next(module.children(), None) is None}
        return leaves or {"model": unwrap_model(model)}
    if isinstance(selectors, (str, type)):
        selectors = [selectors]
    chosen: dict[str, nn.Module] = {}
    for selector in selectors:
        if isinstance(selector, type):
            hits = [(n, m) for n, m in named if isinstance(m, selector)]
        else:
            hits = [(n, m) for n, m in named if fnmatch.fnmatchcase(n, selector)]
        if not hits:
            sample = ", ".join(name for name, _ in named[:12])
            raise ValueError(f"layer selector {selector!r} matches no module: names look like {sample}")
        chosen.update(hits)
    order = {name: index for index, (name, _) in enumerate(named)}
    return dict(sorted(chosen.items(), key=lambda item: order[item[0]]))


def first_tensor(output: Any) -> Tensor | None:
    """The tensor a layer's output stands for: itself, or the first tensor of a tuple/list/dict."""
    if isinstance(output, Tensor):
        return output
    values = output.values() if isinstance(output, dict) else output if isinstance(output, (tuple, list)) else ()
    return next((value for value in values if isinstance(value, Tensor)), None)
