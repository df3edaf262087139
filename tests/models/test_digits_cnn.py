"""models.digits_cnn: the digits example's CNN maps 8x8 grey images to class logits."""

import torch

from models.digits_cnn import DigitsCNN


def test_digits_cnn_maps_images_to_one_logit_per_class():
    images = torch.randn(5, 1, 8, 8)
    assert DigitsCNN([4, 8], hidden=16, dropout=0.0)(images).shape == (5, 10)
    assert DigitsCNN([4, 8], hidden=16, dropout=0.0, num_classes=3)(images).shape == (5, 3)
