"""Which rank this process is (utils.distributed_info): torchrun's environment, then the process group."""

import torch.distributed as dist

from training.distributed import barrier
from utils import distributed_info as info


def test_rank_helpers_without_distribution():
    assert (info.get_rank(), info.get_world_size(), info.local_rank()) == (0, 1, 0)
    assert not info.is_distributed() and info.is_main_process()


def test_rank_helpers_read_torchrun_environment(monkeypatch):
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert (info.get_rank(), info.get_world_size(), info.local_rank()) == (3, 4, 1)
    assert info.is_distributed() and not info.is_main_process()


def test_process_group_takes_precedence_over_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("RANK", "7")
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        assert info.is_distributed()
        assert info.get_rank() == 0 and info.get_world_size() == 1 and info.is_main_process()
        barrier()  # a real gloo barrier with a single rank returns at once
    finally:
        dist.destroy_process_group()
    assert info.get_rank() == 7
