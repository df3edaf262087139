"""Profiler: tree aggregation, decorator, threads, disabled switch, report/JSON, LOGGER, torch trace."""

import json
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import torch

import utils.profiler as profiler_module
from utils.logging import Logger
from utils.profiler import NULL_SECTION, PROFILER, Profiler
from utils.profiling.torch_trace import TRACE_SUBDIR, trace_steps


@pytest.fixture
def fake_clock(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Replace the profiler's clock: each read returns the next programmed time in ns."""
    times: list[int] = []
    ticks: Iterator[int] = iter(times)
    monkeypatch.setattr(profiler_module, "perf_counter_ns", lambda: next(ticks))
    return times


def test_nested_and_repeated_sections_aggregate_exactly(fake_clock: list[int]) -> None:
    profiler = Profiler()
    # step 1: outer 0..10 ms, inner 2..5 ms; step 2: outer 20..40 ms, inner 21..22 and 30..37 ms
    fake_clock += [t * 1_000_000 for t in (0, 2, 5, 10, 20, 21, 22, 30, 37, 40)]
    with profiler.section("outer"):
        with profiler.section("inner"):
            pass
    with profiler.section("outer"):
        with profiler.section("inner"):
            pass
        with profiler.section("inner"):
            pass
    tree = profiler.to_dict()
    outer, inner = tree["outer"], tree["outer"]["children"]["inner"]
    assert (outer["calls"], outer["total_ms"], outer["mean_ms"], outer["min_ms"], outer["max_ms"]) == (2, 30, 15, 10, 20)
    assert (inner["calls"], inner["total_ms"], inner["min_ms"], inner["max_ms"]) == (3, 11, 1, 7)
    assert inner["share_of_parent"] == pytest.approx(11 / 30)
    assert outer["share_of_parent"] == 1.0
    assert list(tree) == ["outer"] and inner["children"] == {}


def test_same_name_at_different_depths_are_different_nodes() -> None:
    profiler = Profiler()
    with profiler.section("a"):
        with profiler.section("b"):
            pass
    with profiler.section("b"):
        pass
    tree = profiler.to_dict()
    assert tree["b"]["calls"] == 1 and tree["a"]["children"]["b"]["calls"] == 1
    assert tree["a"]["total_ms"] >= tree["a"]["children"]["b"]["total_ms"]


def test_section_records_time_when_the_body_raises() -> None:
    profiler = Profiler()
    with pytest.raises(KeyError), profiler.section("failing"):
        raise KeyError("x")
    with profiler.section("after"):
        pass
    assert profiler.to_dict()["failing"]["calls"] == 1
    assert "after" in profiler.to_dict()  # the stack was unwound: "after" is top level


def test_decorator_times_each_call_and_reads_the_switch_at_call_time() -> None:
    profiler = Profiler(enabled=False)

    @profiler.timed()
    def load(x: int) -> int:
        return x + 1

    @profiler.timed("named")
    def other() -> None:
        with profiler.section("inside"):
            pass

    assert load(1) == 2 and profiler.to_dict() == {}
    profiler.enabled = True
    assert [load(i) for i in range(3)] == [1, 2, 3]
    other()
    tree = profiler.to_dict()
    assert tree[load.__qualname__]["calls"] == 3
    assert tree["named"]["children"]["inside"]["calls"] == 1
    assert load.__name__ == "load"


def test_threads_keep_their_own_stacks_and_merge_by_path() -> None:
    profiler = Profiler()
    start = threading.Barrier(4)

    def work() -> None:
        start.wait(timeout=30)
        for _ in range(2000):
            with profiler.section("outer"):
                with profiler.section("inner"):
                    pass

    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads often, so sections of different threads interleave
    try:
        threads = [threading.Thread(target=work) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        sys.setswitchinterval(previous)
    tree = profiler.to_dict()
    assert list(tree) == ["outer"]  # "inner" never leaked to the top level from another thread
    assert tree["outer"]["calls"] == 8000
    assert tree["outer"]["children"]["inner"]["calls"] == 8000
    assert tree["outer"]["children"]["inner"]["children"] == {}


def test_disabled_switch_records_nothing_and_shares_one_null_context() -> None:
    profiler = Profiler(enabled=False)
    assert profiler.section("a") is NULL_SECTION and profiler.section("b") is NULL_SECTION
    for _ in range(100):
        with profiler.section("a"):
            with profiler.section("b"):
                pass
    assert profiler.to_dict() == {}
    profiler.enabled = True
    with profiler.section("a"):
        pass
    assert profiler.to_dict()["a"]["calls"] == 1


def test_reset_forgets_recorded_times() -> None:
    profiler = Profiler()
    with profiler.section("a"):
        pass
    profiler.reset()
    assert profiler.to_dict() == {}


def test_report_is_a_tree_table_written_to_the_run_logs(fake_clock: list[int]) -> None:
    logger = Logger("prof", "report")
    try:
        profiler = Profiler(logger=logger)
        fake_clock += [0, 1_000_000, 4_000_000, 8_000_000]
        with profiler.section("step"):
            with profiler.section("forward"):
                pass
        path = profiler.write_report()
    finally:
        logger.finish()
    assert path == logger.get_path("log") / "profile.txt"
    lines = path.read_text().splitlines()
    assert lines[0].split() == ["section", "calls", "total", "ms", "mean", "ms", "min", "ms", "max", "ms", "%", "parent"]
    assert lines[2].split() == ["step", "1", "8.000", "8.0000", "8.0000", "8.0000", "100.0"]
    assert lines[3].startswith("  forward") and lines[3].split()[-1] == "37.5"


def test_to_dict_is_the_tree_as_plain_json() -> None:
    profiler = Profiler()
    with profiler.section("a"):
        with profiler.section("b"):
            pass
    data = json.loads(json.dumps(profiler.to_dict()))
    assert data["a"]["children"]["b"]["calls"] == 1
    assert set(data["a"]) == {"calls", "total_ms", "mean_ms", "min_ms", "max_ms", "share_of_parent", "children"}


def test_section_means_are_logged_as_time_sections_every_n_steps(fake_clock: list[int]) -> None:
    logger = Logger("prof", "log")
    logger.initialize_csv()
    profiler = Profiler(log_every=2)  # default logger: the global LOGGER
    durations_ms = [2, 4, 6, 8]
    clock = 0
    try:
        for step, duration in enumerate(durations_ms):
            fake_clock += [clock, clock + 1_000_000, clock + 1_500_000, clock + duration * 1_000_000]
            clock += 100_000_000
            with profiler.section("train"):
                with profiler.section("data"):
                    pass
            profiler.step(step)
    finally:
        logger.finish()
    frame = pd.read_csv(logger.get_path("log") / "metrics.csv")
    assert list(frame["step"]) == [0, 2]
    assert list(frame["time/train"]) == pytest.approx([2.0, 5.0])  # window means: step 0, then steps 1-2
    assert list(frame["time/train/data"]) == pytest.approx([0.5, 0.5])


def test_cuda_mode_needs_a_gpu() -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ValueError, match="needs a CUDA device"):
        Profiler(cuda=True)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("mode", [{"cuda": True}, {"synchronize": True}])
def test_cuda_sections_are_resolved_when_read(mode: dict) -> None:
    profiler = Profiler(**mode)
    a = torch.randn(512, 512, device="cuda")
    for _ in range(3):
        with profiler.section("matmul"):
            a = (a @ a).tanh()
    tree = profiler.to_dict()
    assert tree["matmul"]["calls"] == 3
    assert tree["matmul"]["min_ms"] > 0


def test_global_profiler_is_a_profiler() -> None:
    assert isinstance(PROFILER, Profiler)


def test_torch_profiler_trace_is_written_into_the_run_logs() -> None:
    logger = Logger("prof", "trace")
    try:
        weight = torch.randn(16, 16, requires_grad=True)
        with trace_steps(wait=1, warmup=1, active=2) as prof:
            for _ in range(4):
                (torch.randn(8, 16) @ weight).relu().sum().backward()
                prof.step()
    finally:
        logger.finish()
    traces = list((logger.get_path("log") / TRACE_SUBDIR).glob("*.pt.trace.json"))
    assert len(traces) == 1
    events = json.loads(traces[0].read_text())["traceEvents"]
    names = {event.get("name", "") for event in events}
    assert any("ProfilerStep#" in name for name in names)
    assert any(name.startswith("aten::mm") for name in names)


def test_torch_profiler_schedule_is_validated(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="active=0 must be at least 1"):
        trace_steps(tmp_path, active=0)


def test_configure_switches_and_sets_log_every_and_returns_the_settings_to_restore() -> None:
    profiler = Profiler()
    previous = profiler.configure(enabled=False, log_every=5)
    assert previous == {"enabled": True, "log_every": 0}
    assert profiler.section("off") is NULL_SECTION and profiler.log_every == 5
    with pytest.raises(ValueError, match="log_every=-1 must be 0"):
        profiler.configure(log_every=-1)
    profiler.configure(**previous)
    assert profiler.enabled and profiler.log_every == 0
