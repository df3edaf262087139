"""The background worker: batched tensor reads, step merging, flush and error hand-over."""

import csv
import pandas as pd
import pytest
import torch

from utils.log.queue import LogWorker, WriterError
from utils.log.records import SCALARS
from utils.log.writers.base import Writer
from utils.log.writers.csv_writer import CsvWriter


class FailingWriter(Writer):
    name = "failing"

    def write_scalars(self, step: int, metrics: dict) -> None:
        raise OSError("disk full")


def test_deferred_tensors_of_mixed_dtypes_are_read_in_batches_with_their_types(tmp_path):
    # On a GPU machine the Logger defers CUDA tensors; the worker reads them per (device, dtype)
    # group with one transfer. CPU tensors take the same path here.
    worker = LogWorker()
    worker.add_writer(CsvWriter(tmp_path / "m.csv"))
    for step in range(3):
        metrics = {"f": torch.tensor(step + 0.5, dtype=torch.float64), "i": torch.tensor(step * 2), "x": 1.0}
        worker.put((SCALARS, step, metrics, True))
    worker.put((SCALARS, 2, {"late": torch.tensor(7)}, True))
    worker.close()
    with open(tmp_path / "m.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows == [
        ["step", "f", "i", "x", "late"],
        ["0", "0.5", "0", "1.0", ""],
        ["1", "1.5", "2", "1.0", ""],
        ["2", "2.5", "4", "1.0", "7"],  # ints stay ints; the later record joined step 2
    ]


def test_a_failing_writer_is_reported_once_and_dropped(tmp_path):
    worker = LogWorker()
    worker.add_writer(FailingWriter())
    worker.add_writer(CsvWriter(tmp_path / "m.csv"))
    worker.put((SCALARS, 0, {"a": 1.0}, False))
    worker.flush()
    with pytest.raises(WriterError, match="the failing writer \\(write_scalars\\): OSError: disk full"):
        worker.raise_pending_error()
    worker.raise_pending_error()  # reported once
    worker.put((SCALARS, 1, {"a": 2.0}, False))
    worker.close()
    worker.raise_pending_error()
    assert pd.read_csv(tmp_path / "m.csv")["a"].tolist() == [1.0, 2.0]


def test_a_tensor_that_cannot_be_read_is_named_alone_and_the_values_logged_with_it_are_written(tmp_path):
    # The Logger refuses meta tensors at log(); one reaching the thread stands for any tensor
    # whose read fails there (a device error): only its own group is lost, and it is named.
    worker = LogWorker()
    worker.add_writer(CsvWriter(tmp_path / "m.csv"))
    worker.put((SCALARS, 0, {"ok": 1.0, "ghost": torch.zeros((), device="meta"), "t": torch.tensor(2.5)}, True))
    worker.put((SCALARS, 1, {"ghost": torch.zeros((), device="meta")}, True))
    worker.put((SCALARS, 2, {"ok": 3.0}, False))
    worker.flush()
    with pytest.raises(WriterError, match=r"reading metric 'ghost' \(on meta; the other values were written\)"):
        worker.raise_pending_error()
    worker.close()
    worker.raise_pending_error()  # one group, one error
    frame = pd.read_csv(tmp_path / "m.csv")
    assert list(frame.columns) == ["step", "ok", "t"]
    assert frame["step"].tolist() == [0, 2] and frame["ok"].tolist() == [1.0, 3.0] and frame.loc[0, "t"] == 2.5
