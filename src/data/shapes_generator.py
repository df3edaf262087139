"""Synthetic segmentation data: circles, squares and triangles on noisy backgrounds, drawn from a seed.

A few thousand images take well under a second and need no download, so the shapes example trains
on any machine. Images are (N, 3, S, S) float in [0, 1], masks (N, S, S) int64 class ids.
"""

import math

import numpy as np
import torch
from torch import Tensor

CLASS_NAMES = ("background", "circle", "square", "triangle")
NUM_CLASSES = len(CLASS_NAMES)
SIZE_RANGE = (0.12, 0.22)  # a shape's radius as a fraction of the image side


def generate_shapes(
    count: int, image_size: int, max_shapes: int, noise: float, seed: int | list[int]
) -> tuple[Tensor, Tensor]:
    """`count` images (N, 3, S, S) float32 in [0, 1] and masks (N, S, S) int64, from `seed` only.

    Each image gets a dark background, 1..max_shapes shapes of random class, place, size,
    rotation and bright colour (later shapes cover earlier ones), and Gaussian pixel noise.
    Every class covers about the same area for the same size.
    """
    rng = np.random.default_rng(seed)
    n, m, s = count, max_shapes, image_size
    shown = np.arange(m)[None] < rng.integers(1, m + 1, n)[:, None]  # (N, M)
    classes = rng.integers(1, NUM_CLASSES, (n, m))  # (N, M)
    centers = rng.uniform(0.15 * s, 0.85 * s, (n, m, 2)).astype(np.float32)  # (N, M, 2) as x, y
    radii = (rng.uniform(*SIZE_RANGE, (n, m)) * s).astype(np.float32)  # (N, M)
    angles = rng.uniform(0.0, 2 * math.pi, (n, m)).astype(np.float32)  # (N, M)
    colors = rng.uniform(0.0, 1.0, (n, m, 3)).astype(np.float32)  # (N, M, 3)
    colors[np.arange(n)[:, None], np.arange(m)[None], rng.integers(0, 3, (n, m))] = rng.uniform(0.7, 1.0, (n, m))
    background = rng.uniform(0.0, 0.35, (n, 1, 3)).astype(np.float32)  # one channel of a shape stands out
    top = np.zeros((n, s, s), dtype=np.int64)  # (N, S, S): 0 is the background, k the k-th shape
    grid = np.arange(s, dtype=np.float32) + 0.5  # pixel centres
    for slot in range(m):
        for cls in range(1, NUM_CLASSES):
            chosen = np.flatnonzero(shown[:, slot] & (classes[:, slot] == cls))  # only draw what is there
            inside = _rasterize(grid, cls, centers[chosen, slot], radii[chosen, slot], angles[chosen, slot])
            top[chosen] = np.where(inside, slot + 1, top[chosen])
    rows = np.arange(n)[:, None, None]
    masks = np.concatenate([np.zeros((n, 1), dtype=np.int64), classes], axis=1)[rows, top]  # (N, S, S)
    pixels = np.concatenate([background, colors], axis=1)[rows, top]  # (N, S, S, 3)
    pixels += noise * rng.standard_normal(pixels.shape, dtype=np.float32)
    images = np.clip(pixels, 0.0, 1.0).transpose(0, 3, 1, 2)  # (N, 3, S, S)
    return torch.from_numpy(np.ascontiguousarray(images)), torch.from_numpy(masks)


def _rasterize(grid: np.ndarray, cls: int, centers: np.ndarray, radii: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """(N, S, S) pixels inside each shape: a circle, or a square or triangle of the same area."""
    dx = grid[None, None, :] - centers[:, 0, None, None]  # (N, 1, S)
    dy = grid[None, :, None] - centers[:, 1, None, None]  # (N, S, 1)
    if cls == 1:
        return dx**2 + dy**2 <= (radii**2)[:, None, None]
    # A regular polygon is where every projection onto its side normals stays within the inradius.
    sides = 4 if cls == 2 else 3
    inradius = radii * math.sqrt(math.pi / (sides * math.tan(math.pi / sides)))  # area of the circle
    reach = None
    for k in range(sides):
        normal = angles + 2 * math.pi * k / sides
        projection = dx * np.cos(normal)[:, None, None] + dy * np.sin(normal)[:, None, None]  # (N, S, S)
        reach = projection if reach is None else np.maximum(reach, projection)
    return reach <= inradius[:, None, None]
