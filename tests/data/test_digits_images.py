"""data.digits_images: scikit-learn's bundled digits, read from its CSV without importing sklearn."""

import numpy as np

from data.digits_images import DIGITS_IMAGES, load_digits_arrays


def test_digits_are_the_bundled_1797_images_in_unit_range():
    images, labels = load_digits_arrays()
    assert images.shape == (DIGITS_IMAGES, 1, 8, 8) and images.dtype == np.float32
    assert images.min() == 0.0 and images.max() == 1.0
    assert labels.shape == (DIGITS_IMAGES,) and set(labels.tolist()) == set(range(10))


def test_digits_read_from_the_csv_equal_scikit_learns_own_loader():
    from sklearn.datasets import load_digits

    images, labels = load_digits_arrays()
    bunch = load_digits()
    assert np.array_equal(images[:, 0] * 16.0, bunch.images.astype(np.float32))
    assert np.array_equal(labels, bunch.target)
