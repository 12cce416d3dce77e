"""Stage 1: the de-tokenizer — an autoencoder for pixels, then the UNet that draws from 64 features.

VAE: trained from scratch on renders (L1 + MSE reconstruction, a small KL; optionally L1 on
image gradients, the plan's ``vae_edge_weight``). Its latent scale is then measured and written
into the config (``vae.scaling_factor`` = 1 / latent std), as SDXL's 0.13025 was measured for its
VAE.

UNet: the official stage-1 recipe at small size — DDPM noising with the SDXL-base schedule,
uniform timesteps, min-SNR weighting (gamma 5), all-zero time_ids; the UNet predicts what the
config's ``scheduler.prediction_type`` says: ``epsilon`` as SDXL, or ``v_prediction``, whose
targets stay informative at high noise, where an epsilon-predicting UNet that has seen little
data draws the layout poorly (the de-tokenizer must place every object from the features alone
there); the conditioning is the frozen vision tower's 64 features of the same image (the mean as
pooled embedding, and the 8x8 grid with ``unet.spatial_context``, as in engine/decoder.py). Two additions for a model whose features will come from a
regressing LLM: small Gaussian noise on the features, and condition dropout to all-zero features
(the CFG negative) for classifier-free guidance.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, DDPMScheduler
from torch import nn

from engine.decoder import Detokenizer
from engine.vision import VisionEncoder
from training.data.degrade import degrade, sample_degradations
from training.data.render import render_scene
from training.data.splits import sample_scene
from training.loop import stage_generator
from training.stages.vision import pixels_of

MIN_SNR_GAMMA = 5.0


def render_batch(
    size: int, batch_size: int, tag: str, seed: int, step: int, rank: int, degraded: float = 0.0
) -> torch.Tensor:
    """Clean renders of random training scenes (a fraction degraded), (B, 3, S, S) in [0, 1]."""
    rng = random.Random(f"{tag}/{seed}/{step}/{rank}")
    images = []
    for _ in range(batch_size):
        image = render_scene(sample_scene(rng, "train"), size)
        if rng.random() < degraded:
            image = degrade(image, sample_degradations(rng))
        images.append(image)
    return pixels_of(images)


def vae_batch(
    size: int,
    crop: int,
    batch_size: int,
    channels: int,
    down: int,
    seed: int,
    step: int,
    rank: int,
) -> dict[str, torch.Tensor]:
    """Stage 1a's host batch: random ``crop``-pixel crops of renders (the autoencoder is
    convolutional: smaller crops, cheaper steps) and the posterior noise."""
    g = stage_generator(seed, "vae/host", step, rank)
    pixels = render_batch(size, batch_size, "vae", seed, step, rank, degraded=0.2)
    y, x = (int(v) for v in torch.randint(0, size - crop + 1, (2,), generator=g))
    pixels = pixels[..., y : y + crop, x : x + crop]
    return {
        "pixels": pixels,
        "noise": torch.randn((batch_size, channels, crop // down, crop // down), generator=g),
    }


def image_gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Differences between horizontal and between vertical neighbours, (B, C, H, W-1) and
    (B, C, H-1, W)."""
    return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]


