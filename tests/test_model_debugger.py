"""Model debugger: selection, copies, gradients, modes, NaN guard, summary, LOGGER, DDP."""

import copy
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
import torch.distributed as dist
from torch import Tensor, nn

from models.util_modules import MLP, ConvBlock
from utils.logging import Logger
from utils.model_debugger import ModelDebugger, NonFiniteError
from utils.debugging import memo
from utils.debugging.cpu_stats import finite_cpu_stats, load_kernels, numpy_stats
from utils.debugging.layers import select_layers
from utils.debugging.stats import (
    STAT_NAMES,
    _device_stats,
    _finite_cpu_stats,
    _padded_stats,
    compute_stats,
    compute_stats_many,
    to_floats,
)

BREAKS: list[dict] = []


def record_breakpoint(*args: object, **kwargs: object) -> None:
    """PYTHONBREAKPOINT target: remember what the breaking frame had in scope, like pdb would show."""
    scope = sys._getframe(1).f_locals
    BREAKS.append({"name": scope["name"], "step": scope["step"], "shape": tuple(scope["tensor"].shape)})


@pytest.fixture
def breakpoints(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """Route breakpoint() through the default hook, which reads PYTHONBREAKPOINT at each call."""
    BREAKS.clear()
    monkeypatch.setattr(sys, "breakpointhook", sys.__breakpointhook__)
    monkeypatch.setenv("PYTHONBREAKPOINT", f"{__name__}.record_breakpoint")
    return BREAKS


class SmallNet(nn.Module):
    """(B, 2, 6, 6) -> (B, 3): conv, batch norm, relu, linear."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, padding=1)  # (B, 4, 6, 6)
        self.norm = nn.BatchNorm2d(4)
        self.act = nn.ReLU()
        self.head = nn.Linear(4 * 36, 3)  # (B, 3)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.act(self.norm(self.conv(x))).flatten(1))


class NaNOutput(nn.Module):
    """Linear layer whose output gets a NaN planted in one element."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.linear = nn.Linear(features, features)

    def forward(self, x: Tensor) -> Tensor:
        mask = torch.zeros(x.shape[-1], device=x.device)
        mask[1] = float("nan")
        return self.linear(x) + mask


class NaNGradient(nn.Linear):
    """Linear layer whose output gradient is replaced by NaN (planted before any other hook)."""

    def forward(self, x: Tensor) -> Tensor:
        out = super().forward(x)
        if out.requires_grad:
            out.register_hook(lambda grad: torch.full_like(grad, float("nan")))
        return out


class OutOfOrder(nn.Module):
    """`late` is registered first but runs last, so registration order != execution order."""

    def __init__(self, planted: nn.Module) -> None:
        super().__init__()
        self.late = nn.Linear(4, 4)
        self.planted = planted
        self.first = nn.Linear(4, 4)

    def forward(self, x: Tensor) -> Tensor:
        return self.late(self.planted(self.first(x)))


def train_step(model: nn.Module, x: Tensor) -> Tensor:
    """One forward and backward with a simple loss; returns the output."""
    out = model(x)
    out.square().mean().backward()
    return out


def all_hooks(model: nn.Module) -> list[int]:
    """Sizes of every hook registry on the model's modules and parameters."""
    sizes = []
    for module in model.modules():
        for registry in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks",
                         "_forward_hooks_with_kwargs", "_forward_pre_hooks_with_kwargs"):
            sizes.append(len(getattr(module, registry)))
    for param in model.parameters():
        sizes.append(len(param._backward_hooks or {}))
    return sizes


class ExampleCNN(nn.Module):
    """(B, 1, 8, 8) -> (B, 10): the digits example's layout, defined here so that the library's
    tests do not import a task. Layers are named features.0.0, ..., head.0, head.4."""

    def __init__(self, dropout: float = 0.1) -> None:
        super().__init__()
        self.features = nn.Sequential(
            ConvBlock(1, 32, kernel_size=3),  # (B, 32, 8, 8)
            ConvBlock(32, 64, kernel_size=3),  # (B, 64, 8, 8)
            nn.MaxPool2d(2),  # (B, 64, 4, 4)
            nn.Flatten(),  # (B, 1024)
        )
        self.head = MLP(64 * 16, [128], 10, dropout=dropout)  # (B, 10)

    def forward(self, images: Tensor) -> Tensor:
        return self.head(self.features(images))


