"""Seeding, devices, parameter counts and nested moves in utils.helper_functions."""

import os
import random
from collections import OrderedDict, defaultdict, namedtuple

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from utils import helper_functions as hf


@pytest.fixture
def restore_determinism():
    """Undo the global switches `set_seed(..., deterministic=True)` turns on."""
    algorithms = torch.are_deterministic_algorithms_enabled()
    benchmark, deterministic = torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic
    yield
    torch.use_deterministic_algorithms(algorithms)
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = benchmark, deterministic


def _tiny_training_run(seed: int) -> tuple[list[float], list[float], torch.Tensor, list[float]]:
    """A short run touching every seeded generator: Python, NumPy, torch init, dropout, data."""
    hf.set_seed(seed)
    py_draws = [random.random() for _ in range(3)]
    np_draws = np.random.rand(3).tolist()
    model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.5), nn.Linear(8, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    losses = []
    for _ in range(5):
        x = torch.randn(16, 4)
        loss = (model(x) - x.sum(1, keepdim=True)).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return py_draws, np_draws, torch.cat([p.detach().flatten() for p in model.parameters()]), losses


def test_same_seed_makes_two_runs_identical():
    first, second = _tiny_training_run(123), _tiny_training_run(123)
    assert first[0] == second[0] and first[1] == second[1] and first[3] == second[3]
    assert torch.equal(first[2], second[2])


def test_different_seeds_give_different_runs():
    first, second = _tiny_training_run(1), _tiny_training_run(2)
    assert first[0] != second[0] and first[1] != second[1] and first[3] != second[3]


def test_large_seed_is_accepted_by_numpy():
    hf.set_seed(2**40 + 5)
    assert 0 <= np.random.rand() < 1


def test_deterministic_mode_switches_torch_to_deterministic_kernels(restore_determinism, monkeypatch):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    hf.set_seed(0, deterministic=True)
    assert torch.are_deterministic_algorithms_enabled()
    assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"


class _NumpyDraws(Dataset):
    """Every item is a NumPy draw made inside the worker, so it shows the worker's seed."""

    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> tuple[float, float]:
        return float(np.random.rand()), random.random()


def _worker_draws(seed: int) -> list[float]:
    generator = torch.Generator().manual_seed(seed)
    loader = DataLoader(
        _NumpyDraws(), batch_size=1, num_workers=2, worker_init_fn=hf.seed_worker, generator=generator
    )
    return [value for np_draw, py_draw in loader for value in (np_draw.item(), py_draw.item())]


def test_seed_worker_makes_worker_draws_reproducible_and_distinct_per_worker():
    first, second = _worker_draws(7), _worker_draws(7)
    assert first == second
    # items 0 and 1 come from different workers: their first NumPy draws must differ
    assert first[0] != first[2]
    assert _worker_draws(8) != first


def test_select_device_auto_is_cpu_without_accelerators():
    assert not torch.cuda.is_available()  # this machine has none; the test pins the fallback
    assert hf.select_device("auto") == torch.device("cpu")
    assert hf.select_device("cpu") == torch.device("cpu")


def test_select_device_auto_prefers_cuda_then_mps(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert hf.select_device("auto") == torch.device("cuda", 0)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert hf.select_device("auto") == torch.device("cuda", 1)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert hf.select_device("auto") == torch.device("mps")


@pytest.mark.parametrize(
    "name, message",
    [
        ("cuda", "CUDA is not available"),
        ("cuda:1", "CUDA is not available"),
        ("gpu", "unknown device 'gpu'"),
        ("meta", "unsupported device 'meta'"),
    ],
)
def test_select_device_rejects_unavailable_or_unknown(name, message):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ValueError, match=message):
        hf.select_device(name)


def test_count_parameters_trainable_and_all():
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))  # 16 + 10 parameters
    model[0].requires_grad_(False)
    assert hf.count_parameters(model) == 10
    assert hf.count_parameters(model, trainable_only=False) == 26


def test_the_architecture_log_reports_all_and_trainable_parameters(capsys):
    from utils.logging import Logger

    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))  # 16 + 10 parameters
    model[0].requires_grad_(False)
    logger = Logger("exp", "arch")
    try:
        logger.log_architecture(model)
    finally:
        logger.finish()
    assert "model with 26 parameters (10 trainable); architecture written to" in capsys.readouterr().err


def test_write_to_logs_defaults_to_the_run_logs_folder_and_creates_a_given_one(tmp_path):
    from utils.logging import Logger

    logger = Logger("exp", "reports")
    try:
        default = hf.write_to_logs(logger, "table\n", "report.txt")
    finally:
        logger.finish()
    assert default == logger.get_path("log") / "report.txt" and default.read_text() == "table\n"
    given = hf.write_to_logs(logger, "x", "r.txt", tmp_path / "new" / "folder")
    assert given.read_text() == "x"


def test_move_to_device_walks_nested_structures_and_keeps_types():
    Pair = namedtuple("Pair", "left right")
    counts = defaultdict(list, {"a": [torch.ones(1)]})
    data = {
        "x": torch.zeros(2),
        "list": [torch.ones(3), 5, "text"],
        "tuple": (torch.ones(1), None),
        "pair": Pair(torch.ones(1), 2.5),
        "ordered": OrderedDict(y=torch.ones(2)),
        "counts": counts,
    }
    moved = hf.move_to_device(data, "meta")  # a real second device on a CPU-only machine
    assert moved["x"].device.type == "meta"
    assert isinstance(moved["list"], list) and moved["list"][0].device.type == "meta"
    assert moved["list"][1:] == [5, "text"]
    assert isinstance(moved["tuple"], tuple) and moved["tuple"][1] is None
    assert isinstance(moved["pair"], Pair) and moved["pair"].left.device.type == "meta"
    assert moved["pair"].right == 2.5
    assert isinstance(moved["ordered"], OrderedDict) and moved["ordered"]["y"].device.type == "meta"
    assert isinstance(moved["counts"], defaultdict) and moved["counts"].default_factory is list
    assert moved["counts"]["a"][0].device.type == "meta"
    assert data["x"].device.type == "cpu"  # the input is left alone
