"""The training loop never makes the host wait for the device between agreement points.

On the CPU every read is cheap, so the test counts them: a blocking read (`.item()`,
`.tolist()`, `bool(t)`, `float(t)`) from our code on the training thread, during the epochs,
is a host-device sync on a GPU. Reads inside torch (AdamW's CPU step counters) are not.
"""

import json
import sys
import threading
from collections import Counter

import pytest
import torch

import test_engine_toy_task  # noqa: F401  (registers the toy task)
from test_engine_toy_task import CONFIG
from training import trainer as trainer_module
from training.run_config import parse_run_config
from training.session import run_session
from utils.log.values import to_number
from utils.management import create_run
from utils.runs.run import Run

READS = ("item", "tolist", "__bool__", "__float__")


@pytest.fixture
def counted_reads(monkeypatch):
    """Counts of reads from code outside torch on this thread while `train_epoch` runs."""
    counts: Counter = Counter()
    state = {"on": False}
    thread = threading.get_ident()

    def counting(name, original):
        def wrapper(self, *args, **kwargs):
            caller = sys._getframe(1).f_globals.get("__name__", "")
            if state["on"] and threading.get_ident() == thread and not caller.startswith("torch"):
                counts[f"{caller}:{sys._getframe(1).f_code.co_name}"] += 1
            return original(self, *args, **kwargs)
        return wrapper

    for name in READS:
        monkeypatch.setattr(torch.Tensor, name, counting(name, getattr(torch.Tensor, name)))
    original_epoch = trainer_module.Trainer.train_epoch

    def epoch(self):
        state["on"] = True
        try:
            return original_epoch(self)
        finally:
            state["on"] = False

    monkeypatch.setattr(trainer_module.Trainer, "train_epoch", epoch)
    return counts


def test_an_epoch_reads_the_device_once_at_its_end_and_logging_reads_nothing(counted_reads):
    config = json.loads(json.dumps(CONFIG))
    config["training"]["epochs"] = 3
    create_run("sync", "toy", config)
    run = Run.require("sync", "toy")
    result = run_session(run, parse_run_config(config), torch.device("cpu"), resume=False)
    assert result.exit_code == 0
    cpu_logging_reads = counted_reads.pop("utils.log.values:to_number", 0)
    assert cpu_logging_reads == 3 * 20, "a CPU loss is read at once; on a GPU it is queued instead"
    assert counted_reads == {"training.epoch_totals:close": 3}, "one read per epoch, at its end"


class OffCpuTensor(torch.Tensor):
    """Stands in for a GPU tensor on a CPU-only machine: not on the CPU, and any read raises."""

    @property
    def is_cpu(self) -> bool:
        return False

    def _read(self, *args, **kwargs):
        raise AssertionError("logging read a device tensor on the caller's thread")

    item = tolist = numpy = cpu = __float__ = __int__ = __bool__ = _read


def test_logging_a_tensor_that_is_not_on_the_cpu_reads_nothing():
    off_cpu = torch.tensor(2.5).as_subclass(OffCpuTensor)
    queued = to_number("train/loss", off_cpu)  # a read of off_cpu would raise
    assert isinstance(queued, torch.Tensor) and queued.shape == ()
    assert queued.data_ptr() != off_cpu.data_ptr(), "a copy: a later in-place update cannot change it"
