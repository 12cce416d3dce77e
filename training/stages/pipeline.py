"""The stages of a run in training order, each a named `Stage`: the objective it trains, how its
batches are made, and which modules learn. `training.reproduce.train` builds each in turn and runs
it in the loop of training/loop.py.

A stage is built only when its turn comes: building an objective may draw random weights, and
the stages before it have trained by then.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
from torch import nn

from engine.config import WeGenConfig
from engine.model import WeGenModel
from engine.tokenizer import WeGenTokenizer
from training.config import STAGES, TrainingPlan
from training.loop import BatchFn, HostFn
from training.stages.decoder import (
    UNetObjective,
    VAEObjective,
    make_unet_batch,
    noised_unet_batch,
    render_batch,
    vae_batch,
    vae_trainable,
)
from training.stages.error_noise import ERROR_KINDS, add_errors, load_or_build_errors
from training.stages.mllm import HostMLLMBatch, MLLMObjective, host_mllm_batch, make_mllm_batch
from training.stages.scene_pool import PoolSpec, ScenePool, load_or_build_pool, pool_indices
from training.stages.vision import VisionObjective, make_vision_batch
from training.stages.written_scenes import Writer, image_kinds


@dataclass(frozen=True)
class Run:
    """What the stages of one run share."""

    model: WeGenModel
    tokenizer: WeGenTokenizer
    config: WeGenConfig  # the config the model was built with (its sizes)
    plan: TrainingPlan
    device: torch.device
    out: Path  # the run folder


@dataclass(frozen=True)
class Stage:
    """One stage: ``objective`` trained on ``host_batch`` / ``make_batch`` (training/loop.py),
    with only ``trainable``'s parameters learning."""

    name: str
    objective: nn.Module
    host_batch: HostFn
    make_batch: BatchFn
    trainable: list[nn.Module]