# --- statistics -------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.int64])
def test_statistics_match_torch_reference(dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    values = torch.randn(7, 5) * 3 + 1
    values[0, :3] = 0
    tensor = values.to(dtype)
    ref = tensor.double()
    stats = dict(zip(STAT_NAMES, compute_stats(tensor).tolist(), strict=True))
    expected = {
        "mean": ref.mean(), "std": ref.std(correction=0), "min": ref.min(), "max": ref.max(),
        "abs_mean": ref.abs().mean(), "norm": ref.norm(), "zero_frac": (ref == 0).double().mean(),
        "nan_count": 0, "inf_count": 0,
    }
    for name, value in expected.items():
        assert stats[name] == pytest.approx(float(value), rel=1e-5, abs=1e-6), name


def test_statistics_count_nan_and_inf_exactly() -> None:
    tensor = torch.tensor([1.0, float("nan"), 0.0, float("inf"), float("-inf"), float("nan"), 0.0])
    stats = dict(zip(STAT_NAMES, compute_stats(tensor).tolist(), strict=True))
    assert stats["nan_count"] == 2 and stats["inf_count"] == 2
    assert stats["zero_frac"] == pytest.approx(2 / 7)
    assert stats["mean"] != stats["mean"]


def test_std_stays_accurate_for_a_large_mean() -> None:
    torch.manual_seed(0)
    values = 1000 + 0.01 * torch.randn(10_000)  # naive E[x^2] - mean^2 in float32 is pure noise here
    stats = dict(zip(STAT_NAMES, compute_stats(values).tolist(), strict=True))
    assert stats["std"] == pytest.approx(values.double().std(correction=0).item(), rel=1e-3)
    assert dict(zip(STAT_NAMES, compute_stats(torch.ones(64)).tolist(), strict=True))["std"] == 0.0


@pytest.mark.parametrize("transform", [lambda t: t, torch.relu, lambda t: -t.abs() - 1, lambda t: t.round()])
def test_device_path_matches_the_fast_cpu_path(transform) -> None:
    torch.manual_seed(0)
    tensor = transform(torch.randn(33, 17) * 2)
    fast = _finite_cpu_stats(tensor.reshape(-1))
    general = _device_stats(tensor.reshape(-1))
    assert fast.tolist() == pytest.approx(general.tolist(), rel=1e-5, abs=1e-6)


def test_batched_statistics_equal_one_by_one_statistics() -> None:
    torch.manual_seed(0)
    tensors = [torch.randn(288), torch.ones(32), torch.zeros(7), torch.relu(torch.randn(64)), torch.randn(3, 4) * 5 + 100,
               torch.tensor([1.0, float("nan"), 0.0, float("inf"), -float("inf"), 0.0]), torch.randn(9000),
               torch.empty(0), torch.arange(6), torch.randn(5).double()]
    for tensor, batched in zip(tensors, compute_stats_many(tensors), strict=True):
        assert torch.allclose(batched, compute_stats(tensor), rtol=1e-5, atol=1e-6, equal_nan=True), tensor


def test_std_falls_back_to_two_passes_when_the_mean_dominates() -> None:
    values = torch.full((4096,), 3.0) + torch.linspace(-1e-3, 1e-3, 4096)
    std = dict(zip(STAT_NAMES, _finite_cpu_stats(values).tolist(), strict=True))["std"]
    assert std == pytest.approx(values.double().std(correction=0).item(), rel=1e-3)


def test_to_floats_nests_layer_kind_stat() -> None:
    nested = to_floats({"a": {"output": compute_stats(torch.tensor([2.0, -2.0]))}})
    assert nested["a"]["output"]["mean"] == 0.0
    assert nested["a"]["output"]["abs_mean"] == 2.0


def test_padded_batch_used_on_accelerators_equals_one_by_one_statistics() -> None:
    torch.manual_seed(0)
    tensors = [torch.randn(288), torch.ones(32), torch.zeros(7), torch.relu(torch.randn(64)),
               torch.randn(3, 4) * 5 + 100, torch.tensor([1.0, float("nan"), 0.0, float("inf"), -float("inf"), 0.0]),
               torch.randn(5).double()]
    batched = _padded_stats([tensor.reshape(-1) for tensor in tensors])  # (K, S)
    for tensor, row in zip(tensors, batched.unbind(), strict=True):
        assert torch.allclose(row, compute_stats(tensor), rtol=1e-5, atol=1e-6, equal_nan=True), tensor


CPU_CASES = {
    "normal": torch.randn(70_000), "relu": torch.relu(torch.randn(300, 7)), "negative": -torch.rand(5000) - 1,
    "large mean": 1000 + 0.01 * torch.randn(10_000), "zeros and -0.0": torch.tensor([0.0, -0.0, 2.0, -3.0]),
    "float64": torch.randn(4097).double(), "NaN": torch.tensor([1.0, float("nan")]),
    "Inf": torch.tensor([float("inf")]),
}


@pytest.mark.parametrize("case", CPU_CASES)
def test_numpy_fallback_equals_the_c_kernel(case: str) -> None:
    if not load_kernels():
        pytest.skip("no C compiler: only the NumPy path runs here")
    tensor = CPU_CASES[case]
    kernel, fallback = finite_cpu_stats(tensor), numpy_stats(tensor.reshape(-1).numpy())
    if case in ("NaN", "Inf"):
        assert kernel is None and fallback is None
    else:
        assert kernel.tolist() == pytest.approx(fallback.tolist(), rel=1e-5, abs=1e-6)


@pytest.fixture
def measured(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, ...]]:
    """Shapes of the tensors whose statistics the debugger computes (rather than reuses)."""
    shapes: list[tuple[int, ...]] = []
    measure = memo.compute_stats
    monkeypatch.setattr(memo, "compute_stats", lambda tensor: shapes.append(tuple(tensor.shape)) or measure(tensor))
    return shapes


