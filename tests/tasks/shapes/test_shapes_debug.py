"""`debug.stats_every` on the shapes example: the UNet's layers at global steps 0, 5, 10."""

import pytest

from debug_support import debug_steps, train_in_process
from train_support import read_metrics

TINY = ["data.image_size=16", "data.train_samples=88", "data.val_samples=16", "data.test_samples=16",
        "data.batch_size=8", "model.channels=[8, 16]"]  # 11 steps of batch 8


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EXPERIMENTS_ROOT", str(tmp_path_factory.mktemp("experiments")))
        yield train_in_process("shapes", "stats", "debug.stats_every=5", *TINY)


def test_stats_every_5_logs_the_unets_layers_at_steps_0_5_10_in_the_csv_and_tensorboard(run_folder):
    columns = [c for c in read_metrics(run_folder).columns if c.startswith("debug/") and c.endswith("/output_mean")]
    assert len(columns) > 5, "every leaf layer of the UNet"
    for column in (columns[0], columns[-1]):
        assert debug_steps(run_folder, column) == ([0, 5, 10], [0, 5, 10])
