"""The epoch's position in its global permutation: what lets any number of ranks finish an epoch."""

import pytest
from torch.utils.data import DistributedSampler

from training.epoch_position import EpochSampler

DATA = list(range(50))


@pytest.mark.parametrize("world", [1, 2, 3])
def test_started_at_zero_it_yields_what_distributed_sampler_yields(world):
    for rank in range(world):
        ours, theirs = EpochSampler(DATA, rank, world, seed=7), DistributedSampler(
            DATA, num_replicas=world, rank=rank, shuffle=True, seed=7, drop_last=True)
        ours.set_epoch(3)
        theirs.set_epoch(3)
        assert list(ours) == list(theirs) and len(ours) == len(theirs)


@pytest.mark.parametrize("before, after", [(2, 1), (1, 2), (2, 3), (3, 2)])
def test_the_samples_left_after_a_cut_go_to_the_new_ranks_once(before, after):
    """Cut after 2 batches of 4 under `before` ranks, finish under `after`: each sample once, but
    for fewer than `after` left over (drop_last), and none of the first part again."""
    old = [EpochSampler(DATA, rank, before, seed=7) for rank in range(before)]
    for sampler in old:
        sampler.set_epoch(1)
    trained = [index for sampler in old for index in list(sampler)[:8]]
    position = old[0].position(0, batches_done=2, batch_size=4)
    assert position["samples_done"] == 8 * before and position["world_size"] == before
    new = [EpochSampler(DATA, rank, after, seed=7) for rank in range(after)]
    for sampler in new:
        sampler.set_epoch(1, start=position["samples_done"])
    rest = [index for sampler in new for index in sampler]
    assert len({len(sampler) for sampler in new}) == 1, "every rank trains as many steps"
    assert len(set(trained + rest)) == len(trained + rest), "no sample twice"
    assert len(DATA) - len(trained + rest) < after


def test_an_epoch_whose_batches_are_all_done_counts_as_the_whole_dataset():
    sampler = EpochSampler(DATA, 0, 2, seed=0)
    assert sampler.position(0, batches_done=7, batch_size=4)["samples_done"] == len(DATA)  # 25 a rank: 7 batches
    assert sampler.position(0, batches_done=0, batch_size=4)["samples_done"] == 0
