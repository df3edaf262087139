"""The full state of a model sharded by FSDP2, in the layout of a plain model's state dicts.

A checkpoint must move freely between FSDP, DDP and one process, so a sharded model's weights
and optimizer state are gathered to their full size (to rank 0, on the CPU) through
`torch.distributed.checkpoint.state_dict`, and the optimizer's state is keyed by parameter
index as `Optimizer.state_dict()` keys it, not by parameter name as that API does. Loading
goes the other way, each rank keeping its own shard of the full state every rank has read.

A model that is not sharded goes through its own `state_dict()`: the functions here are what
`utils.checkpointing.io` calls for every model. torch is imported inside them, so importing
this module stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from utils.helper_functions import unwrap_model

if TYPE_CHECKING:
    import torch


def is_sharded(model: torch.nn.Module) -> bool:
    """Whether `fully_shard` sharded the model (its parameters are DTensors spread over the ranks);
    False at once without a process group, so a single process never imports FSDP."""
    import torch.distributed

    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return False
    from torch.distributed.fsdp import FSDPModule

    return isinstance(unwrap_model(model), FSDPModule)


def _full_options(**extra: bool) -> Any:
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    return StateDictOptions(full_state_dict=True, **extra)


def model_state(model: torch.nn.Module) -> dict[str, Any]:
    """The bare model's weights and buffers under plain keys (no `module.`, `_orig_mod.`).

    Sharded: a collective every rank must call; rank 0 gets the full tensors on the CPU, the
    other ranks an empty dict (they never write the checkpoint).
    """
    if not is_sharded(model):
        return unwrap_model(model).state_dict()
    from torch.distributed.checkpoint.state_dict import get_model_state_dict

    return get_model_state_dict(unwrap_model(model), options=_full_options(cpu_offload=True))


def optimizer_state(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """`optimizer.state_dict()`, or for a sharded model the same layout gathered to rank 0
    (a collective; the other ranks get an empty dict)."""
    if not is_sharded(model):
        return optimizer.state_dict()
    from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

    named = get_optimizer_state_dict(unwrap_model(model), optimizer, options=_full_options(cpu_offload=True))
    if not named:
        return {}
    # Optimizer.state_dict() numbers the parameters through its groups in order
    index = {name: i for i, name in enumerate(name for group in named["param_groups"] for name in group["params"])}
    return {
        "state": {index[name]: state for name, state in named["state"].items()},
        "param_groups": [{**group, "params": [index[name] for name in group["params"]]}
                         for group in named["param_groups"]],
    }


def load_model_state(model: torch.nn.Module, state: dict[str, Any], strict: bool = True) -> None:
    """Load plain weights into the bare model; a sharded one keeps its shard of them (every
    rank calls this with the full state it read from the checkpoint). `strict=False` loads a
    subset (a fine-tuned run's new head keeps its own weights)."""
    if not is_sharded(model):
        unwrap_model(model).load_state_dict(state, strict=strict)
        return
    from torch.distributed.checkpoint.state_dict import set_model_state_dict

    set_model_state_dict(unwrap_model(model), state, options=_full_options(strict=strict))


def load_optimizer_state(model: torch.nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """Load an `Optimizer.state_dict()` layout; for a sharded model its parameter indices are
    named first, since `set_optimizer_state_dict` finds the parameters by name."""
    if not is_sharded(model):
        optimizer.load_state_dict(state)
        return
    from torch.distributed.checkpoint.state_dict import set_optimizer_state_dict

    name_of = {id(parameter): name for name, parameter in unwrap_model(model).named_parameters()}
    names = [name_of[id(p)] for group in optimizer.param_groups for p in group["params"]]
    saved_groups = state["param_groups"]
    if len(saved_groups) != len(optimizer.param_groups) or sum(len(g["params"]) for g in saved_groups) != len(names):
        raise ValueError(
            f"the saved optimizer has {sum(len(g['params']) for g in saved_groups)} parameters in "
            f"{len(saved_groups)} groups, this one {len(names)} in {len(optimizer.param_groups)}"
        )
    named = {
        "state": {names[index]: value for index, value in state["state"].items()},
        "param_groups": [{**group, "params": [names[index] for index in group["params"]]} for group in saved_groups],
    }
    set_optimizer_state_dict(unwrap_model(model), optimizer, named, options=_full_options())
