"""Shapes, gradient flow and initialisation of the building blocks in models.util_modules."""

import math

import pytest
import torch
from torch import nn

from models.util_modules import (
    MLP,
    ConvBlock,
    Flatten,
    Permute,
    PointWiseLinear,
    Reshape,
    Residual,
    build_activation,
)


def _assert_every_parameter_gets_a_gradient(module: nn.Module, out: torch.Tensor) -> None:
    out.square().mean().backward()
    for name, param in module.named_parameters():
        assert param.grad is not None, name
        assert torch.isfinite(param.grad).all(), name
        assert param.grad.abs().sum() > 0, name


@pytest.mark.parametrize("norm", [None, "batch", "layer"])
def test_mlp_shape_and_gradients(norm):
    torch.manual_seed(0)
    mlp = MLP(5, [16, 8], 3, activation="gelu", norm=norm, dropout=0.1)
    x = torch.randn(4, 5, requires_grad=True)
    out = mlp(x)
    assert out.shape == (4, 3)
    _assert_every_parameter_gets_a_gradient(mlp, out)
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_mlp_depth_and_width_follow_hidden_list():
    mlp = MLP(5, [16, 8], 3)
    linears = [m for m in mlp if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(5, 16), (16, 8), (8, 3)]
    assert isinstance(mlp[-1], nn.Linear)  # ends in raw outputs, no activation
    assert len([m for m in MLP(5, [], 3) if isinstance(m, nn.Linear)]) == 1


def test_mlp_dropout_only_in_training_mode():
    torch.manual_seed(0)
    mlp = MLP(8, [64], 8, dropout=0.5)
    x = torch.randn(2, 8)
    mlp.eval()
    assert torch.equal(mlp(x), mlp(x))
    mlp.train()
    assert not torch.equal(mlp(x), mlp(x))


def test_mlp_rejects_bad_options():
    with pytest.raises(ValueError, match="unknown activation 'nope'"):
        MLP(2, [4], 1, activation="nope")
    with pytest.raises(ValueError, match="unknown norm 'group' for an MLP"):
        MLP(2, [4], 1, norm="group")
    with pytest.raises(ValueError, match="dropout=1.5"):
        MLP(2, [4], 1, dropout=1.5)


@pytest.mark.parametrize("norm", [None, "batch", "group", "instance"])
def test_conv_block_keeps_spatial_size_and_passes_gradients(norm):
    block = ConvBlock(3, 12, kernel_size=3, norm=norm, activation="silu")
    out = block(torch.randn(2, 3, 7, 9))
    assert out.shape == (2, 12, 7, 9)
    _assert_every_parameter_gets_a_gradient(block, out)


def test_conv_block_stride_and_bias_rule():
    assert ConvBlock(3, 4, kernel_size=3, stride=2)(torch.randn(1, 3, 8, 8)).shape == (1, 4, 4, 4)
    assert ConvBlock(3, 4, norm="batch")[0].bias is None
    assert ConvBlock(3, 4, norm=None)[0].bias is not None


def test_residual_adds_input_and_uses_projection():
    block = nn.Linear(4, 4)
    residual = Residual(block)
    x = torch.randn(3, 4)
    assert torch.allclose(residual(x), x + block(x))
    projected = Residual(nn.Linear(4, 6), shortcut=nn.Linear(4, 6, bias=False))
    out = projected(x)
    assert out.shape == (3, 6)
    _assert_every_parameter_gets_a_gradient(projected, out)


def test_pointwise_linear_matches_a_loop_of_linears():
    torch.manual_seed(0)
    points, fan_in, fan_out = 5, 4, 3
    layer = PointWiseLinear(points, fan_in, fan_out)
    linears = [nn.Linear(fan_in, fan_out) for _ in range(points)]
    with torch.no_grad():
        for p, linear in enumerate(linears):
            linear.weight.copy_(layer.weight[p])
            linear.bias.copy_(layer.bias[p])
    x = torch.randn(2, points, fan_in)  # (B, P, in)
    expected = torch.stack([linears[p](x[:, p]) for p in range(points)], dim=1)  # (B, P, out)
    out = layer(x)
    assert out.shape == (2, points, fan_out)
    assert torch.allclose(out, expected, atol=1e-6)
    _assert_every_parameter_gets_a_gradient(layer, out)


def test_pointwise_linear_without_bias_matches_loop():
    layer = PointWiseLinear(3, 2, 2, bias=False)
    x = torch.randn(4, 3, 2)
    expected = torch.stack([x[:, p] @ layer.weight[p].T for p in range(3)], dim=1)
    assert layer.bias is None
    assert torch.allclose(layer(x), expected, atol=1e-6)


def test_pointwise_linear_init_bound_matches_nn_linear():
    torch.manual_seed(0)
    fan_in = 50
    layer = PointWiseLinear(40, fan_in, 30)
    bound = 1 / math.sqrt(fan_in)
    reference = nn.Linear(fan_in, 30 * 40)
    for tensor in (layer.weight, layer.bias):
        assert tensor.abs().max() <= bound
        assert tensor.abs().max() > 0.95 * bound  # spread over the whole interval
    assert reference.weight.abs().max() <= bound
    # uniform(-b, b) has std b / sqrt(3); both inits agree within sampling noise
    assert layer.weight.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.05)
    assert reference.weight.std().item() == pytest.approx(layer.weight.std().item(), rel=0.05)


def test_pointwise_linear_rejects_wrong_input_shape():
    with pytest.raises(ValueError, match=r"expects \(B, 5, 4\), got \(2, 5, 3\)"):
        PointWiseLinear(5, 4, 3)(torch.randn(2, 5, 3))


def test_shape_helpers():
    x = torch.randn(2, 3, 4, 5)  # (B, C, H, W)
    assert Reshape(12, 5)(x).shape == (2, 12, 5)
    assert torch.equal(Permute(0, 2, 3, 1)(x), x.permute(0, 2, 3, 1))
    assert Flatten()(x).shape == (2, 60)
    model = nn.Sequential(Permute(0, 2, 3, 1), Reshape(20, 3), PointWiseLinear(20, 3, 2), Flatten())
    assert model(x).shape == (2, 40)


def test_activation_names_build_fresh_modules():
    assert isinstance(build_activation("tanh"), nn.Tanh)
    assert build_activation("relu") is not build_activation("relu")
