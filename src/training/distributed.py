"""What acts on the process group: join it under torchrun, wait for every rank, reduce, leave.

Without torchrun (no WORLD_SIZE > 1 in the environment) everything here is a no-op, so the
same script runs on one CPU and on many GPUs. Which rank this process is (pure reads the
library needs too, and `utils` never imports `training`) lives in `utils.distributed_info`.
"""

import gc
import os
from datetime import timedelta

import torch
import torch.distributed as dist

from training.hang_watchdog import WATCHDOG
from utils.distributed_info import is_distributed, local_rank


def init_distributed(device: torch.device) -> bool:
    """Join the process group torchrun describes (NCCL on CUDA, gloo otherwise)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return dist.is_initialized()
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(local_rank())
    dist.init_process_group(backend=backend, timeout=timedelta(minutes=10))
    return True


def destroy_distributed(together: bool = True) -> None:
    """Leave the process group; with `together`, only once every rank has come this far.

    Without that barrier a rank that finished early (rank 1, while rank 0 still writes its
    report) tore its gloo group down under a peer still connected to it, and about one run in
    16 aborted at exit ("terminate called without an active exception", exit -6). A failing
    session passes `together=False`: its peers may never arrive.

    The caller drops its DDP model first, and the collection here frees it: its Reducer holds the
    gloo group, and when the Reducer was the group's last holder (freed after the group left the
    registry), the group's destructor joined gloo's threads holding the GIL while one of them
    waited for the GIL to free a tensor: the rank hung at exit (twice in two runs of the torchrun
    tests once their workers started fast). Freed from the registry instead, the group lets go of
    the GIL first.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return
    gc.collect()
    if together:
        with WATCHDOG.agreement("the barrier before leaving"):
            dist.barrier()
    dist.destroy_process_group()


def barrier(where: str = "a barrier") -> None:
    """Wait for every rank; a no-op without an initialised process group. `where` names it for
    the hang watchdog."""
    if dist.is_available() and dist.is_initialized():
        with WATCHDOG.agreement(where):
            dist.barrier()


def all_reduce_sum(values: torch.Tensor, where: str = "an all-reduce") -> torch.Tensor:
    """Sum a tensor over ranks (returned unchanged in a single process); `where` names the
    agreement for the hang watchdog."""
    if is_distributed() and dist.is_initialized():
        with WATCHDOG.agreement(where):
            dist.all_reduce(values, op=dist.ReduceOp.SUM)
            if values.is_cuda:  # NCCL returns at once: wait here, where the watchdog times it
                torch.cuda.synchronize(values.device)
    return values


def any_rank(flag: bool, device: torch.device, where: str = "a stop vote") -> bool:
    """True when `flag` is true on at least one rank (e.g. a stop signal reached one worker).

    A collective and a host read: the loop calls it once per epoch, not per step.
    """
    if not (is_distributed() and dist.is_initialized()):
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    with WATCHDOG.agreement(where):
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())