def on_device(
    device: torch.device, step: int, rank: int, g: torch.Generator, host: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """A host batch moved to the training device, as it is (the stages that need no model)."""
    return {k: v.to(device) for k, v in host.items()}


def vision_stage(run: Run) -> Stage:
    """Stage 0: the vision tower, with its training heads."""
    objective = VisionObjective(run.model.vision).to(run.device)
    host = partial(
        make_vision_batch, run.config.vision.image_size, run.plan.vision.batch_size, run.plan.seed
    )
    return Stage("vision", objective, host, partial(on_device, run.device), [objective])


def vae_stage(run: Run) -> Stage:
    """Stage 1a: the autoencoder (all of it, or its decoder alone), on crops of renders."""
    config, plan = run.config, run.plan
    objective = VAEObjective(run.model.decoder.vae, edge_weight=plan.vae_edge_weight)
    trainable = vae_trainable(run.model.decoder.vae, plan.vae_decoder_only)
    size = config.decoder.image_size
    host = partial(
        vae_batch,
        size,
        max(8 * config.vae.downsample, int(size * plan.vae_crop)),
        plan.vae.batch_size,
        config.vae.latent_channels,
        config.vae.downsample,
        plan.seed,
    )
    return Stage("vae", objective, host, partial(on_device, run.device), trainable)


class _ErrorBank:
    """The run's bank of the LLM's residuals (``training/stages/error_noise.py``), made or loaded
    at the UNet stage's first step, and added to the plan's ``unet_error_noise`` share of each
    batch's conditions (none drawn when the share is 0, so such runs reproduce as before)."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.bank: torch.Tensor | None = None

    def __call__(self, features: torch.Tensor, rank: int, g: torch.Generator) -> torch.Tensor:
        run, share = self.run, self.run.plan.unet_error_noise
        if not share:
            return features
        if self.bank is None:
            writer = Writer(run.model, run.tokenizer, ERROR_KINDS)
            plan, size = run.plan, run.config.decoder.image_size
            self.bank = load_or_build_errors(
                run.out, writer, run.model.vision, plan.unet_error_bank, size, plan.seed, rank
            )
        return add_errors(features, self.bank, share, g)


class _FreshUNetBatches:
    """Stage 1b's batches from fresh renders: encoded on the training device, then noised."""

    def __init__(self, run: Run) -> None:
        self.run, self.errors = run, _ErrorBank(run)

    def __call__(
        self, step: int, rank: int, g: torch.Generator, pixels: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        model, plan = self.run.model, self.run.plan
        return make_unet_batch(
            model.decoder,
            model.vision,
            pixels,
            g,
            plan.feature_noise,
            plan.condition_dropout,
            transform=lambda features: self.errors(features, rank, g),
        )


class _PooledUNetBatches:
    """Stage 1b's batches drawn from a `ScenePool` (``plan.unet_pool`` scenes, the
    ``plan.unet_written`` share of them written by the LLM for requests of the image tasks in
    stage 2's mix): the pool is loaded or built at the stage's first step, so a finished
    stage never encodes it."""

    def __init__(self, run: Run) -> None:
        self.run, self.errors = run, _ErrorBank(run)
        self.pool: ScenePool | None = None

    def __call__(
        self, step: int, rank: int, g: torch.Generator, index: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        run, plan = self.run, self.run.plan
        if self.pool is None:
            size = run.config.decoder.image_size
            written = round(plan.unet_pool * plan.unet_written)
            spec = PoolSpec(size, plan.unet_pool, plan.unet.batch_size, plan.seed, rank, written)
            writer = None
            if written:
                weights = image_kinds(plan.mllm.task_weights or plan.sft.task_weights)
                writer = Writer(run.model, run.tokenizer, weights)
            self.pool = load_or_build_pool(
                run.out, run.model.decoder, run.model.vision, spec, writer
            )
        latents, features = self.pool.take(index)
        features = self.errors(features, rank, g)
        return noised_unet_batch(
            run.model.decoder, latents, features, g, plan.feature_noise, plan.condition_dropout
        )


def unet_stage(run: Run) -> Stage:
    """Stage 1b: the de-tokenizer's UNet, drawing renders from the tower's features (fresh
    renders every step, or scenes of a pool encoded once)."""
    objective = UNetObjective(run.model.decoder)
    plan, trainable = run.plan, [run.model.decoder.unet]
    if plan.unet_pool:
        host = partial(pool_indices, plan.unet_pool, plan.unet.batch_size, plan.seed)
        return Stage("unet", objective, host, _PooledUNetBatches(run), trainable)
    size = run.config.decoder.image_size
    host = partial(render_batch, size, plan.unet.batch_size, "unet", plan.seed)
    return Stage("unet", objective, host, _FreshUNetBatches(run), trainable)


def _mllm_batch(
    run: Run, step: int, rank: int, g: torch.Generator, host: HostMLLMBatch
) -> dict[str, torch.Tensor]:
    plan = run.plan
    decoder = run.model.decoder if plan.diffusion_weight else None
    return make_mllm_batch(
        run.model, run.tokenizer, host, g, plan.feature_noise, plan.self_feed, decoder
    )


def llm_stage(name: str, run: Run) -> Stage:
    """Stages 2 (``mllm``) and 3 (``sft``): the LLM and both projectors on chat samples, mixed
    by the stage's task weights."""
    plan, model = run.plan, run.model
    objective = MLLMObjective(
        model,
        plan.regression_weight,
        plan.self_feed_passes if plan.self_feed > 0 else 0,
        plan.lm_length_power,
        plan.diffusion_weight,
    )
    c = plan.stage(name)
    host = partial(
        host_mllm_batch,
        run.config.vision.image_size,
        run.tokenizer,
        c.batch_size,
        c.task_weights,
        name,
        plan.seed,
    )
    trainable = [model.llm, model.input_proj, model.output_proj]
    return Stage(name, objective, host, partial(_mllm_batch, run), trainable)


#: every stage in training order, by name
PIPELINE: dict[str, Callable[[Run], Stage]] = {
    "vision": vision_stage,
    "vae": vae_stage,
    "unet": unet_stage,
    "mllm": partial(llm_stage, "mllm"),
    "sft": partial(llm_stage, "sft"),
}
assert tuple(PIPELINE) == STAGES
