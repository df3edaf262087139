"""Small helpers every training script needs: seeding, devices, parameter counts, nested moves.

Which rank this process is lives in `utils.distributed_info`; joining, waiting for and reducing
over the ranks in `training.distributed`. torch is imported inside the functions that need it,
so that importing this module stays cheap.
"""

import os
import random
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from utils.distributed_info import is_distributed, local_rank


def set_seed(seed: int, deterministic: bool = False) -> None:
    """Seed Python, NumPy, torch (CPU and every CUDA device).

    `deterministic=True` also asks torch for deterministic kernels (errors on ops that have
    none) and disables cuDNN autotuning, trading speed for bit-identical reruns.
    """
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True


def seed_worker(worker_id: int) -> None:
    """DataLoader `worker_init_fn`: derive Python and NumPy seeds from torch's per-worker seed."""
    import numpy as np
    import torch

    worker_seed = torch.initial_seed() % 2**32
    np.random.seed(worker_seed)
    random.seed(worker_seed)


def select_device(name: str = "auto") -> "torch.device":  # noqa: F821
    """'auto' picks CUDA, then MPS, then CPU; 'cpu', 'cuda', 'cuda:N', 'mps' are taken as given.

    Raises ValueError for an unknown name or a device this machine does not have.
    """
    import torch

    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank() if is_distributed() else 0)
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"unknown device {name!r}: use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available: use cpu or auto")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {name!r} requested but MPS is not available: use cpu or auto")
    if device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"unsupported device {name!r}: use auto, cpu, cuda, cuda:N or mps")
    return device


def count_parameters(model: "torch.nn.Module", trainable_only: bool = True) -> int:  # noqa: F821
    """Number of (trainable) parameters of a model."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def write_to_logs(logger: Any, text: str, filename: str, directory: str | Path | None = None) -> Path:
    """Write a report `filename` into `directory`, by default the run's logs folder of `logger`,
    so the debugger's and the profiler's reports land beside `log.txt` unless told otherwise."""
    folder = Path(directory) if directory is not None else Path(logger.get_path("log"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / filename
    path.write_text(text, encoding="utf-8")
    return path


def unwrap_model(model: "torch.nn.Module") -> "torch.nn.Module":  # noqa: F821
    """The bare model inside DDP / DataParallel / torch.compile wrappers (in any nesting).

    Saving and loading through the bare model keeps state-dict keys free of `module.` and
    `_orig_mod.` prefixes, so wrapped and unwrapped runs share checkpoints.
    """
    import torch

    wrappers = (torch.nn.parallel.DistributedDataParallel, torch.nn.DataParallel)
    while True:
        if isinstance(model, wrappers):
            model = model.module
        elif isinstance(getattr(model, "_orig_mod", None), torch.nn.Module):
            model = model._orig_mod
        else:
            return model


def move_to_device(data: Any, device: "torch.device | str", non_blocking: bool = False) -> Any:  # noqa: F821
    """Move tensors inside nested dicts/lists/tuples to `device`; other values pass through."""
    import torch

    if isinstance(data, torch.Tensor):
        return data.to(device, non_blocking=non_blocking)
    if isinstance(data, Mapping):
        moved = {k: move_to_device(v, device, non_blocking) for k, v in data.items()}
        if isinstance(data, defaultdict):  # its constructor takes the default factory first
            return type(data)(data.default_factory, moved)
        return type(data)(moved)
    if isinstance(data, tuple) and hasattr(data, "_fields"):  # namedtuple
        return type(data)(*(move_to_device(v, device, non_blocking) for v in data))
    if isinstance(data, Sequence) and not isinstance(data, (str, bytes)):
        return type(data)(move_to_device(v, device, non_blocking) for v in data)
    return data