def test_an_alias_reuses_the_statistics_of_its_source(measured: list[tuple[int, ...]]) -> None:
    model = nn.Sequential(nn.Linear(3, 4), nn.Identity(), nn.Flatten())  # (B, 2, 3) -> (B, 2, 4) -> same -> (B, 8)
    with ModelDebugger(model, capture=["output", "grad"]) as debugger:
        model(torch.randn(5, 2, 3)).square().mean().backward()
    assert measured == [(5, 2, 4), (5, 8)]  # the linear layer's output, the gradient reaching the flatten
    stats = debugger.stats()
    assert stats["0"] == stats["1"] == stats["2"]


def test_an_in_place_write_is_measured_again(measured: list[tuple[int, ...]]) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(inplace=True))  # the ReLU overwrites the linear layer's output
    with ModelDebugger(model, capture=["output"]) as debugger, torch.no_grad():
        model(torch.randn(16, 4))
    assert len(measured) == 2
    stats = debugger.stats()
    assert stats["0"]["output"]["min"] < 0 <= stats["1"]["output"]["min"]


# --- selection --------------------------------------------------------------------------------
def test_layers_are_selected_by_name_glob_and_type() -> None:
    model = ExampleCNN()
    assert list(select_layers(model, None))[:3] == ["features.0.0", "features.0.1", "features.0.2"]
    assert list(select_layers(model, "head.0")) == ["head.0"]
    assert list(select_layers(model, "features.*.0")) == ["features.0.0", "features.1.0"]
    assert list(select_layers(model, [nn.Linear, "features.2"])) == ["features.2", "head.0", "head.4"]
    with pytest.raises(ValueError, match="'encoder.\\*' matches no module"):
        select_layers(model, "encoder.*")


def test_invalid_options_are_rejected_with_the_option_named() -> None:
    with pytest.raises(ValueError, match="mode='sometimes'"):
        ModelDebugger(SmallNet(), mode="sometimes")
    with pytest.raises(ValueError, match="unknown kinds \\['weights'\\]"):
        ModelDebugger(SmallNet(), capture=["weights"])


# --- captures ---------------------------------------------------------------------------------
def test_captured_outputs_are_detached_clones() -> None:
    model = SmallNet()
    live: dict[str, Tensor] = {}
    model.norm.register_forward_hook(lambda module, args, out: live.update(norm=out))
    with ModelDebugger(model, keep="tensors") as debugger:
        model(torch.randn(2, 2, 6, 6))
    captured = debugger.tensors("norm", "output")[0]
    before = captured.clone()
    with torch.no_grad():
        live["norm"].add_(100.0)
    assert torch.equal(captured, before)
    assert not captured.requires_grad
    assert captured.data_ptr() != live["norm"].data_ptr()


