"""The LLM's own error as the UNet's condition noise (the plan's ``unet_error_noise``).

The UNet learns from the tower's features plus isotropic noise (the plan's ``feature_noise``,
0.1 a dimension: about 1.4 a token at wegen-tiny's 192 dimensions), but at inference it reads what
the LLM writes, which for a caption request is about 4.7 a token away from the tower's features
of the image asked for (tokens of norm 11.7; `training.checks.generation`). The error is not
isotropic either: it shrinks the features towards an average and falls on the dimensions and
tokens the LLM finds hard.

So a bank of residuals is made once: for the plan's ``unet_error_bank`` text-to-image requests of the training
distribution (captions of one or two objects, which fix what the judge reads of their image) the engine's token loop
writes the 64 features as the app does, and the residual is those minus the tower's features of
the render the caption describes. With ``unet_error_noise = S``, that share of a UNet batch's
conditions also carries one residual from the bank, drawn at random: the UNet learns to draw a
scene from its true features moved the way the LLM moves features, so it learns which of their
directions to trust. Unlike the written scenes of `training/stages/written_scenes.py`, the target
stays the image the features were read from, so nothing the request leaves open is averaged.

The bank is saved beside the scene pool (``OUT/unet/errors-RANK.safetensors``) under a
fingerprint of the tower and the LLM that made it: after an LLM run it is made again. It needs
an LLM that has learnt to write images (stages 2 and 3 done, as in a continued UNet run).
"""

from __future__ import annotations

import random
from pathlib import Path

import torch

from engine.vision import VisionEncoder
from training.checksum import checksum
from training.data.samples import Sample
from training.data.tasks import plan_sample
from training.stages.scene_pool import load_or_build
from training.stages.vision import target_features
from training.stages.written_scenes import Writer, written_features

#: the requests whose written features the residuals come from: captions fix their image
ERROR_KINDS: tuple[tuple[str, float], ...] = (("t2i", 1.0),)

#: captions of at most this many objects: the LLM writes scenes of three or four objects so far
#: off (a token's error above its norm) that their residual would replace a condition, not move it
MAX_OBJECTS = 2


def errors_path(out: Path, rank: int) -> Path:
    return out / "unet" / f"errors-{rank}.safetensors"


def error_requests(n: int, size: int, seed: int, rank: int = 0) -> list[Sample]:
    """The bank's ``n`` training caption requests of at most ``MAX_OBJECTS`` objects, rendered
    at ``size``, for the run's ``seed`` and process ``rank``."""
    if n < 1:
        raise ValueError(f"an error bank needs at least one request, got {n}")
    rng = random.Random(f"unet-errors/{seed}/{rank}")
    samples: list[Sample] = []
    while len(samples) < n:
        sample = plan_sample("t2i", rng)
        if len(sample.target_scenes[-1].objects) <= MAX_OBJECTS:
            samples.append(sample.rendered(size))
    return samples


@torch.no_grad()
def error_residuals(
    writer: Writer, vision: VisionEncoder, n: int, size: int, seed: int, rank: int = 0
) -> torch.Tensor:
    """(n, 64, F) float32 on the CPU: what the LLM writes for the ``error_requests`` minus the
    tower's features of the render each describes."""
    samples = error_requests(n, size, seed, rank)
    seeds = [(seed * 100_003 + i) % 2**31 for i in range(n)]
    written = written_features(writer.model, writer.tokenizer, samples, seeds)
    return written - target_features(vision, samples)


def load_or_build_errors(
    out: Path,
    writer: Writer,
    vision: VisionEncoder,
    count: int,
    size: int,
    seed: int,
    rank: int = 0,
) -> torch.Tensor:
    """The run's error bank (``count`` residuals, float32 on the tower's device, saved in
    float16): loaded when the same tower, LLM and requests made it, else made now and saved."""
    fingerprint = checksum(vision, *writer.modules(), extra=f"{count}/{size}/{seed}/{rank}")
    device = next(vision.parameters()).device

    def build() -> dict[str, torch.Tensor]:
        # stored as the scene pool is, in float16: a run reads the same bank whether it made
        # it or loaded it
        return {"residuals": error_residuals(writer, vision, count, size, seed, rank).half()}

    bank = load_or_build(errors_path(out, rank), fingerprint, build, str(device))
    return bank["residuals"].float()


def add_errors(
    features: torch.Tensor, bank: torch.Tensor, share: float, generator: torch.Generator
) -> torch.Tensor:
    """``features`` (B, 64, F) with a residual of ``bank`` drawn from ``generator`` added to
    each row with probability ``share`` (the others unchanged)."""
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"the share of conditions given the LLM's error is 0 to 1, got {share}")
    rows = features.shape[0]
    chosen = torch.rand(rows, generator=generator) < share
    pick = torch.randint(0, bank.shape[0], (rows,), generator=generator)
    noise = bank[pick.to(bank.device)].to(features.device)
    return features + chosen.to(features.device)[:, None, None] * noise
