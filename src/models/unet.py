"""A small UNet for dense prediction: (B, C, H, W) images to (B, K, H, W) logits."""

import torch
from torch import Tensor, nn

from models.util_modules import ConvBlock


def _build_two_blocks(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(ConvBlock(in_channels, out_channels, stride=stride), ConvBlock(out_channels, out_channels))


class UNet(nn.Module):
    """(B, in_channels, H, W) -> (B, num_classes, H, W) logits; any H, W (odd sizes are fine).

    Each level is two ConvBlocks; going down, the first one has stride 2; going up, a
    transposed conv doubles the coarser map (cropped to the skip's size), which is concatenated
    with the skip and fused by two blocks. No bilinear upsampling: its CUDA backward has no
    deterministic implementation, and `deterministic: true` must keep working.
    """

    def __init__(self, in_channels: int, num_classes: int, channels: list[int]) -> None:
        super().__init__()
        widths = [in_channels, *channels]
        self.down = nn.ModuleList(
            _build_two_blocks(widths[i], widths[i + 1], stride=1 if i == 0 else 2) for i in range(len(channels))
        )
        coarse_to_fine = list(reversed(range(len(channels) - 1)))
        self.upsample = nn.ModuleList(
            nn.ConvTranspose2d(channels[i + 1], channels[i], kernel_size=2, stride=2) for i in coarse_to_fine
        )
        self.up = nn.ModuleList(_build_two_blocks(2 * channels[i], channels[i]) for i in coarse_to_fine)
        self.head = nn.Conv2d(channels[0], num_classes, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        skips = []
        for block in self.down:
            x = block(x)  # (B, C_i, ceil(H / 2^i), ceil(W / 2^i))
            skips.append(x)
        for upsample, block, skip in zip(self.upsample, self.up, reversed(skips[:-1])):
            x = upsample(x)[..., : skip.shape[-2], : skip.shape[-1]]  # odd sizes: drop the extra row/col
            x = block(torch.cat([x, skip], dim=1))  # (B, C_i, H_i, W_i)
        return self.head(x)  # (B, K, H, W)
