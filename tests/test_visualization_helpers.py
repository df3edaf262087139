"""Image conversion and figure rendering (utils.log.images), grids and PNG saving (visualization.helper_functions)."""

import subprocess
import sys

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from PIL import Image

from conftest import subprocess_env
from utils.log.images import figure_to_array, to_uint8_image
from visualization.helper_functions import make_grid, save_png


def _ramp(height: int = 4, width: int = 5) -> np.ndarray:
    """(H, W) floats in [0, 1] with a distinct value per pixel."""
    return np.linspace(0.0, 1.0, height * width).reshape(height, width)


def test_grayscale_hw_becomes_rgb_with_equal_channels():
    out = to_uint8_image(_ramp())
    assert out.shape == (4, 5, 3) and out.dtype == np.uint8
    assert np.array_equal(out[..., 0], out[..., 2])
    assert out[0, 0, 0] == 0 and out[-1, -1, 0] == 255


def test_chw_tensor_and_hwc_array_give_the_same_image():
    rgb = np.stack([_ramp(), 1 - _ramp(), np.full((4, 5), 0.5)], axis=-1)  # (H, W, 3)
    from_hwc = to_uint8_image(rgb)
    from_chw = to_uint8_image(torch.from_numpy(rgb).permute(2, 0, 1))
    assert from_hwc.shape == (4, 5, 3)
    assert np.array_equal(from_hwc, from_chw)
    assert from_hwc[0, 0].tolist() == [0, 255, 128]


@pytest.mark.parametrize("shape", [(1, 4, 5), (4, 5, 1)])
def test_single_channel_chw_and_hwc_are_grayscale(shape):
    out = to_uint8_image(_ramp().reshape(shape))
    assert out.shape == (4, 5, 3)
    assert np.array_equal(out[..., 1], np.rint(_ramp() * 255).astype(np.uint8))


def test_ambiguous_shape_follows_the_documented_rule_last_dim_is_channels():
    image = np.zeros((3, 5, 3))
    image[0, :, 0] = 1.0  # red first row if (H, W, C)
    out = to_uint8_image(image)
    assert out.shape == (3, 5, 3)
    assert out[0, 0].tolist() == [255, 0, 0]


def test_minus_one_to_one_floats_map_to_full_range():
    out = to_uint8_image(torch.tensor([[-1.0, 0.0, 1.0]]))
    assert out[0, :, 0].tolist() == [0, 128, 255]


def test_values_outside_unit_ranges_are_min_max_scaled():
    out = to_uint8_image(np.array([[10.0, 15.0, 20.0]]))
    assert out[0, :, 0].tolist() == [0, 128, 255]


def test_explicit_value_range_clips():
    out = to_uint8_image(np.array([[0.0, 0.5, 2.0]]), value_range=(0.0, 1.0))
    assert out[0, :, 0].tolist() == [0, 128, 255]


def test_mean_std_are_undone_per_channel():
    mean, std = [0.5, 0.25, 0.0], [0.5, 0.25, 1.0]
    original = np.stack([_ramp(), _ramp() * 0.5, np.zeros((4, 5))])  # (3, H, W) in [0, 1]
    normalised = (original - np.array(mean)[:, None, None]) / np.array(std)[:, None, None]
    out = to_uint8_image(torch.tensor(normalised, dtype=torch.float32), mean=mean, std=std)
    assert np.array_equal(out, to_uint8_image(original.transpose(1, 2, 0)))


def test_mean_with_wrong_channel_count_is_rejected():
    with pytest.raises(ValueError, match="mean has 2 values but the image has 3 channels"):
        to_uint8_image(np.zeros((3, 4, 4)), mean=[0.1, 0.2])


def test_uint8_passes_through_unchanged():
    image = np.random.default_rng(0).integers(0, 256, size=(6, 7, 3), dtype=np.uint8)
    assert np.array_equal(to_uint8_image(image), image)
    assert np.array_equal(to_uint8_image(torch.from_numpy(image).permute(2, 0, 1)), image)


def test_other_integers_within_byte_range_are_pixel_values():
    assert to_uint8_image(np.array([[3, 200]], dtype=np.int64))[0, :, 0].tolist() == [3, 200]


def test_bool_is_black_and_white():
    assert to_uint8_image(np.array([[True, False]]))[0, :, 0].tolist() == [255, 0]


def test_non_finite_values_do_not_break_the_scaling():
    out = to_uint8_image(np.array([[0.0, np.nan, 0.5, np.inf, -np.inf, 1.0]]))
    assert out[0, :, 0].tolist() == [0, 0, 128, 255, 0, 255]


