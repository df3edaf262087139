"""One training session of a run: build everything from config.json, resume, fit, report.

`run_session` is what `02_train.py` calls, in one process or in each torchrun worker. It knows
no task by name: the config's `task` key selects one through the registry in `training.task`.
"""

import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from training.callbacks import EpochCallback
from training.compiling import check_compile
from training.data_loading import LoaderConfig, Loaders, build_loaders, close_loaders
from training.debugging import open_inspector
from training.distributed import barrier, destroy_distributed, init_distributed
from training.early_stopping import EarlyStopping, EarlyStoppingConfig
from training.evaluation import evaluate, log_drawings
from training.init_from import InitConfig, check_init_from, init_model
from training.hang_watchdog import WATCHDOG, DistributedConfig
from training.optim import OptimizerConfig, SchedulerConfig, build_optimizer, build_scheduler
from training.parallel import check_parallel, parallelize
from training.precision import MixedPrecision, check_precision
from training.run_claim import claim_on_every_rank
from training.run_config import RunConfig, RunSettings
from training.session_start import already_finished, prepare_checkpoints, restore_trainer
from training.signals import GracefulStop
from training.task import TaskContext
from training.trainer import Trainer
from training.trainer_config import TrainingConfig
from utils.checkpointing.async_writer import AsyncCheckpointWriter, wait_for_pending_write
from utils.checkpointing.io import load_checkpoint, restore_checkpoint
from utils.checkpointing.manager import CheckpointManager
from utils.checkpointing.rng import restore_rng_state
from utils.errors import CheckpointError, RunIOError
from utils.distributed_info import get_rank, get_world_size, is_main_process
from utils.helper_functions import set_seed, unwrap_model
from utils.logging import LOGGER, Logger, WriterError
from utils.runs.run import Run
from utils.runs.outputs import refuse_plain_start, write_summary
from utils.runs.provenance import SessionRecord, begin_session_record
from utils.profiler import PROFILER
from utils.run_guard import RunLock
from utils.sharded_state import is_sharded



@dataclass
class SessionResult:
    """What the summary prints and tests read: where, how well, how long, how it ended."""

    run: Run
    best_metric: float | None
    test_metrics: dict[str, float]
    wall_time: float
    exit_code: int
    already_finished: bool = False


