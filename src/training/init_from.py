"""`training.init_from`: start a fresh run from another run's weights (fine-tuning, a warm start).

The source is `"EXP/RUN"` (that run's best.pt), `"EXP/RUN:last"`, or a path to a `.pt`
checkpoint of this template or a `.safetensors` file of weights (such as an export). Only the
model's weights are loaded, at the start of a fresh run: no optimizer, step, schedule or random
state, so the new run trains with its own config from step 0. A `--resume` never loads them: the
run's own checkpoint wins.

`training.init_strict` (default true) wants the weights to fit the model exactly; a mismatch exits
2 naming the missing, unexpected and mis-shaped keys. With false, the weights that fit are loaded
and the others are named in one line of log.txt: the way to fine-tune with a new head.

The source is checked before a run is created (`01_initialize.py`) and before a fresh session
writes anything (`check_init_from`): a missing run or file, a file that is not a checkpoint, or
weights that do not fit are an exit-2 error with one line. Reading is
safe: `torch.load(weights_only=True)` or safetensors, never a pickle that could run code.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from training.model_memory import build_meta_model
from utils.checkpointing.diagnosis import describe_mismatch, one_line
from utils.checkpointing.io import load_checkpoint, peek_checkpoint
from utils.config_fields import option
from utils.errors import CheckpointError, ConfigValueError, TemplateError
from utils.fileio import file_sha256
from utils.helper_functions import unwrap_model
from utils.runs.provenance import SessionRecord
from utils.sharded_state import load_model_state
from utils.runs.reference import require_run_reference

if TYPE_CHECKING:
    from training.run_config import RunConfig

WEIGHT_FILES = (".pt", ".safetensors")
RUN_CHECKPOINTS = ("best", "last")  # EXP/RUN[:best|:last]


def _well_formed(value: str) -> bool:
    if value.endswith(WEIGHT_FILES):
        return True
    reference, _, checkpoint = value.partition(":")
    return reference.count("/") == 1 and checkpoint in ("", *RUN_CHECKPOINTS)


@dataclass(frozen=True, kw_only=True)
class InitConfig:
    """The `training` keys of a fine-tune: where the first weights come from, and how strictly."""

    SECTION: ClassVar[str] = "training"
    init_from: str | None = option(
        None, "start a fresh run from these model weights: 'EXP/RUN' (its best.pt), 'EXP/RUN:last', or "
        "a path to a .pt checkpoint or a .safetensors file; only the weights, not the optimizer, step, "
        "schedule or random state (null: the model's own initialisation; --resume never loads them)",
        check=(_well_formed, "'EXP/RUN', 'EXP/RUN:last', or a path ending in .pt or .safetensors"),
    )
    init_strict: bool = option(
        True, "the init_from weights must fit the model exactly (false: load those that fit and name "
        "the others in log.txt, e.g. to fine-tune with a new head)",
    )


def resolve_init_source(spec: str) -> Path:
    """The weight file `spec` names; RunNotFoundError, InvalidNameError or CheckpointError (exit 2)
    naming the key when it does not exist."""
    what = f"training.init_from={spec!r}"
    if spec.endswith(WEIGHT_FILES):
        path = Path(spec).expanduser().absolute()
    else:
        reference, _, checkpoint = spec.partition(":")
        run = require_run_reference(reference, what)
        path = run.last_checkpoint if checkpoint == "last" else run.best_checkpoint
    if not path.is_file():
        hint = "point to a checkpoint or a .safetensors file" if spec.endswith(WEIGHT_FILES) else (
            "has that run trained? 'EXP/RUN:last' names its last.pt")
        raise CheckpointError(f"{what}: {path} does not exist; {hint}")
    return path


def read_weights(path: Path, shapes_only: bool = False) -> dict[str, torch.Tensor]:
    """The model weights in `path`, on the CPU (`shapes_only`: meta tensors from the file's
    header or a memory map, no data read). CheckpointError (exit 2) for a file that is not one."""
    if path.suffix == ".safetensors":
        return _read_safetensors(path, shapes_only)
    return (peek_checkpoint if shapes_only else load_checkpoint)(path)["model"]


def _read_safetensors(path: Path, shapes_only: bool) -> dict[str, torch.Tensor]:
    from safetensors import safe_open
    from safetensors.torch import load_file

    try:
        if not shapes_only:
            return load_file(path, device="cpu")
        with safe_open(path, framework="pt") as weights:
            return {key: torch.empty(weights.get_slice(key).get_shape(), device="meta") for key in weights.keys()}
    except Exception as error:  # safetensors raises SafetensorError, OSError, ...
        raise CheckpointError(f"{path}: not a safetensors file of weights ({one_line(error)})") from error


def split_weights(
    weights: dict[str, torch.Tensor], expected: dict[str, torch.Tensor],
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """The weights that fit the model (same key, same shape), and the keys that do not, each
    named with why: missing from the source, unexpected in the model, or of another shape."""
    fitting, unfit = {}, []
    for key, value in expected.items():
        if key not in weights:
            unfit.append(f"{key} (not in the source)")
        elif tuple(weights[key].shape) != tuple(value.shape):
            unfit.append(f"{key} (source {tuple(weights[key].shape)}, model {tuple(value.shape)})")
        else:
            fitting[key] = weights[key]
    unfit += [f"{key} (not in the model)" for key in weights if key not in expected]
    return fitting, unfit


def check_init_from(config: "RunConfig", source: str) -> None:
    """Exit-2 errors for a bad `training.init_from` of a run about to start fresh, before anything
    is created or written: a source that does not exist or is not a checkpoint, weights that do
    not fit (init_strict), or none that fits. Reads the file's shapes only and builds the model
    on the meta device. Not part of `parse_run_config`: a fine-tuned run stays usable (resumed,
    evaluated, loaded) after its source is gone."""
    from training.run_config import RunSettings  # run_config lists InitConfig among its sections

    init = config[InitConfig]
    if init.init_from is None:
        return
    try:
        weights = read_weights(resolve_init_source(init.init_from), shapes_only=True)
    except TemplateError as exc:
        raise type(exc)(f"{source}: {exc}") from None
    model = build_meta_model(config.task, config.parsed, config[RunSettings].seed)
    if model is not None:
        _check_fit(init, weights, model.state_dict(), source)


def _check_fit(init: InitConfig, weights: dict[str, Any], expected: dict[str, Any], source: str) -> None:
    what = f"training.init_from={init.init_from!r}"
    mismatch = describe_mismatch(weights, expected)
    if mismatch and init.init_strict:
        raise ConfigValueError(
            f"{source}: {what}: its weights do not fit the model: {mismatch}; set training.init_strict=false "
            "to load those that fit (e.g. for a new head), or configure the model as the source's"
        )
    if not split_weights(weights, expected)[0]:
        raise ConfigValueError(f"{source}: {what}: none of its {len(weights)} weights fits the model")


def init_model(model: torch.nn.Module, init: InitConfig, resumed: bool, record: SessionRecord) -> list[str]:
    """At a fresh start, load the init_from weights into `model` (any wrapper); returns the lines
    for log.txt and adds the source, its SHA-256 and what was loaded to the session record.

        notes = init_model(model, config[InitConfig], resumed=False, record=session)
    """
    if init.init_from is None:
        return []
    if resumed:
        return [f"training.init_from={init.init_from!r} is not used: a resume continues from the run's own checkpoint"]
    path = resolve_init_source(init.init_from)
    weights = read_weights(path)
    bare = unwrap_model(model)
    expected = bare.state_dict()
    try:
        _check_fit(init, weights, expected, "config")
    except ConfigValueError as exc:
        raise CheckpointError(str(exc)) from None  # the real model differs from the meta one
    fitting, unfit = split_weights(weights, expected)
    load_model_state(model, fitting, strict=False)  # a model sharded by FSDP keeps its shard
    digest = file_sha256(path)
    record.add(init_from={"source": init.init_from, "path": str(path), "sha256": digest,
                          "loaded": len(fitting), "not_loaded": unfit})
    notes = [f"init_from {init.init_from}: loaded {len(fitting)} of the model's {len(expected)} weights "
             f"from {path} (sha256 {digest}); optimizer, step, schedule and random state start anew"]
    if unfit:
        notes.append(f"init_from {init.init_from}: not loaded (init_strict=false), the model keeps its own: {', '.join(unfit)}")
    return notes