def _weighted_mean(error: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """The mean of ``error`` (B, C, H, W), each pixel counted ``weight`` (B, 1, H, W) times."""
    if weight is None:
        return error.mean()
    return (error * weight).sum() / (weight.sum() * error.shape[1])


def _pair_weights(weight: torch.Tensor | None) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """The weights of `image_gradients`' differences: the larger of the two neighbours', so an
    object's rim counts as the object does."""
    if weight is None:
        return None, None
    return (
        torch.maximum(weight[..., :, 1:], weight[..., :, :-1]),
        torch.maximum(weight[..., 1:, :], weight[..., :-1, :]),
    )


class VAEObjective(nn.Module):
    """L1 + MSE reconstruction and a small KL; with ``edge_weight``, also L1 between the image
    gradients of the reconstruction and the input. Pixel losses alone are lowest for a blurred
    answer where the decoder is unsure; the gradient term makes it pay for soft edges and washed
    out stripes and dots. A batch may carry ``weight`` (B, 1, H, W), how much each pixel counts in
    the pixel and gradient losses: small objects on a smooth background are a few percent of the
    pixels, so an unweighted loss spends the autoencoder on the background."""

    def __init__(
        self,
        vae: AutoencoderKL,
        kl_weight: float = 1e-6,
        edge_weight: float = 0.0,
        sample_posterior: bool = True,
    ):
        super().__init__()
        self.vae, self.kl_weight, self.edge_weight = vae, kl_weight, edge_weight
        # False: decode the posterior mean, a plain autoencoder (how a fresh VAE starts best)
        self.sample_posterior = sample_posterior

    def forward(
        self, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        x = batch["pixels"] * 2 - 1
        posterior = self.vae.encode(x).latent_dist
        z = posterior.mean
        if self.sample_posterior:
            z = z + posterior.std * batch["noise"]
        recon = self.vae.decode(z).sample
        weight = batch.get("weight")
        l1 = _weighted_mean((recon - x).abs(), weight)
        mse = _weighted_mean((recon - x).square(), weight)
        kl = posterior.kl().mean() / x[0].numel()
        loss = l1 + mse + self.kl_weight * kl * x[0].numel()
        logs = {"l1": l1, "mse": mse, "kl": kl}
        if self.edge_weight:
            pairs = zip(
                image_gradients(recon), image_gradients(x), _pair_weights(weight), strict=True
            )
            edge = sum(_weighted_mean((a - b).abs(), w) for a, b, w in pairs) / 2
            loss = loss + self.edge_weight * edge
            logs["edge"] = edge
        return loss, logs


def vae_trainable(vae: AutoencoderKL, decoder_only: bool) -> list[nn.Module]:
    """The autoencoder's modules stage 1a trains: all of it, or only the way back to pixels
    (a decoder sharpened under a frozen encoder keeps the latents a trained UNet draws)."""
    return [vae.post_quant_conv, vae.decoder] if decoder_only else [vae]


@torch.no_grad()
def latent_scale(vae: AutoencoderKL, pixels: torch.Tensor) -> float:
    """1 / std of the latents of ``pixels``: the scaling that gives unit-variance latents."""
    latents = vae.encode(pixels.to(next(vae.parameters()).dtype) * 2 - 1).latent_dist.mean
    return float(1.0 / latents.float().std())


class UNetObjective(nn.Module):
    """Diffusion loss of the de-tokenizer's UNet (the only trainable part here)."""

    def __init__(self, decoder: Detokenizer) -> None:
        super().__init__()
        self.unet = decoder.unet
        self._decoder = [decoder]  # for forward(): not registered, so DDP sees only the UNet
        # the noise schedule the engine samples with, as DDPM noising
        self.noise_schedule = DDPMScheduler.from_config(decoder.make_scheduler().config)
        alphas = self.noise_schedule.alphas_cumprod
        self.register_buffer("snr", alphas / (1 - alphas), persistent=False)

    def forward(
        self, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        decoder = self._decoder[0]
        latents, features, t, noise = (
            batch["latents"],
            batch["features"],
            batch["timesteps"],
            batch["noise"],
        )
        noisy = self.noise_schedule.add_noise(latents, noise, t)
        time_ids = decoder.time_ids(latents.shape[0], decoder.config.decoder.image_size)
        pred = decoder(noisy, t, features, time_ids)
        snr = self.snr[t]
        # min-SNR-gamma weighting, written for what the UNet predicts
        if self.noise_schedule.config.prediction_type == "v_prediction":
            target = self.noise_schedule.get_velocity(latents, noise, t)
            weight = torch.clamp(snr, max=MIN_SNR_GAMMA) / (snr + 1)
        else:
            target = noise
            weight = torch.clamp(snr, max=MIN_SNR_GAMMA) / snr
        per_item = F.mse_loss(pred.float(), target, reduction="none").mean(dim=(1, 2, 3))
        loss = (weight * per_item).mean()
        return loss, {"mse": per_item.mean()}


CONV_IN = "decoder.unet.conv_in.weight"


def widen_unet_input(state: dict[str, torch.Tensor], in_channels: int) -> dict[str, torch.Tensor]:
    """A model state whose UNet reads fewer input channels than ``in_channels`` (a run moved to
    ``unet.spatial_context``) with the new input channels' weights at zero: the widened UNet
    computes what the old one did, and training then learns to read the new channels."""
    weight = state.get(CONV_IN)
    if weight is None or weight.shape[1] >= in_channels:
        return state
    extra = weight.new_zeros(weight.shape[0], in_channels - weight.shape[1], *weight.shape[2:])
    return {**state, CONV_IN: torch.cat([weight, extra], dim=1)}


@torch.no_grad()
def encode_scenes(
    decoder: Detokenizer, vision: VisionEncoder, pixels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Host-rendered ``pixels`` -> their scaled latents and the tower's 64 features (float32, on
    the UNet's device): what the UNet learns to draw, and what it draws from."""
    device = next(decoder.unet.parameters()).device
    pixels = pixels.to(device)
    latents = decoder.encode_pixels(pixels).float()
    return latents, vision(vision.preprocess_pixels(pixels)).float()


@torch.no_grad()
def noised_unet_batch(
    decoder: Detokenizer,
    latents: torch.Tensor,
    features: torch.Tensor,
    generator: torch.Generator,
    feature_noise: float,
    condition_dropout: float,
) -> dict[str, torch.Tensor]:
    """A UNet batch from encoded scenes: noise on the features, dropped conditions, timesteps and
    latent noise, all from ``generator``."""
    batch_size, device = latents.shape[0], latents.device
    features = features + feature_noise * torch.randn(features.shape, generator=generator).to(
        device
    )
    drop = torch.rand(batch_size, generator=generator) < condition_dropout
    features[drop.to(device)] = 0.0
    return {
        "latents": latents,
        "features": features,
        **diffusion_draws(decoder, latents, generator),
    }


def diffusion_draws(
    decoder: Detokenizer, latents: torch.Tensor, generator: torch.Generator
) -> dict[str, torch.Tensor]:
    """A uniform timestep per latent and the latent noise, from ``generator``, on the latents'
    device: what `UNetObjective` noises ``latents`` with."""
    t = torch.randint(
        0, decoder.config.scheduler.num_train_timesteps, (latents.shape[0],), generator=generator
    )
    noise = torch.randn(latents.shape, generator=generator)
    return {"timesteps": t.to(latents.device), "noise": noise.to(latents.device)}


def make_unet_batch(
    decoder: Detokenizer,
    vision: VisionEncoder,
    pixels: torch.Tensor,
    generator: torch.Generator,
    feature_noise: float,
    condition_dropout: float,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """A UNet batch from host-rendered ``pixels`` (``render_batch(..., "unet", ...)``): latents
    and vision features computed on the training device, the features passed through
    ``transform`` when given (before any draw of ``generator`` here), then noise and timesteps
    from ``generator``."""
    latents, features = encode_scenes(decoder, vision, pixels)
    if transform is not None:
        features = transform(features)
    return noised_unet_batch(
        decoder, latents, features, generator, feature_noise, condition_dropout
    )
