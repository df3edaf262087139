"""The digits example trained by a Lightning `Trainer`, as `bench_vs_lightning.py` runs it.

    PYTHONPATH=src python benchmarks/lightning_digits.py OUT_DIR [--epochs 15] [--seed 0]

What `02_train.py` does with `config/default.json` (W&B and drawings off), written the way a
Lightning user would: the same seeded split and standardisation (`data/`), the same model
(`models/digits_cnn.py`), AdamW, the per-step linear warm-up and cosine schedule, gradient
clipping, batch 64, validation every epoch, CSV and TensorBoard loggers with every step's loss
and learning rate, `last.ckpt` every epoch, the best by validation accuracy, an epoch file
every 5 epochs (2 kept), and a test of the best checkpoint at the end.
"""

import argparse
import json
import math
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from torch.utils.data import DataLoader, TensorDataset

from data.digits_images import load_digits_arrays
from data.splits import split_indices
from data.standardize import Standardizer
from models.digits_cnn import DigitsCNN

CONFIG = json.loads((Path(__file__).resolve().parents[1] / "config" / "default.json").read_text(encoding="utf-8"))


def build_splits(seed: int) -> dict[str, TensorDataset]:
    """The example's split and standardisation, as `tasks/digits.py` builds them."""
    data = CONFIG["data"]
    images, labels = load_digits_arrays()
    parts = split_indices(len(labels), data["val_fraction"], data["test_fraction"], seed)
    standardizer = Standardizer.fit(images[parts["train"]])
    normalised, targets = torch.from_numpy(standardizer.apply(images)), torch.from_numpy(labels)
    return {split: TensorDataset(normalised[index], targets[index]) for split, index in parts.items()}


class DigitsModule(L.LightningModule):
    def __init__(self, steps_per_epoch: int, epochs: int) -> None:
        super().__init__()
        model = CONFIG["model"]
        self.model = DigitsCNN(model["channels"], model["hidden"], model["dropout"])
        self.steps_per_epoch, self.epochs = steps_per_epoch, epochs

    def training_step(self, batch, index):
        images, labels = batch
        logits = self.model(images)  # (B, 10)
        loss = F.cross_entropy(logits, labels)
        accuracy = (logits.argmax(1) == labels).float().mean()
        self.log("train/loss", loss, on_step=True, on_epoch=False)
        self.log_dict({"train/epoch_loss": loss, "train/epoch_accuracy": accuracy}, on_step=False, on_epoch=True)
        return loss

    def _evaluate(self, batch, split: str) -> None:
        images, labels = batch
        logits = self.model(images)
        self.log_dict({f"{split}/loss": F.cross_entropy(logits, labels),
                       f"{split}/accuracy": (logits.argmax(1) == labels).float().mean()}, batch_size=len(labels))

    def validation_step(self, batch, index):
        self._evaluate(batch, "val")

    def test_step(self, batch, index):
        self._evaluate(batch, "test")

    def configure_optimizers(self):
        optimizer_config, scheduler_config = CONFIG["optimizer"], CONFIG["scheduler"]
        optimizer = torch.optim.AdamW(self.parameters(), lr=optimizer_config["lr"],
                                      weight_decay=optimizer_config["weight_decay"])
        warmup = scheduler_config["warmup_epochs"] * self.steps_per_epoch
        total = self.epochs * self.steps_per_epoch

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir")
    parser.add_argument("--epochs", type=int, default=CONFIG["training"]["epochs"])
    parser.add_argument("--seed", type=int, default=CONFIG["seed"])
    args = parser.parse_args()
    L.seed_everything(args.seed, verbose=False)
    splits, batch = build_splits(args.seed), CONFIG["data"]["batch_size"]
    generator = torch.Generator().manual_seed(args.seed)
    train = DataLoader(splits["train"], batch_size=batch, shuffle=True, generator=generator)
    val, test = (DataLoader(splits[name], batch_size=batch) for name in ("val", "test"))
    training = CONFIG["training"]
    checkpoints = f"{args.out_dir}/checkpoints"
    trainer = L.Trainer(
        max_epochs=args.epochs, accelerator="cpu", devices=1, gradient_clip_val=training["grad_clip"],
        logger=[CSVLogger(args.out_dir, name="logs"), TensorBoardLogger(args.out_dir, name="logs")],
        callbacks=[
            ModelCheckpoint(checkpoints, filename="best", monitor="val/accuracy", mode="max", save_last=True),
            ModelCheckpoint(checkpoints, filename="checkpoint_epoch_{epoch}", monitor="epoch", mode="max",
                            save_top_k=training["keep_checkpoints"], every_n_epochs=training["checkpoint_every"]),
            LearningRateMonitor(logging_interval="step"),
        ],
        log_every_n_steps=1, num_sanity_val_steps=0, enable_progress_bar=False, check_val_every_n_epoch=1,
    )
    module = DigitsModule(len(train), args.epochs)
    trainer.fit(module, train, val)
    (result,) = trainer.test(module, test, ckpt_path="best", verbose=False)
    print(f"test/accuracy {result['test/accuracy']:.4f}")


if __name__ == "__main__":
    main()
