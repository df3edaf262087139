"""A session's claim on its run under torchrun: rank 0 takes the run's lock, every rank learns
the outcome, so that all of them go on or all of them exit (none waits for ever on a peer)."""

import torch

from training.distributed import all_reduce_sum
from utils.distributed_info import is_main_process
from utils.errors import RunBusyError, RunIOError, RunLinkError, TemplateError
from utils.runs.run import Run
from utils.run_guard import RunLock, claim_run

_CLAIMED, _BUSY, _REFUSED, _UNWRITABLE = range(4)  # what rank 0 tells the other ranks


def claim_on_every_rank(run: Run, device: torch.device) -> RunLock | None:
    """Rank 0 locks the run; one all-reduce tells every rank the outcome, so all exit alike.

    Returns the lock on rank 0 (None on the others). Each rank raises the error: rank 0 its
    own, the others one naming the pid that holds the run, or pointing at rank 0's message.
    """
    lock, failure, outcome, holder = None, None, _CLAIMED, 0
    if is_main_process():
        try:
            lock = claim_run(run)
        except RunBusyError as error:
            failure, outcome, holder = error, _BUSY, error.pid
        except TemplateError as error:  # a link out of the run
            failure, outcome = error, _REFUSED
        except RunIOError as error:  # a read-only or full disk
            failure, outcome = error, _UNWRITABLE
    outcome, holder = all_reduce_sum(torch.tensor([outcome, holder], device=device)).tolist()
    if failure is not None:
        raise failure
    if outcome == _BUSY:
        raise RunBusyError(f"run {run.name} is in use by another training session (pid {holder}); nothing was changed")
    if outcome != _CLAIMED:
        error_type = RunLinkError if outcome == _REFUSED else RunIOError
        raise error_type(f"rank 0 could not claim run {run.name}; its message says why")
    return lock
