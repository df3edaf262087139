"""The worked example's model: a small CNN for 1x8x8 digit images, 10 classes."""

from torch import Tensor, nn

from models.util_modules import MLP, ConvBlock

NUM_CLASSES = 10


class DigitsCNN(nn.Module):
    """Two conv blocks, one 2x2 pool, an MLP head: ~150k parameters, >97% test accuracy."""

    def __init__(self, channels: list[int], hidden: int, dropout: float, num_classes: int = NUM_CLASSES):
        super().__init__()
        c1, c2 = channels
        self.features = nn.Sequential(
            ConvBlock(1, c1, kernel_size=3),  # (B, c1, 8, 8)
            ConvBlock(c1, c2, kernel_size=3),  # (B, c2, 8, 8)
            nn.MaxPool2d(2),  # (B, c2, 4, 4)
            nn.Flatten(),  # (B, c2 * 16)
        )
        self.head = MLP(c2 * 16, [hidden], num_classes, dropout=dropout)  # (B, num_classes)

    def forward(self, images: Tensor) -> Tensor:
        """images (B, 1, 8, 8) -> logits (B, num_classes)."""
        return self.head(self.features(images))


def build_model(model_config: dict) -> nn.Module:
    """Build the model named in the config (only `digits_cnn` ships with the template)."""
    if model_config["name"] != "digits_cnn":
        raise ValueError(f"model.name={model_config['name']!r} is unknown: use 'digits_cnn'")
    channels = model_config["channels"]
    if not (isinstance(channels, list) and len(channels) == 2):
        raise ValueError(f"model.channels={channels!r}: expected a list of two integers")
    return DigitsCNN(channels, model_config["hidden"], model_config["dropout"])