def run_session(
    run: Run, config: RunConfig, device: torch.device, resume: bool, restart: bool = False,
    callbacks: Sequence[EpochCallback] = (),
) -> SessionResult:
    """Train the run; returns exit code 0, or 143/130 after a graceful stop on a signal.

    The session holds the run's lock throughout (RunBusyError, exit 2, while another holds it).
    A run that has trained refuses a plain start (RunHasOutputsError): `resume` continues it from
    its newest valid checkpoint, or starts it over from step 0 when it has none; `restart`
    starts over. Starting over moves the old outputs aside first. The checkpoint is loaded into
    the model, optimizer, scheduler and scaler before any log is touched, so one that does not
    fit (CheckpointError, exit 2) changes nothing. A resume of a finished run returns at once.
    `callbacks` are asked after each evaluated epoch on rank 0 (see `training.callbacks`).
    """
    started = time.perf_counter()
    stop = GracefulStop().install()
    init_distributed(device)  # first: it selects this rank's GPU, where the compile check runs
    WATCHDOG.start(run.logs, config[DistributedConfig].hang_timeout_s)
    lock: RunLock | None = None
    logger: Logger | None = None
    trainer: Trainer | None = None
    session: SessionRecord | None = None  # logs/sessions.jsonl: written in `finally`, however it ends
    profiling = PROFILER.configure(enabled=True)  # the settings before, restored at the end
    PROFILER.reset()  # a task's sections (`PROFILER.section`) and the engine's share this profile
    try:
        if not resume:
            check_init_from(config, str(run.config_file))  # before the run is touched
        lock = claim_on_every_rank(run, device)
        if not (resume or restart):
            refuse_plain_start(run)
        if resume and already_finished(run, config[TrainingConfig].epochs):
            return SessionResult(run, None, {}, time.perf_counter() - started, 0, already_finished=True)
        session = begin_session_record(run, "train")
        _check_machine(config[TrainingConfig], device)
        settings = config[RunSettings]
        set_seed(settings.seed, settings.deterministic)
        checkpoints, resume_from, notes = prepare_checkpoints(run, config[TrainingConfig], device, resume, restart)
        trainer = _build_trainer(config, device, checkpoints, stop, tuple(callbacks))
        notes += init_model(trainer.model, config[InitConfig], resume_from is not None, session)
        trainer.inspector = open_inspector(config.parsed, trainer.model, device)
        PROFILER.configure(log_every=_steps_per_epoch(trainer.loaders, trainer.config))  # time/* once an epoch
        if resume_from is not None:
            notes += restore_trainer(trainer, *resume_from)
        logger = Logger(run, resume_step=resume_from[1]["global_step"] if resume_from else None)
        _start_logging(config, resume_from, checkpoints.skipped, [session.describe(), *notes])
        LOGGER.log_architecture(unwrap_model(trainer.model))
        if resume_from is not None:
            restore_rng_state(resume_from[1]["rng"])  # last: starting the writers may draw random numbers
        trainer.fit()
        wait_for_pending_write(trainer.checkpoints)  # before best.pt is tested and the best metric read
        test_metrics = {} if trainer.stop_agreed() else _test(trainer, run)  # every rank decides alike
        result = SessionResult(run, checkpoints.best_metric, test_metrics, time.perf_counter() - started, stop.exit_code)
        _report(trainer, result, config)
        session.exit_status = result.exit_code
        return result
    except Exception as error:
        failure = _machine_failure(error)
        if logger is not None:
            logger.error(f"training failed: {type(failure).__name__}: {failure}")
            failure.logged_to_run = True  # the CLI need not print it again
        if failure is not error:
            raise failure from error
        raise
    finally:
        failing = sys.exc_info()[0] is not None
        if trainer is not None:
            close_loaders(trainer.loaders)  # persistent workers would block the exit for ever
            wait_for_pending_write(trainer.checkpoints, failing=failing)  # a signal or an error
            trainer.inspector.close()
            trainer = None  # the DDP model goes before the process group: see destroy_distributed
        if logger is not None:
            _finish(logger, failing=failing)
        if session is not None and logger is not None:  # a session refused before it touched the logs leaves none
            session.end(sys.exc_info()[1])
        if lock is not None:
            lock.release()
        destroy_distributed(together=not failing)
        WATCHDOG.stop()
        stop.restore()
        PROFILER.reset()  # the next session in this process (a sweep's trial) starts clean
        PROFILER.configure(**profiling)


def _machine_failure(error: Exception) -> Exception:
    """The RunIOError (a full disk) behind a writer's failure, else the error itself."""
    cause = error.__cause__
    return cause if isinstance(error, WriterError) and isinstance(cause, RunIOError) else error


def _finish(logger: Logger, failing: bool) -> None:
    """Close the Logger; while a failure propagates, a writer's error at close is that same
    failure again, so it is not raised a second time."""
    try:
        logger.finish()
    except Exception:
        if not failing:
            raise


def _start_logging(
    config: RunConfig, resume_from: tuple[Path, dict] | None, skipped: list[tuple[Path, str]], notes: list[str],
) -> None:
    LOGGER.start_writers(config.parsed)
    LOGGER.log_config(config.raw)
    for path, reason in skipped:
        LOGGER.warning(f"skipped checkpoint {path}: {reason}")
    for note in notes:
        LOGGER.info(note)
    if resume_from is not None:
        path, checkpoint = resume_from
        LOGGER.info(f"resuming from {path} at epoch {checkpoint['epoch']}, step {checkpoint['global_step']}")


