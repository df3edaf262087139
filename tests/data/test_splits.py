"""Seeded splits in data.splits: the same indices for a seed, disjoint and complete, no empty split."""

import numpy as np
import pytest

from data.splits import split_indices, split_sizes


def test_split_is_seeded_disjoint_and_complete():
    first, again, other = (split_indices(1797, 0.15, 0.15, seed) for seed in (0, 0, 1))
    assert all(np.array_equal(first[k], again[k]) for k in first)
    assert not np.array_equal(first["train"], other["train"])
    joined = np.concatenate([first["train"], first["val"], first["test"]])
    assert sorted(joined.tolist()) == list(range(1797))
    assert (len(first["train"]), len(first["val"]), len(first["test"])) == (1257, 270, 270)


@pytest.mark.parametrize("val, test", [(0.5, 0.5), (0.6, 0.5), (0.9, 0.3)])
def test_split_rejects_fractions_whose_sum_reaches_one(val, test):
    with pytest.raises(ValueError, match="val_fraction"):
        split_indices(100, val, test, 0)


def test_a_fraction_that_holds_out_nothing_is_refused_with_the_smallest_that_works():
    with pytest.raises(ValueError, match=r"data.test_fraction=0.001 holds out 0 of the 100 images: .* 0.01"):
        split_sizes(100, 0.2, 0.001)
