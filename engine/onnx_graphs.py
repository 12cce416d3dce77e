"""The graphs of an ONNX model folder: one small wrapper module per graph, with example inputs.

Each wrapper calls the PyTorch model's own code (nothing is re-implemented for export), so the
exported graph computes exactly what the eager backend does:

    vision        pixels (B, 3, S, S) in [0, 1]          -> features (B, 64, C)
    embed_tokens  input_ids (B, T)                       -> embeds (B, T, D)
    input_proj    features (N, F)                        -> embeds (N, D)
    feedback      hidden (N, D)                          -> feature (N, F), next_embed (N, D)
    llm_prefill   inputs_embeds (B, T, D), attention_mask (B, T), position_ids (B, T)
                                                         -> hidden (B, D), logits (B, V),
                                                            present.{i}.key/value (B, H, T, hd)
    llm_decode    inputs_embeds (B, 1, D), attention_mask (B, P+1), position_ids (B, 1),
                  past.{i}.key/value (B, H, P, hd)      -> hidden, logits, present (B, H, P+1, hd)
    unet          latents, timesteps, features, time_ids -> noise (the SDXL conditioning and the
                                                            tiny preset's spatial context inside)
    vae_decoder   latents (scaled)                       -> pixels in [0, 1]
    vae_encoder   pixels in [0, 1]                       -> latents (scaled, the mean)

hidden and logits are the last position's. The KV cache is explicit: the decode graph takes the
cache as inputs and returns the extended cache, built inside as the transformers cache the eager
backend uses.

Every dynamic dimension gets an example of size >= 2: the exporter specialises a dimension whose
example is 1 to the constant 1, and batch 2 (classifier-free guidance) then fails at run time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.export import Dim
from transformers import DynamicCache

from engine.model import WeGenModel
from engine.template import NUM_IMAGE_TOKENS


@dataclass(frozen=True)
class GraphSpec:
    """How to export one graph: its wrapper, example inputs and the dynamic dimensions."""

    name: str
    module: nn.Module
    inputs: tuple[torch.Tensor, ...]
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    dynamic_shapes: tuple[Any, ...]

    @property
    def file(self) -> str:
        return f"{self.name}.onnx"


def kv_names(prefix: str, layers: int) -> tuple[str, ...]:
    """``prefix.0.key, prefix.0.value, prefix.1.key, ...``: the cache's graph inputs/outputs."""
    return tuple(f"{prefix}.{i}.{kind}" for i in range(layers) for kind in ("key", "value"))


