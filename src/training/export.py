"""Export a trained model as safetensors weights, a `torch.export` program (.pt2) or ONNX, each
checked against the eager model before it counts as done.

One function per format returns an `Export`: the file's bytes, not yet written, and how far the
exported artefact's outputs lie from the eager model's. The check runs the artefact as a user
would: the weights loaded into a fresh model, the program reloaded with `torch.export.load`, the
ONNX file in onnxruntime. It runs on a batch of another size than the export was traced with, so
a batch dimension that was baked in fails here and not in production. `write_export` then writes
the checked bytes atomically. `06_export.py` is the command around these:

    inputs = task.example_inputs()                   # (x,) with x of shape (B, ...)
    export = export_onnx(model.eval(), inputs)       # ExportError when it cannot or does not match
    print(export.summary()); write_export(export, Path("model.onnx"))

Model and inputs live on the CPU; each input is a tensor whose first dimension is the batch.
The onnx, onnxscript, onnxruntime and safetensors imports are lazy: only an export needs them.
"""

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from training.export_checks import (
    TOLERANCES,
    Tolerance,
    check_batches,
    compare,
    exporter_output_hidden,
    failure_reason,
)
from utils.errors import ExportError
from utils.fileio import atomic_open

Inputs = Sequence[Tensor]  # the model's positional arguments, batch first
Runner = Callable[[tuple[Tensor, ...]], list[Tensor]]  # an exported artefact, called on a batch
INSTALL_HINT = "pip install -r requirements.txt (safetensors, onnx, onnxscript, onnxruntime)"


@dataclass(frozen=True)
class Export:
    """A checked export: `data` is the file's content; `difference` the largest absolute difference
    between the artefact's and the eager model's outputs on a batch of `checked_batch` samples
    (traced with `traced_batch`), at most `limit` (the format's tolerance at this output scale)."""

    format: str
    data: bytes
    difference: float
    limit: float
    tolerance: Tolerance
    traced_batch: int
    checked_batch: int

    def summary(self) -> str:
        """One line: the check's numbers and the tolerance they passed."""
        return (
            f"{self.format}: checked on a batch of {self.checked_batch} (exported with {self.traced_batch}): "
            f"largest |exported - eager| = {self.difference:.3g} <= {self.limit:.3g} ({self.tolerance})"
        )


def export_safetensors(model: nn.Module, inputs: Inputs, build_model: Callable[[], nn.Module],
                       metadata: dict[str, str] | None = None, verbose: bool = False) -> Export:
    """The model's state_dict as safetensors, checked by loading it into `build_model()` (strict).

        export = export_safetensors(trained.model, task.example_inputs(), task.build_model)
    """
    safetensors = _lazy("safetensors.torch")
    state = _unshared({name: value.detach().cpu() for name, value in model.state_dict().items()})

    def make(traced: tuple[Tensor, ...]) -> bytes:
        return safetensors.save(state, metadata=metadata)

    def load(data: bytes) -> Runner:
        fresh = build_model()
        fresh.load_state_dict(safetensors.load(data), strict=True)
        fresh.eval()
        return lambda batch: _leaves(fresh(*batch))

    return _export("safetensors", model, inputs, make, load, "the weights did not round-trip", verbose)


def export_pt2(model: nn.Module, inputs: Inputs, verbose: bool = False) -> Export:
    """A `torch.export` ExportedProgram with a dynamic batch dimension, checked after
    `torch.export.load` of the saved bytes.

        export = export_pt2(model.eval(), (images,))   # later: torch.export.load(path).module()(x)
    """

    def make(traced: tuple[Tensor, ...]) -> bytes:
        program = torch.export.export(model, traced, dynamic_shapes=_batch_dynamic(traced))
        buffer = io.BytesIO()
        torch.export.save(program, buffer)
        return buffer.getvalue()

    def load(data: bytes) -> Runner:
        module = torch.export.load(io.BytesIO(data)).module()
        return lambda batch: _leaves(module(*batch))

    return _export("pt2", model, inputs, make, load, "torch.export cannot trace the model", verbose)


