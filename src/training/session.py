"""One training session of a run: build everything from config.json, resume, fit, report.

`run_session` is what `02_train.py` calls, in one process or in each torchrun worker.
"""

import time
from dataclasses import dataclass
from pathlib import Path

import torch

from data.digits import CLASS_NAMES, build_dataloaders
from models.digits_cnn import build_model
from training.config_schema import validate_config
from training.distributed import destroy_distributed, init_distributed
from training.evaluation import evaluate
from training.optim import build_optimizer, build_scheduler
from training.signals import GracefulStop
from training.trainer import Trainer, TrainState, log_evaluation_images
from utils.checkpoints import CheckpointManager, load_checkpoint, restore_checkpoint, unwrap_model
from utils.errors import CheckpointError
from utils.helper_functions import barrier, get_rank, get_world_size, is_main_process, set_seed
from utils.logging import LOGGER, Logger
from utils.management import require_run
from utils.profiler import Profiler
from visualization.plotting import plot_training_curves


@dataclass
class SessionResult:
    """What the summary prints and tests read: where, how well, how long, how it ended."""

    run_dir: Path
    best_metric: float | None
    test_metrics: dict[str, float]
    wall_time: float
    exit_code: int


def run_session(exp: str, run: str, config: dict, device: torch.device, resume: bool) -> SessionResult:
    """Train the run; returns exit code 0, or 143/130 after a graceful stop on a signal."""
    started = time.perf_counter()
    run_dir = require_run(exp, run)
    validate_config(config, f"{run_dir / 'config.json'}")
    stop = GracefulStop().install()
    init_distributed(device)
    logger: Logger | None = None
    try:
        set_seed(config["seed"], config["deterministic"])
        checkpoints = CheckpointManager(
            run_dir / "checkpoints", config["training"]["keep_checkpoints"], config["training"]["best_mode"]
        )
        resume_from = checkpoints.find_resume_checkpoint(map_location=device) if resume else None
        resume_step = resume_from[1]["global_step"] if resume_from else None
        logger = Logger(exp, run, resume_step=resume_step)
        _initialize_writers(config, resume_from, checkpoints.skipped)
        trainer = _build_trainer(config, device, checkpoints, stop)
        if resume_from is not None:
            _restore(trainer, *resume_from)
        trainer.fit()
        test_metrics = {} if stop.requested else _test(trainer, run_dir)
        if not stop.requested and is_main_process():
            LOGGER.flush()
            plot_training_curves(run_dir / "logs" / "metrics.csv", run_dir / "plots")
        if is_main_process():
            trainer.profiler.write_report(run_dir / "logs")
        return SessionResult(run_dir, trainer.state.best_metric, test_metrics, time.perf_counter() - started, stop.exit_code)
    finally:
        if logger is not None:
            logger.finish()
        destroy_distributed()
        stop.restore()


def _initialize_writers(
    config: dict, resume_from: tuple[Path, dict] | None, skipped: list[tuple[Path, str]]
) -> None:
    logging = config["logging"]
    if logging["csv"]:
        LOGGER.initialize_csv()
    if logging["tensorboard"]:
        LOGGER.initialize_tensorboard()
    if logging["wandb"]:
        LOGGER.initialize_wandb(logging["wandb_project"])
    LOGGER.log_config(config)
    LOGGER.log_git_hash()
    for path, reason in skipped:
        LOGGER.warning(f"skipped checkpoint {path}: {reason}")
    if resume_from is not None:
        path, checkpoint = resume_from
        LOGGER.info(f"resuming from {path} at epoch {checkpoint['epoch']}, step {checkpoint['global_step']}")


def _build_trainer(config: dict, device: torch.device, checkpoints: CheckpointManager, stop: GracefulStop) -> Trainer:
    loaders = build_dataloaders(config["data"], config["seed"], get_rank(), get_world_size())
    model = build_model(config["model"]).to(device)
    LOGGER.log_architecture(model)
    if get_world_size() > 1:
        ids = [device.index] if device.type == "cuda" else None
        model = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)
    optimizer = build_optimizer(model, config["optimizer"])
    scheduler = build_scheduler(optimizer, config["scheduler"], len(loaders.train), config["training"]["epochs"])
    scaler = torch.amp.GradScaler("cuda") if config["training"]["amp"] and device.type == "cuda" else None
    profiler = Profiler(enabled=True, logger=LOGGER, log_every=len(loaders.train))
    return Trainer(model, optimizer, scheduler, scaler, loaders, checkpoints, config, device, stop, profiler)


def _restore(trainer: Trainer, path: Path, checkpoint: dict) -> None:
    restore_checkpoint(
        checkpoint, model=trainer.model, optimizer=trainer.optimizer,
        scheduler=trainer.scheduler, scaler=trainer.scaler,
    )
    trainer.state = TrainState(
        epoch=checkpoint["epoch"],
        batches_done=checkpoint["extra"]["batches_done"],
        global_step=checkpoint["global_step"],
        best_metric=checkpoint["best_metric"],
    )


def _test(trainer: Trainer, run_dir: Path) -> dict[str, float]:
    """Test metrics of the best checkpoint (the final weights when no best.pt exists)."""
    best = run_dir / "checkpoints" / "best.pt"
    barrier()
    if best.is_file():
        try:
            unwrap_model(trainer.model).load_state_dict(load_checkpoint(best, trainer.device)["model"])
        except CheckpointError as exc:
            LOGGER.warning(f"testing the final weights: {exc}")
    result = evaluate(trainer.model, trainer.loaders.test, trainer.device, len(CLASS_NAMES))
    step = max(trainer.state.global_step - 1, 0)
    metrics = {"test/loss": result.loss, "test/accuracy": result.accuracy}
    LOGGER.log(metrics, step)
    if is_main_process():
        log_evaluation_images("test", result, step, trainer.loaders)
    return metrics
