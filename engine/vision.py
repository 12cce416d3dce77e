"""The vision encoder: the EVA tower (`engine.eva`), then an average pool of its patches to 64 tokens.

For the official model this is EVA-CLIP-E-14-plus at 448 px: 32x32 patch tokens of width 1792 from
the last block (class token dropped, no final norm), pooled 4x4 to an 8x8 grid. wegen-tiny uses the
same class at a small size. The 64 features are the visual tokens in both directions: LLM inputs
(through the input projector), regression targets, and the de-tokenizer's conditioning.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from engine.config import VisionConfig
from engine.eva import Eva
from engine.images import to_model_input
from engine.template import NUM_IMAGE_TOKENS


def conv_stem(widths: tuple[int, ...], width: int) -> nn.Sequential:
    """3x3 stride-2 convolutions (GELU after each) of ``widths``, then a 1x1 one to ``width``."""
    layers: list[nn.Module] = []
    for a, b in zip((3, *widths), widths, strict=False):
        layers += [nn.Conv2d(a, b, 3, 2, 1), nn.GELU()]
    return nn.Sequential(*layers, nn.Conv2d(widths[-1], width, 1))


def preprocess(images: list[Image.Image], size: int) -> torch.Tensor:
    """RGB images -> (B, 3, size, size) float32 pixels in [0, 1] on the CPU (every backend)."""
    arrays = [to_model_input(im.convert("RGB"), size) for im in images]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)  # (B, 3, S, S)


class VisionEncoder(nn.Module):
    def __init__(self, config: VisionConfig) -> None:
        super().__init__()
        self.config = config
        self.tower = Eva(
            image_size=config.image_size,
            patch_size=config.patch_size,
            width=config.width,
            depth=config.depth,
            num_heads=config.num_heads,
            mlp_ratio=config.mlp_ratio,
            post_norm=config.post_norm,
            eps=config.norm_eps,
        )
        if config.conv_stem:
            # same (B, width, grid, grid) output as the linear patch embedding it replaces
            self.tower.patch_embed.proj = conv_stem(config.conv_stem, config.width)
        self.register_buffer("mean", torch.tensor(config.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(config.std).view(1, 3, 1, 1), persistent=False)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """Pixels in [0, 1], (B, 3, S, S) at the configured size -> (B, 64, width) features."""
        x = (pixels - self.mean) / self.std
        tokens = self.tower(x)[:, self.tower.num_prefix_tokens :]  # (B, G*G, C)
        b, _n, c = tokens.shape
        g = self.config.grid
        grid = tokens.transpose(1, 2).reshape(b, c, g, g)  # (B, C, G, G), row-major patches
        side = int(NUM_IMAGE_TOKENS**0.5)
        pooled = F.avg_pool2d(grid, kernel_size=g // side)  # (B, C, 8, 8)
        return pooled.flatten(2).transpose(1, 2)  # (B, 64, C), row-major

    def preprocess(self, images: list[Image.Image]) -> torch.Tensor:
        """RGB images -> (B, 3, S, S) float pixels in [0, 1]: bilinear resize, aspect not kept."""
        return preprocess(images, self.config.image_size).to(self.mean.device, self.mean.dtype)

    def preprocess_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) pixels in [0, 1] -> the configured size (bilinear), on the tower's device."""
        size = self.config.image_size
        if pixels.shape[-2:] != (size, size):
            pixels = F.interpolate(pixels, size=(size, size), mode="bilinear", antialias=True)
        return pixels.to(self.mean.device, self.mean.dtype)
