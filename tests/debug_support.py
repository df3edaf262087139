"""Helpers of the `debug.stats_every` tests on the examples: one short in-process run, read back."""

from pathlib import Path

import torch

from train_support import read_metrics, tensorboard_steps
from training.run_config import parse_run_config
from training.session import run_session
from utils.configs import apply_overrides, load_config_template
from utils.management import create_run
from utils.runs.run import Run

QUIET = ["logging.wandb=false", "logging.tensorboard=true", "training.draw_every=null", "training.epochs=1"]


def train_in_process(template: str, run: str, *overrides: str) -> Path:
    """Create and train `debug/<run>` from `template` with `overrides` in this process; its folder."""
    config = apply_overrides(load_config_template(template), [*QUIET, *overrides])
    folder = create_run("debug", run, config)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors run fastest on one thread, and two crawl on busy shared cores
    try:
        result = run_session(Run.require("debug", run), parse_run_config(config), torch.device("cpu"), resume=False)
    finally:
        torch.set_num_threads(threads)
    assert result.exit_code == 0
    return folder


def debug_steps(folder: Path, column: str) -> tuple[list[int], list[int]]:
    """The steps at which `column` has a value: in metrics.csv, and as TensorBoard's reader sees them."""
    metrics = read_metrics(folder)
    return list(metrics.loc[metrics[column].notna(), "step"]), tensorboard_steps(folder, column)
