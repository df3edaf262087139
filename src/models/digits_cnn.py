"""The digits example's classifier: a small CNN for 8x8 grey images."""

from torch import Tensor, nn

from models.util_modules import MLP, ConvBlock


class DigitsCNN(nn.Module):
    """Two conv blocks, one 2x2 pool, an MLP head: ~150k parameters, >97% test accuracy."""

    def __init__(self, channels: list[int], hidden: int, dropout: float, num_classes: int = 10) -> None:
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
