"""A checkpoint of a trained run evaluated on one split, as `05_evaluate.py` does it.

The run's task, loaders and precision are built from its config.json as a training session builds
them, and the split goes through the engine's own `training.evaluation.evaluate`: re-evaluating
`best.pt` on `test` gives exactly the `test/*` values the training logged. No Logger is started,
so the checkpoints, metrics.csv and TensorBoard's files stay as they are; what it writes is one
line of `logs/evaluations.jsonl` and the task's drawings (see `utils.runs.evaluations`).
"""

import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from training.compiling import check_compile
from training.data_loading import LoaderConfig, build_loaders, close_loaders
from training.distributed import destroy_distributed, init_distributed
from training.evaluation import Evaluation, call_with_split, evaluate
from training.inference import TrainedModel, build_task, find_checkpoint, load_model
from training.precision import MixedPrecision, check_precision
from training.run_claim import claim_on_every_rank
from training.run_config import RunConfig, RunSettings
from training.trainer_config import TrainingConfig
from utils.distributed_info import get_rank, get_world_size, is_main_process
from utils.fileio import atomic_write_bytes
from utils.helper_functions import set_seed
from utils.log.images import figure_to_array, png_bytes, to_uint8_image
from utils.log.null import NullLogger
from utils.log.proxy import forwarding_to
from utils.names import sanitize_name
from utils.run_guard import RunLock
from utils.runs.evaluations import SPLITS, append_evaluation, evaluation_drawings_folder, file_sha256
from utils.runs.run import Run


@dataclass
class CheckpointEvaluation:
    """What one evaluation gave: the record appended to evaluations.jsonl, and where the drawings went."""

    record: dict[str, Any]
    drawings: list[Path]
    wall_time: float


def evaluate_checkpoint(
    run: Run, config: RunConfig, checkpoint: str | Path, split: str, device: torch.device,
) -> CheckpointEvaluation:
    """Evaluate `checkpoint` ("best", "last", a file name or a path) of `run` on `split`.

    In each torchrun worker too: every rank evaluates its shard and the sums are added over the
    ranks, as in training; rank 0 writes the record and the drawings. The run's lock is held
    throughout, so a training session on the run makes this a RunBusyError (exit 2). A run that
    never trained, a missing checkpoint or one that does not fit the config is a CheckpointError
    (exit 2), raised before anything is written.
    """
    started = time.perf_counter()
    if split not in SPLITS:
        raise ValueError(f"split {split!r}: choose one of {', '.join(SPLITS)}")
    init_distributed(device)
    lock: RunLock | None = None
    loaders = None
    failing = True
    try:
        path = find_checkpoint(run, checkpoint)  # first: a run that never trained gets no lock file
        _check_machine(config[TrainingConfig], device)
        lock = claim_on_every_rank(run, device)
        settings = config[RunSettings]
        set_seed(settings.seed, settings.deterministic)  # a task's data may draw from the global generators
        task = build_task(config, device)
        datasets = task.build_datasets()  # in training's order: data, then the model
        trained = load_model(run, config, path, device, task)
        model = torch.compile(trained.model) if config[TrainingConfig].compile else trained.model  # as training tested
        # the split's data through the loader training tests with: same batches, sharded without padding
        loaders = build_loaders(replace(datasets, test=getattr(datasets, split)), config[LoaderConfig],
                                settings.seed, get_rank(), get_world_size())
        step = max(trained.step - 1, 0)  # where training logged the checkpoint's metrics
        autocast = MixedPrecision(config[TrainingConfig].precision, device).autocast()
        with forwarding_to(NullLogger()):  # what the task logs itself must not reach the run's writers
            evaluation = evaluate(task, model, loaders.test, device, autocast, split=split, step=step)
        result = _record(run, trained, split, evaluation, step, started)
        failing = False
        return result
    finally:
        if loaders is not None:
            close_loaders(loaders)
        if lock is not None:
            lock.release()
        destroy_distributed(together=not failing)


def _check_machine(training: TrainingConfig, device: torch.device) -> None:
    """Usage errors (exit 2) for a precision or a compile the run trained with that this machine cannot do."""
    check_precision(training.precision, device)
    if training.compile:
        check_compile(device)


def _record(
    run: Run, trained: TrainedModel, split: str, evaluation: Evaluation, step: int, started: float,
) -> CheckpointEvaluation:
    """Rank 0: the drawings and the line of evaluations.jsonl; the other ranks only return."""
    metrics = {f"{split}/{name}": value for name, value in evaluation.metrics.items()}
    record = {
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "checkpoint": trained.path.name, "path": str(trained.path.resolve()),
        "epoch": trained.epoch, "step": trained.step, "split": split, "metrics": metrics,
        "world_size": get_world_size(),
    }
    if not is_main_process():
        return CheckpointEvaluation(record, [], time.perf_counter() - started)
    record["sha256"] = file_sha256(trained.path)
    drawings = _draw(run, trained, split, evaluation, step)
    record["wall_time_s"] = round(time.perf_counter() - started, 3)
    append_evaluation(run, record)
    return CheckpointEvaluation(record, drawings, record["wall_time_s"])


def _draw(run: Run, trained: TrainedModel, split: str, evaluation: Evaluation, step: int) -> list[Path]:
    """What `task.draw` returns for the split's first batch, as PNG files named after the drawings."""
    if evaluation.sample is None:
        return []
    from matplotlib.figure import Figure

    with torch.no_grad(), forwarding_to(NullLogger()):
        drawings = call_with_split(trained.task.draw, trained.model, evaluation.sample, evaluation.sums,
                                   split=split, step=step)
    if not drawings:
        return []
    folder = evaluation_drawings_folder(run, trained.path, split)
    written = []
    for name, drawing in drawings.items():
        image = figure_to_array(drawing) if isinstance(drawing, Figure) else to_uint8_image(drawing)
        path = folder / f"{sanitize_name(name)}.png"
        atomic_write_bytes(path, png_bytes(image))
        written.append(path)
    return written
