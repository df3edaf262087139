"""Caller-side cost of logging 10 scalars per call: our LOGGER against the usual ways.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_logging.py

Compares, in one process and one run: `LOGGER.log` with CSV + TensorBoard + W&B (offline) on,
TensorBoard's `SummaryWriter.add_scalar`, W&B offline `run.log`, an open-append-close CSV
writer like the original template's, and Lightning's CSVLogger / TensorBoardLogger when
`lightning` is installed. Prints median and mean microseconds per call, the ratio of each
median to ours, the time until finish/close returns, and checks that every value logged
through ours is in all three outputs afterwards. Everything is written to a temp folder.
"""

import csv
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from scratch import REPO, make_scratch

SCRATCH = make_scratch("bench_logging_")
sys.path.insert(0, str(REPO / "tests"))  # the read-back helpers of the tests

CALLS = 2000
KEYS = [f"train/metric{i}" for i in range(10)]


def values_for(step: int) -> dict[str, float]:
    return {key: step + index / 10 for index, key in enumerate(KEYS)}


def time_calls(call: Callable[[int, dict], None], calls: int = CALLS, convert: Callable = dict
               ) -> list[float]:
    """Microseconds per call; the payloads are built beforehand so only the call is timed."""
    payloads = [convert(values_for(step)) for step in range(calls)]
    clock = time.perf_counter_ns
    samples = []
    for step, payload in enumerate(payloads):
        start = clock()
        call(step, payload)
        samples.append((clock() - start) / 1000)
    return samples


def timed(action: Callable[[], None]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def bench_ours(tensors: bool) -> tuple[list[float], float, Path]:
    from utils.logging import LOGGER, Logger

    run = "tensors" if tensors else "floats"
    logger = Logger("bench", run)
    logger.initialize_csv()
    logger.initialize_tensorboard()
    logger.initialize_wandb("bench-logging")
    convert = dict
    if tensors:
        import torch

        def convert(data: dict) -> dict:
            return {key: torch.tensor(value, dtype=torch.float64) for key, value in data.items()}

    samples = time_calls(lambda step, data: LOGGER.log(data, step), convert=convert)
    finish = timed(logger.finish)
    return samples, finish, logger.get_path("log")


def bench_summary_writer() -> tuple[list[float], float]:
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(SCRATCH / "anchor_tb"))

    def call(step: int, data: dict) -> None:
        for key, value in data.items():
            writer.add_scalar(key, value, step)

    return time_calls(call, 1000), timed(writer.close)


def bench_wandb() -> tuple[list[float], float]:
    import wandb

    run = wandb.init(project="bench-anchor", dir=str(SCRATCH), mode="offline", reinit="create_new",
                     settings=wandb.Settings(console="off"))
    return time_calls(lambda step, data: run.log(data, step=step), 1000), timed(run.finish)


def bench_append_csv() -> tuple[list[float], float]:
    path = SCRATCH / "anchor.csv"

    def call(step: int, data: dict) -> None:  # the original template: open, append, close
        is_new = not path.exists()
        with open(path, "a", newline="") as handle:
            writer = csv.writer(handle)
            if is_new:
                writer.writerow(["step", *data])
            writer.writerow([step, *data.values()])

    return time_calls(call), 0.0


def bench_lightning() -> dict[str, tuple[list[float], float]]:
    try:
        from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
    except ImportError:
        return {}
    results = {}
    for name, cls in (("Lightning CSVLogger", CSVLogger), ("Lightning TensorBoardLogger", TensorBoardLogger)):
        logger = cls(str(SCRATCH / "lightning"), name=name.split()[-1])
        samples = time_calls(lambda step, data: logger.log_metrics(data, step))
        results[name] = (samples, timed(lambda: logger.finalize("success")))
    return results


def check_outputs(log_dir: Path) -> list[str]:
    """Every value logged through ours, in CSV, TensorBoard and W&B."""
    import pandas as pd
    from test_logging_tensorboard import read_events
    from test_logging_wandb import wandb_file, wandb_history

    problems = []
    expected = [values_for(step) for step in range(CALLS)]
    frame = pd.read_csv(log_dir / "metrics.csv")
    if frame[KEYS].to_dict("records") != expected or frame["step"].tolist() != list(range(CALLS)):
        problems.append("CSV differs from what was logged")
    events = read_events(log_dir)
    for key in KEYS:
        if [e.step for e in events.Scalars(key)] != list(range(CALLS)):
            problems.append(f"TensorBoard misses steps of {key}")
    run_id = (log_dir / "wandb_run_id.txt").read_text().strip()
    history = wandb_history(wandb_file(log_dir, run_id))
    if [{key: row[key] for key in KEYS} for row in history] != expected:
        problems.append("W&B history differs from what was logged")
    return problems


def main() -> None:
    print(f"logging {len(KEYS)} scalars per call; scratch folder {SCRATCH} (removed at the end)")
    try:
        run_all()
    finally:
        shutil.rmtree(SCRATCH, ignore_errors=True)


def run_all() -> None:
    ours, ours_finish, log_dir = bench_ours(tensors=False)
    rows = {"ours: LOGGER.log (CSV+TB+W&B on)": (ours, ours_finish)}
    rows["ours: LOGGER.log, 0-d CPU tensors"] = bench_ours(tensors=True)[:2]
    rows["SummaryWriter.add_scalar x10"] = bench_summary_writer()
    rows["W&B offline run.log"] = bench_wandb()
    rows["open-append-close CSV (original)"] = bench_append_csv()
    lightning = bench_lightning()
    rows.update(lightning)
    reference = statistics.median(ours)
    print(f"\n{'method':<38} {'median us':>10} {'mean us':>10} {'x ours':>8} {'finish s':>9}")
    for name, (samples, finish) in rows.items():
        median = statistics.median(samples)
        mean = statistics.mean(samples)
        print(f"{name:<38} {median:>10.1f} {mean:>10.1f} {median / reference:>8.1f} {finish:>9.2f}")
    if not lightning:
        print("Lightning CSVLogger / TensorBoardLogger: skipped (lightning is not installed)")
    problems = check_outputs(log_dir)
    verdict = "yes" if not problems else "; ".join(problems)
    print(f"\nall values present in CSV, TensorBoard and W&B after finish(): {verdict}")
    target = "met" if reference <= 10 else "NOT met"
    print(f"target <= 10 us median per call with all writers on: {target} ({reference:.1f} us)")


if __name__ == "__main__":
    main()
