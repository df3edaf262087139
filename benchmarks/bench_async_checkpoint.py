"""The training thread's stall per checkpoint, synchronous against `training.async_checkpoint`.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_async_checkpoint.py

A 100.7M-parameter MLP (24 Linear 2048x2048) with AdamW, so a checkpoint holds 1.2 GB of tensors
(weights and the two moments), trained on the CPU. Each round trains `STEPS` steps, then saves
through the engine's objects: `CheckpointManager.save` (sync) or `AsyncCheckpointWriter.save`
(async). The stall is the time the save call holds the training thread (building the checkpoint
included; for async also waiting for the previous write, if it is still going). Because the
background write competes with training for the CPU and memory bandwidth, the steps after an
async save are timed too and compared with steps after no save: the slowdown is the rest of the
cost that async moves off the stall. Medians over `ROUNDS` rounds; files go to a temp folder.
"""

import shutil
import statistics
import time

from scratch import make_scratch

SCRATCH = make_scratch("bench_async_checkpoint_")

import torch  # noqa: E402

from utils.checkpointing.async_writer import AsyncCheckpointWriter  # noqa: E402
from utils.checkpointing.io import build_checkpoint, load_checkpoint  # noqa: E402
from utils.checkpointing.manager import CheckpointManager  # noqa: E402

WIDTH, LAYERS, BATCH = 2048, 24, 8
STEPS, ROUNDS = 5, 3


def build() -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = torch.nn.Sequential(*[torch.nn.Linear(WIDTH, WIDTH) for _ in range(LAYERS)])
    return model, torch.optim.AdamW(model.parameters(), lr=1e-5)


def train_steps(model: torch.nn.Module, optimizer: torch.optim.Optimizer, steps: int) -> float:
    """Seconds for `steps` optimizer steps on random data."""
    start = time.perf_counter()
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        model(torch.randn(BATCH, WIDTH)).square().mean().backward()
        optimizer.step()
    return time.perf_counter() - start


def measure(mode: str) -> tuple[list[float], list[float]]:
    """(stall per save, seconds of the STEPS steps after each save) over ROUNDS rounds."""
    model, optimizer = build()
    folder = SCRATCH / mode
    manager = CheckpointManager(folder)
    saver = AsyncCheckpointWriter(manager) if mode == "async" else manager
    train_steps(model, optimizer, 1)  # the moments exist: the checkpoint has its full size
    stalls, after = [], []
    for round_ in range(ROUNDS + 1):  # round 0 warms up (first allocations, page cache)
        step = (round_ + 1) * STEPS
        if mode != "none":
            start = time.perf_counter()
            checkpoint = build_checkpoint(model=model, optimizer=optimizer, epoch=0, global_step=step)
            saver.save(checkpoint, epoch_file=False)
            del checkpoint
            stall = time.perf_counter() - start
        steps_s = train_steps(model, optimizer, STEPS)
        if round_ and mode != "none":
            stalls.append(stall)
        if round_:
            after.append(steps_s)
    if isinstance(saver, AsyncCheckpointWriter):
        saver.wait()
    if mode != "none":
        assert load_checkpoint(folder / "last.pt")["global_step"] == ROUNDS * STEPS + STEPS
    return stalls, after


def main() -> None:
    parameters = sum(p.numel() for p in build()[0].parameters())
    print(f"model: {parameters / 1e6:.1f}M parameters, AdamW; checkpoint ~{parameters * 12 / 1e9:.2f} GB of tensors; "
          f"{torch.get_num_threads()} CPU threads; {ROUNDS} rounds of {STEPS} steps + 1 save (medians)")
    results = {mode: measure(mode) for mode in ("none", "sync", "async")}
    base_steps = statistics.median(results["none"][1])
    print(f"{'mode':<6} {'stall per checkpoint':>21} {'next steps':>11} {'slowdown':>9}")
    for mode in ("sync", "async"):
        stalls, after = results[mode]
        print(f"{mode:<6} {statistics.median(stalls):>19.3f} s {statistics.median(after):>9.3f} s "
              f"{statistics.median(after) - base_steps:>+7.3f} s")
    print(f"{'none':<6} {'-':>21} {base_steps:>9.3f} s")
    sync, async_ = (statistics.median(results[mode][0]) for mode in ("sync", "async"))
    print(f"async stall / sync stall: {async_ / sync:.1%} (target <= 10%)")
    shutil.rmtree(SCRATCH, ignore_errors=True)


if __name__ == "__main__":
    main()
