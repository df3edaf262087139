"""Which rank this process is: pure reads of the process group or torchrun's environment.

The library (the Logger writes on rank 0 only) and the engine both ask these questions, and
`utils` never imports `training`, so the queries live here. What acts on the process group
(join, wait for every rank, reduce, leave) is the engine's job: `training.distributed`.
Reading never imports torch: `torch.distributed` is looked up only once something imported it.
"""

import os
import sys


def _dist_initialized() -> bool:
    dist = sys.modules.get("torch.distributed")
    return bool(dist is not None and dist.is_available() and dist.is_initialized())


def is_distributed() -> bool:
    """True inside an initialised process group or a torchrun launch (WORLD_SIZE > 1)."""
    return _dist_initialized() or int(os.environ.get("WORLD_SIZE", "1")) > 1


def get_rank() -> int:
    """Global rank: from the process group when initialised, else `RANK`, else 0."""
    if _dist_initialized():
        return sys.modules["torch.distributed"].get_rank()
    return int(os.environ.get("RANK", "0"))


def local_rank() -> int:
    """Rank on this node (`LOCAL_RANK` set by torchrun), 0 when not distributed."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def get_world_size() -> int:
    """Number of processes: from the process group when initialised, else `WORLD_SIZE`, else 1."""
    if _dist_initialized():
        return sys.modules["torch.distributed"].get_world_size()
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    """True on global rank 0 (and in every non-distributed process)."""
    return get_rank() == 0
