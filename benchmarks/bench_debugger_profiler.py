"""Cost of the model debugger and the profiler, next to their anchors.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_debugger_profiler.py

1. Forward+backward of the example CNN (batch of 64 random 1x8x8 images): plain, with the
   debugger's statistics on every layer (outputs, gradients, parameters, parameter gradients),
   every 10 steps, and after detach. Configurations alternate round by round so machine load hits all alike.
   Targets: statistics <= 1.5x plain, detached 1.0x.
2. Cost per profiler section, enabled and disabled, beside `contextlib.nullcontext` and
   Lightning's `SimpleProfiler` when installed. Targets: <= 2 us enabled, <= 0.3 us disabled.
"""

import contextlib
import copy
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from tasks.digits import DigitsTask
from training.run_config import parse_run_config
from training.task import TaskContext
from utils.configs import load_config_template
from utils.model_debugger import ModelDebugger
from utils.profiler import Profiler

CONFIG = load_config_template("default")
ROUNDS, STEPS_PER_ROUND = 20, 3
SECTIONS, REPEATS = 100_000, 7


def train_step(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> None:
    model.zero_grad(set_to_none=True)
    nn.functional.cross_entropy(model(images), labels).backward()


def time_steps(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, steps: int = STEPS_PER_ROUND) -> float:
    """Seconds per step over `steps` steps."""
    start = time.perf_counter()
    for _ in range(steps):
        train_step(model, images, labels)
    return (time.perf_counter() - start) / steps


def build_example_model() -> nn.Module:
    """The digits task's CNN with the default config."""
    config = parse_run_config(CONFIG).parsed
    return DigitsTask(TaskContext(config=config, seed=0, device=torch.device("cpu"))).build_model()


def bench_debugger() -> list[tuple[str, float, float, str]]:
    torch.manual_seed(0)
    plain = build_example_model()
    debugged = copy.deepcopy(plain)
    images, labels = torch.randn(64, 1, 8, 8), torch.randint(0, 10, (64,))
    for model in (plain, debugged):
        for _ in range(5):
            train_step(model, images, labels)
    times: dict[str, list[float]] = {"plain": [], "stats on every layer": [], "stats every 10 steps": [],
                                     "after detach": []}
    for _ in range(ROUNDS):
        times["plain"].append(time_steps(plain, images, labels))
        with ModelDebugger(debugged):  # default: every leaf, all kinds, on-device statistics
            times["stats on every layer"].append(time_steps(debugged, images, labels))
        with ModelDebugger(debugged, mode="every", every=10):
            times["stats every 10 steps"].append(time_steps(debugged, images, labels, steps=10))
        times["after detach"].append(time_steps(debugged, images, labels))
    base = statistics.median(times["plain"])
    targets = {"plain": "", "stats on every layer": "<= 1.5x", "stats every 10 steps": "",
               "after detach": "1.0x"}
    return [(name, statistics.median(values) * 1e3, statistics.median(values) / base, targets[name])
            for name, values in times.items()]


def per_call_us(run: Callable[[int], None]) -> float:
    """Median cost in microseconds of one section, from `run(n)` timing n sections minus an
    empty loop of n iterations."""
    def empty(n: int) -> None:
        for _ in range(n):
            pass

    def seconds(loop: Callable[[int], None]) -> float:
        start = time.perf_counter()
        loop(SECTIONS)
        return time.perf_counter() - start

    return statistics.median((seconds(run) - seconds(empty)) / SECTIONS * 1e6 for _ in range(REPEATS))


def sections_of(section: Callable[[str], contextlib.AbstractContextManager]) -> Callable[[int], None]:
    """A loop entering and leaving `section("step")` n times, as user code would write it."""
    def run(n: int) -> None:
        for _ in range(n):
            with section("step"):
                pass

    return run


def load_simple_profiler() -> type | None:
    """Lightning's SimpleProfiler class, from either package name, or None when not installed."""
    for module in ("lightning.pytorch.profilers", "pytorch_lightning.profilers"):
        with contextlib.suppress(ImportError):
            return __import__(module, fromlist=["SimpleProfiler"]).SimpleProfiler
    return None


def bench_profiler() -> list[tuple[str, float, str]]:
    null = contextlib.nullcontext()
    rows = [
        ("Profiler section, enabled", per_call_us(sections_of(Profiler().section)), "<= 2 us"),
        ("Profiler section, disabled", per_call_us(sections_of(Profiler(enabled=False).section)), "<= 0.3 us"),
        ("contextlib.nullcontext (anchor)", per_call_us(sections_of(lambda name: null)), "lambda call + with"),
    ]
    simple_profiler = load_simple_profiler()
    if simple_profiler is None:
        rows.append(("Lightning SimpleProfiler", float("nan"), "skipped: Lightning is not installed"))
    else:
        rows.append(("Lightning SimpleProfiler (anchor)", per_call_us(sections_of(simple_profiler().profile)), ""))
    return rows


def main() -> None:
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU")
    print(f"\nExample CNN forward+backward, batch 64, median of {ROUNDS} rounds x {STEPS_PER_ROUND} steps")
    print(f"{'configuration':<24}{'ms/step':>10}{'ratio':>8}  target")
    for name, ms, ratio, target in bench_debugger():
        print(f"{name:<24}{ms:>10.2f}{ratio:>7.2f}x  {target}")
    print(f"\nCost per section (enter+exit), median of {REPEATS} x {SECTIONS:,} calls")
    print(f"{'profiler':<34}{'us/section':>11}  target / note")
    for name, us, note in bench_profiler():
        print(f"{name:<34}{us:>11.3f}  {note}")


if __name__ == "__main__":
    main()
