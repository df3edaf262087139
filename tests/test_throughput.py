"""training.throughput: the epoch meter's arithmetic, the peak table and MFU, on the CPU."""

import pytest
import torch

import training.throughput as throughput
from training.throughput import EpochMeter, model_flops_utilization, peak_flops


class TickingClock:
    """perf_counter that advances one second per reading: every duration is a count of reads."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def _fake_a100(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA A100-SXM4-80GB")
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device=None: 3 * 2**30)


def test_the_meter_reports_samples_per_second_step_time_and_the_data_wait(monkeypatch):
    monkeypatch.setattr(throughput.time, "perf_counter", TickingClock())
    meter = EpochMeter(global_step=10, resumed_samples=100)  # clock 1
    assert meter.next(iter([7])) == 7  # clock 2 and 3: one second blocked on the loader
    perf = meter.finish(14, 500, device=torch.device("cpu"), precision="fp32", flops_per_sample=1e9, world_size=2)
    # clock 4: 3 s of wall time, 4 steps, 400 samples trained in this session (100 before the resume)
    assert perf.samples_per_s == pytest.approx(400 / 3)
    assert perf.step_ms == pytest.approx(3000 / 4)
    assert perf.data_wait_fraction == pytest.approx(1 / 3)
    assert perf.mfu is None and "perf/mfu" not in perf.metrics(), "no peak is known for a CPU"
    assert perf.metrics()["perf/peak_memory_mb"] > 0  # the peak RSS
    assert perf.line() == "133 samples/s, data 33%"


def test_mfu_is_achieved_flops_over_the_peak_of_every_device(monkeypatch):
    _fake_a100(monkeypatch)
    cuda = torch.device("cuda", 0)
    assert peak_flops(cuda, "bf16") == 312e12 and peak_flops(cuda, "fp32") == 19.5e12
    assert model_flops_utilization(1000.0, 6e9, 312e12, world_size=2) == pytest.approx(6e12 / 624e12)
    monkeypatch.setattr(throughput.time, "perf_counter", TickingClock())
    perf = EpochMeter(0).finish(2, 3000, device=cuda, precision="bf16", flops_per_sample=6e9, world_size=2)
    assert perf.metrics()["perf/mfu"] == pytest.approx(3000 * 6e9 / (2 * 312e12))  # 3000 samples in 1 s
    assert perf.metrics()["perf/peak_memory_mb"] == 3 * 1024  # max_memory_allocated on CUDA


def test_no_mfu_without_flops_per_sample_or_a_known_peak(monkeypatch):
    _fake_a100(monkeypatch)
    cuda = torch.device("cuda", 0)
    assert EpochMeter(0).finish(1, 10, device=cuda, precision="bf16", flops_per_sample=None, world_size=1).mfu is None
    assert peak_flops(torch.device("cpu"), "fp32") is None
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Some Future GPU")
    assert peak_flops(cuda, "bf16") is None
