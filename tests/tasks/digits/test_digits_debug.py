"""`debug.stats_every` on the digits example: per-layer statistics at global steps 0, 5, 10, ..."""

import pytest

from debug_support import debug_steps, train_in_process
from train_support import read_metrics


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    """One epoch of digits (20 steps) with statistics every 5 steps, trained once for the module."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EXPERIMENTS_ROOT", str(tmp_path_factory.mktemp("experiments")))
        yield train_in_process("default", "stats", "debug.stats_every=5")


@pytest.mark.parametrize("column", ["debug/features.0.0/output_mean", "debug/head.4/grad_norm",
                                    "debug/features.0.0/weight_std", "debug/head.4/bias_grad_abs_mean"])
def test_stats_every_5_logs_each_layer_at_steps_0_5_10_15_in_the_csv_and_tensorboard(run_folder, column):
    assert debug_steps(run_folder, column) == ([0, 5, 10, 15], [0, 5, 10, 15])


def test_the_training_steps_are_logged_once_each_beside_the_statistics(run_folder):
    assert list(read_metrics(run_folder)["step"]) == list(range(20))
