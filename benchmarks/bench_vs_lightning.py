"""The digits example end to end: `02_train.py` against a Lightning `Trainer`, as whole processes.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_vs_lightning.py
    BENCH_VS_LIGHTNING=2x3 PYTHONPATH=src .venv/bin/python benchmarks/bench_vs_lightning.py  # 2 pairs, 3 epochs

Each pair runs ours, then Lightning (`lightning_digits.py`: the same split, model, AdamW,
warm-up and cosine schedule, batch, epochs, per-epoch validation, CSV and TensorBoard loggers,
checkpoint cadence and a test of the best checkpoint at the end), A B A B, so that a shared
machine's drift falls on both. Ours runs `config/default.json` with W&B and drawings off, as
Lightning has neither; `01_initialize.py` runs before the clock starts. For each process it
prints the wall time, its CPU time (user + system) and its peak RSS, from `os.wait4` on that
child alone, the ratios ours/Lightning pair by pair, and the medians. Default: 5 pairs of 15
epochs (`BENCH_VS_LIGHTNING=PAIRSxEPOCHS` shrinks it).
"""

import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from scratch import REPO, make_scratch

SCRATCH = make_scratch("bench_vs_lightning_")
PAIRS, EPOCHS = (int(n) for n in os.environ.get("BENCH_VS_LIGHTNING", "5x15").split("x"))
LIGHTNING = Path(__file__).resolve().parent / "lightning_digits.py"


@dataclass(frozen=True)
class Usage:
    wall: float  # seconds
    cpu: float  # seconds, user + system, of the process itself
    peak_mib: float  # peak resident set


def measure(command: list[str]) -> Usage:
    """Run `command` to completion; its wall time, CPU time and peak RSS (Linux: ru_maxrss in KiB)."""
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{command} failed ({process.returncode}):\n{output.decode()[-3000:]}")
    return Usage(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def ours(pair: int) -> Usage:
    run = f"pair-{pair}"
    subprocess.run(
        [sys.executable, "src/01_initialize.py", "-e", "vs", "-r", run, "--set", f"training.epochs={EPOCHS}",
         "--set", "logging.wandb=false", "--set", "training.draw_every=null"],
        cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO / "src")), check=True, capture_output=True, timeout=120,
    )
    return measure([sys.executable, "src/02_train.py", "-e", "vs", "-r", run, "--device", "cpu"])


def lightning(pair: int) -> Usage:
    return measure([sys.executable, str(LIGHTNING), str(SCRATCH / f"lightning-{pair}"), "--epochs", str(EPOCHS)])


def main() -> None:
    import lightning as L
    import torch

    print(f"digits example end to end, {PAIRS} pairs x {EPOCHS} epochs, A B A B; torch {torch.__version__}, "
          f"lightning {L.__version__}, {os.cpu_count()} cores")
    print(f"{'pair':>4} {'ours wall':>10} {'cpu':>7} {'MiB':>6} {'L wall':>8} {'cpu':>7} {'MiB':>6}"
          f" {'wall ratio':>10} {'cpu ratio':>9} {'MiB ratio':>9}")
    rows = []
    for pair in range(PAIRS):
        a, b = ours(pair), lightning(pair)
        rows.append((a, b))
        print(f"{pair:4d} {a.wall:9.2f}s {a.cpu:6.2f}s {a.peak_mib:6.0f} {b.wall:7.2f}s {b.cpu:6.2f}s {b.peak_mib:6.0f}"
              f" {a.wall / b.wall:10.2f} {a.cpu / b.cpu:9.2f} {a.peak_mib / b.peak_mib:9.2f}", flush=True)
    median = statistics.median
    for name, side in (("ours", 0), ("Lightning", 1)):
        runs = [row[side] for row in rows]
        print(f"median {name}: {median(u.wall for u in runs):.2f} s wall, {median(u.cpu for u in runs):.2f} s CPU, "
              f"{median(u.peak_mib for u in runs):.0f} MiB peak")
    print(f"median ratios ours/Lightning: wall {median(a.wall / b.wall for a, b in rows):.2f}, "
          f"CPU {median(a.cpu / b.cpu for a, b in rows):.2f}, "
          f"peak memory {median(a.peak_mib / b.peak_mib for a, b in rows):.2f}")


if __name__ == "__main__":
    try:
        main()
    finally:
        shutil.rmtree(SCRATCH, ignore_errors=True)
