"""The WeGen model: Llama + vision encoder + the two projectors + the de-tokenizer.

Parameter names (our folder format):
    llm.*            transformers LlamaForCausalLM
    vision.tower.*   EVA (engine.eva, timm's keys)
    input_proj.*     Linear(feature_dim -> hidden), no bias: visual features into the LLM
    output_proj.*    Linear(hidden -> feature_dim), no bias: LLM hidden states back to features
    decoder.unet.*   diffusers UNet2DConditionModel (SDXL layout, cross-attention on features)
    decoder.vae.*    diffusers AutoencoderKL
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from transformers import DynamicCache, LlamaConfig, LlamaForCausalLM, StaticCache

from engine.config import LLMConfig, WeGenConfig
from engine.decoder import Detokenizer
from engine.vision import VisionEncoder


def llama_config(config: LLMConfig) -> LlamaConfig:
    return LlamaConfig(
        vocab_size=config.vocab_size,
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_layers,
        num_attention_heads=config.num_heads,
        num_key_value_heads=config.num_kv_heads,
        max_position_embeddings=config.max_positions,
        rms_norm_eps=config.rms_norm_eps,
        rope_parameters={"rope_type": "default", "rope_theta": config.rope_theta},
        tie_word_embeddings=False,
        bos_token_id=None,
        eos_token_id=None,
        pad_token_id=None,
    )


def fill_image_slots(
    embeds: torch.Tensor,
    image_features: torch.Tensor | None,
    image_mask: torch.Tensor | None,
    project: Callable[[torch.Tensor], torch.Tensor],
) -> torch.Tensor:
    """``embeds`` (B, T, D) with the positions ``image_mask`` marks replaced, in order, by
    ``project(image_features)`` (N, D): the one embedding rule of every backend."""
    if image_mask is None or image_features is None or not image_mask.any():
        return embeds
    return embeds.masked_scatter(image_mask.unsqueeze(-1), project(image_features))


class WeGenModel(nn.Module):
    def __init__(self, config: WeGenConfig) -> None:
        super().__init__()
        self.config = config
        self.llm = LlamaForCausalLM(llama_config(config.llm))
        self.vision = VisionEncoder(config.vision)
        self.input_proj = nn.Linear(config.feature_dim, config.llm.hidden_size, bias=False)
        self.output_proj = nn.Linear(config.llm.hidden_size, config.feature_dim, bias=False)
        self.decoder = Detokenizer(config)

    @property
    def device(self) -> torch.device:
        """Where the loop's tensors live."""
        return self.input_proj.weight.device

    def new_cache(self) -> DynamicCache:
        """An empty KV cache for `forward` (the ONNX backend supplies its own kind)."""
        return DynamicCache(config=self.llm.config)

    def new_static_cache(self, batch: int, length: int) -> StaticCache:
        """An empty preallocated KV cache of ``length`` slots for ``batch`` rows (every row writes
        the same slot each call): what a compiled, graph-captured decode step needs.

        The last one is kept and handed out again, zeroed in place, when the next turn asks for
        the same shape: a captured graph is bound to its cache's addresses, so a new cache every
        turn would capture (and compile) again every turn."""
        key = (batch, length, self.device, self.input_proj.weight.dtype)
        kept = getattr(self, "_static_cache", None)
        if kept is not None and kept[0] == key:
            kept[1].reset()
            return kept[1]
        # the cache allocates its tensors at the first call, from the keys' shape and device
        cache = StaticCache(config=self.llm.config, max_cache_len=length)
        self._static_cache = (key, cache)
        return cache

    def embed_tokens(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Token embeddings: input_ids (...) -> (..., D)."""
        return self.llm.get_input_embeddings()(input_ids)

    def embed(
        self,
        input_ids: torch.Tensor,
        image_features: torch.Tensor | None = None,
        image_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Token embeddings with the image slots replaced by projected features.

        input_ids (B, T); image_mask (B, T) bool marking the image-slot positions;
        image_features (N, F) in order of the True entries of image_mask (row-major).
        """
        embeds = self.embed_tokens(input_ids)  # (B, T, D)
        return fill_image_slots(
            embeds, image_features, image_mask, lambda f: self.input_proj(f.to(embeds.dtype))
        )

    def forward(
        self,
        inputs_embeds: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        cache: object | None = None,
        last_only: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """inputs_embeds (B, T, D) -> hidden states after the final norm (B, T, D) and logits.

        With ``last_only`` only the last position's logits are computed, (B, 1, V); otherwise
        (B, T, V). ``cache`` is a transformers Cache, extended in place.
        """
        out = self.llm.model(
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,
            use_cache=cache is not None,
        )
        hidden = out.last_hidden_state
        logits = self.llm.lm_head(hidden[:, -1:] if last_only else hidden)
        return hidden, logits

    def features_to_embeds(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The continuous feedback: hidden (..., D) -> feature (..., F) and next input (..., D)."""
        feature = self.output_proj(hidden)
        return feature, self.input_proj(feature)

    def parameter_counts(self) -> dict[str, int]:
        def count(module: nn.Module) -> int:
            return sum(p.numel() for p in module.parameters())

        return {
            "llm": count(self.llm),
            "vision": count(self.vision),
            "projectors": count(self.input_proj) + count(self.output_proj),
            "unet": count(self.decoder.unet),
            "vae": count(self.decoder.vae),
        }
