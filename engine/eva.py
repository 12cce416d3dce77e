"""The EVA-CLIP vision transformer that WeGen's vision encoder wraps.

Parameter for parameter it is ``timm.models.eva.Eva`` as `engine.vision` configures it: a class
token and learnt absolute positions, no rotary embedding, attention with a bias on the query and
the value but not the key (``q_bias``, ``v_bias``), a GELU MLP, LayerNorm before (pre-norm) or
after (post-norm, EVA-CLIP-E) each branch, no final norm and no head. Its state-dict keys are
timm's, so the official checkpoint and every wegen-tiny file load into either, and
``tests/engine/test_eva.py`` checks that both compute the same features from the same weights.

Why not import timm: timm imports torchvision when it is imported, and PyPI's torchvision for
x86-64 Linux is built against CUDA; next to a CPU build of PyTorch it fails to import. So timm
would tie every CPU install (and the frozen CPU bundles of packaging/) to a multi-gigabyte CUDA
stack or to PyTorch's own package index, for the hundred lines below. timm stays the reference in
the tests.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class PatchEmbed(nn.Module):
    """(B, 3, S, S) pixels -> (B, (S/p)^2, width) patch tokens, row-major (``proj`` may be
    replaced by any module with the same (B, width, S/p, S/p) output, e.g. a conv stem)."""

    def __init__(self, patch_size: int, width: int) -> None:
        super().__init__()
        self.proj: nn.Module = nn.Conv2d(3, width, patch_size, patch_size)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.proj(pixels).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    """Multi-head self-attention; the key has no bias (a zero one, as EVA-CLIP has)."""

    def __init__(self, width: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(width, 3 * width, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(width))
        self.register_buffer("k_bias", torch.zeros(width), persistent=False)
        self.v_bias = nn.Parameter(torch.zeros(width))
        self.proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        bias = torch.cat((self.q_bias, self.k_bias, self.v_bias))
        qkv = F.linear(x, self.qkv.weight, bias).reshape(b, n, 3, self.num_heads, -1)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, heads, N, head width)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    def __init__(self, width: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(width, hidden)
        self.fc2 = nn.Linear(hidden, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    """``x + norm1(attn(x))`` (post-norm) or ``x + attn(norm1(x))`` (pre-norm), then the MLP."""

    def __init__(
        self, width: int, num_heads: int, mlp_ratio: float, post_norm: bool, eps: float
    ) -> None:
        super().__init__()
        self.post_norm = post_norm
        self.norm1 = nn.LayerNorm(width, eps=eps)
        self.attn = Attention(width, num_heads)
        self.norm2 = nn.LayerNorm(width, eps=eps)
        self.mlp = Mlp(width, int(width * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.post_norm:
            x = x + self.norm1(self.attn(x))
            return x + self.norm2(self.mlp(x))
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class Eva(nn.Module):
    num_prefix_tokens = 1  # the class token

    def __init__(
        self,
        image_size: int,
        patch_size: int,
        width: int,
        depth: int,
        num_heads: int,
        mlp_ratio: float,
        post_norm: bool,
        eps: float,
    ) -> None:
        super().__init__()
        self.patch_embed = PatchEmbed(patch_size, width)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, width))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + (image_size // patch_size) ** 2, width))
        self.blocks = nn.ModuleList(
            Block(width, num_heads, mlp_ratio, post_norm, eps) for _ in range(depth)
        )
        self.init_weights()

    def init_weights(self) -> None:
        """timm's initialisation: truncated normal (std 0.02) for linear weights and the
        embeddings, zero biases, and the residual outputs scaled down by sqrt(2 * depth)."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        with torch.no_grad():
            for i, block in enumerate(self.blocks):
                block.attn.proj.weight.div_(math.sqrt(2.0 * (i + 1)))
                block.mlp.fc2.weight.div_(math.sqrt(2.0 * (i + 1)))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """Normalised pixels (B, 3, S, S) -> (B, 1 + patches, width): the class token, then the
        patch tokens row-major, as the last block leaves them."""
        x = self.patch_embed(pixels)
        x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return x
