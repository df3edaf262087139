"""The example's training loop: epochs of steps, evaluation, checkpoints, graceful stop.

Everything the loop needs is built by `training.session` and handed in; the loop itself only
trains, evaluates, logs through LOGGER and checkpoints, so it reads top to bottom.
"""

import signal
import sys
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from data.digits import CLASS_NAMES, DigitsLoaders
from training.distributed import all_reduce_mean, any_rank
from training.evaluation import EvalResult, evaluate
from training.signals import GracefulStop
from utils.checkpoints import CheckpointManager, build_checkpoint
from utils.helper_functions import barrier, is_main_process
from utils.logging import LOGGER
from utils.profiler import Profiler


POSTFIX_EVERY = 10  # steps between updates of the progress bar's running loss


class EpochClock:
    """Elapsed time and an ETA from the mean epoch time of this session (resumes included)."""

    def __init__(self, first_epoch: int, epochs: int) -> None:
        self.first_epoch, self.epochs = first_epoch, epochs
        self.started = time.perf_counter()

    def lap(self, epoch: int) -> str:
        elapsed = time.perf_counter() - self.started
        eta = elapsed / max(epoch - self.first_epoch, 1) * (self.epochs - epoch)
        return f"{elapsed:.1f} s, eta {eta:.0f} s"


@dataclass
class TrainState:
    """Where the loop is: restored from a checkpoint on resume."""

    epoch: int = 0  # completed epochs
    batches_done: int = 0  # batches of the current (unfinished) epoch already trained
    global_step: int = 0  # completed optimizer steps; the next step is logged at this index
    best_metric: float | None = None
    history: dict[str, float] = field(default_factory=dict)


