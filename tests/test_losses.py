"""Each loss in utils.losses against a direct, loop-based computation of its definition."""

import math

import pytest
import torch

from utils.losses import CrossEntropy2d, FocalLoss, SoftDiceLoss


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _pixel_cross_entropy(logits: torch.Tensor, target: torch.Tensor, ignore: int = -100) -> float:
    """Mean over non-ignored pixels of -log softmax(logits)[target], one pixel at a time."""
    losses = []
    batch, _, height, width = logits.shape
    for b in range(batch):
        for i in range(height):
            for j in range(width):
                k = int(target[b, i, j])
                if k == ignore:
                    continue
                scores = logits[b, :, i, j].double()
                losses.append(-(scores[k] - torch.logsumexp(scores, 0)).item())
    return sum(losses) / len(losses)


def test_cross_entropy_2d_same_size_matches_per_pixel_definition():
    logits = torch.randn(2, 4, 3, 5)
    target = torch.randint(0, 4, (2, 3, 5))
    assert CrossEntropy2d()(logits, target).item() == pytest.approx(_pixel_cross_entropy(logits, target), rel=1e-5)


def test_cross_entropy_2d_resizes_smaller_logits_bilinearly():
    logits = torch.randn(2, 3, 4, 4)
    target = torch.randint(0, 3, (2, 8, 8))
    # bilinear, align_corners=False, scale 2: output pixel i samples input at (i + 0.5) / 2 - 0.5
    resized = torch.empty(2, 3, 8, 8)
    for i in range(8):
        for j in range(8):
            y = min(max((i + 0.5) / 2 - 0.5, 0.0), 3.0)
            x = min(max((j + 0.5) / 2 - 0.5, 0.0), 3.0)
            y0, x0 = int(math.floor(y)), int(math.floor(x))
            y1, x1 = min(y0 + 1, 3), min(x0 + 1, 3)
            dy, dx = y - y0, x - x0
            resized[:, :, i, j] = (
                logits[:, :, y0, x0] * (1 - dy) * (1 - dx)
                + logits[:, :, y0, x1] * (1 - dy) * dx
                + logits[:, :, y1, x0] * dy * (1 - dx)
                + logits[:, :, y1, x1] * dy * dx
            )
    expected = _pixel_cross_entropy(resized, target)
    assert CrossEntropy2d()(logits, target).item() == pytest.approx(expected, rel=1e-5)


def test_cross_entropy_2d_resizes_larger_logits_down_to_target():
    logits = torch.randn(1, 2, 9, 7, requires_grad=True)
    target = torch.randint(0, 2, (1, 3, 5))
    loss = CrossEntropy2d()(logits, target)
    loss.backward()
    assert torch.isfinite(loss) and logits.grad.abs().sum() > 0


def test_cross_entropy_2d_ignores_pixels():
    logits = torch.randn(1, 3, 4, 4)
    target = torch.randint(0, 3, (1, 4, 4))
    target[0, :2] = 255
    loss = CrossEntropy2d(ignore_index=255)(logits, target)
    assert loss.item() == pytest.approx(_pixel_cross_entropy(logits, target, ignore=255), rel=1e-5)


def test_cross_entropy_2d_rejects_wrong_ranks():
    with pytest.raises(ValueError, match=r"expects logits \(B, K, H, W\) and target \(B, H, W\)"):
        CrossEntropy2d()(torch.randn(2, 3), torch.zeros(2, dtype=torch.long))


def _focal_by_definition(logits: torch.Tensor, target: torch.Tensor, gamma: float, alpha=None) -> list[float]:
    out = []
    for row, k in zip(logits.double(), target.tolist()):
        p = torch.softmax(row, 0)[k].item()
        weight = 1.0 if alpha is None else float(alpha[k])
        out.append(-weight * (1 - p) ** gamma * math.log(p))
    return out


@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
def test_focal_loss_matches_definition(gamma):
    logits = torch.randn(16, 5, dtype=torch.double) * 3  # double: tiny losses compare exactly
    target = torch.randint(0, 5, (16,))
    expected = _focal_by_definition(logits, target, gamma)
    per_sample = FocalLoss(gamma=gamma, reduction="none")(logits, target)
    assert per_sample.tolist() == pytest.approx(expected, rel=1e-5)
    assert FocalLoss(gamma=gamma)(logits, target).item() == pytest.approx(sum(expected) / 16, rel=1e-5)
    assert FocalLoss(gamma=gamma, reduction="sum")(logits, target).item() == pytest.approx(sum(expected), rel=1e-5)


def test_focal_loss_with_gamma_zero_is_cross_entropy():
    logits = torch.randn(8, 3)
    target = torch.randint(0, 3, (8,))
    expected = torch.nn.functional.cross_entropy(logits, target)
    assert FocalLoss(gamma=0.0)(logits, target).item() == pytest.approx(expected.item(), rel=1e-6)


def test_focal_loss_class_weights_and_spatial_input():
    alpha = torch.tensor([0.25, 0.5, 1.0])
    logits = torch.randn(2, 3, 4, 4)  # (B, K, H, W)
    target = torch.randint(0, 3, (2, 4, 4))
    flat_logits = logits.permute(0, 2, 3, 1).reshape(-1, 3)
    expected = _focal_by_definition(flat_logits, target.reshape(-1), 2.0, alpha)
    loss = FocalLoss(gamma=2.0, alpha=alpha)(logits, target)
    assert loss.item() == pytest.approx(sum(expected) / len(expected), rel=1e-5)


def test_focal_loss_rejects_bad_options():
    with pytest.raises(ValueError, match="gamma=-1"):
        FocalLoss(gamma=-1)
    with pytest.raises(ValueError, match="reduction='avg'"):
        FocalLoss(reduction="avg")


def test_soft_dice_matches_definition():
    logits = torch.randn(2, 3, 5, 4)
    target = torch.randint(0, 3, (2, 5, 4))
    smooth = 1.0
    probs = torch.softmax(logits.double(), dim=1)
    expected = torch.empty(2, 3, dtype=torch.double)
    for b in range(2):
        for k in range(3):
            p = probs[b, k].flatten().tolist()
            t = [1.0 if v == k else 0.0 for v in target[b].flatten().tolist()]
            inter = sum(pi * ti for pi, ti in zip(p, t))
            expected[b, k] = 1 - (2 * inter + smooth) / (sum(p) + sum(t) + smooth)
    per_class = SoftDiceLoss(smooth=smooth, reduction="none")(logits, target)
    assert per_class.shape == (2, 3)
    assert torch.allclose(per_class.double(), expected, atol=1e-6)
    assert SoftDiceLoss(smooth=smooth)(logits, target).item() == pytest.approx(expected.mean().item(), rel=1e-5)


def test_soft_dice_is_near_zero_for_a_confident_correct_prediction_and_has_gradients():
    target = torch.randint(0, 4, (1, 6, 6))
    logits = (torch.nn.functional.one_hot(target, 4).permute(0, 3, 1, 2).float() * 50).requires_grad_()
    loss = SoftDiceLoss(smooth=1e-6)(logits, target)
    assert loss.item() < 1e-3
    wrong = SoftDiceLoss()(torch.randn(1, 4, 6, 6, requires_grad=True), target)
    wrong.backward()
    assert wrong.item() > 0.3
