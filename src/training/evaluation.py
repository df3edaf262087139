"""Evaluation over a (possibly sharded) loader with exact cross-rank totals."""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from training.distributed import all_reduce_sum


@dataclass
class EvalResult:
    """Loss and accuracy over the whole split, the confusion matrix, and one sample batch."""

    loss: float
    accuracy: float
    confusion: torch.Tensor  # (num_classes, num_classes), rows = true class, cols = predicted
    sample_images: torch.Tensor  # (B, 1, H, W) from this rank's first batch
    sample_labels: torch.Tensor  # (B,)
    sample_predictions: torch.Tensor  # (B,)


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, device: torch.device, num_classes: int) -> EvalResult:
    """Sum loss, hits and the confusion matrix over this rank's shard, then over all ranks."""
    was_training = model.training
    model.eval()
    totals = torch.zeros(3, device=device, dtype=torch.float64)  # loss sum, hits, count
    confusion = torch.zeros(num_classes, num_classes, device=device, dtype=torch.int64)
    sample = None
    for images, labels in loader:
        images, labels = images.to(device), labels.to(device)
        logits = model(images)  # (B, num_classes)
        predictions = logits.argmax(dim=1)  # (B,)
        totals[0] += F.cross_entropy(logits, labels, reduction="sum").double()
        totals[1] += (predictions == labels).sum()
        totals[2] += labels.numel()
        confusion += torch.bincount(labels * num_classes + predictions, minlength=num_classes**2).view(
            num_classes, num_classes
        )
        if sample is None:
            sample = (images.cpu(), labels.cpu(), predictions.cpu())
    all_reduce_sum(totals)
    all_reduce_sum(confusion)
    model.train(was_training)
    loss_sum, hits, count = totals.tolist()
    return EvalResult(loss_sum / count, hits / count, confusion.cpu(), *sample)
