"""The `profile` section: a torch.profiler trace of chosen optimizer steps, and its top operators.

The trace is the tensorboard_trace_handler layout (`<run>/logs/torch_profiler/<worker>.<time>.pt.trace.json`,
a Chrome trace): TensorBoard's profiler view and Perfetto (ui.perfetto.dev) open it. The step
before the first traced one runs with the profiler on but unrecorded (its warm-up), so the
profiler's own start-up cost stays out of the trace. Only rank 0 traces: only rank 0 writes.
"""

from dataclasses import dataclass
from typing import Any, ClassVar

from utils.config_fields import option
from utils.logging import LOGGER

TOP_OPERATORS = 15  # rows of the operator table written into log.txt


def _two_steps(value: list[int]) -> bool:
    return len(value) == 2 and value[0] < value[1]


@dataclass(frozen=True, kw_only=True)
class ProfileConfig:
    SECTION: ClassVar[str] = "profile"
    torch_steps: list[int] | None = option(
        None, "[start, stop]: record a torch.profiler trace of optimizer steps start..stop-1 into "
        "logs/torch_profiler/ (TensorBoard's profiler view, Perfetto) and the top operators into log.txt; "
        "step start-1 warms the profiler up (rank 0; null: off)", ge=1,
        check=(_two_steps, "two steps [start, stop] with start < stop"),
    )


class StepTrace:
    """Starts a torch.profiler at the step before `start` and ends it once step `stop - 1` is done.

    The loop calls `at_step_start(step)` as each optimizer step begins (so a step's record runs
    until the next one begins, its data loading included) and `close()` when the session ends,
    which writes what was recorded if the run ended inside the window.
    """

    def __init__(self, start: int, stop: int) -> None:
        self.start, self.stop = start, stop
        self._profiler: Any = None
        self._done = False
        self._first = self._current = start  # the first recorded step, the step running now

    def at_step_start(self, step: int) -> None:
        if self._profiler is not None:
            self._profiler.step()  # the previous step ends here
            if step >= self.stop:
                self.close()
        elif not self._done and self.start - 1 <= step < self.stop - 1:  # a resume may land inside
            self._begin(step)
        self._current = step

    def _begin(self, step: int) -> None:
        from utils.profiling.torch_trace import trace_steps

        self._first = step + 1  # `step` itself is the warm-up
        self._profiler = trace_steps(wait=0, warmup=1, active=self.stop - self._first, on_ready=self._log)
        self._profiler.start()

    def _log(self, prof: Any) -> None:
        """The operators that took the most time in the traced steps, as a table in log.txt."""
        import torch

        from utils.profiling.torch_trace import TRACE_SUBDIR

        folder = LOGGER.get_path("log") / TRACE_SUBDIR
        trace = max(folder.glob("*.pt.trace.json"), key=lambda path: path.stat().st_mtime)
        sort_by = "self_cuda_time_total" if torch.cuda.is_available() else "self_cpu_time_total"
        table = prof.key_averages().table(sort_by=sort_by, row_limit=TOP_OPERATORS)
        LOGGER.info(f"torch.profiler trace of steps {self._first}..{self._current} in {trace} "
                    f"(TensorBoard's profiler view, ui.perfetto.dev); top operators by self time:\n{table}")

    def close(self) -> None:
        """Stop the profiler (writing the steps recorded so far); later steps are not traced."""
        if self._profiler is not None:
            profiler, self._profiler, self._done = self._profiler, None, True
            profiler.stop()

