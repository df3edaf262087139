"""Tensor statistics for the model debugger, computed and kept on the tensor's device.

Statistics are computed on the tensor's own device and kept there as one small vector per
tensor (in `STAT_NAMES` order), so capturing them never synchronises a GPU; they become Python
floats only when read (`to_floats`), in a single transfer.
"""

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from utils.debugging.cpu_stats import finite_cpu_stats as _finite_cpu_stats

STAT_NAMES = ("mean", "std", "min", "max", "abs_mean", "norm", "zero_frac", "nan_count", "inf_count")
SMALL = 4096  # tensors up to this size on an accelerator are batched by compute_stats_many
_MASK_CACHE: dict[tuple[tuple[int, ...], torch.device], tuple[Tensor, Tensor]] = {}
_AFFINE_CACHE: dict[tuple[int, torch.device], tuple[Tensor, Tensor]] = {}


def _affine(n: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """Per-size (offset, scale) turning raw sums into statistics, cached so no host-to-device
    copy happens per call (a model's tensor sizes repeat every step)."""
    key = (n, device)
    if key not in _AFFINE_CACHE:
        if len(_AFFINE_CACHE) > 4096:
            _AFFINE_CACHE.clear()
        offset = torch.tensor([0, 0, 0, 0, 0, 0, 1, 0, 0], dtype=torch.float32, device=device)
        scale = torch.tensor([1, n**-0.5, 1, 1, 1 / n, 1, -1 / n, 1, 1], dtype=torch.float32, device=device)
        _AFFINE_CACHE[key] = (offset, scale)
    return _AFFINE_CACHE[key]


def compute_stats(tensor: Tensor) -> Tensor:
    """Statistics of `tensor` as a (len(STAT_NAMES),) float32 tensor on its device.

    Nothing synchronises a GPU. `std` is the population standard deviation (correction 0,
    computed so that a large mean does not drown it); NaNs propagate into the value statistics and
    are counted in `nan_count` (and as non-zero in `zero_frac`). An empty tensor gives NaN
    statistics and zero counts.
    """
    x = tensor.detach()
    if x.dtype != torch.float32 and x.dtype != torch.float64:
        x = x.float()
    if x.numel() == 0:
        return torch.tensor([float("nan")] * 7 + [0.0, 0.0], device=x.device)
    if x.is_cpu:
        stats = _finite_cpu_stats(x)  # one pass in the calling thread, any shape
        if stats is not None:
            return stats
    return _device_stats(x.reshape(-1))


def _device_stats(x: Tensor) -> Tensor:
    """General path: every statistic as device ops, with no host read (no GPU synchronisation)."""
    n = x.numel()
    mean = x.mean()
    low, high = torch.aminmax(x)
    nan_count, inf_count = torch.isnan(x).sum(), torch.isinf(x).sum()
    nonzero = torch.sign(x).abs_().nansum() + nan_count  # NaN has no sign but is not zero
    raw = torch.stack([
        mean,
        torch.linalg.vector_norm(x - mean),
        low,
        high,
        x.abs().sum(),
        torch.linalg.vector_norm(x),
        nonzero,
        nan_count,
        inf_count,
    ]).float()  # (S,)
    offset, scale = _affine(n, x.device)
    return torch.addcmul(offset, raw, scale)


def compute_stats_many(tensors: Sequence[Tensor]) -> list[Tensor]:
    """`compute_stats` of each tensor, with the small ones on an accelerator done together.

    Small float tensors on one accelerator (biases, norm weights, ...) are padded into one
    (K, L) float64 matrix whose row statistics take about as many kernel launches as one
    tensor's; the rest go one by one, and so does everything on CPU, where the one-pass sums
    cost less per tensor than the batch's twenty ops. Nothing synchronises a GPU.
    """
    results: list[Tensor | None] = [None] * len(tensors)
    groups: dict[torch.device, list[int]] = {}
    for index, tensor in enumerate(tensors):
        if tensor.device.type != "cpu" and 0 < tensor.numel() <= SMALL and tensor.is_floating_point():
            groups.setdefault(tensor.device, []).append(index)
        else:
            results[index] = compute_stats(tensor)
    for indices in groups.values():
        if len(indices) == 1:
            results[indices[0]] = compute_stats(tensors[indices[0]])
            continue
        rows = _padded_stats([tensors[i].detach().reshape(-1) for i in indices])  # (K, S)
        for i, row in zip(indices, rows.unbind(), strict=True):
            results[i] = row
    return results  # type: ignore[return-value]


def _padded_stats(flats: list[Tensor]) -> Tensor:
    """Row statistics (K, S) of K small 1-d tensors, padded with zeros that the mask discounts."""
    device = flats[0].device
    lengths = [flat.numel() for flat in flats]
    key = (tuple(lengths), device)
    if key not in _MASK_CACHE:
        if len(_MASK_CACHE) > 256:
            _MASK_CACHE.clear()
        n = torch.tensor(lengths, dtype=torch.float64, device=device)  # (K,)
        mask = torch.arange(max(lengths), device=device) < n.unsqueeze(1)  # (K, L)
        _MASK_CACHE[key] = (n, mask)
    n, mask = _MASK_CACHE[key]
    x = torch.nn.utils.rnn.pad_sequence([f.double() for f in flats], batch_first=True)  # (K, L), zero padded
    mean = x.sum(1) / n  # (K,)
    centered = (x - mean.unsqueeze(1)) * mask  # (K, L)
    nan_count, inf_count = torch.isnan(x).sum(1), torch.isinf(x).sum(1)
    nonzero = torch.count_nonzero(x, 1)  # NaN counts as non-zero, padding as zero
    raw = torch.stack([
        mean,
        torch.linalg.vector_norm(centered, dim=1) / n.sqrt(),
        torch.where(mask, x, torch.inf).amin(1),
        torch.where(mask, x, -torch.inf).amax(1),
        x.abs().sum(1) / n,
        torch.linalg.vector_norm(x, dim=1),
        1 - nonzero / n,
        nan_count,
        inf_count,
    ], 1)  # (K, S)
    return raw.float()


def to_floats(stats: Mapping[str, Mapping[str, Tensor]]) -> dict[str, dict[str, dict[str, float]]]:
    """Python floats from on-device statistics vectors (layer -> kind -> (S,) tensor).

    One device-to-host transfer per device holding statistics, however many there are.
    """
    keys = [(layer, kind) for layer, kinds in stats.items() for kind in kinds]
    by_device: dict[torch.device, list[int]] = {}
    for index, (layer, kind) in enumerate(keys):
        by_device.setdefault(stats[layer][kind].device, []).append(index)
    rows: list[list[float]] = [[] for _ in keys]
    for indices in by_device.values():
        stacked = torch.stack([stats[keys[i][0]][keys[i][1]] for i in indices])  # (K, S)
        for i, row in zip(indices, stacked.tolist(), strict=True):
            rows[i] = row
    nested: dict[str, dict[str, dict[str, float]]] = {}
    for (layer, kind), row in zip(keys, rows, strict=True):
        nested.setdefault(layer, {})[kind] = dict(zip(STAT_NAMES, row, strict=True))
    return nested
