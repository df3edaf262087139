"""The engine's training loop: epochs of steps, evaluation, checkpoints, graceful stop.

Everything the loop needs is built by `training.session` and handed in. What is specific to a
problem (the loss of a batch, the metrics, the pictures) comes from the task through
`training.task.Task`; the loop itself trains, evaluates, logs through LOGGER and checkpoints.
"""

import signal
import sys
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from training.callbacks import EpochCallback, ask_callbacks
from training.data_loading import Loaders
from training.debugging import RunInspector
from training.distributed import any_rank, barrier
from training.early_stopping import EarlyStopping
from training.epoch_clock import EpochClock
from training.epoch_totals import EpochTotals
from training.evaluation import Evaluation, evaluate, log_drawings
from training.hang_watchdog import WATCHDOG
from training.parallel import clip_gradients, gradient_sync
from training.precision import MixedPrecision
from training.signals import GracefulStop
from training.task import Task
from training.throughput import EpochMeter, EpochPerf
from training.trainer_config import TrainingConfig
from utils.checkpointing.async_writer import AsyncCheckpointWriter
from utils.checkpointing.io import build_checkpoint
from utils.checkpointing.manager import CheckpointManager
from utils.distributed_info import get_world_size, is_distributed, is_main_process
from utils.helper_functions import move_to_device
from utils.logging import LOGGER
from utils.profiler import PROFILER


@dataclass
class TrainState:
    """Where the loop is: restored from a checkpoint on resume."""

    epoch: int = 0  # completed epochs
    batches_done: int = 0  # batches of the current (unfinished) epoch already trained
    epoch_start: int = 0  # samples of the epoch trained before a resume on another world size
    global_step: int = 0  # completed optimizer steps; the next step is logged at this index
    history: dict[str, float] = field(default_factory=dict)  # train/epoch_loss and the latest val/* metrics
    epoch_totals: dict[str, Any] = field(default_factory=dict)  # an unfinished epoch's EpochTotals.state_dict()
    stopped_early: str | None = None  # the reason, once early stopping ended the training


