"""What each `debug` and `profile` mode costs a real training session of the digits example.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_debug_modes.py

Each mode trains the example for 1 epoch (20 optimizer steps, a validation, the test) through
`run_session`, in this process, on one torch thread, with CSV and TensorBoard on. The modes alternate round by round,
so machine load hits all alike; the table gives the median session wall time, its ratio to the
plain session and the extra milliseconds per optimizer step. The debugger's statistics cover
every leaf layer and all four kinds (outputs, their gradients, parameters, their gradients).
"""

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROUNDS, EPOCHS, STEPS = 3, 1, 20  # 1,257 training images, batch 64: 20 steps an epoch
MODES = {
    "plain": [],
    "debug.stats_every=10": ["debug.stats_every=10"],
    "debug.stats_every=1": ["debug.stats_every=1"],
    "debug.nan_guard=stop": ["debug.nan_guard=stop"],
    "profile.torch_steps=[5,8]": ["profile.torch_steps=[5, 8]"],
    "debug.anomaly=true": ["debug.anomaly=true"],
}


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
    started = time.perf_counter()
    result = run_session(Run.require("bench", run), parse_run_config(config), torch.device("cpu"), resume=False)
    assert result.exit_code == 0
    return time.perf_counter() - started


def main() -> int:
    torch.set_num_threads(1)  # tiny tensors: one thread is fastest, and steadier on shared cores
    with tempfile.TemporaryDirectory() as root:
        os.environ["EXPERIMENTS_ROOT"] = str(Path(root) / "experiments")
        train_once("warm-up", [])  # first-session imports and allocations
        times: dict[str, list[float]] = {name: [] for name in MODES}
        for _ in range(ROUNDS):
            for name, overrides in MODES.items():
                times[name].append(train_once(name, overrides))
    base = statistics.median(times["plain"])
    print(f"digits, {EPOCHS} epochs ({STEPS} steps) per session, median of {ROUNDS} rounds, "
          f"{torch.get_num_threads()} torch threads")
    print(f"{'mode':<28}{'session s':>10}{'ratio':>8}{'ms/step':>9}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<28}{median:>10.2f}{median / base:>8.2f}{(median - base) / STEPS * 1e3:>+9.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