def _build_trainer(
    config: RunConfig, device: torch.device, checkpoints: CheckpointManager, stop: GracefulStop,
    callbacks: tuple[EpochCallback, ...],
) -> Trainer:
    settings, training = config[RunSettings], config[TrainingConfig]
    context = TaskContext(config.parsed, settings.seed, device, get_rank(), get_world_size())
    task = config.task(context)
    loaders = build_loaders(task.build_datasets(), config[LoaderConfig], settings.seed, get_rank(), get_world_size())
    model = task.build_model().to(device)
    if training.compile:
        model = torch.compile(model)  # shares the parameters; checkpoints hold the plain model's keys
    model = parallelize(model, training.parallel, training.precision, device, task.shard_units(unwrap_model(model)))
    optimizer = build_optimizer(model, config[OptimizerConfig])
    steps_per_epoch = _steps_per_epoch(loaders, training)
    scheduler = build_scheduler(optimizer, config[SchedulerConfig], steps_per_epoch, training.epochs)
    early_stopping = EarlyStopping(config[EarlyStoppingConfig])
    precision = MixedPrecision(training.precision, device, sharded=is_sharded(model))
    saver = AsyncCheckpointWriter(checkpoints) if training.async_checkpoint else checkpoints
    return Trainer(task, model, optimizer, scheduler, precision, loaders, saver, training, device, stop,
                   early_stopping, callbacks)


def _steps_per_epoch(loaders: Loaders, training: TrainingConfig) -> int:
    """Optimizer steps in an epoch (the last group of micro-batches may be short)."""
    return -(-len(loaders.train) // training.accumulate_steps)


def _check_machine(training: TrainingConfig, device: torch.device) -> None:
    """Usage errors (exit 2) for a precision or a compile this machine cannot do, before any training."""
    check_precision(training.precision, device)
    check_parallel(training.parallel, training.precision)
    if training.compile:
        check_compile(device)


def _test(trainer: Trainer, run: Run) -> dict[str, float]:
    """Test metrics of the best checkpoint (the final weights when no best.pt exists, or when it
    cannot be read or does not fit the model: a warning names the file and why)."""
    barrier()
    if run.best_checkpoint.is_file():
        try:
            # FSDP: the full state on the CPU, each rank keeping its shard on the device
            best = load_checkpoint(run.best_checkpoint, "cpu" if is_sharded(trainer.model) else trainer.device)
            restore_checkpoint(best, model=trainer.model, restore_rng=False)
        except CheckpointError as exc:
            LOGGER.warning(f"not testing {run.best_checkpoint} ({exc}): testing the final weights")
    autocast = trainer.precision.autocast()
    step = max(trainer.state.global_step - 1, 0)
    evaluation = evaluate(
        trainer.task, trainer.model, trainer.loaders.test, trainer.device, autocast, split="test", step=step,
    )
    metrics = {f"test/{name}": value for name, value in evaluation.metrics.items()}
    LOGGER.log(metrics, step)
    if trainer.config.draw_every is not None:
        log_drawings("test", trainer.task, trainer.model, evaluation, step)
    return metrics


def _report(trainer: Trainer, result: SessionResult, config: RunConfig) -> None:
    """Rank 0: curves, the profile, the summary line in log.txt and, when finished, summary.json."""
    if not is_main_process():
        return
    from visualization.plotting import plot_training_curves

    run, state = result.run, trainer.state
    if run.metrics_csv.is_file() and trainer.config.draw_every is not None:
        LOGGER.flush()
        # the debug/ stats are dozens of per-layer groups: TensorBoard and the CSV hold them
        plot_training_curves(run.metrics_csv, run.plots, skip_namespaces=("debug",))
    PROFILER.write_report(run.logs)
    best = f"{result.best_metric:.4f}" if result.best_metric is not None else "none"
    tested = "".join(f", {name} {value:.4f}" for name, value in result.test_metrics.items())
    ending = f"stopped by {signal.Signals(trainer.stop.signum).name}" if trainer.stop.requested else "finished"
    LOGGER.info(
        f"{ending} at epoch {state.epoch}, step {state.global_step} after {result.wall_time:.1f} s: "
        f"best {config[TrainingConfig].best_metric} {best}{tested}"
    )
    if not trainer.stop.requested:
        write_summary(run, {
            "epochs": state.epoch, "global_step": state.global_step, "best_metric": result.best_metric,
            "stopped_early": state.stopped_early, "train/epoch_loss": state.history.get("train/epoch_loss"),
            "test": result.test_metrics, "wall_time_s": round(result.wall_time, 3),
        })