def test_captured_gradients_equal_autograd_grad() -> None:
    torch.manual_seed(1)
    model = SmallNet()
    outputs: dict[str, Tensor] = {}
    for name in ("conv", "norm", "act", "head"):
        getattr(model, name).register_forward_hook(lambda module, args, out, name=name: outputs.update({name: out}))
    with ModelDebugger(model, keep="both") as debugger:
        loss = model(torch.randn(3, 2, 6, 6)).sin().sum()
        expected = torch.autograd.grad(loss, [outputs[name] for name in ("conv", "norm", "act", "head")],
                                       retain_graph=True)
        loss.backward()
    for name, grad in zip(("conv", "norm", "act", "head"), expected, strict=True):
        assert torch.allclose(debugger.tensors(name, "grad")[-1], grad, atol=1e-7), name
    assert torch.equal(debugger.tensors("conv", "weight_grad")[-1], model.conv.weight.grad)
    assert torch.equal(debugger.tensors("head", "bias")[-1], model.head.bias.detach())
    grad_mean = debugger.stats()["head"]["grad"]["mean"]
    assert grad_mean == pytest.approx(expected[3].mean().item(), abs=1e-7)


def test_parameter_statistics_are_those_of_the_weights_the_forward_used() -> None:
    torch.manual_seed(4)
    model = SmallNet()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    with ModelDebugger(model, keep="both") as debugger:
        used = model.head.weight.detach().clone()
        train_step(model, torch.randn(2, 2, 6, 6))
        optimizer.step()
    assert not torch.equal(model.head.weight, used)
    assert torch.equal(debugger.tensors("head", "weight")[-1], used)
    assert debugger.stats()["head"]["weight"] == pytest.approx(to_floats({"h": {"w": compute_stats(used)}})["h"]["w"])


def test_tensor_buffer_keeps_only_the_latest_captures() -> None:
    model = SmallNet()
    inputs = [torch.randn(2, 2, 6, 6) for _ in range(5)]
    with ModelDebugger(model, keep="tensors", buffer_size=2, capture=["output"]) as debugger:
        outs = [model(x).detach() for x in inputs]
    kept = debugger.tensors("head", "output")
    assert len(kept) == 2
    assert torch.equal(kept[0], outs[3]) and torch.equal(kept[1], outs[4])


# --- modes ------------------------------------------------------------------------------------
def test_once_captures_one_step_then_detaches_itself() -> None:
    model = SmallNet()
    hooks_before = all_hooks(model)
    debugger = ModelDebugger(model, mode="once", keep="both").attach()
    first = train_step(model, torch.randn(2, 2, 6, 6))
    assert not debugger.attached
    assert all_hooks(model) == hooks_before
    assert set(debugger.stats()["conv"]) == {"output", "grad", "weight", "weight_grad", "bias", "bias_grad"}
    train_step(model, torch.randn(2, 2, 6, 6) * 5)
    assert len(debugger.tensors("head", "output")) == 1
    assert torch.equal(debugger.tensors("head", "output")[0], first.detach())


def test_once_without_gradients_detaches_after_the_forward() -> None:
    model = SmallNet()
    debugger = ModelDebugger(model, mode="once").attach()
    with torch.no_grad():
        model(torch.randn(2, 2, 6, 6))
    assert not debugger.attached
    assert "output" in debugger.stats()["head"]


def test_every_n_steps_captures_only_those_steps() -> None:
    model = SmallNet()
    with ModelDebugger(model, mode="every", every=3, keep="tensors", buffer_size=10, capture=["output"]) as debugger:
        outs = [model(torch.full((1, 2, 6, 6), float(step))).detach() for step in range(7)]
    kept = debugger.tensors("head", "output")
    assert [torch.equal(k, outs[s]) for k, s in zip(kept, (0, 3, 6), strict=True)] == [True] * 3
    assert len(kept) == 3 and debugger.step == 7


