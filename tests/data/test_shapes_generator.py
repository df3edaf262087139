"""data.shapes_generator: seeded images and masks of circles, squares and triangles."""

import torch

from data.shapes_generator import NUM_CLASSES, generate_shapes


def test_the_same_seed_gives_the_same_images_and_another_seed_differs():
    first, again, other = (generate_shapes(8, 16, 2, 0.1, seed=seed) for seed in (3, 3, 4))
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not torch.equal(first[0], other[0])


def test_images_lie_in_unit_range_and_masks_hold_every_class_and_nothing_else():
    images, masks = generate_shapes(32, 16, 3, 0.1, seed=0)
    assert images.shape == (32, 3, 16, 16) and images.dtype == torch.float32
    assert masks.shape == (32, 16, 16) and masks.dtype == torch.int64
    assert 0.0 <= images.min() and images.max() <= 1.0
    assert masks.unique().tolist() == list(range(NUM_CLASSES))


def test_without_noise_every_background_pixel_has_its_image_background_colour():
    images, masks = generate_shapes(16, 24, 3, 0.0, seed=5)
    for image, mask in zip(images, masks):
        background = image[:, mask == 0]  # (3, P)
        assert torch.equal(background, background[:, :1].expand_as(background))
        assert not (image[:, mask > 0] == background[:, :1]).all(dim=0).any()  # shapes stand out