@dataclass
class Trainer:
    task: Task
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    precision: MixedPrecision
    loaders: Loaders
    checkpoints: CheckpointManager | AsyncCheckpointWriter  # the latter when training.async_checkpoint
    config: TrainingConfig
    device: torch.device
    stop: GracefulStop
    early_stopping: EarlyStopping
    callbacks: tuple[EpochCallback, ...] = ()  # asked on rank 0 after each evaluated epoch
    state: TrainState = field(default_factory=TrainState)
    inspector: RunInspector = field(default_factory=RunInspector)  # the debug and profile sections
    perf: EpochPerf | None = None  # the last trained epoch's speed, shown on the epoch line

    def fit(self) -> None:
        """Train until the configured number of epochs or a stop signal."""
        clock = EpochClock(first_epoch=self.state.epoch, epochs=self.config.epochs)
        while self.state.epoch < self.config.epochs and self.state.stopped_early is None:
            if not self.train_epoch():
                self.save(epoch_end=False, evaluation=None)
                LOGGER.warning(
                    f"stopped by {signal.Signals(self.stop.signum).name} in epoch {self.state.epoch + 1}"
                    f" at step {self.state.global_step}: saved last.pt; resume with --resume"
                )
                return
            self.state.epoch += 1
            self.state.batches_done = self.state.epoch_start = 0
            self.state.epoch_totals = {}
            evaluation = self.maybe_evaluate()
            if evaluation is not None:
                self.state.stopped_early = self._stop_reason()
            self.save(epoch_end=True, evaluation=evaluation)
            LOGGER.info(self._epoch_line(clock.lap(self.state.epoch), evaluated=evaluation is not None))
            if self.state.stopped_early is not None:
                LOGGER.info(f"{self.state.stopped_early}; stopped after epoch {self.state.epoch}")

    def _stop_reason(self) -> str | None:
        """Early stopping's reason, else a callback's, else None (every callback still sees the epoch).

        A callback's reason after the last epoch stops nothing: the run has trained every epoch and
        finishes as such (a sweep trial that Optuna would prune at its end completes, its result kept).
        """
        early = self.early_stopping.update(self.state.history[self.early_stopping.config.metric])
        asked = ask_callbacks(self.callbacks, self.state.epoch, self.state.history, self.device)
        if self.state.epoch >= self.config.epochs:
            asked = None
        return early if early is not None else asked

    def _epoch_line(self, timing: str, evaluated: bool) -> str:
        """`epoch 3/15  train/epoch_loss 0.2143  val/loss 0.1532  val/accuracy 0.9630  lr 0.00095`, then the
        epoch's speed and the timing: `2,890 samples/s, data 2%  12.1 s, eta 48 s`"""
        shown = {k: v for k, v in self.state.history.items() if evaluated or not k.startswith("val/")}
        metrics = "  ".join(f"{name} {value:.4f}" for name, value in shown.items())
        lr = self.optimizer.param_groups[0]["lr"]
        speed = f"  {self.perf.line()}" if self.perf is not None else ""
        return f"epoch {self.state.epoch}/{self.config.epochs}  {metrics}  lr {lr:.3g}{speed}  {timing}"

    def train_epoch(self) -> bool:
        """One epoch (or its remainder after a resume); False when a stop was requested."""
        self.model.train()
        self.loaders.train_sampler.set_epoch(self.state.epoch, start=self.state.epoch_start)
        totals = EpochTotals(self.device)
        meter, self.perf = EpochMeter(self.state.global_step, int(self.state.epoch_totals.get("count", 0))), None
        if self.state.epoch_totals:  # resumed part-way: the batches trained before count too
            totals.load_state_dict(self.state.epoch_totals, main=is_main_process())
        progress = self._progress_bar()
        batches = iter(self.loaders.train)
        accumulate, batch_count = self.config.accumulate_steps, len(self.loaders.train)
        group_loss = torch.zeros((), device=self.device)  # the mean loss of the micro-batches so far
        for index in range(batch_count):
            WATCHDOG.enter("loading a batch", self.state.global_step)
            with PROFILER.section("data"):
                batch = meter.next(batches)
                if index < self.state.batches_done:
                    continue  # already trained before the interruption
                batch = move_to_device(batch, self.device)
            steps_now = (index + 1) % accumulate == 0 or index + 1 == batch_count  # a group's last batch
            start = index - index % accumulate
            group_size = min(accumulate, batch_count - start)  # the epoch's last group may be short
            if index == start:
                self.optimizer.zero_grad(set_to_none=True)
                group_loss = torch.zeros((), device=self.device)
            # DDP averages gradients only on the micro-batch that steps the optimizer
            with self._gradient_sync(steps_now), self.inspector.micro_batch(self.state.global_step, index == start):
                WATCHDOG.enter("the forward pass")
                with PROFILER.section("forward"):
                    with self.precision.autocast():
                        output = self.task.train_step(self.model, batch)
                WATCHDOG.enter("the backward pass (DDP's gradient all-reduce)")
                with PROFILER.section("backward"):
                    self.precision.backward(output.loss / group_size)
            totals.add(output)
            group_loss = group_loss + output.loss.detach() / group_size
            self.state.batches_done = index + 1
            progress.update(1)
            if not steps_now:
                continue
            WATCHDOG.enter("the optimizer step")
            self.inspector.before_optimizer(self.state.global_step)  # nan_guard=stop raises here
            with PROFILER.section("optimizer"):
                self._optimizer_step()
            self.scheduler.step()
            step = self.state.global_step
            # this rank's loss, a device tensor: the logging thread reads it, the loop never waits
            LOGGER.log({"train/loss": group_loss, "lr": self.optimizer.param_groups[0]["lr"]}, step)
            PROFILER.step(step)  # every `log_every` steps: time/<section> means
            self.state.global_step += 1
            if self._should_stop(totals, progress):
                progress.close()
                self.state.epoch_totals = totals.state_dict()
                return False
        progress.close()
        WATCHDOG.leave()
        stop_any, means = totals.close(self.stop.requested)
        if stop_any:  # a signal in the steps since the last check stops every rank here
            self._stop_for_another_rank()
            self.state.epoch_totals = totals.state_dict()
            return False
        if means:  # none when a resume at an epoch's end finds no totals (a checkpoint from before they were saved)
            self.state.history["train/epoch_loss"] = means["loss"]  # train/loss is the per-step loss
            epoch_metrics = {f"train/epoch_{name}": value for name, value in means.items()}
            self.perf = meter.finish(self.state.global_step, totals.global_count, device=self.device,
                                     precision=self.precision.precision, flops_per_sample=self.task.flops_per_sample,
                                     world_size=get_world_size())
            metrics = {**epoch_metrics, **self.perf.metrics(), "epoch": self.state.epoch + 1}
            LOGGER.log(metrics, self.state.global_step - 1)
        return True

    def stop_agreed(self) -> bool:
        """Whether any rank was signalled (one collective under torchrun); every rank then stops."""
        if any_rank(self.stop.requested, self.device):
            self._stop_for_another_rank()
        return self.stop.requested

    def _stop_for_another_rank(self) -> None:
        if not self.stop.requested:
            self.stop.request(signal.SIGTERM)  # another rank was signalled

    def _should_stop(self, totals: EpochTotals, progress: Any) -> bool:
        """Whether every rank stops after this step.

        In one process the signal flag is read every step (a host bool: free). Under torchrun the
        ranks agree every `stop_check_every` steps, at the same global steps on every rank, with
        one all-reduce and one host read that also carry the progress bar's running loss; no
        other step synchronises the host with the device.
        """
        at_check = self.state.global_step % self.config.stop_check_every == 0
        if not is_distributed():
            if at_check and not progress.disable:  # a host read, only on a terminal
                progress.set_postfix(loss=f"{totals.agree(False)[1]:.4f}", refresh=False)
            return self.stop.requested
        if not at_check:
            return False
        stop_any, running_loss = totals.agree(self.stop.requested)
        if not progress.disable:
            progress.set_postfix(loss=f"{running_loss:.4f}", refresh=False)
        if stop_any:
            self._stop_for_another_rank()
        return stop_any

    def _gradient_sync(self, steps_now: bool) -> Any:
        """No gradient reduction on micro-batches that do not step the optimizer (DDP or FSDP)."""
        return gradient_sync(self.model, steps_now)

    def _optimizer_step(self) -> None:
        self.precision.unscale(self.optimizer)
        if self.config.grad_clip is not None:
            clip_gradients(self.model, self.config.grad_clip)
        self.precision.step(self.optimizer)

    def _progress_bar(self):
        from tqdm import tqdm

        return tqdm(
            total=len(self.loaders.train), initial=self.state.batches_done, desc=f"epoch {self.state.epoch + 1}",
            leave=False, disable=not (sys.stderr.isatty() and is_main_process()),
        )

    def maybe_evaluate(self) -> Evaluation | None:
        """Validate every `eval_every` epochs and after the last one; log metrics and drawings."""
        if self.state.epoch % self.config.eval_every and self.state.epoch != self.config.epochs:
            return None
        step = self.state.global_step - 1
        evaluation = evaluate(
            self.task, self.model, self.loaders.val, self.device, self.precision.autocast(), split="val", step=step,
        )
        metrics = {f"val/{name}": value for name, value in evaluation.metrics.items()}
        self.state.history.update(metrics)
        LOGGER.log(metrics, step)
        if self._draws_at(self.state.epoch):
            log_drawings("val", self.task, self.model, evaluation, step)
        return evaluation

    def _draws_at(self, epoch: int) -> bool:
        every = self.config.draw_every
        return every is not None and (epoch % every == 0 or epoch == self.config.epochs)

    def state_dict(self) -> dict[str, Any]:
        """The loop's position as a checkpoint's keys: `epoch`, `global_step` and the `extra`
        block (the unfinished epoch's batches and totals, early stopping, a stop reason)."""
        return {
            "epoch": self.state.epoch, "global_step": self.state.global_step,
            "extra": {
                "batches_done": self.state.batches_done, "epoch_totals": self.state.epoch_totals,
                "position": self.loaders.train_sampler.position(
                    self.state.epoch_start, self.state.batches_done, self.loaders.train.batch_size),
                "stopped_early": self.state.stopped_early, "early_stopping": self.early_stopping.state_dict(),
            },
        }

    def load_state_dict(self, checkpoint: dict[str, Any]) -> None:
        """Go on from `state_dict()`'s keys of a checkpoint. Keys that older checkpoints lack
        (epoch totals, a stop reason, early stopping) start empty."""
        extra = checkpoint["extra"]
        self.state = TrainState(
            epoch=checkpoint["epoch"], batches_done=extra["batches_done"], global_step=checkpoint["global_step"],
            stopped_early=extra.get("stopped_early"), epoch_totals=extra.get("epoch_totals", {}),
            epoch_start=extra.get("position", {}).get("epoch_start", 0),
        )
        if "early_stopping" in extra:
            self.early_stopping.load_state_dict(extra["early_stopping"])

    def save(self, *, epoch_end: bool, evaluation: Evaluation | None) -> None:
        """last.pt always; an epoch file every `checkpoint_every` epochs; best.pt on improvement,
        which the checkpoint manager decides from the metric handed to it."""
        metric = self.state.history[self.config.best_metric] if evaluation is not None else None
        checkpoint = build_checkpoint(  # on every rank: a sharded model is gathered to rank 0 by all
            model=self.model, optimizer=self.optimizer, scheduler=self.scheduler,
            scaler=self.precision.scaler, task_state=self.task.state_dict(), **self.state_dict(),
        )
        if is_main_process():
            epoch_file = epoch_end and self.state.epoch % self.config.checkpoint_every == 0
            self.checkpoints.save(checkpoint, epoch_file=epoch_file, metric=metric)
        barrier("the checkpoint barrier")
