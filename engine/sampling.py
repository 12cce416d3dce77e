"""Choosing the next text token: greedy, temperature, nucleus (top-p)."""

from __future__ import annotations

import torch


def sample_token(
    logits: torch.Tensor, temperature: float, top_p: float, generator: torch.Generator | None = None
) -> int:
    """logits (V,) -> a token id. ``temperature`` 0 is greedy (argmax).

    Sampling runs in float32 on the CPU with ``generator``, so a seed gives the same tokens on any
    device and in any batch.
    """
    if temperature <= 0:
        return int(torch.argmax(logits))
    if not 0 < top_p <= 1:
        raise ValueError("top_p must be in (0, 1]")
    logits = logits.float().cpu() / temperature
    probs = torch.softmax(logits, dim=-1)
    if top_p < 1:
        sorted_probs, order = torch.sort(probs, descending=True)
        cumulative = torch.cumsum(sorted_probs, dim=-1)
        keep = cumulative - sorted_probs < top_p  # the smallest set whose mass reaches top_p
        sorted_probs = torch.where(keep, sorted_probs, torch.zeros_like(sorted_probs))
        probs = torch.zeros_like(probs).scatter(0, order, sorted_probs)
    return int(torch.multinomial(probs, 1, generator=generator))
