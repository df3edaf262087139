"""Losses missing from torch: 2-D cross entropy that resizes logits, focal loss, soft Dice loss."""

import torch.nn.functional as F
from torch import Tensor, nn

REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(reduction: str) -> str:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction={reduction!r}: choose from {', '.join(REDUCTIONS)}")
    return reduction


def _reduce(values: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return values.mean()
    if reduction == "sum":
        return values.sum()
    return values


class CrossEntropy2d(nn.Module):
    """Cross entropy for segmentation: logits (B, K, h, w), targets (B, H, W) of class ids.

    When (h, w) differs from (H, W) the logits are resized to the target size with bilinear
    interpolation first, so a network that predicts at a lower resolution is scored against
    the full-resolution mask. Pixels equal to `ignore_index` do not count.
    """

    def __init__(self, weight: Tensor | None = None, ignore_index: int = -100, reduction: str = "mean"):
        super().__init__()
        self.register_buffer("weight", weight)
        self.ignore_index = ignore_index
        self.reduction = _check_reduction(reduction)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        if logits.ndim != 4 or target.ndim != 3:
            raise ValueError(
                f"CrossEntropy2d expects logits (B, K, H, W) and target (B, H, W), "
                f"got {tuple(logits.shape)} and {tuple(target.shape)}"
            )
        if logits.shape[-2:] != target.shape[-2:]:
            logits = F.interpolate(logits, size=target.shape[-2:], mode="bilinear", align_corners=False)
        return F.cross_entropy(  # (B, K, H, W) vs (B, H, W)
            logits, target.long(), weight=self.weight, ignore_index=self.ignore_index, reduction=self.reduction
        )


class FocalLoss(nn.Module):
    """Focal loss (Lin et al. 2017): cross entropy scaled by (1 - p_t)^gamma per sample.

    logits (B, K) or (B, K, *spatial), targets (B,) or (B, *spatial). Down-weights easy,
    well-classified examples so rare classes carry more of the gradient; gamma=0 is plain
    cross entropy. `alpha` (K,) optionally weights classes.
    """

    def __init__(self, gamma: float = 2.0, alpha: Tensor | None = None, reduction: str = "mean"):
        super().__init__()
        if gamma < 0:
            raise ValueError(f"gamma={gamma} must be >= 0")
        self.gamma = gamma
        self.register_buffer("alpha", alpha)
        self.reduction = _check_reduction(reduction)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        target = target.long()
        log_p = F.log_softmax(logits, dim=1)  # (B, K, *)
        log_p_t = log_p.gather(1, target.unsqueeze(1)).squeeze(1)  # (B, *)
        loss = -((1.0 - log_p_t.exp()) ** self.gamma) * log_p_t  # (B, *)
        if self.alpha is not None:
            loss = loss * self.alpha[target]
        return _reduce(loss, self.reduction)


class SoftDiceLoss(nn.Module):
    """1 - soft Dice score, averaged over classes: logits (B, K, H, W), targets (B, H, W).

    Uses softmax probabilities, so it is differentiable; `smooth` keeps the ratio defined for
    classes absent from both prediction and target. Reduction "none" returns (B, K).
    """

    def __init__(self, smooth: float = 1.0, reduction: str = "mean"):
        super().__init__()
        self.smooth = smooth
        self.reduction = _check_reduction(reduction)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        num_classes = logits.shape[1]
        probs = logits.softmax(dim=1)  # (B, K, H, W)
        one_hot = F.one_hot(target.long(), num_classes).movedim(-1, 1).to(probs.dtype)  # (B, K, H, W)
        dims = tuple(range(2, logits.ndim))
        intersection = (probs * one_hot).sum(dims)  # (B, K)
        total = probs.sum(dims) + one_hot.sum(dims)  # (B, K)
        dice = (2.0 * intersection + self.smooth) / (total + self.smooth)  # (B, K)
        return _reduce(1.0 - dice, self.reduction)

