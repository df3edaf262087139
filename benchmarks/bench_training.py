"""Training throughput of the example with per-step logging, and `make train`'s time to 97%.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_training.py

Part 1 runs the example's training step (digits CNN, batch 64, AdamW, cosine schedule, grad
clipping) in one process, in interleaved rounds, with four ways of logging the loss and the
learning rate every step: not at all; our `LOGGER.log` with CSV + TensorBoard + W&B (offline);
our `LOGGER.log` with CSV + TensorBoard only; the same values through TensorBoard's
`SummaryWriter.add_scalar` and a W&B offline `run.log` called directly. Each round runs every
loop once, back to back, and the ratio to logging off is taken within the round, so that the
drift of a shared machine cancels; it prints the median steps per second and the median of
the per-round ratios. Target: ours >= 0.97 of logging off. `BENCH_TRAINING_ROUNDS=N` sets the
rounds (default 7); `BENCH_TRAINING_SKIP_MAKE_TRAIN=1` leaves out part 2.

Part 2 runs what `make train` runs (01_initialize + 02_train, default config) as
subprocesses and prints the wall time, the epoch at which validation accuracy first reached
97%, and the final test accuracy. Everything is written to a temp folder.
"""

import json
import os
import shutil
import statistics
import subprocess
import sys
import time

from scratch import REPO, make_scratch

SCRATCH = make_scratch("bench_training_")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from tasks.digits import DigitsTask  # noqa: E402
from training.data_loading import LoaderConfig, build_loaders, close_loaders  # noqa: E402
from training.optim import OptimizerConfig, SchedulerConfig, build_optimizer, build_scheduler  # noqa: E402
from training.run_config import RunSettings, parse_run_config  # noqa: E402
from training.task import TaskContext  # noqa: E402
from training.trainer_config import TrainingConfig  # noqa: E402
from utils.configs import load_config_template  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_TRAINING_ROUNDS", "7"))  # fewer for a quick look
EPOCHS_PER_ROUND = 6
CONFIG = parse_run_config(load_config_template("default"))


def make_training():
    """A fresh model, optimizer, schedule and loader, seeded the same for every mode."""
    torch.manual_seed(0)
    seed = CONFIG[RunSettings].seed
    task = DigitsTask(TaskContext(config=CONFIG.parsed, seed=seed, device=torch.device("cpu")))
    loaders = build_loaders(task.build_datasets(), CONFIG[LoaderConfig], seed)
    model = task.build_model()
    optimizer = build_optimizer(model, CONFIG[OptimizerConfig])
    scheduler = build_scheduler(optimizer, CONFIG[SchedulerConfig], len(loaders.train), EPOCHS_PER_ROUND)
    return model, optimizer, scheduler, loaders


