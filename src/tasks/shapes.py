"""The segmentation example: synthetic circles, squares and triangles, a small UNet, mean IoU.

This file is the glue, with `config/shapes.json`: its config keys, the loss, the metrics and what
it draws. The images come from `data/shapes_generator.py` (generated from the run's seed, no
download) and the model from `models/unet.py`. To bring your own segmentation data, replace
`generate_shapes` and keep the (images, masks) layout: images (N, 3, H, W) float, masks
(N, H, W) int64 class ids.
"""

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import TensorDataset

from data.shapes_generator import CLASS_NAMES, NUM_CLASSES, generate_shapes
from models.unet import UNet
from training.task import Datasets, StepOutput, Task, TaskContext, register_task
from utils.config_fields import option
from utils.losses import CrossEntropy2d, SoftDiceLoss

SPLIT_STREAMS = {"train": 0, "val": 1, "test": 2}  # each split draws from its own seed stream
MAX_DRAWN = 8  # samples shown by `draw`
OVERLAY_ALPHA = 0.7  # strong enough to tell the class colours apart on bright shapes


@dataclass(frozen=True, kw_only=True)
class ShapesData:
    """The task's keys in the `data` section: how many images of what kind to generate."""

    SECTION: ClassVar[str] = "data"
    image_size: int = option(32, "side of the square images in pixels", ge=8)
    train_samples: int = option(4000, "images in the training split", gt=0)
    val_samples: int = option(500, "images in the validation split", gt=0)
    test_samples: int = option(500, "images in the test split", gt=0)
    max_shapes: int = option(3, "each image holds 1..max_shapes shapes; later ones cover earlier ones", ge=1)
    noise: float = option(0.1, "std of the Gaussian pixel noise (pixels lie in [0, 1])", ge=0)


@dataclass(frozen=True, kw_only=True)
class ShapesModel:
    """The task's keys in the `model` section: the UNet's widths and the loss's Dice weight."""

    SECTION: ClassVar[str] = "model"
    channels: list[int] = option(
        [16, 32, 64], "UNet widths from the top level down; each further level halves H and W",
        gt=0, check=(lambda v: len(v) >= 1, "at least one width"),
    )
    dice_weight: float = option(1.0, "weight of the soft Dice term added to the cross entropy", ge=0)


@register_task
class ShapesTask(Task):
    """Segment shapes into background/circle/square/triangle; mean IoU is exact over a split."""

    name = "shapes"
    config_sections = (ShapesData, ShapesModel)
    metrics = {"loss": "min", "miou": "max", "accuracy": "max"}

    def __init__(self, context: TaskContext) -> None:
        super().__init__(context)
        self.cross_entropy = CrossEntropy2d()
        self.dice = SoftDiceLoss(reduction="none")  # (B, K), so evaluation can sum per sample

    def build_datasets(self) -> Datasets:
        data = self.section(ShapesData)
        counts = {"train": data.train_samples, "val": data.val_samples, "test": data.test_samples}
        splits = {
            split: TensorDataset(*generate_shapes(
                count, data.image_size, data.max_shapes, data.noise, [self.context.seed, SPLIT_STREAMS[split]]
            ))
            for split, count in counts.items()
        }
        return Datasets(**splits)

    def build_model(self) -> nn.Module:
        return UNet(3, NUM_CLASSES, self.section(ShapesModel).channels)

    def train_step(self, model: nn.Module, batch: Any) -> StepOutput:
        images, masks = batch  # (B, 3, H, W), (B, H, W)
        logits = model(images)  # (B, K, H, W)
        dice = self.dice(logits, masks).mean()
        loss = self.cross_entropy(logits, masks) + self.section(ShapesModel).dice_weight * dice
        accuracy = (logits.detach().argmax(dim=1) == masks).float().mean()
        return StepOutput(loss, count=images.shape[0], metrics={"accuracy": accuracy})

    def eval_step(self, model: nn.Module, batch: Any) -> dict[str, Tensor]:
        images, masks = batch
        logits = model(images).float()  # (B, K, H, W)
        return sum_segmentation_counts(
            logits.argmax(dim=1), masks,
            cross_entropy=F.cross_entropy(logits, masks, reduction="sum"),
            dice=self.dice(logits, masks).mean(dim=1).sum(),
        )

    def summarize(self, sums: dict[str, Tensor], split: str, step: int) -> dict[str, float]:
        pixels, samples = sums["pixels"].item(), sums["samples"].item()
        dice_weight = self.section(ShapesModel).dice_weight
        present = sums["union"] > 0  # a class absent from truth and prediction has no IoU
        iou = sums["intersection"][present].double() / sums["union"][present].double()
        return {
            "loss": sums["cross_entropy"].item() / pixels + dice_weight * sums["dice"].item() / samples,
            "miou": iou.mean().item() if present.any() else 1.0,
            "accuracy": sums["correct"].item() / pixels,
        }

    @torch.no_grad()
    def predict(self, model: nn.Module, inputs: Any) -> Tensor:
        """Masks (N, H, W) of class ids for images (N, 3, H, W) with values in [0, 1]."""
        device = next(model.parameters()).device
        return model(torch.as_tensor(inputs, dtype=torch.float32).to(device)).argmax(dim=1)

    @torch.no_grad()
    def draw(self, model: nn.Module, batch: Any, sums: dict[str, Tensor], split: str, step: int) -> dict[str, Any]:
        """Up to eight samples with their true and predicted masks; the background stays unpainted."""
        from visualization.visualizations import plot_segmentation

        images, masks = batch[0][:MAX_DRAWN], batch[1][:MAX_DRAWN]
        predictions = model(images).argmax(dim=1)  # (B, H, W)
        return {"segmentation": plot_segmentation(images, masks, predictions, CLASS_NAMES, background=0,
                                                  alpha=OVERLAY_ALPHA, value_range=(0.0, 1.0))}


def sum_segmentation_counts(predictions: Tensor, masks: Tensor, **loss_sums: Tensor) -> dict[str, Tensor]:
    """Per-class intersection and union, hits and counts of one batch, plus the loss sums given."""
    classes = torch.arange(NUM_CLASSES, device=masks.device)[:, None, None, None]  # (K, 1, 1, 1)
    predicted, true = predictions[None] == classes, masks[None] == classes  # (K, B, H, W)
    return {
        "intersection": (predicted & true).sum(dim=(1, 2, 3)),  # (K,)
        "union": (predicted | true).sum(dim=(1, 2, 3)),  # (K,)
        "correct": (predictions == masks).sum(),
        "pixels": torch.tensor(masks.numel(), device=masks.device),
        "samples": torch.tensor(masks.shape[0], device=masks.device),
        **{name: value.double() for name, value in loss_sums.items()},
    }
