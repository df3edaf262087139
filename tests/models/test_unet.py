"""models.unet: logits of the input's size for any H, W, and gradients that reach every level."""

import pytest
import torch

from models.unet import UNet


@pytest.mark.parametrize("size", [(32, 32), (30, 33)])
def test_unet_maps_images_to_class_logits_of_the_same_size(size: tuple[int, int]) -> None:
    model = UNet(3, 4, [8, 16, 32])
    assert model(torch.rand(2, 3, *size)).shape == (2, 4, *size)


def test_every_parameter_of_the_unet_gets_a_gradient() -> None:
    model = UNet(1, 2, [4, 8])
    model(torch.rand(1, 1, 9, 9)).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