def test_grad_tensor_is_detached_and_half_precision_works():
    tensor = torch.rand(3, 4, 4, requires_grad=True)
    assert to_uint8_image(tensor * 2 - 1).shape == (4, 4, 3)
    assert to_uint8_image(torch.rand(3, 4, 4, dtype=torch.bfloat16)).shape == (4, 4, 3)


@pytest.mark.parametrize("shape", [(5,), (2, 5, 7), (2, 3, 4, 5, 6), (0, 3, 4, 4), (4, 2, 5, 7)])
def test_unsupported_shapes_raise_naming_shape_and_accepted_forms(shape):
    with pytest.raises(ValueError, match=r"unsupported image shape .*expected \(H, W\)") as info:
        to_uint8_image(np.zeros(shape))
    assert str(tuple(shape)) in str(info.value)


def test_batch_becomes_grid_with_torchvision_geometry():
    batch = torch.rand(10, 3, 6, 7)  # (N, C, H, W)
    grid = to_uint8_image(batch)
    cols, rows = 8, 2
    assert grid.shape == (rows * (6 + 2) + 2, cols * (7 + 2) + 2, 3)


def test_batch_of_one_is_the_image_itself():
    image = torch.rand(3, 6, 7)
    assert np.array_equal(to_uint8_image(image[None]), to_uint8_image(image))


def test_make_grid_places_tiles_and_padding():
    batch = np.zeros((3, 2, 2, 1), dtype=np.uint8)  # (N, H, W, C)
    batch[1] = 100
    batch[2] = 200
    grid = make_grid(batch, nrow=2, padding=1, pad_value=7)
    assert grid.shape == (2 * 3 + 1, 2 * 3 + 1, 3)
    assert grid[0, 0, 0] == 7  # outer padding
    assert (grid[1:3, 1:3] == 0).all()  # tile 0, top left
    assert (grid[1:3, 4:6] == 100).all()  # tile 1, top right
    assert (grid[4:6, 1:3] == 200).all()  # tile 2, bottom left
    assert (grid[4:6, 4:6] == 7).all()  # empty slot keeps the pad value


def test_make_grid_scales_floats_jointly_across_the_batch():
    batch = np.stack([np.full((2, 2, 1), 10.0), np.full((2, 2, 1), 20.0)])
    grid = make_grid(batch, padding=0)
    assert grid[0, 0, 0] == 0 and grid[0, 2, 0] == 255


def test_make_grid_accepts_a_list_of_chw_images():
    grid = make_grid([torch.rand(3, 4, 4) for _ in range(3)], nrow=3, padding=0)
    assert grid.shape == (4, 12, 3)


def test_make_grid_rejects_bad_arguments():
    with pytest.raises(ValueError, match="nrow >= 1"):
        make_grid(np.zeros((2, 4, 4, 3)), nrow=0)


def test_figure_to_array_renders_and_closes_pyplot_figure():
    fig, ax = plt.subplots(figsize=(2, 1), dpi=50)
    ax.set_facecolor("red")
    ax.set_position([0, 0, 1, 1])
    out = figure_to_array(fig)
    assert out.shape == (50, 100, 3) and out.dtype == np.uint8
    assert out[25, 50].tolist() == [255, 0, 0]
    assert fig.number not in plt.get_fignums()


def test_figure_to_array_works_for_a_bare_figure():
    assert figure_to_array(Figure(figsize=(1, 1), dpi=40)).shape == (40, 40, 3)


def test_figure_to_array_closes_the_figure_when_drawing_fails():
    fig, ax = plt.subplots()
    ax.text(0.5, 0.5, r"$\frac{broken$")  # mathtext parse error happens at draw time
    with pytest.raises(ValueError):
        figure_to_array(fig)
    assert fig.number not in plt.get_fignums()


def test_save_png_round_trips_and_creates_folders(tmp_path):
    image = np.random.default_rng(1).integers(0, 256, size=(5, 6, 3), dtype=np.uint8)
    path = tmp_path / "a" / "b" / "img.png"
    save_png(path, image)
    with Image.open(path) as loaded:
        assert loaded.mode == "RGB"
        assert np.array_equal(np.asarray(loaded), image)
    assert list(path.parent.iterdir()) == [path]  # no temp file left behind


def test_save_png_converts_tensors(tmp_path):
    save_png(tmp_path / "t.png", torch.zeros(1, 3, 4))
    with Image.open(tmp_path / "t.png") as loaded:
        assert loaded.size == (4, 3)


def test_import_does_not_load_torch_or_matplotlib():
    code = (
        "import sys, visualization.helper_functions; "
        "print(sorted(m for m in ('torch', 'matplotlib', 'PIL') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
        env=subprocess_env(), check=True,
    )
    assert result.stdout.strip() == "[]"
