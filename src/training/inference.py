"""A trained run loaded for inference: its model with the checkpoint's weights and its task with the
preprocessing state the checkpoint carries, built from the run's config.json without any data set.

    from training.inference import load_trained

    trained = load_trained("example", "first")             # best.pt, on the CPU
    classes = trained.predict(raw_images)                   # = trained.task.predict(trained.model, raw_images)

`05_evaluate.py` builds on the same pieces (`read_run_config`, `find_checkpoint`, `load_model`).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from training.run_config import RunConfig, RunSettings, parse_run_config
from training.task import Task, TaskContext
from utils.checkpointing.diagnosis import describe_mismatch
from utils.checkpointing.io import load_checkpoint, restore_checkpoint
from utils.configs import apply_overrides, load_config_file
from utils.distributed_info import get_rank, get_world_size
from utils.errors import CheckpointError, ConfigValueError
from utils.helper_functions import select_device
from utils.runs.run import Run

NAMED_CHECKPOINTS = ("best", "last")  # what `checkpoint=` takes besides a file name or a path


@dataclass
class TrainedModel:
    """A run's model (eval mode, on its device) and task (its state restored), and where they came
    from: the parsed config, the checkpoint's completed `epoch` and optimizer `step`, its `path`."""

    model: nn.Module
    task: Task
    config: RunConfig
    epoch: int
    step: int
    path: Path

    @torch.no_grad()
    def predict(self, inputs: Any) -> Any:
        """The task's outputs for raw inputs: `task.predict(model, inputs)` without gradients."""
        return self.task.predict(self.model, inputs)


def load_trained(
    experiment: str, run: str, checkpoint: str | Path = "best", device: str | torch.device = "cpu",
) -> TrainedModel:
    """Load run `experiment/run` for inference, from its `checkpoint`: "best", "last", a file name in
    its checkpoints/ ("checkpoint_epoch_3.pt") or a path. The file is read with `weights_only=True`.

    Raises a TemplateError (a CLI's exit 2) for a run that does not exist or never trained, a missing
    or unreadable checkpoint (CheckpointError), and weights that do not fit the run's config.

        trained = load_trained("example", "first", checkpoint="last", device="cuda")
        print(trained.epoch, trained.step, trained.path)
    """
    found = Run.require(experiment, run)
    config = read_run_config(found)
    return load_model(found, config, find_checkpoint(found, checkpoint), _device(device))


def read_run_config(run: Run, overrides: Sequence[str] = ()) -> RunConfig:
    """The run's config.json with `overrides` ("data.batch_size=32") applied, validated."""
    raw = apply_overrides(load_config_file(run.config_file), list(overrides))
    return parse_run_config(raw, str(run.config_file))


def find_checkpoint(run: Run, checkpoint: str | Path) -> Path:
    """The file `checkpoint` names in `run` (see `load_trained`); CheckpointError naming what exists."""
    name = str(checkpoint)
    named = {"best": run.best_checkpoint, "last": run.last_checkpoint}
    in_run = named.get(name) or (run.checkpoints / name if Path(name).name == name else None)
    if in_run is not None and in_run.is_file():
        return in_run
    saved = sorted(path.name for path in run.checkpoints.glob("*.pt")) if run.checkpoints.is_dir() else []
    if not saved and (in_run is not None or name in NAMED_CHECKPOINTS):
        raise CheckpointError(
            f"run {run.name} has not trained: no checkpoint in {run.checkpoints}; train it first with "
            f"python src/02_train.py -e {run.experiment} -r {run.run}"
        )
    path = Path(name).expanduser()
    if in_run is None and path.is_file():
        return path
    raise CheckpointError(
        f"checkpoint {name!r} does not exist in run {run.name}; choose best, last, a file of "
        f"{run.checkpoints} ({', '.join(saved) or 'none'}) or the path of a .pt file"
    )


def build_task(config: RunConfig, device: torch.device) -> Task:
    """The run's task as the engine builds it, on this rank (no data set is built here)."""
    context = TaskContext(config.parsed, config[RunSettings].seed, device, get_rank(), get_world_size())
    return config.task(context)


def load_model(run: Run, config: RunConfig, path: Path, device: torch.device, task: Task | None = None) -> TrainedModel:
    """Build the model (and the task, unless given) from `config`, load the checkpoint at `path` into both."""
    checkpoint = load_checkpoint(path, map_location=device)
    task = task or build_task(config, device)
    model = task.build_model().to(device)
    mismatch = describe_mismatch(checkpoint["model"], model.state_dict())
    if mismatch:
        raise CheckpointError(
            f"checkpoint {path} does not fit the {type(model).__name__} of run {run.name}'s config.json: "
            f"{mismatch}; load it with the run it was trained in"
        )
    restore_checkpoint(checkpoint, model=model, restore_rng=False)
    if checkpoint.get("task_state"):  # checkpoints from before task states have none
        task.load_state_dict(checkpoint["task_state"])
    model.eval()
    return TrainedModel(model, task, config, checkpoint["epoch"], checkpoint["global_step"], Path(path))


def _device(device: str | torch.device) -> torch.device:
    if isinstance(device, torch.device):
        return device
    try:
        return select_device(device)
    except ValueError as exc:
        raise ConfigValueError(f"device: {exc}") from None
