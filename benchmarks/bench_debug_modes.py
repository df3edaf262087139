"""What each `debug` and `profile` mode costs the digits example: per step, and per session.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_debug_modes.py

1. Per step: the engine's hooks (`training.debugging.RunInspector`) around forward and backward of
   the example CNN on a batch of 64, then its AdamW step, logging to CSV and TensorBoard; steps
   numbered on, so `stats_every=10` measures one step in ten. Milliseconds per step (median over
   rounds) and the ratio to plain steps.
2. Per session: each mode trains the example for 1 epoch (20 optimizer steps, a validation, the test) through
`run_session`, in this process, on one torch thread, with CSV and TensorBoard on. The modes alternate round by round,
so machine load hits all alike; the table gives the median session wall time, its ratio to the
plain session, wall and CPU (CPU time counts the logging thread too, and is steadier than wall
time on a shared machine). The debugger's statistics cover every leaf layer and all four kinds
(outputs, their gradients, parameters, their gradients).
"""

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROUNDS, EPOCHS, STEPS = 5, 1, 20  # 1,257 training images, batch 64: 20 steps an epoch
STEP_ROUNDS, STEPS_PER_ROUND = 7, 20
STEP_MODES = {
    "plain": {},
    "debug.stats_every=10": {"stats_every": 10},
    "debug.stats_every=1": {"stats_every": 1},
    "debug.nan_guard=stop": {"nan_guard": "stop"},
    "debug.anomaly=true": {"anomaly": True},
}
MODES = {
    "plain": [],
    "debug.stats_every=10": ["debug.stats_every=10"],
    "debug.stats_every=1": ["debug.stats_every=1"],
    "debug.nan_guard=stop": ["debug.nan_guard=stop"],
    "profile.torch_steps=[5,8]": ["profile.torch_steps=[5, 8]"],
    "debug.anomaly=true": ["debug.anomaly=true"],
}


def time_steps(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, debug: dict, first: int,
) -> tuple[float, float]:
    """(wall, CPU) seconds per step of `STEPS_PER_ROUND` steps from global step `first` with the
    inspector `debug` asks for (logged steps must not decrease, so each round goes on from the last)."""
    from training.debugging import DebugConfig, RunInspector

    images, labels = torch.randn(64, 1, 8, 8), torch.randint(0, 10, (64,))
    inspector = RunInspector(DebugConfig(**debug), None, model, torch.device("cpu"))
    started, cpu = time.perf_counter(), time.process_time()
    for step in range(first, first + STEPS_PER_ROUND):
        optimizer.zero_grad(set_to_none=True)
        with inspector.micro_batch(step, first=True):
            torch.nn.functional.cross_entropy(model(images), labels).backward()
        inspector.before_optimizer(step)
        optimizer.step()
    elapsed = (time.perf_counter() - started) / STEPS_PER_ROUND, (time.process_time() - cpu) / STEPS_PER_ROUND
    inspector.close()
    return elapsed


def step_table() -> None:
    from tasks.digits import DigitsTask
    from training.run_config import parse_run_config
    from training.task import TaskContext
    from utils.configs import load_config_template
    from utils.logging import Logger

    config = parse_run_config(load_config_template("default")).parsed
    model = DigitsTask(TaskContext(config=config, seed=0, device=torch.device("cpu"))).build_model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    logger = Logger("bench", f"steps-{time.time_ns()}")
    logger.start_writers({"csv": True, "tensorboard": True, "wandb": False})
    time_steps(model, optimizer, {"stats_every": 1}, 0)  # warm-up
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in STEP_MODES}
    for round_ in range(STEP_ROUNDS):
        for index, (name, debug) in enumerate(STEP_MODES.items()):
            first = (1 + round_ * len(STEP_MODES) + index) * STEPS_PER_ROUND
            times[name].append(time_steps(model, optimizer, debug, first))
    logger.finish()
    print(f"1. per step: digits CNN, batch 64, forward + backward + AdamW, median of {STEP_ROUNDS} rounds "
          f"of {STEPS_PER_ROUND} steps")
    print_table(times)


def print_table(times: dict[str, list[tuple[float, float]]]) -> None:
    """Median wall and CPU seconds of each mode, and their ratios to plain."""
    wall = {name: statistics.median(t[0] for t in values) for name, values in times.items()}
    cpu = {name: statistics.median(t[1] for t in values) for name, values in times.items()}
    print(f"{'mode':<28}{'wall ms':>9}{'ratio':>8}{'cpu ms':>9}{'ratio':>8}")
    for name in times:
        print(f"{name:<28}{wall[name] * 1e3:>9.1f}{wall[name] / wall['plain']:>8.2f}"
              f"{cpu[name] * 1e3:>9.1f}{cpu[name] / cpu['plain']:>8.2f}")


def train_once(name: str, overrides: list[str]) -> float:
    """Wall seconds of one session of the digits example with `overrides`."""
    from training.run_config import parse_run_config
    from training.session import run_session
    from utils.configs import apply_overrides, load_config_template
    from utils.management import create_run
    from utils.runs.run import Run

    quiet = [f"training.epochs={EPOCHS}", "training.draw_every=null", "logging.wandb=false"]
    config = apply_overrides(load_config_template("default"), [*quiet, *overrides])
    run = f"{name.replace('=', '-').replace('[', '').replace(']', '').replace(',', '-')}-{time.time_ns()}"
    create_run("bench", run, config)
    started, cpu = time.perf_counter(), time.process_time()
    result = run_session(Run.require("bench", run), parse_run_config(config), torch.device("cpu"), resume=False)
    assert result.exit_code == 0
    return time.perf_counter() - started, time.process_time() - cpu


def main() -> int:
    torch.set_num_threads(1)  # tiny tensors: one thread is fastest, and steadier on shared cores
    with tempfile.TemporaryDirectory() as root:
        os.environ["EXPERIMENTS_ROOT"] = str(Path(root) / "experiments")
        step_table()
        train_once("warm-up", [])  # first-session imports and allocations
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in MODES}
        for _ in range(ROUNDS):
            for name, overrides in MODES.items():
                times[name].append(train_once(name, overrides))
    print(f"2. per session: digits, {EPOCHS} epoch ({STEPS} steps, a validation, the test), median of "
          f"{ROUNDS} rounds, {torch.get_num_threads()} torch thread")
    print_table(times)
    return 0


if __name__ == "__main__":
    sys.exit(main())
