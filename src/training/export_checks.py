"""How an export is checked against the eager model: the batches, the tolerances, the comparison,
and the exporters' own output kept off the console with their failure cut to one line."""

import contextlib
import os
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

MIN_CHECK_BATCH = 3  # the traced batch is 2: torch.export specialises sizes 0 and 1


@dataclass(frozen=True)
class Tolerance:
    """An export passes when `max|exported - eager| <= atol + rtol * max|eager|` over all outputs:
    absolute near zero, relative to the output's scale above it (logits of 30 may differ more
    than logits of 0.3 after the same rounding)."""

    atol: float
    rtol: float

    def limit(self, scale: float) -> float:
        return self.atol + self.rtol * scale

    def __str__(self) -> str:
        return f"{self.atol:g} + {self.rtol:g} x max|eager|"


TOLERANCES = {
    # The same float32 weights, bit for bit, in a fresh model of the same class run by the same
    # kernels on the same batch: the outputs are identical, and any difference means a weight or
    # buffer did not round-trip (a missing persistent buffer, a dtype cast). Exact.
    "safetensors": Tolerance(atol=0.0, rtol=0.0),
    # The ExportedProgram runs the same ATen kernels in float32, but export functionalises and
    # may decompose ops (batch norm, dropout in eval, view chains), which can reorder a sum: a
    # few units in the last place of float32 (eps 1.2e-7), so 1e-6 of the scale with margin.
    "pt2": Tolerance(atol=1e-6, rtol=1e-6),
    # onnxruntime has its own kernels (MLAS convolutions and GEMMs with other blockings, fused
    # conv+activation), so every float32 reduction is summed in another order; the rounding grows
    # with depth and reduction length. Measured on the trained digits CNN: 1.9e-6 at logits of 13
    # (1.4e-7 of the scale); on the UNet 3e-8. 1e-4 of the scale leaves a margin of ~700 for other
    # CPUs and deeper models and still fails a wrong weight, whose error is of the scale itself.
    "onnx": Tolerance(atol=1e-5, rtol=1e-4),
}


def check_batches(inputs: Sequence[Tensor]) -> tuple[tuple[Tensor, ...], tuple[Tensor, ...]]:
    """(traced, checked): the export is traced on 2 samples and checked on all of them, tiled to
    at least MIN_CHECK_BATCH, so the check proves that the batch dimension is really dynamic."""
    inputs = tuple(inputs)
    if not inputs or not all(isinstance(x, Tensor) and x.dim() > 0 and len(x) > 0 for x in inputs):
        raise ValueError("example inputs must be tensors with a non-empty batch dimension first")
    size = len(inputs[0])
    repeats = -(-MIN_CHECK_BATCH // size)  # ceil
    checked = tuple(x.repeat(repeats, *([1] * (x.dim() - 1))) if repeats > 1 else x for x in inputs)
    return tuple(x[:2] for x in checked), checked


def compare(exported: list[Tensor], eager: list[Tensor], tolerance: Tolerance) -> tuple[float, float]:
    """(largest absolute difference, the tolerance's limit at the eager outputs' scale).

    ValueError when the outputs do not even have the same count or shapes. A NaN on one side
    only counts as an infinite difference; NaN on both sides as none.
    """
    if len(exported) != len(eager):
        raise ValueError(f"the export returns {len(exported)} outputs, the eager model {len(eager)}")
    difference, scale = 0.0, 0.0
    for index, (ours, theirs) in enumerate(zip(exported, eager)):
        ours, theirs = ours.detach().cpu().double(), theirs.detach().cpu().double()
        if ours.shape != theirs.shape:
            raise ValueError(f"output {index} has shape {tuple(ours.shape)}, eager {tuple(theirs.shape)}")
        gap = (ours - theirs).abs()
        gap = torch.where(ours.isnan() & theirs.isnan(), 0.0, gap.nan_to_num(nan=float("inf")))
        if gap.numel():
            difference = max(difference, gap.max().item())
            scale = max(scale, theirs.nan_to_num().abs().max().item())
    return difference, tolerance.limit(scale)


@contextlib.contextmanager
def exporter_output_hidden(hidden: bool = True) -> Iterator[None]:
    """Send file descriptors 1 and 2 to /dev/null while an exporter runs (`hidden`): torch.export
    and the ONNX exporter print graphs, warnings and progress there (some through handlers that
    hold the original stream, some from C++), and a failure is reported as one line instead."""
    if not hidden:
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with open(os.devnull, "w") as null:
        try:
            os.dup2(null.fileno(), 1)
            os.dup2(null.fileno(), 2)
            with contextlib.redirect_stdout(null), contextlib.redirect_stderr(null):  # when sys.std* is not fd 1/2
                yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


_USER_CALL = re.compile(r'File "([^"]+)", line (\d+), in (\w+)\n\s+(\S[^\n]*)')


def failure_reason(error: BaseException) -> str:
    """An exporter's failure in one line: the innermost cause's first line (two when the first ends
    in a colon), and the model's line of code that raised it when the message names one
    ("at model.py:12 in forward: if x.sum() > 0:")."""
    chain = [error]
    while (cause := chain[-1].__cause__ or chain[-1].__context__) is not None and cause not in chain:
        chain.append(cause)
    root = chain[-1]
    lines = [line.strip() for line in str(root).splitlines() if line.strip()]
    first = " ".join(lines[:2]) if lines and lines[0].endswith(":") else "".join(lines[:1])  # "Error(s) in ...:"
    reason = f"{type(root).__name__}: {first}" if first else type(root).__name__
    for item in chain:
        found = _USER_CALL.search(str(item))
        if found:
            path, line, function, code = found.groups()
            reason += f" at {os.path.basename(path)}:{line} in {function}: {code.strip()}"
            break
    return " ".join(reason.split())
