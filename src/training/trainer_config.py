"""The `training` section of a run's config: epochs, precision, evaluation, checkpoints, accumulation."""

from dataclasses import dataclass
from typing import ClassVar, Literal

from training.parallel import Parallel
from training.precision import Precision
from utils.config_fields import option


@dataclass(frozen=True, kw_only=True)
class TrainingConfig:
    SECTION: ClassVar[str] = "training"
    RENAMED: ClassVar[dict[str, str]] = {"amp": "precision"}  # old key -> its replacement
    epochs: int = option(15, "epochs to train", gt=0)
    grad_clip: float | None = option(1.0, "clip the gradient norm to this value (null: no clipping)", gt=0)
    precision: Precision = option(
        "fp32", "'fp32': no autocast; 'bf16': autocast to bfloat16 (CPU and CUDA); 'fp16': autocast "
        "to float16 with a GradScaler (CUDA only)",
    )
    parallel: Parallel = option(
        "ddp", "under torchrun, 'ddp': every rank holds the whole model; 'fsdp': FSDP2 shards weights, "
        "gradients and optimizer state over the ranks (Task.shard_units); no effect in one process",
    )
    compile: bool = option(False, "torch.compile the model (needs a C++ compiler on the CPU, checked at start)")
    eval_every: int = option(1, "validate every N epochs (and after the last)", gt=0)
    draw_every: int | None = option(
        1, "log the task's drawings every N epochs at validation (and after the last), and at the "
        "test; the training curves go into plots/ at the end (null: no figures at all, e.g. for "
        "sweep trials: each figure costs a render)", gt=0,
    )
    checkpoint_every: int = option(5, "keep an epoch checkpoint every N epochs (last.pt is written every epoch)", gt=0)
    async_checkpoint: bool = option(
        False, "write checkpoints on a background thread: the loop only waits for a copy of the state to "
        "the CPU (pinned memory on CUDA); a new save, a signal and the end wait for the pending write",
    )
    keep_checkpoints: int = option(2, "how many epoch checkpoints to keep (the newest)", gt=0)
    best_metric: str = option("val/loss", "the validation metric that picks best.pt: val/<one of the task's metrics>")
    best_mode: Literal["min", "max"] | None = option(
        None, "whether a smaller (min) or larger (max) best_metric is better (null: the direction the task "
        "declares for it)",
    )
    accumulate_steps: int = option(
        1, "micro-batches whose gradients add up to one optimizer step (the logged step counts "
        "optimizer steps)", gt=0,
    )
    stop_check_every: int = option(
        10, "under torchrun, steps between the ranks' agreement on a stop signal (one collective and "
        "one host read; none in between)", gt=0,
    )
