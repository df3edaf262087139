"""Two real gloo ranks under torchrun: only global rank 0 writes, rank 1's calls are no-ops."""

import sys
import textwrap

import pandas as pd
import pytest
from conftest import run_in_group, subprocess_env

RANKED_LOGGING = textwrap.dedent("""
    import threading
    import torch.distributed as dist
    from utils.logging import LOGGER, Logger

    dist.init_process_group("gloo")
    rank = dist.get_rank()
    logger = Logger("exp", "ddp")
    logger.initialize_csv()
    logger.initialize_tensorboard()
    for step in range(10):
        LOGGER.log({"rank": float(rank), "loss": step / 10}, step=step)
    LOGGER.info(f"hello from rank {rank}")
    dist.barrier()
    LOGGER.finish()
    if rank != 0:
        threads = [t.name for t in threading.enumerate() if t.name == "utils.logging"]
        assert not threads, f"rank {rank} started logging threads: {threads}"
        assert logger.get_path("log").name == "logs"
    dist.destroy_process_group()
    print(f"rank {rank} done", flush=True)
""")


@pytest.mark.slow
def test_two_gloo_ranks_write_exactly_one_csv_and_one_event_file(tmp_path, experiments_root):
    script = tmp_path / "ranked.py"
    script.write_text(RANKED_LOGGING)
    result = run_in_group(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script)],
        timeout=180, env=subprocess_env(),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "rank 0 done" in result.stdout and "rank 1 done" in result.stdout
    (csv_file,) = experiments_root.rglob("*.csv")
    frame = pd.read_csv(csv_file)
    assert frame["step"].tolist() == list(range(10))
    assert set(frame["rank"]) == {0.0}
    assert len(list(experiments_root.rglob("events.out.tfevents.*"))) == 1
    log_text = (csv_file.parent / "log.txt").read_text()
    assert "hello from rank 0" in log_text and "hello from rank 1" not in log_text
    assert "hello from rank 1" not in result.stderr
