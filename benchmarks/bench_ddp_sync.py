"""Host synchronisation per training step under torchrun with 2 gloo ranks, side by side.

Counts, on the training thread, blocking tensor reads and Python-level collectives per step
(`ddp_sync_probe.py`), and the 2-rank steps/s, for the engine with its default stop agreement
(every `training.stop_check_every` = 10 steps), with an agreement every step (the cadence the
engine had before), and, when BEFORE_SRC names another checkout's `src/` (e.g. a git worktree
of an older commit), for that code too. Target: at most one blocking read per K steps on the
training thread, none from logging.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

from scratch import REPO, make_scratch

SCRATCH = make_scratch("bench_ddp_sync_")
PROBE = Path(__file__).resolve().parent / "ddp_sync_probe.py"
EPOCHS = 3
COMMON = ["--set", f"training.epochs={EPOCHS}", "--set", "logging.wandb=false", "--set", "logging.tensorboard=false",
          "--set", "data.batch_size=32"]


def measure(label: str, src: Path, extra: list[str]) -> dict:
    env = {**os.environ, "EXPERIMENTS_ROOT": str(SCRATCH), "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1"}
    run = f"r{abs(hash((label, str(src)))) % 10**8}"
    subprocess.run([sys.executable, str(src / "01_initialize.py"), "-e", "sync", "-r", run], env=env, check=True,
                   capture_output=True, timeout=120)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(PROBE),
               str(src), "-e", "sync", "-r", run, "--device", "cpu", *COMMON, *extra]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900, cwd=REPO)
    lines = [line for line in result.stdout.splitlines() if line.startswith("PROBE ")]
    if result.returncode != 0 or not lines:
        raise SystemExit(f"{label}: torchrun failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return json.loads(lines[-1][len("PROBE "):])


def main() -> None:
    cases = [
        ("engine, agreement every 10 steps", REPO / "src", []),
        ("engine, agreement every step", REPO / "src", ["--set", "training.stop_check_every=1"]),
    ]
    before = os.environ.get("BEFORE_SRC")
    if before:
        cases.append((f"before ({before})", Path(before), []))
    print(f"torchrun, 2 gloo ranks, 1 thread each, digits task, batch 32, {EPOCHS} epochs")
    print(f"{'version':48} {'reads/step':>10} {'collectives/step':>17} {'steps/s':>8}")
    results = {}
    for label, src, extra in cases:
        results[label] = measure(label, src, extra)
        r = results[label]
        print(f"{label:48} {r['reads_per_step']:10.3f} {r['collectives_per_step']:17.3f} {r['steps_per_s']:8.1f}")
    default = results[cases[0][0]]
    print("detail (default):", default["detail"])
    per_epoch = default["steps"] / EPOCHS
    met = default["reads_per_step"] <= 1 / 10 + 1 / per_epoch + 1e-9
    print(f"target: <= 1 blocking read per 10 steps on the training thread, plus the epoch's means at its end: "
          f"{'met' if met else 'missed'} ({default['reads_per_step']:.3f})")


if __name__ == "__main__":
    main()