@dataclass
class Trainer:
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler | None
    loaders: DigitsLoaders
    checkpoints: CheckpointManager
    config: dict
    device: torch.device
    stop: GracefulStop
    profiler: Profiler
    state: TrainState = field(default_factory=TrainState)

    def fit(self) -> None:
        """Train until the configured number of epochs or a stop signal."""
        epochs = self.config["training"]["epochs"]
        clock = EpochClock(first_epoch=self.state.epoch, epochs=epochs)
        while self.state.epoch < epochs:
            finished = self.train_epoch()
            if not finished:
                self.save(epoch_end=False, result=None)
                LOGGER.warning(
                    f"stopped by {signal.Signals(self.stop.signum).name} in epoch {self.state.epoch + 1}"
                    f" at step {self.state.global_step}: saved last.pt; resume with --resume"
                )
                return
            self.state.epoch += 1
            self.state.batches_done = 0
            result = self.maybe_evaluate()
            self.save(epoch_end=True, result=result)
            LOGGER.info(self._epoch_line(clock.lap(self.state.epoch), evaluated=result is not None))

    def _epoch_line(self, timing: str, evaluated: bool) -> str:
        """`epoch 3/15  train/loss 0.2143  val/loss 0.1532  val/accuracy 0.9630  lr 0.00095  12.1 s, eta 48 s`"""
        shown = {k: v for k, v in self.state.history.items() if evaluated or not k.startswith("val/")}
        metrics = "  ".join(f"{name} {value:.4f}" for name, value in shown.items())
        lr = self.optimizer.param_groups[0]["lr"]
        return f"epoch {self.state.epoch}/{self.config['training']['epochs']}  {metrics}  lr {lr:.3g}  {timing}"

    def train_epoch(self) -> bool:
        """One epoch (or its remainder after a resume); False when a stop was requested."""
        self.model.train()
        self.loaders.train_sampler.set_epoch(self.state.epoch)
        clip = self.config["training"]["grad_clip"]
        loss_sum = torch.zeros((), device=self.device)  # stays on the device: no sync per step
        hits = torch.zeros((), device=self.device, dtype=torch.long)
        count = 0
        progress = self._progress_bar()
        batches = iter(self.loaders.train)
        for index in range(len(self.loaders.train)):
            with self.profiler.section("data"):
                images, labels = next(batches)
                if index < self.state.batches_done:
                    continue  # already trained before the interruption
                images, labels = images.to(self.device), labels.to(self.device)
            with self.profiler.section("forward"):
                with torch.autocast(self.device.type, enabled=self.scaler is not None):
                    logits = self.model(images)  # (B, num_classes)
                    loss = F.cross_entropy(logits, labels)
            with self.profiler.section("backward"):
                self.optimizer.zero_grad(set_to_none=True)
                self._backward(loss)
            with self.profiler.section("optimizer"):
                self._optimizer_step(clip)
            self.scheduler.step()
            loss_sum += loss.detach() * labels.numel()
            hits += (logits.argmax(1) == labels).sum()
            count += labels.numel()
            step = self.state.global_step
            LOGGER.log({"train/loss": all_reduce_mean(loss.detach()), "lr": self.optimizer.param_groups[0]["lr"]}, step)
            self.profiler.step(step)  # every `log_every` steps: time/<section> means
            self.state.global_step += 1
            self.state.batches_done = index + 1
            progress.update(1)
            if not progress.disable and index % POSTFIX_EVERY == 0:  # a host sync, only on a terminal
                progress.set_postfix(loss=f"{(loss_sum / count).item():.4f}", refresh=False)
            if any_rank(self.stop.requested, self.device):
                self.stop.request(self.stop.signum or signal.SIGTERM)  # another rank was signalled
                progress.close()
                return False
        progress.close()
        totals = torch.stack([loss_sum, hits.float(), torch.tensor(float(count), device=self.device)])
        total_loss, total_hits, total_count = all_reduce_mean(totals).tolist()
        self.state.history["train/loss"] = total_loss / total_count
        LOGGER.log(
            {"train/epoch_loss": total_loss / total_count, "train/epoch_accuracy": total_hits / total_count,
             "epoch": self.state.epoch + 1},
            self.state.global_step - 1,
        )
        return True

    def _backward(self, loss: torch.Tensor) -> None:
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
        else:
            loss.backward()

    def _optimizer_step(self, clip: float | None) -> None:
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        if clip is not None:
            nn.utils.clip_grad_norm_(self.model.parameters(), clip)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()

    def _progress_bar(self):
        from tqdm import tqdm

        total = len(self.loaders.train)
        return tqdm(
            total=total, initial=self.state.batches_done, desc=f"epoch {self.state.epoch + 1}",
            leave=False, disable=not (sys.stderr.isatty() and is_main_process()),
        )

    def maybe_evaluate(self) -> EvalResult | None:
        """Validate every `eval_every` epochs and after the last one; log metrics and images."""
        training = self.config["training"]
        if self.state.epoch % training["eval_every"] and self.state.epoch != training["epochs"]:
            return None
        result = evaluate(self.model, self.loaders.val, self.device, len(CLASS_NAMES))
        step = self.state.global_step - 1
        metrics = {"val/loss": result.loss, "val/accuracy": result.accuracy}
        self.state.history.update(metrics)
        LOGGER.log(metrics, step)
        log_evaluation_images("val", result, step, self.loaders)
        return result

    def save(self, *, epoch_end: bool, result: EvalResult | None) -> None:
        """last.pt always; an epoch file every `checkpoint_every` epochs; best.pt on improvement."""
        training = self.config["training"]
        metric = None
        if result is not None:
            metric = self.state.history[training["best_metric"]]
            if self.checkpoints.is_better(metric):
                self.state.best_metric = metric
        if is_main_process():
            checkpoint = build_checkpoint(
                model=self.model, optimizer=self.optimizer, scheduler=self.scheduler,
                scaler=self.scaler, epoch=self.state.epoch, global_step=self.state.global_step,
                best_metric=self.state.best_metric, logger_state=LOGGER.state_dict(),
                extra={"batches_done": self.state.batches_done},
            )
            epoch_file = epoch_end and self.state.epoch % training["checkpoint_every"] == 0
            self.checkpoints.save(checkpoint, epoch_file=epoch_file, metric=metric)
        barrier()


def log_evaluation_images(split: str, result: EvalResult, step: int, loaders: DigitsLoaders) -> None:
    """The confusion matrix and a labelled grid of sample predictions, as images."""
    from visualization.visualizations import mistakes_first, plot_confusion_matrix, plot_prediction_grid

    LOGGER.log_figure(f"{split}/confusion_matrix", plot_confusion_matrix(result.confusion.numpy(), CLASS_NAMES), step)
    order = mistakes_first(result.sample_labels, result.sample_predictions)[:32]
    images = result.sample_images[order] * loaders.std + loaders.mean  # un-normalise to [0, 1]
    LOGGER.log_figure(
        f"{split}/predictions",
        plot_prediction_grid(images, result.sample_labels[order], result.sample_predictions[order], CLASS_NAMES),
        step,
    )
