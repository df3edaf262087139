"""Runs for 03_compare's tests: a real Logger writes their metrics.csv; the table's lines of a metric."""

from utils.logging import Logger
from utils.management import create_run


def log_values(experiment: str, run: str, task: str, metrics: dict[int, dict[str, float]]) -> None:
    """A run of `task` whose CSV holds `metrics` (step -> values), written by a real Logger."""
    create_run(experiment, run, {"task": task, "seed": 0})
    logger = Logger(experiment, run)
    logger.initialize_csv()
    for step, values in metrics.items():
        logger.log(values, step)
    logger.finish()


def metric_block(stdout: str, metric: str) -> list[str]:
    """The table lines of one metric (header line excluded)."""
    blocks = [block.splitlines() for block in stdout.strip().split("\n\n")]
    return next(lines[2:] for lines in blocks if lines[0].startswith(metric + " ("))
