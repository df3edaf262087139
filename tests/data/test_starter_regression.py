"""data.starter_regression: the starter task's generated inputs and targets."""

import torch

from data.starter_regression import make_regression


def test_every_seed_samples_the_same_function():
    inputs, targets = make_regression(64, 8, 0.0, seed=5)
    again_inputs, again_targets = make_regression(64, 8, 0.0, seed=5)
    assert torch.equal(targets, again_targets) and targets.shape == (64, 1)
    _, noisy = make_regression(64, 8, 0.1, seed=5)
    assert 0 < (noisy - targets).abs().max() < 1
