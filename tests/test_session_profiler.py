"""One profiler: sections a task opens on the global PROFILER land in the session's profile.txt
and `time/*` metrics, and a second session in the same process starts from a clean profile."""

import json
from typing import Any

import pandas as pd
import torch
from torch import nn

from test_engine_toy_task import CONFIG, ToyRegression
from train_support import read_metrics
from training.run_config import parse_run_config
from training.session import run_session
from training.task import StepOutput, register_task
from utils.management import create_run
from utils.runs.run import Run
from utils.profiler import PROFILER


@register_task
class AugmentingToy(ToyRegression):
    """The toy regression timing its own augmentation, as a user's task would."""

    name = "toy_augmenting"

    def train_step(self, model: nn.Module, batch: Any) -> StepOutput:
        x, y = batch
        with PROFILER.section("augment"):
            x = x + 0.01 * torch.randn_like(x)
        return super().train_step(model, (x, y))


def _session(run_name: str, task: str) -> tuple[str, pd.DataFrame]:
    """Train `task` for 2 epochs in this process: (profile.txt, metrics.csv)."""
    config = json.loads(json.dumps(CONFIG))
    config["task"], config["training"]["epochs"] = task, 2
    folder = create_run("profiled", run_name, config)
    run = Run.require("profiled", run_name)
    assert run_session(run, parse_run_config(config), torch.device("cpu"), resume=False).exit_code == 0
    return (run.logs / "profile.txt").read_text(), read_metrics(folder)


def test_a_tasks_section_reaches_profile_txt_and_time_metrics_and_the_next_session_starts_clean():
    profile, metrics = _session("augmented", "toy_augmenting")
    assert "augment" in profile and "forward" in profile
    timed = metrics["time/forward/augment"].dropna()
    assert len(timed) == 2 and (timed > 0).all(), "one mean per epoch"

    profile, metrics = _session("plain", "toy_regression")
    assert "augment" not in profile and "time/forward/augment" not in metrics.columns
    assert PROFILER.log_every == 0 and not PROFILER.to_dict(), "the global profiler is left as it was"
