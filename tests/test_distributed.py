"""The process-group actions (training.distributed): no-ops in one process, one home each."""

import ast

import torch
import torch.distributed as dist

from conftest import SRC
from training.distributed import all_reduce_sum, any_rank, barrier

QUERIES = {"get_rank", "get_world_size", "is_distributed", "is_main_process", "local_rank"}
ACTIONS = {"init_distributed", "barrier", "destroy_distributed", "all_reduce_sum", "any_rank"}


def test_the_actions_are_no_ops_without_a_process_group():
    assert not dist.is_initialized()
    assert barrier() is None
    assert all_reduce_sum(torch.tensor([2.0])).item() == 2.0
    assert any_rank(True, torch.device("cpu")) and not any_rank(False, torch.device("cpu"))


def test_each_distributed_helper_has_one_home():
    homes: dict[str, list[str]] = {}
    for path in SRC.rglob("*.py"):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and node.name in QUERIES | ACTIONS:
                homes.setdefault(node.name, []).append(str(path.relative_to(SRC)))
    assert homes == {
        **{name: ["utils/distributed_info.py"] for name in QUERIES},
        **{name: ["training/distributed.py"] for name in ACTIONS},
    }
