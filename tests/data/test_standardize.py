"""data.standardize: statistics of the training split only, applied to every split, undone for drawing."""

import numpy as np
import pytest
import torch

from data.standardize import Standardizer


def test_standardizer_uses_the_training_split_and_inverts_exactly():
    rng = np.random.default_rng(0)
    train, other = rng.normal(3.0, 2.0, (500, 4)), rng.normal(10.0, 5.0, (50, 4))
    standardizer = Standardizer.fit(train)
    assert (standardizer.mean, standardizer.std) == pytest.approx((float(train.mean()), float(train.std())))
    scaled = standardizer.apply(train)
    assert abs(scaled.mean()) < 1e-9 and scaled.std() == pytest.approx(1.0)
    assert standardizer.apply(other).mean() > 2.0, "a val/test split keeps the training split's statistics"
    assert np.allclose(standardizer.invert(standardizer.apply(other)), other)
    tensor = torch.from_numpy(other)
    assert torch.allclose(standardizer.invert(standardizer.apply(tensor)), tensor)