class _LLMStep(nn.Module):
    """The LLM over inputs_embeds with an explicit KV cache (none for the prefill)."""

    def __init__(self, model: WeGenModel) -> None:
        super().__init__()
        self.model = model

    def forward(
        self,
        inputs_embeds: torch.Tensor,
        attention_mask: torch.Tensor,
        position_ids: torch.Tensor,
        *past: torch.Tensor,
    ) -> tuple[torch.Tensor, ...]:
        cache = self.model.new_cache()
        for i in range(len(past) // 2):
            cache.update(past[2 * i], past[2 * i + 1], i)
        hidden, logits = self.model(
            inputs_embeds, attention_mask, position_ids, cache=cache, last_only=True
        )
        return hidden[:, -1], logits[:, -1], *_cache_tensors(cache)


def _cache_tensors(cache: DynamicCache) -> list[torch.Tensor]:
    out = []
    for layer in cache.layers:
        out += [layer.keys, layer.values]
    return out


class _Call(nn.Module):
    """Exports ``fn`` (a one-tensor method of ``owner``) as a graph; ``owner`` holds the weights."""

    def __init__(self, owner: nn.Module, fn: Callable[[torch.Tensor], Any]) -> None:
        super().__init__()
        self.owner, self.fn = owner, fn

    def forward(self, x: torch.Tensor) -> Any:
        return self.fn(x)


class _EncodePixels(nn.Module):
    def __init__(self, model: WeGenModel) -> None:
        super().__init__()
        self.decoder = model.decoder

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.decoder.encode_pixels(pixels)  # the mean, scaled


def graph_specs(model: WeGenModel, dtype: torch.dtype = torch.float32) -> list[GraphSpec]:
    """Every graph of ``model`` (already in ``dtype``; the VAE may stay float32)."""
    cfg = model.config
    llm = cfg.llm
    d, f = llm.hidden_size, cfg.feature_dim
    heads, head_dim = llm.num_kv_heads, llm.hidden_size // llm.num_heads
    layers = llm.num_layers
    vae_dtype = next(model.decoder.vae.parameters()).dtype
    c, h = cfg.vae.latent_channels, cfg.latent_size
    # the UNet halves the latent (levels - 1) times; the VAE divides the pixels by its downsample
    unet_multiple = 2 ** (len(cfg.unet.block_out_channels) - 1)
    down = cfg.vae.downsample
    max_latent = cfg.decoder.image_size * 2 // down  # the engine allows up to twice the size

    batch = Dim("batch", min=1, max=1024)
    seq = Dim("sequence", min=1, max=llm.max_positions)
    past = Dim("past", min=1, max=llm.max_positions - 1)
    rows = Dim("rows", min=1, max=llm.max_positions * 64)
    latent = unet_multiple * Dim("latent_cells", min=1, max=max(2, max_latent // unet_multiple))
    vae_latent = Dim("vae_latent", min=1, max=max(2, max_latent))
    pixels = down * Dim("pixel_cells", min=1, max=max(2, max_latent))

    b, t, p, n = 2, 3, 3, 2  # examples of the dynamic sizes: all >= 2
    s = cfg.vision.image_size
    kv = tuple(torch.zeros(b, heads, p, head_dim, dtype=dtype) for _ in range(2 * layers))
    step = _LLMStep(model)
    return [
        GraphSpec(
            "vision",
            model.vision,
            (torch.rand(b, 3, s, s, dtype=dtype),),
            ("pixels",),
            ("features",),
            ({0: batch},),
        ),
        GraphSpec(
            "embed_tokens",
            _Call(model, model.embed_tokens),
            (torch.arange(b * t).view(b, t) % llm.vocab_size,),
            ("input_ids",),
            ("embeds",),
            ({0: batch, 1: seq},),
        ),
        GraphSpec(
            "input_proj",
            model.input_proj,
            (torch.randn(n, f, dtype=dtype),),
            ("features",),
            ("embeds",),
            ({0: rows},),
        ),
        GraphSpec(
            "feedback",
            _Call(model, model.features_to_embeds),
            (torch.randn(n, d, dtype=dtype),),
            ("hidden",),
            ("feature", "next_embed"),
            ({0: rows},),
        ),
        GraphSpec(
            "llm_prefill",
            step,
            (
                torch.randn(b, t, d, dtype=dtype),
                torch.ones(b, t, dtype=torch.long),
                torch.arange(t).expand(b, t).contiguous(),
            ),
            ("inputs_embeds", "attention_mask", "position_ids"),
            ("hidden", "logits", *kv_names("present", layers)),
            ({0: batch, 1: seq}, {0: batch, 1: seq}, {0: batch, 1: seq}),
        ),
        GraphSpec(
            "llm_decode",
            step,
            (
                torch.randn(b, 1, d, dtype=dtype),
                torch.ones(b, p + 1, dtype=torch.long),
                torch.full((b, 1), p),
                *kv,
            ),
            ("inputs_embeds", "attention_mask", "position_ids", *kv_names("past", layers)),
            ("hidden", "logits", *kv_names("present", layers)),
            (
                {0: batch},
                {0: batch, 1: past + 1},
                {0: batch},
                tuple({0: batch, 2: past} for _ in kv),
            ),
        ),
        GraphSpec(
            "unet",
            model.decoder,
            (
                torch.randn(b, c, h, h, dtype=dtype),
                torch.tensor([500.0, 250.0]),
                torch.randn(b, NUM_IMAGE_TOKENS, f, dtype=dtype),
                torch.zeros(b, 6, dtype=dtype),
            ),
            ("latents", "timesteps", "features", "time_ids"),
            ("noise",),
            ({0: batch, 2: latent, 3: latent}, {0: batch}, {0: batch}, {0: batch}),
        ),
        GraphSpec(
            "vae_decoder",
            _Call(model.decoder, model.decoder.vae_decode),
            (torch.randn(b, c, h, h, dtype=vae_dtype),),
            ("latents",),
            ("pixels",),
            ({0: batch, 2: vae_latent, 3: vae_latent},),
        ),
        GraphSpec(
            "vae_encoder",
            _EncodePixels(model),
            (torch.rand(b, 3, h * down, h * down, dtype=vae_dtype),),
            ("pixels",),
            ("latents",),
            ({0: batch, 2: pixels, 3: pixels},),
        ),
    ]
