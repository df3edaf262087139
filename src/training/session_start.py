"""Where a session starts from: a fresh run, a resume from the newest valid checkpoint, or a run
started over (its old outputs moved aside first), and the loading of that checkpoint.

`training.session` calls these in order; they hold the rules of `--resume` and `--restart`.
"""

from pathlib import Path

import torch

from training.distributed import barrier
from training.trainer import Trainer
from training.trainer_config import TrainingConfig
from training.world_size_change import continue_on_world_size
from utils.checkpointing.io import restore_checkpoint
from utils.checkpointing.manager import CheckpointManager
from utils.distributed_info import is_main_process
from utils.errors import CheckpointError
from utils.runs.outputs import move_outputs_aside, read_summary
from utils.runs.run import Run


def prepare_checkpoints(
    run: Run, training: TrainingConfig, device: torch.device, resume: bool, restart: bool,
) -> tuple[CheckpointManager, tuple[Path, dict] | None, list[str]]:
    """The checkpoint manager, the checkpoint to resume from, and notes for log.txt.

    Starting over (`restart`, or `resume` of a run without a valid checkpoint, such as one killed
    before its first save) first moves the old outputs aside, so that nothing is lost.
    """
    skipped: list[tuple[Path, str]] = []  # the unreadable checkpoints of a resume, for log.txt
    if resume:
        checkpoints = CheckpointManager(run.checkpoints, training.keep_checkpoints, training.best_mode)
        try:
            # FSDP: each rank reads the full state on the CPU and keeps its shard on the device
            location = "cpu" if training.parallel == "fsdp" else device
            return checkpoints, checkpoints.find_resume_checkpoint(map_location=location), []
        except CheckpointError:  # no valid checkpoint: start over
            skipped = checkpoints.skipped
    elif not restart:
        return CheckpointManager(run.checkpoints, training.keep_checkpoints, training.best_mode), None, []
    barrier()  # every rank has read the checkpoints before rank 0 moves them
    archive = move_outputs_aside(run) if is_main_process() else None
    barrier()
    checkpoints = CheckpointManager(run.checkpoints, training.keep_checkpoints, training.best_mode)
    checkpoints.skipped.extend(skipped)
    notes = [f"no valid checkpoint in {run.checkpoints}: --resume starts over from step 0"] if resume else []
    if archive is not None:
        notes.append(f"{'--resume' if resume else '--restart'}: the previous outputs were moved to {archive}")
    return checkpoints, None, notes


def already_finished(run: Run, epochs: int) -> bool:
    """True when a finished session trained every configured epoch; says so on stdout."""
    summary = read_summary(run)
    if summary is None or summary["epochs"] < epochs and not summary.get("stopped_early"):
        return False
    done = summary["epochs"]
    if is_main_process():
        print(
            f"run {run.name} is finished ({done} epochs); nothing to do. "
            "Train longer with --resume --set training.epochs=N, or start over with --restart."
        )
    return True


def restore_trainer(trainer: Trainer, path: Path, checkpoint: dict) -> list[str]:
    """Load every state but the random ones (restored last, see run_session); returns notes for log.txt."""
    notes, scaler = [], trainer.precision.scaler
    if scaler is not None and checkpoint["scaler"] is None:
        notes.append("the checkpoint has no GradScaler state (trained without fp16): the loss scale starts anew")
        scaler = None
    restore_checkpoint(
        checkpoint, model=trainer.model, optimizer=trainer.optimizer,
        scheduler=trainer.scheduler, scaler=scaler, restore_rng=False,
    )
    trainer.load_state_dict(checkpoint)
    if checkpoint.get("task_state"):  # older checkpoints have none: the task keeps what build_datasets made
        trainer.task.load_state_dict(checkpoint["task_state"])
    return notes + continue_on_world_size(trainer, checkpoint)
