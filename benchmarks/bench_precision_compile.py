"""Training throughput of the example in each `training.precision` and with `training.compile`.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_precision_compile.py

Runs the example's training step (digits CNN, batch 64, AdamW, grad clipping) through the
engine's own pieces, `training.precision.MixedPrecision` (autocast, backward, optimizer step)
and `torch.compile` as the session applies it, in four ways: fp32 eager, bf16 eager, fp32
compiled and bf16 compiled. Each way builds its model once and trains one warm-up epoch (for a
compiled model, that is where it compiles; the time is printed). Then, in interleaved rounds,
each way trains the same number of epochs back to back, and its ratio to fp32 eager is taken
within the round so that the drift of a shared machine cancels; it prints the median steps per
second and the median of the per-round ratios. fp16 is CUDA only and not measured on the CPU.
"""

import shutil
import statistics
import time
from dataclasses import dataclass

from scratch import make_scratch

SCRATCH = make_scratch("bench_precision_compile_")

import torch  # noqa: E402
from torch import nn  # noqa: E402

from tasks.digits import DigitsTask  # noqa: E402
from training.compiling import check_compile  # noqa: E402
from training.data_loading import Loaders, LoaderConfig, build_loaders, close_loaders  # noqa: E402
from training.optim import OptimizerConfig, build_optimizer  # noqa: E402
from training.precision import MixedPrecision, Precision  # noqa: E402
from training.run_config import RunSettings, parse_run_config  # noqa: E402
from training.task import TaskContext  # noqa: E402
from training.trainer_config import TrainingConfig  # noqa: E402
from utils.configs import load_config_template  # noqa: E402
from utils.errors import ConfigValueError  # noqa: E402

ROUNDS = 7
EPOCHS_PER_ROUND = 3
DEVICE = torch.device("cpu")
CONFIG = parse_run_config(load_config_template("default"))


@dataclass
class Way:
    """One way to train: its model (compiled or not), optimizer, precision and data."""

    task: DigitsTask
    model: nn.Module
    optimizer: torch.optim.Optimizer
    precision: MixedPrecision
    loaders: Loaders
    epoch: int = 0

    def train_epochs(self, epochs: int) -> float:
        """Train `epochs` epochs; steps per second."""
        clip, steps = CONFIG[TrainingConfig].grad_clip, 0
        start = time.perf_counter()
        for _ in range(epochs):
            self.loaders.train_sampler.set_epoch(self.epoch)
            self.epoch += 1
            for batch in self.loaders.train:
                self.optimizer.zero_grad(set_to_none=True)
                with self.precision.autocast():
                    output = self.task.train_step(self.model, batch)
                self.precision.backward(output.loss)
                self.precision.unscale(self.optimizer)
                nn.utils.clip_grad_norm_(self.model.parameters(), clip)
                self.precision.step(self.optimizer)
                steps += 1
        return steps / (time.perf_counter() - start)


def make_way(precision: Precision, compiled: bool) -> Way:
    """A fresh model, optimizer and loader, seeded the same for every way."""
    torch.manual_seed(0)
    seed = CONFIG[RunSettings].seed
    task = DigitsTask(TaskContext(config=CONFIG.parsed, seed=seed, device=DEVICE))
    loaders = build_loaders(task.build_datasets(), CONFIG[LoaderConfig], seed)
    model = task.build_model().to(DEVICE)
    if compiled:
        model = torch.compile(model)
    optimizer = build_optimizer(model, CONFIG[OptimizerConfig])
    return Way(task, model, optimizer, MixedPrecision(precision, DEVICE), loaders)


def can_compile() -> bool:
    try:
        check_compile(DEVICE)
    except ConfigValueError as error:
        print(f"compiled ways skipped: {error}")
        return False
    return True


def main() -> None:
    names = [("fp32 eager", "fp32", False), ("bf16 eager", "bf16", False)]
    if can_compile():
        names += [("fp32 compiled", "fp32", True), ("bf16 compiled", "bf16", True)]
    ways: dict[str, Way] = {}
    for name, precision, compiled in names:
        way = make_way(precision, compiled)
        start = time.perf_counter()
        way.train_epochs(1)  # warm-up: allocator, thread pools; the compile of a compiled model
        if compiled:
            seconds = time.perf_counter() - start
            print(f"{name}: first epoch (compiling, or loading inductor's cache) took {seconds:.1f} s")
        ways[name] = way
    speeds: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(ROUNDS):
        for name, way in ways.items():
            speeds[name].append(way.train_epochs(EPOCHS_PER_ROUND))
    base = speeds["fp32 eager"]
    steps = EPOCHS_PER_ROUND * len(ways["fp32 eager"].loaders.train)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU; {ROUNDS} rounds x "
          f"{EPOCHS_PER_ROUND} epochs ({steps} steps) of the example (batch 64) per way")
    print(f"{'way':16s} {'steps/s':>9s} {'min':>8s} {'max':>8s} {'vs fp32 eager':>14s}")
    for name, samples in speeds.items():
        ratio = statistics.median(s / b for s, b in zip(samples, base))
        print(f"{name:16s} {statistics.median(samples):9.1f} {min(samples):8.1f} {max(samples):8.1f} {ratio:14.3f}")
    for way in ways.values():
        close_loaders(way.loaders)


if __name__ == "__main__":
    try:
        main()
    finally:
        shutil.rmtree(SCRATCH, ignore_errors=True)