def test_detach_leaves_no_hooks_and_identical_outputs(breakpoints: list[dict]) -> None:
    torch.manual_seed(2)
    model = ExampleCNN().eval()
    x = torch.randn(8, 1, 8, 8)
    hooks_before = all_hooks(model)
    reference = model(x)
    reference_grads = torch.autograd.grad(reference.sum(), list(model.parameters()))
    debugger = ModelDebugger(model, guard="raise", keep="both")
    with debugger:
        assert all_hooks(model) != hooks_before
        train_step(model, x)
    assert all_hooks(model) == hooks_before
    after = model(x)
    assert torch.equal(after, reference)
    grads = torch.autograd.grad(after.sum(), list(model.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(grads, reference_grads, strict=True))
    assert breakpoints == []


def test_detach_between_forward_and_backward_removes_pending_gradient_hooks() -> None:
    model = SmallNet()
    debugger = ModelDebugger(model, keep="tensors").attach()
    out = model(torch.randn(2, 2, 6, 6))
    assert out._backward_hooks
    debugger.detach()
    assert not out._backward_hooks
    out.sum().backward()
    assert debugger.tensors("head", "grad") == []


# --- NaN/Inf guard ----------------------------------------------------------------------------
def test_guard_names_the_first_layer_in_execution_order_forward() -> None:
    model = OutOfOrder(NaNOutput(4))
    with ModelDebugger(model, guard="raise", layers=["late", "planted", "first"]), \
            pytest.raises(NonFiniteError) as error:
        model(torch.randn(5, 4))
    message = str(error.value)
    assert "output of layer 'planted' (NaNOutput, shape (5, 4))" in message
    assert "5 NaN and 0 Inf values at step 0 in the forward pass" in message
    assert "its input was finite, so this layer produced them" in message


def test_guard_blames_the_code_between_two_layers_for_a_nan_made_in_forward() -> None:
    model = OutOfOrder(NaNOutput(4))
    with ModelDebugger(model, guard="raise"), pytest.raises(NonFiniteError) as error:  # leaves only
        model(torch.randn(5, 4))
    message = str(error.value)
    assert "output of layer 'late' (Linear" in message
    assert ("its input was non-finite although the output of the previous debugged layer 'planted.linear' "
            "was finite: the code between 'planted.linear' and 'late' produced them") in message
    assert "check the data" not in message


class LogBetweenLayers(nn.Module):
    """(B, 4) -> (B, 2): negating linear, torch.log in forward (NaN for a positive input), linear."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Linear(4, 4)
        self.head = nn.Linear(4, 2)
        with torch.no_grad():
            self.encoder.weight.copy_(-torch.eye(4))  # (4, 4): a positive input becomes negative
            self.encoder.bias.zero_()

    def forward(self, x: Tensor) -> Tensor:
        return self.head(torch.log(self.encoder(x)))


def test_guard_tells_a_nan_from_torch_log_in_forward_apart_from_a_nan_in_the_data() -> None:
    model = LogBetweenLayers()
    with ModelDebugger(model, guard="raise"), pytest.raises(NonFiniteError) as made_in_forward:
        model(torch.ones(3, 4))
    with ModelDebugger(model, guard="raise"), pytest.raises(NonFiniteError) as from_data:
        model(torch.tensor([[1.0, float("nan"), 1.0, 1.0]]))

    assert "output of layer 'head' (Linear, shape (3, 2))" in str(made_in_forward.value)
    assert ("although the output of the previous debugged layer 'encoder' was finite: "
            "the code between 'encoder' and 'head' produced them") in str(made_in_forward.value)
    assert "check the data" not in str(made_in_forward.value)
    assert "output of layer 'encoder' (Linear, shape (1, 4))" in str(from_data.value)
    assert "the model's input was already non-finite (check the data)" in str(from_data.value)


def test_guard_record_keeps_the_first_finding_and_lets_the_step_finish() -> None:
    model = LogBetweenLayers()
    with ModelDebugger(model, guard="record") as debugger:
        assert debugger.non_finite is None
        model(torch.ones(3, 4)).sum().backward()  # no exception: the engine decides after the step
    assert "output of layer 'head' (Linear, shape (3, 2))" in debugger.non_finite
    assert "the code between 'encoder' and 'head' produced them" in debugger.non_finite


def test_guard_blames_the_code_before_the_first_debugged_layer_when_the_data_was_finite() -> None:
    model = LogBetweenLayers()
    with ModelDebugger(model, guard="raise", layers=["head"]), pytest.raises(NonFiniteError) as error:
        model(torch.ones(2, 4))
    message = str(error.value)
    assert ("its input was non-finite although the model's input was finite: "
            "the code before 'head' produced them") in message


def test_guard_names_the_first_layer_reached_in_backward() -> None:
    model = OutOfOrder(NaNGradient(4, 4))
    debugger = ModelDebugger(model, guard="raise", start_step=7).attach()
    out = model(torch.randn(5, 4))
    with pytest.raises(NonFiniteError) as error:
        out.sum().backward()
    debugger.detach()
    message = str(error.value)
    assert "gradient w.r.t. the output of layer 'planted' (NaNGradient, shape (5, 4))" in message
    assert "20 NaN and 0 Inf values at step 7 in the backward pass" in message


def test_guard_can_drop_into_the_debugger_via_pythonbreakpoint(breakpoints: list[dict]) -> None:
    model = OutOfOrder(NaNOutput(4))
    with ModelDebugger(model, guard="breakpoint", layers=["first", "planted", "late"]):
        model(torch.randn(5, 4))
    assert [b["name"] for b in breakpoints] == ["planted", "late"]
    assert breakpoints[0] == {"name": "planted", "step": 0, "shape": (5, 4)}


# --- summary and LOGGER -----------------------------------------------------------------------
def test_summary_table_lists_every_layer_and_is_written_to_logs() -> None:
    model = ExampleCNN()
    logger = Logger("dbg", "summary")
    try:
        with ModelDebugger(model, logger=logger) as debugger:
            train_step(model, torch.randn(4, 1, 8, 8))
        path = debugger.write_summary()
    finally:
        logger.finish()
    assert path == logger.get_path("log") / "model_debug.txt"
    text = path.read_text()
    lines = text.splitlines()
    assert lines[0].split()[:5] == ["layer", "type", "output", "shape", "params"]
    conv_rows = [line.split() for line in lines if line.startswith("features.0.0 ")]
    assert [row[4] for row in conv_rows] == ["output", "grad", "weight", "weight_grad"]
    assert conv_rows[0][1:4] == ["Conv2d", "4x32x8x8", "288"]
    assert any(line.startswith("head.4 ") and "Linear" in line for line in lines)


def test_statistics_are_logged_to_logger_every_n_steps() -> None:
    model = SmallNet()
    logger = Logger("dbg", "log")
    logger.initialize_csv()
    seen = []
    try:
        with ModelDebugger(model, mode="every", every=2, log_stats=True) as debugger:  # default: LOGGER
            for _ in range(4):
                train_step(model, torch.randn(2, 2, 6, 6))
                seen.append(debugger.stats()["head"]["grad"]["std"])
    finally:
        logger.finish()
    frame = pd.read_csv(logger.get_path("log") / "metrics.csv")
    assert list(frame["step"]) == [0, 2]
    columns = {f"debug/{layer}/{kind}_{stat}" for layer in ("conv", "head") for kind in ("output", "grad", "weight")
               for stat in STAT_NAMES}
    assert columns <= set(frame.columns)
    assert list(frame["debug/head/grad_std"]) == pytest.approx([seen[0], seen[2]], rel=1e-6)


# --- example CNN and DDP ----------------------------------------------------------------------
def test_debugger_works_on_the_example_cnn() -> None:
    model = ExampleCNN()
    with ModelDebugger(model, layers=[nn.Conv2d, nn.Linear]) as debugger:
        train_step(model, torch.randn(16, 1, 8, 8))
    stats = debugger.stats()
    assert list(stats) == ["features.0.0", "features.1.0", "head.0", "head.4"]
    assert all(values["nan_count"] == 0 for kinds in stats.values() for values in kinds.values())
    assert stats["head.4"]["output"]["max"] > stats["head.4"]["output"]["min"]


@pytest.mark.slow
def test_ddp_wrapped_model_gives_the_same_names_and_values(tmp_path: Path) -> None:
    torch.manual_seed(3)
    plain = ExampleCNN(dropout=0.0)
    inner = copy.deepcopy(plain)
    x = torch.randn(6, 1, 8, 8)
    hooks_before = all_hooks(inner)
    dist.init_process_group("gloo", rank=0, world_size=1, init_method=f"file://{tmp_path}/pg")
    try:
        wrapped = nn.parallel.DistributedDataParallel(inner)
        with ModelDebugger(wrapped) as ddp_debugger:
            train_step(wrapped, x)
    finally:
        dist.destroy_process_group()
    with ModelDebugger(plain) as plain_debugger:
        train_step(plain, x)
    assert list(ddp_debugger.layers) == list(plain_debugger.layers)
    ddp_stats, plain_stats = ddp_debugger.stats(), plain_debugger.stats()
    assert ddp_stats.keys() == plain_stats.keys()
    for layer, kinds in plain_stats.items():
        assert ddp_stats[layer].keys() == kinds.keys(), layer
        for kind, values in kinds.items():
            assert ddp_stats[layer][kind] == pytest.approx(values, rel=1e-5, abs=1e-7), (layer, kind)
    assert all_hooks(inner) == hooks_before
