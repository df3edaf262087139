"""A training epoch's sums on the device, reduced over ranks once at its end (or at a stop)."""

from typing import Any

import torch

from training.distributed import all_reduce_sum
from training.task import StepOutput


class EpochTotals:
    """Sums of a training epoch on the device (no host sync per step), averaged at its end.

    A stop part-way saves them in the checkpoint and a resume goes on from them, so the epoch's
    means count every batch of it, not only those after the resume.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.sums: dict[str, torch.Tensor] = {}
        self.count = 0
        self.global_count = 0  # set by close()

    def add(self, output: StepOutput) -> None:
        for name, value in {"loss": output.loss, **output.metrics}.items():
            weighted = value.detach().float() * output.count
            self.sums[name] = self.sums[name] + weighted if name in self.sums else weighted
        self.count += output.count

    def state_dict(self) -> dict[str, Any]:
        """Every rank's sums and count so far, added up, as CPU tensors and an int (weights_only
        loads them): one all-reduce, so every rank calls it at the same step."""
        names = list(self.sums)
        count = torch.tensor(float(self.count), device=self.device)
        totals = all_reduce_sum(torch.stack([*(self.sums[n].float() for n in names), count]), "the stop's epoch totals").cpu()
        return {"sums": {name: totals[i].clone() for i, name in enumerate(names)}, "count": int(totals[-1].item())}

    def load_state_dict(self, state: dict[str, Any], main: bool) -> None:
        """Go on from saved totals: the main rank takes them (they hold every rank's), the others
        start from zeros under the same names, since every rank stacks the same names."""
        self.sums = {
            name: value.to(self.device) if main else torch.zeros_like(value, device=self.device)
            for name, value in state["sums"].items()
        }
        self.count = int(state["count"]) if main else 0

    def agree(self, stop: bool) -> tuple[bool, float]:
        """(whether any rank asked to stop, the running loss over every rank): one all-reduce, one read."""
        count = torch.tensor(float(self.count), device=self.device)
        flag = torch.tensor(float(stop), device=self.device)
        loss = self.sums["loss"] if self.sums else torch.zeros((), device=self.device)
        stop_votes, loss_sum, total = all_reduce_sum(torch.stack([flag, loss.float(), count]), "a stop check").tolist()
        return stop_votes > 0, loss_sum / max(total, 1.0)

    def close(self, stop: bool) -> tuple[bool, dict[str, float]]:
        """At the epoch's end: (whether any rank asked to stop, the means over every rank's
        samples), from one all-reduce and one host read."""
        names = list(self.sums)
        flag = torch.tensor(float(stop), device=self.device)
        count = torch.tensor(float(self.count), device=self.device)
        totals = all_reduce_sum(torch.stack([flag, *(self.sums[n].float() for n in names), count]), "the epoch's end").tolist()
        samples = totals[-1]
        self.global_count = int(samples)  # every rank's samples of the epoch (training.throughput reads it)
        means = {name: total / samples for name, total in zip(names, totals[1:-1])} if samples else {}
        return totals[0] > 0, means