def export_onnx(model: nn.Module, inputs: Inputs, verbose: bool = False) -> Export:
    """ONNX through the dynamo exporter (`torch.onnx.export(..., dynamo=True)`) with a dynamic
    batch dimension, checked in an onnxruntime CPU session.

        export = export_onnx(model.eval(), (images,))  # later: onnxruntime.InferenceSession(path)
    """
    _lazy("onnxscript")
    onnxruntime = _lazy("onnxruntime")

    def make(traced: tuple[Tensor, ...]) -> bytes:
        program = torch.onnx.export(model, traced, dynamic_shapes=_batch_dynamic(traced), dynamo=True,
                                    verbose=False, report=False)
        return program.model_proto.SerializeToString()

    def load(data: bytes) -> Runner:
        session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
        names = [given.name for given in session.get_inputs()]

        def run(batch: tuple[Tensor, ...]) -> list[Tensor]:
            feed = {name: value.cpu().numpy() for name, value in zip(names, batch, strict=True)}
            return [torch.from_numpy(output) for output in session.run(None, feed)]

        return run

    return _export("onnx", model, inputs, make, load, "the ONNX exporter failed", verbose)


EXPORTERS = {"safetensors": export_safetensors, "pt2": export_pt2, "onnx": export_onnx}


def export_model(format: str, model: nn.Module, inputs: Inputs, build_model: Callable[[], nn.Module],
                 metadata: dict[str, str] | None = None, verbose: bool = False) -> Export:
    """The export of `format` (a key of EXPORTERS); `build_model` and `metadata` serve safetensors,
    `verbose` lets the exporter's own output through."""
    if format == "safetensors":
        return export_safetensors(model, inputs, build_model, metadata, verbose)
    return EXPORTERS[format](model, inputs, verbose)


def write_export(export: Export, path: Path) -> None:
    """Write the checked bytes to `path` atomically: a reader sees the old file or the new one."""
    with atomic_open(path, expected_size=len(export.data)) as handle:
        handle.write(export.data)


def _export(format: str, model: nn.Module, inputs: Inputs, make: Callable[[tuple[Tensor, ...]], bytes],
            load: Callable[[bytes], Runner], failing: str, verbose: bool) -> Export:
    """Make the artefact from the traced batch (exporter output hidden), reload it, compare it with
    eager on the check batch."""
    try:
        traced, checked = check_batches(inputs)
    except ValueError as error:
        raise ExportError(format, f"{error} (Task.example_inputs())") from None
    try:
        with exporter_output_hidden(not verbose), torch.no_grad():
            data = make(traced)
            exported = load(data)(checked)
            eager = _leaves(model(*checked))
    except (ImportError, ExportError):
        raise
    except Exception as error:  # the exporters raise many types; each becomes one line
        raise ExportError(format, f"{failing}: {failure_reason(error)}") from error
    tolerance = TOLERANCES[format]
    try:
        difference, limit = compare(exported, eager, tolerance)
    except ValueError as error:
        raise ExportError(format, str(error)) from None
    if difference > limit:
        raise ExportError(format, f"largest |exported - eager| = {difference:.3g} exceeds the tolerance "
                                  f"{limit:.3g} ({tolerance}) on a batch of {len(checked[0])}")
    return Export(format, data, difference, limit, tolerance, len(traced[0]), len(checked[0]))


def _batch_dynamic(inputs: tuple[Tensor, ...]) -> tuple[dict[int, object], ...]:
    """Dimension 0 of every input is one shared symbolic batch size."""
    batch = torch.export.Dim("batch")
    return tuple({0: batch} for _ in inputs)


def _leaves(output: object) -> list[Tensor]:
    """A model's output as a flat list of tensors: a tensor, or a tuple/list/dict of them."""
    if isinstance(output, Tensor):
        return [output]
    if isinstance(output, dict):
        return [leaf for value in output.values() for leaf in _leaves(value)]
    if isinstance(output, (tuple, list)):
        return [leaf for value in output for leaf in _leaves(value)]
    raise TypeError(f"the model returned a {type(output).__name__}; exports need tensors")


def _unshared(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """safetensors refuses tensors that share memory (tied weights): the second one is copied."""
    seen: set[int] = set()
    unshared = {}
    for name, value in state.items():
        pointer = value.untyped_storage().data_ptr()
        unshared[name] = value.clone() if pointer in seen and value.numel() else value.contiguous()
        seen.add(pointer)
    return unshared


def _lazy(module: str):
    """Import an export library, or say how to install it (ImportError)."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(f"{module} is needed for this export: {INSTALL_HINT}") from error
