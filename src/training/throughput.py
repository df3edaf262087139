"""The engine's own speed, once an epoch: samples/s, step time, data wait, peak memory, MFU.

Measured without a host sync per step: the clock reads the host's time only, around the
loader's `next()` and at the epoch's two ends, and the global sample count comes from the
all-reduce the epoch's totals already make at its end (`EpochTotals.close`), which also waits
for the device, so the epoch's wall time includes every queued kernel.

    perf/samples_per_s       training samples of every rank per second of rank 0's epoch
    perf/step_ms             wall time per optimizer step
    perf/data_wait_fraction  share of the wall time blocked on the training loader's next()
    perf/peak_memory_mb      torch.cuda.max_memory_allocated on CUDA, else the process's peak RSS
    perf/mfu                 model FLOPs utilisation, only when the task declares
                             `flops_per_sample` and the GPU's peak for the precision is known

The wall time is the training part of the epoch (evaluation and checkpoints excluded). After a
resume part-way through an epoch only the samples and steps of this session count.
"""

import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

# Dense peak FLOP/s of one GPU by the name torch reports, per training precision (fp32 without
# TF32). The first key contained in the device name wins, so longer names come first.
GPU_PEAK_FLOPS: dict[str, dict[str, float]] = {
    "H200": {"bf16": 989e12, "fp16": 989e12, "fp32": 67e12},
    "H100 PCIe": {"bf16": 756e12, "fp16": 756e12, "fp32": 51e12},
    "H100": {"bf16": 989e12, "fp16": 989e12, "fp32": 67e12},
    "A100": {"bf16": 312e12, "fp16": 312e12, "fp32": 19.5e12},
    "A10G": {"bf16": 70e12, "fp16": 70e12, "fp32": 31.2e12},
    "L40S": {"bf16": 362e12, "fp16": 362e12, "fp32": 91.6e12},
    "L4": {"bf16": 121e12, "fp16": 121e12, "fp32": 30.3e12},
    "RTX 4090": {"bf16": 165e12, "fp16": 165e12, "fp32": 82.6e12},
    "RTX 3090": {"bf16": 71e12, "fp16": 71e12, "fp32": 35.6e12},
    "V100": {"fp16": 125e12, "fp32": 15.7e12},
    "T4": {"fp16": 65e12, "fp32": 8.1e12},
}


def peak_flops(device: torch.device, precision: str) -> float | None:
    """The device's dense peak FLOP/s in `precision` ("bf16", "fp16", "fp32"); None when unknown
    (every CPU, a GPU missing from GPU_PEAK_FLOPS, a precision that GPU has no peak for)."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, peaks in GPU_PEAK_FLOPS.items():
        if key in name:
            return peaks.get(precision)
    return None


def model_flops_utilization(samples_per_s: float, flops_per_sample: float, peak_per_device: float,
                            world_size: int) -> float:
    """Achieved training FLOP/s over the peak of every device: samples/s x FLOPs per sample
    (forward and backward) / (peak x devices)."""
    return samples_per_s * flops_per_sample / (peak_per_device * world_size)


def peak_memory_mb(device: torch.device) -> float | None:
    """The process's peak memory so far in MiB: allocated tensors on CUDA, resident set elsewhere
    (None where `resource` does not exist, on Windows)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


@dataclass(frozen=True)
class EpochPerf:
    """One epoch's figures, as logged and as shown on the epoch line."""

    samples_per_s: float
    step_ms: float
    data_wait_fraction: float
    peak_memory_mb: float | None
    mfu: float | None

    def metrics(self) -> dict[str, float]:
        """The `perf/*` values to log; memory and MFU only where they are known."""
        values = {"perf/samples_per_s": self.samples_per_s, "perf/step_ms": self.step_ms,
                  "perf/data_wait_fraction": self.data_wait_fraction}
        if self.peak_memory_mb is not None:
            values["perf/peak_memory_mb"] = self.peak_memory_mb
        if self.mfu is not None:
            values["perf/mfu"] = self.mfu
        return values

    def line(self) -> str:
        """`1,234 samples/s, data 3%` for the epoch line."""
        return f"{self.samples_per_s:,.0f} samples/s, data {self.data_wait_fraction:.0%}"


class EpochMeter:
    """Times one training epoch on the host: created at its start, `next()` wraps the loader."""

    def __init__(self, global_step: int, resumed_samples: int = 0) -> None:
        self.first_step, self.resumed_samples = global_step, resumed_samples
        self.data_wait = 0.0
        self.started = time.perf_counter()

    def next(self, batches: Iterator[Any]) -> Any:
        """`next(batches)`, adding the time it blocked to the data wait."""
        start = time.perf_counter()
        try:
            return next(batches)
        finally:
            self.data_wait += time.perf_counter() - start

    def finish(self, global_step: int, global_samples: int, *, device: torch.device, precision: str,
               flops_per_sample: float | None, world_size: int) -> EpochPerf:
        """The epoch's figures, once its totals are reduced (`global_samples`: every rank's
        samples of the epoch, those trained before a resume included)."""
        wall = max(time.perf_counter() - self.started, 1e-9)
        samples_per_s = (global_samples - self.resumed_samples) / wall
        steps = max(global_step - self.first_step, 1)
        peak = peak_flops(device, precision) if flops_per_sample is not None else None
        mfu = None if peak is None else model_flops_utilization(samples_per_s, flops_per_sample, peak, world_size)
        return EpochPerf(samples_per_s, wall * 1000 / steps, self.data_wait / wall, peak_memory_mb(device), mfu)
