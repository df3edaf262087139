"""One training session of a run: build everything from config.json, resume, fit, report.

`run_session` is what `02_train.py` calls, in one process or in each torchrun worker.
"""

import signal
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from data.digits import CLASS_NAMES, build_dataloaders
from models.digits_cnn import build_model
from training.config_schema import validate_config
from training.data_loading import close_loaders
from training.distributed import destroy_distributed, init_distributed
from training.evaluation import evaluate
from training.optim import build_optimizer, build_scheduler
from training.run_outputs import finished_epochs, move_outputs_aside, refuse_plain_start, write_summary
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
    already_finished: bool = False


def run_session(
    exp: str, run: str, config: dict, device: torch.device, resume: bool, restart: bool = False
) -> SessionResult:
    """Train the run; returns exit code 0, or 143/130 after a graceful stop on a signal.

    A run that has trained refuses a plain start (RunHasOutputsError): `resume` continues it,
    `restart` moves its outputs aside first. A resume of a finished run returns at once.
    """
    started = time.perf_counter()
    run_dir = require_run(exp, run)
    validate_config(config, f"{run_dir / 'config.json'}")
    if not (resume or restart):
        refuse_plain_start(run_dir, exp, run)
    if resume and _already_finished(run_dir, config):
        return SessionResult(run_dir, None, {}, time.perf_counter() - started, 0, already_finished=True)
    stop = GracefulStop().install()
    init_distributed(device)
    logger: Logger | None = None
    trainer: Trainer | None = None
    try:
        archive = move_outputs_aside(run_dir) if restart and is_main_process() else None
        barrier()
        set_seed(config["seed"], config["deterministic"])
        checkpoints = CheckpointManager(
            run_dir / "checkpoints", config["training"]["keep_checkpoints"], config["training"]["best_mode"]
        )
        resume_from = checkpoints.find_resume_checkpoint(map_location=device) if resume else None
        resume_step = resume_from[1]["global_step"] if resume_from else None
        logger = Logger(exp, run, resume_step=resume_step)
        if archive is not None:
            LOGGER.info(f"restart: the previous outputs were moved to {archive}")
        _initialize_writers(config, resume_from, checkpoints.skipped)
        trainer = _build_trainer(config, device, checkpoints, stop)
        if resume_from is not None:
            _restore(trainer, *resume_from)
        trainer.fit()
        test_metrics = {} if stop.requested else _test(trainer, run_dir)
        result = SessionResult(
            run_dir, trainer.state.best_metric, test_metrics, time.perf_counter() - started, stop.exit_code
        )
        _report(trainer, result, config)
        return result
    except Exception as error:
        if logger is not None:
            LOGGER.error(f"training failed: {type(error).__name__}: {error}")
            error.logged_to_run = True  # the CLI need not print it again
        raise
    finally:
        if trainer is not None:
            close_loaders(trainer.loaders)  # persistent workers would block the exit for ever
        if logger is not None:
            logger.finish()
        destroy_distributed()
        stop.restore()


def _already_finished(run_dir: Path, config: dict) -> bool:
    """True when a finished session trained every configured epoch; says so on stdout."""
    done = finished_epochs(run_dir)
    if done is None or done < config["training"]["epochs"]:
        return False
    if is_main_process():
        print(
            f"run {run_dir.parent.name}/{run_dir.name} is finished ({done} epochs); nothing to do. "
            "Train longer with --resume --set training.epochs=N, or start over with --restart."
        )
    return True


def _report(trainer: Trainer, result: SessionResult, config: dict) -> None:
    """Rank 0: curves, the profile, the summary line in log.txt and, when finished, summary.json."""
    if not is_main_process():
        return
    state = trainer.state
    if config["logging"]["csv"]:
        LOGGER.flush()
        plot_training_curves(result.run_dir / "logs" / "metrics.csv", result.run_dir / "plots")
    trainer.profiler.write_report(result.run_dir / "logs")
    best = f"{result.best_metric:.4f}" if result.best_metric is not None else "none"
    tested = "".join(f", {name} {value:.4f}" for name, value in result.test_metrics.items())
    ending = f"stopped by {signal.Signals(trainer.stop.signum).name}" if trainer.stop.requested else "finished"
    LOGGER.info(
        f"{ending} at epoch {state.epoch}, step {state.global_step} after {result.wall_time:.1f} s: "
        f"best {config['training']['best_metric']} {best}{tested}"
    )
    if not trainer.stop.requested:
        write_summary(result.run_dir, {
            "epochs": state.epoch, "global_step": state.global_step, "best_metric": result.best_metric,
            "test": result.test_metrics, "wall_time_s": round(result.wall_time, 3),
        })


def _initialize_writers(
    config: dict, resume_from: tuple[Path, dict] | None, skipped: list[tuple[Path, str]]
) -> None:
    logging = config["logging"]
    if logging["csv"]:
        LOGGER.initialize_csv()
    if logging["tensorboard"]:
        LOGGER.initialize_tensorboard()
    if logging["wandb"]:
        LOGGER.initialize_wandb(logging["wandb_project"], tags=logging["wandb_tags"])
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