def steps_per_second(log_step) -> float:
    """Train EPOCHS_PER_ROUND epochs, calling `log_step(loss, lr, step)` after every step."""
    model, optimizer, scheduler, loaders = make_training()
    clip = CONFIG[TrainingConfig].grad_clip
    step = 0
    start = time.perf_counter()
    for epoch in range(EPOCHS_PER_ROUND):
        loaders.train_sampler.set_epoch(epoch)
        for images, labels in loaders.train:
            loss = F.cross_entropy(model(images), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            optimizer.step()
            scheduler.step()
            log_step(loss.detach(), optimizer.param_groups[0]["lr"], step)
            step += 1
    speed = step / (time.perf_counter() - start)
    close_loaders(loaders)
    return speed


def no_logging(loss, lr, step) -> None:
    pass


def make_ours(round_index: int, wandb: bool = True):
    from utils.logging import LOGGER, Logger

    logger = Logger("bench", f"ours-{round_index}-{'wandb' if wandb else 'local'}")
    logger.initialize_csv()
    logger.initialize_tensorboard()
    if wandb:
        logger.initialize_wandb("bench-training")

    def log_step(loss, lr, step):
        LOGGER.log({"train/loss": loss, "lr": lr}, step)

    return log_step, logger.finish


def make_direct(round_index: int):
    import wandb
    from torch.utils.tensorboard import SummaryWriter

    folder = SCRATCH / f"direct-{round_index}"
    writer = SummaryWriter(str(folder))
    run = wandb.init(project="bench-training", dir=str(folder), mode="offline")

    def log_step(loss, lr, step):
        value = loss.item()
        writer.add_scalar("train/loss", value, step)
        writer.add_scalar("lr", lr, step)
        run.log({"train/loss": value, "lr": lr}, step=step)

    def close():
        writer.close()
        run.finish()

    return log_step, close


LOOPS = {
    "logging off": lambda index: (no_logging, lambda: None),
    "ours: LOGGER.log (CSV+TB+W&B)": make_ours,
    "ours: LOGGER.log (CSV+TB)": lambda index: make_ours(index, wandb=False),
    "SummaryWriter.add_scalar + W&B run.log": make_direct,
}


def bench_throughput() -> None:
    speeds: dict[str, list[float]] = {name: [] for name in LOOPS}
    steps_per_second(no_logging)  # warm-up: allocator, thread pools, data set load
    for round_index in range(ROUNDS):
        for name, make in LOOPS.items():
            log_step, close = make(round_index)
            speeds[name].append(steps_per_second(log_step))
            close()
    off = speeds["logging off"]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"{ROUNDS} rounds x {EPOCHS_PER_ROUND} epochs of the example (batch 64) per loop")
    print(f"{'loop':42s} {'steps/s':>9s} {'min':>8s} {'max':>8s} {'vs off':>7s}")
    ratios = {}
    for name, samples in speeds.items():
        ratios[name] = statistics.median(s / o for s, o in zip(samples, off))
        print(f"{name:42s} {statistics.median(samples):9.1f} {min(samples):8.1f} "
              f"{max(samples):8.1f} {ratios[name]:7.3f}")
    ours = ratios["ours: LOGGER.log (CSV+TB+W&B)"]
    print(f"target: ours (all three writers) >= 0.97 of logging off: "
          f"{'met' if ours >= 0.97 else 'missed'} ({ours:.3f})")


def bench_make_train() -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    python = sys.executable
    start = time.perf_counter()
    subprocess.run([python, "src/01_initialize.py", "-e", "bench", "-r", "make-train"],
                   cwd=REPO, env=env, check=True, capture_output=True, timeout=60)
    subprocess.run([python, "src/02_train.py", "-e", "bench", "-r", "make-train"],
                   cwd=REPO, env=env, check=True, capture_output=True, timeout=900)
    wall = time.perf_counter() - start
    import pandas as pd

    run_dir = SCRATCH / "experiments" / "bench" / "make-train"
    metrics = pd.read_csv(run_dir / "logs" / "metrics.csv")
    epochs = metrics.dropna(subset=["val/accuracy"])
    reached = epochs[epochs["val/accuracy"] >= 0.97]
    first = int(reached["epoch"].iloc[0]) if len(reached) else None
    test_accuracy = float(metrics["test/accuracy"].dropna().iloc[-1])
    config = json.loads((run_dir / "config.json").read_text())
    print(f"make train (default config, {config['training']['epochs']} epochs, W&B offline): "
          f"{wall:.1f} s wall for initialize + train")
    print(f"  validation accuracy first >= 97% after epoch {first}; "
          f"test accuracy {test_accuracy:.4f} ({'>= 97%' if test_accuracy >= 0.97 else 'below 97%'})")


if __name__ == "__main__":
    try:
        bench_throughput()
        if not os.environ.get("BENCH_TRAINING_SKIP_MAKE_TRAIN"):
            print()
            bench_make_train()
    finally:
        shutil.rmtree(SCRATCH, ignore_errors=True)
