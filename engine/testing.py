"""Small random WeGen models for tests, benchmarks and the desktop's end-to-end checks.

Real weights cannot be downloaded in CI; these build the real architecture at the tiny preset (or
any config) with seeded random weights and a tokenizer trained on a few sentences.
"""

from __future__ import annotations

from pathlib import Path

import torch

from engine.config import WeGenConfig, wegen_tiny
from engine.folder import save_model_folder
from engine.model import WeGenModel
from engine.tokenizer import WeGenTokenizer, train_tokenizer

CORPUS = [
    "Generate a painting: a red circle at the top left on a white background.",
    "Edit the image: make the blue square larger and move it to the right.",
    "Describe the image. There are two shapes: a green triangle and a yellow star.",
    "Restore the image. Remove the noise and the blur.",
    "Paint the image in the style of the style image, with soft shading.",
    "What colour is the hexagon? How many objects are there? Where is the circle?",
    "a small purple striped hexagon in the middle, a large orange dotted star at the bottom",
    "Rewrite the request as a detailed image description: a cat on a sofa",
]


def tiny_tokenizer(vocab_size: int = 700) -> WeGenTokenizer:
    return train_tokenizer(CORPUS * 4, vocab_size)


def random_model(config: WeGenConfig | None = None, seed: int = 0) -> WeGenModel:
    torch.manual_seed(seed)
    return WeGenModel(config or wegen_tiny()).eval().requires_grad_(False)


def make_random_model_folder(
    path: str | Path, config: WeGenConfig | None = None, seed: int = 0
) -> Path:
    """Write a seeded random model folder (tiny preset by default) and return its path."""
    config = config or wegen_tiny()
    return save_model_folder(random_model(config, seed), tiny_tokenizer(), path)
