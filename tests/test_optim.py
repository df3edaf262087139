"""The learning-rate schedule across a resume, as the README's Workflow (Resume) describes it."""

import math

import pytest
import torch

from training.optim import SchedulerConfig, build_scheduler

STEPS_PER_EPOCH, WARMUP_EPOCHS = 10, 1


def build(epochs: int, lr: float = 1.0) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=lr)
    scheduler = build_scheduler(optimizer, SchedulerConfig(name="cosine", warmup_epochs=WARMUP_EPOCHS),
                                STEPS_PER_EPOCH, epochs)
    return optimizer, scheduler


def train(optimizer, scheduler, steps: int) -> list[float]:
    """The learning rate of each optimizer step, stepping the schedule as the trainer does."""
    rates = []
    for _ in range(steps):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return rates


def cosine(step: int, epochs: int) -> float:
    warmup, total = WARMUP_EPOCHS * STEPS_PER_EPOCH, epochs * STEPS_PER_EPOCH
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / (total - warmup)))


def test_a_finished_cosine_run_resumed_with_more_epochs_follows_the_longer_curve_after_one_step_at_0() -> None:
    optimizer, scheduler = build(epochs=4)
    train(optimizer, scheduler, 4 * STEPS_PER_EPOCH)
    assert optimizer.param_groups[0]["lr"] == 0.0, "a finished cosine ends at 0"
    resumed_optimizer, resumed_scheduler = build(epochs=8)  # --resume --set training.epochs=8
    resumed_optimizer.load_state_dict(optimizer.state_dict())
    resumed_scheduler.load_state_dict(scheduler.state_dict())
    rates = train(resumed_optimizer, resumed_scheduler, 4 * STEPS_PER_EPOCH)
    assert rates[0] == 0.0, "the first step runs at the learning rate the checkpoint saved"
    first = 4 * STEPS_PER_EPOCH + 1
    assert rates[1:] == pytest.approx([cosine(step, 8) for step in range(first, 8 * STEPS_PER_EPOCH)])
    assert rates[1] == pytest.approx(0.5 + 0.5 * math.cos(math.pi * 31 / 70)), "the jump: 0 -> 0.59 of the peak"


def test_a_resume_with_the_same_epochs_continues_the_same_curve() -> None:
    optimizer, scheduler = build(epochs=4)
    straight = train(optimizer, scheduler, 4 * STEPS_PER_EPOCH)
    first_optimizer, first_scheduler = build(epochs=4)
    train(first_optimizer, first_scheduler, 25)
    resumed_optimizer, resumed_scheduler = build(epochs=4)
    resumed_optimizer.load_state_dict(first_optimizer.state_dict())
    resumed_scheduler.load_state_dict(first_scheduler.state_dict())
    assert train(resumed_optimizer, resumed_scheduler, 15) == straight[25:]


def test_a_resume_keeps_the_checkpoints_peak_learning_rate() -> None:
    optimizer, scheduler = build(epochs=4)
    train(optimizer, scheduler, 15)
    resumed_optimizer, resumed_scheduler = build(epochs=4, lr=2.0)  # --resume --set optimizer.lr=2.0
    resumed_optimizer.load_state_dict(optimizer.state_dict())
    resumed_scheduler.load_state_dict(scheduler.state_dict())
    assert train(resumed_optimizer, resumed_scheduler, 2)[1] == pytest.approx(cosine(16, 4))
