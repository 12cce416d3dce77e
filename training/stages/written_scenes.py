"""Scenes as the LLM writes them: pool scenes whose UNet condition is what the LLM generates.

At inference the de-tokenizer never reads the tower's features: it reads the 64 features the
LLM's token loop writes, and those drift from the tower's (free-running relative error about
three times the teacher-forced one, `training.checks.generation`). A UNet trained only on the
tower's features plus isotropic noise (the plan's ``feature_noise``) draws true features far
better than written ones, so the drawn ceilings of `training.checks.decoder` sit well above
what `wegen-eval` measures end to end.

This module makes the other kind of pool scene (the plan's ``unet_written`` share of
``unet_pool``): a training request of a task that answers with an image (text-to-image, brief,
edit, DIIC, subject, condition, restoration, style; ``IMAGE_KINDS``) is run through the engine's
token loop as the app runs it (greedy text, no guidance), and its written features are paired
with the latents of the image the request asks for. The UNet then learns to draw the intended
image from what the LLM actually writes, the way a speech vocoder is fine-tuned on the acoustic
model's predicted spectrograms rather than on true ones. The LLM and the tower stay frozen.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from engine.decoder import Detokenizer
from engine.generate import LoopOptions, Prompt, generate
from engine.model import WeGenModel
from engine.prompt import TOKENS_PER_IMAGE, encode_conversation
from engine.tokenizer import WeGenTokenizer
from training.data.samples import SAMPLE_KINDS, Sample
from training.data.tasks import sample_mix
from training.stages.vision import pixels_of

#: the sample kinds whose last turn is the assistant's image (the pool's requests): all but the
#: ones answered in text (a question, a caption, a PSR rewrite)
IMAGE_KINDS: tuple[str, ...] = tuple(k for k in SAMPLE_KINDS if k not in ("vqa", "caption", "psr"))

#: text a reply may hold before its image (the loop must open one)
MAX_TEXT = 32


def image_kinds(weights: Sequence[tuple[str, float]]) -> tuple[tuple[str, float], ...]:
    """The image-answering kinds of a stage's task ``weights``, with their weights."""
    kept = tuple((kind, w) for kind, w in weights if kind in IMAGE_KINDS and w > 0)
    if not kept:
        raise ValueError(
            f"no task that answers with an image among {[k for k, _ in weights]}; "
            f"written scenes need one of {', '.join(IMAGE_KINDS)}"
        )
    return kept


@dataclass(frozen=True)
class Writer:
    """The frozen LLM that writes the pool's features, and the requests it is given: samples of
    ``weights``' kinds (all of them in ``IMAGE_KINDS``)."""

    model: WeGenModel
    tokenizer: WeGenTokenizer
    weights: tuple[tuple[str, float], ...]

    def __post_init__(self) -> None:
        if image_kinds(self.weights) != self.weights:
            raise ValueError(f"a writer's kinds must all answer with an image: {self.weights}")

    def modules(self) -> list[nn.Module]:
        """What makes the written features besides the tower (for a pool's fingerprint)."""
        return [self.model.llm, self.model.input_proj, self.model.output_proj]


@torch.no_grad()
def written_features(
    model: WeGenModel,
    tok: WeGenTokenizer,
    samples: Sequence[Sample],
    seeds: Sequence[int],
    *,
    embedding_cfg: float = 1.0,
    batch: int = 16,
) -> torch.Tensor:
    """(N, 64, F) float32 on the CPU: the first image the engine's token loop writes (greedy
    text) for each rendered sample's conversation up to its last turn; the images before it are
    read by the tower, as the app reads attached and earlier images."""
    if len(seeds) != len(samples):
        raise ValueError(f"{len(seeds)} seeds for {len(samples)} samples")
    opts = LoopOptions(
        max_new_tokens=MAX_TEXT,
        embedding_cfg=embedding_cfg,
        wants_image=True,
        alignment=model.config.decoder.feature_alignment,
    )
    vision, device = model.vision, model.device
    out = []
    for i in range(0, len(samples), batch):
        prompts = []
        for sample in samples[i : i + batch]:
            encoded = encode_conversation(
                tok,
                list(sample.turns[:-1]),
                max_tokens=model.config.llm.max_positions,
                reserve=MAX_TEXT + TOKENS_PER_IMAGE + 1,
            )
            feats = None
            if encoded.image_indices:
                if not sample.images:
                    raise ValueError("a request with images must be rendered first")
                pixels = pixels_of([sample.images[j] for j in encoded.image_indices])
                feats = vision(vision.preprocess_pixels(pixels.to(device))).flatten(0, 1)
            prompts.append(Prompt(encoded.ids, encoded.image_mask, feats))
        replies = generate(model, tok, prompts, opts, list(seeds[i : i + batch]))
        out += [reply.images[0].float().cpu() for reply in replies]
    return torch.stack(out)


def written_requests(
    weights: Sequence[tuple[str, float]], n: int, size: int, seed: int, chunk: int, rank: int
) -> list[Sample]:
    """Chunk ``chunk``'s ``n`` training requests of ``weights``' kinds, rendered at ``size``."""
    return sample_mix(random.Random(f"unet-written/{seed}/{chunk}/{rank}"), weights, n, size)


@torch.no_grad()
def written_chunk(
    writer: Writer, decoder: Detokenizer, size: int, n: int, seed: int, chunk: int, rank: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The scaled latents of each request's asked-for image and the features the LLM writes for
    the request: ``n`` scenes of the pool, float32 on the UNet's device."""
    samples = written_requests(writer.weights, n, size, seed, chunk, rank)
    device = next(decoder.unet.parameters()).device
    latents = decoder.encode_pixels(pixels_of([s.images[-1] for s in samples]).to(device))
    seeds = [(seed * 100_003 + chunk * n + i) % 2**31 for i in range(n)]  # text is greedy
    feats = written_features(writer.model, writer.tokenizer, samples, seeds, batch=n)
    return latents.float(), feats.to(device)
