"""The de-tokenizer: an SDXL-layout UNet conditioned on the 64 visual features, a VAE, Euler sampling.

Conditioning (as the official stage-1 model was trained): the 64 features are the cross-attention
context and their mean is the pooled "text embedding" of SDXL's add-embedding; the six time_ids
are (H, W, 0, 0, H, W) or all zero (`TimeIds`). Classifier-free guidance runs against all-zero
features and an all-zero pooled vector. With ``unet.spatial_context`` (wegen-tiny) the features'
8x8 grid, upsampled to the latent size, is concatenated to the noisy latents as well
(`spatial_grid`).

`Detokenizer.sample` is written as the numbered steps of a diffusers pipeline, with a per-step
callback (optionally with a small preview of the current estimate) and a cancel flag checked
every step. Initial noise is drawn on the CPU from ``seed`` so an image is reproducible across
devices and batch sizes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, EulerDiscreteScheduler, UNet2DConditionModel
from torch import nn

from engine.config import TimeIds, WeGenConfig
from engine.errors import Cancelled

#: step callback: (step (1-based), total, preview (B, 3, h, w) in [0, 1] or None)
StepCallback = Callable[[int, int, "torch.Tensor | None"], None]


def unet_kwargs(config: WeGenConfig) -> dict[str, Any]:
    u = config.unet
    levels = len(u.block_out_channels)
    return dict(
        sample_size=config.latent_size,
        in_channels=config.vae.latent_channels + (config.feature_dim if u.spatial_context else 0),
        out_channels=config.vae.latent_channels,
        down_block_types=("DownBlock2D",) + ("CrossAttnDownBlock2D",) * (levels - 1),
        up_block_types=("CrossAttnUpBlock2D",) * (levels - 1) + ("UpBlock2D",),
        mid_block_type="UNetMidBlock2DCrossAttn",
        block_out_channels=u.block_out_channels,
        layers_per_block=u.layers_per_block,
        transformer_layers_per_block=u.transformer_layers_per_block,
        attention_head_dim=u.attention_head_dim,
        norm_num_groups=u.norm_num_groups,
        cross_attention_dim=config.feature_dim,
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=u.addition_time_embed_dim,
        projection_class_embeddings_input_dim=6 * u.addition_time_embed_dim + config.feature_dim,
    )


def vae_kwargs(config: WeGenConfig) -> dict[str, Any]:
    v = config.vae
    levels = len(v.block_out_channels)
    return dict(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * levels,
        up_block_types=("UpDecoderBlock2D",) * levels,
        block_out_channels=v.block_out_channels,
        layers_per_block=v.layers_per_block,
        latent_channels=v.latent_channels,
        norm_num_groups=v.norm_num_groups,
        sample_size=config.decoder.image_size,
        scaling_factor=v.scaling_factor,
        force_upcast=v.force_upcast,
        mid_block_add_attention=v.mid_block_attention,
    )


def spatial_grid(features: torch.Tensor, size: int) -> torch.Tensor:
    """(B, 64, F) row-major visual tokens -> (B, F, size, size): each token repeated over the
    latent positions of its cell of the 8x8 grid."""
    b, n, f = features.shape
    side = int(n**0.5)
    grid = features.transpose(1, 2).reshape(b, f, side, side)
    return F.interpolate(grid, size=(size, size), mode="nearest")


class DenoiseLoop:
    """The de-tokenizer's sampling, written once over the module calls a backend supplies.

    A backend provides ``config``, `placement` (the UNet's device and dtype), `forward` (the UNet
    with its conditioning), `decode_latents` and `encode_pixels`. `Detokenizer` supplies them
    with PyTorch modules, the ONNX backend with onnxruntime sessions; scheduler, CFG, noise and
    previews stay here.
    """

    config: WeGenConfig
    _preview_map: torch.Tensor | None = None

    def placement(self) -> tuple[torch.device, torch.dtype]:
        raise NotImplementedError

    def forward(
        self,
        latents: torch.Tensor,
        timesteps: torch.Tensor,
        features: torch.Tensor,
        time_ids: torch.Tensor,
    ) -> torch.Tensor:
        raise NotImplementedError

    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def encode_pixels(
        self, pixels: torch.Tensor, sample: bool = False, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        raise NotImplementedError

    def make_scheduler(self) -> EulerDiscreteScheduler:
        s = self.config.scheduler
        return EulerDiscreteScheduler(
            num_train_timesteps=s.num_train_timesteps,
            beta_start=s.beta_start,
            beta_end=s.beta_end,
            beta_schedule=s.beta_schedule,
            timestep_spacing=s.timestep_spacing,
            steps_offset=s.steps_offset,
            prediction_type=s.prediction_type,
        )

    def time_ids(self, batch: int, size: int) -> torch.Tensor:
        device, dtype = self.placement()
        if self.config.decoder.time_ids is TimeIds.SIZE:
            values = [size, size, 0, 0, size, size]
        else:
            values = [0] * 6
        return torch.tensor([values] * batch, device=device, dtype=dtype)  # (B, 6)

    # --- sampling -----------------------------------------------------------------------------
    @torch.no_grad()
    def sample(
        self,
        features: torch.Tensor,
        *,
        seeds: list[int],
        steps: int,
        guidance: float,
        size: int | None = None,
        callback: StepCallback | None = None,
        previews: bool = False,
        cancel: Callable[[], bool] | None = None,
        init: torch.Tensor | None = None,
        strength: float = 1.0,
    ) -> torch.Tensor:
        """features (B, 64, F) -> images (B, 3, size, size) in [0, 1] (float32, CPU).

        ``init`` (B, 3, size, size) in [0, 1] with ``strength`` < 1 starts from those pixels
        noised to that level instead of from pure noise, and runs only the last
        ``round(steps * strength)`` steps (SDEdit): the lower the strength, the more of the
        starting image is kept. ``strength`` 1 ignores ``init``.
        """
        # 1. check inputs
        size = size or self.config.decoder.image_size
        down = self.config.vae.downsample
        if size % down or size < down * 8:
            raise ValueError(f"image size must be a multiple of {down} and at least {down * 8}")
        if len(seeds) != features.shape[0]:
            raise ValueError("one seed per image is needed")
        if steps < 1:
            raise ValueError("steps must be at least 1")
        if not 0 < strength <= 1:
            raise ValueError("strength must be in (0, 1]")
        start = steps - max(1, round(steps * strength)) if init is not None else 0
        if init is not None and init.shape != (features.shape[0], 3, size, size):
            raise ValueError(f"the starting image must be {size}x{size}, one per image")
        device, dtype = self.placement()
        # 2. conditioning: guided runs put the all-zero negative first
        features = features.to(device, dtype)
        guided = guidance != 1.0
        context = torch.cat([torch.zeros_like(features), features]) if guided else features
        time_ids = self.time_ids(context.shape[0], size)
        # 3. timesteps
        scheduler = self.make_scheduler()
        scheduler.set_timesteps(steps, device=device)
        scheduler.set_begin_index(start)
        timesteps = scheduler.timesteps[start:]
        # 4. initial noise, per image from its own seed on the CPU
        shape = (self.config.vae.latent_channels, size // down, size // down)
        noise = [torch.randn(shape, generator=torch.Generator().manual_seed(s)) for s in seeds]
        latents = torch.stack(noise).to(device, torch.float32)
        if start:
            assert init is not None
            clean = self.encode_pixels(init.to(device)).float()
            latents = scheduler.add_noise(clean, latents, timesteps[:1])
        else:
            latents = latents * scheduler.init_noise_sigma
        # 5. denoising loop
        for i, t in enumerate(timesteps):
            if cancel is not None and cancel():
                raise Cancelled()
            model_in = scheduler.scale_model_input(
                torch.cat([latents] * 2) if guided else latents, t
            )
            eps = self.forward(model_in, t.expand(model_in.shape[0]), context, time_ids).float()
            if guided:
                eps_uncond, eps_cond = eps.chunk(2)
                eps = eps_uncond + guidance * (eps_cond - eps_uncond)
            out = scheduler.step(eps, t, latents)
            latents = out.prev_sample
            if callback is not None:
                preview = self.preview(out.pred_original_sample) if previews else None
                callback(i + 1, len(timesteps), preview)
        if cancel is not None and cancel():
            raise Cancelled()
        # 6. decode
        return self.decode_latents(latents)

    # --- previews -----------------------------------------------------------------------------
    @torch.no_grad()
    def preview(self, latents: torch.Tensor) -> torch.Tensor:
        """A cheap RGB estimate at latent resolution: a linear map fitted to this VAE.

        latents (B, C, h, w), scaled -> (B, 3, h, w) in [0, 1], float32 on the CPU.
        """
        if self._preview_map is None:
            self._preview_map = self._fit_preview_map()
        lat = latents.float().cpu()
        ones = torch.ones_like(lat[:, :1])
        rgb = torch.einsum("bchw,cd->bdhw", torch.cat([lat, ones], 1), self._preview_map)
        return rgb.clamp(0, 1)

    def _fit_preview_map(self) -> torch.Tensor:
        """Least-squares (C+1 -> 3) from the VAE's latents of 27 flat colours to those colours."""
        levels = torch.tensor([0.05, 0.5, 0.95])
        colours = torch.cartesian_prod(levels, levels, levels)  # (27, 3)
        side = self.config.vae.downsample * 4
        pixels = colours.view(-1, 3, 1, 1).expand(-1, 3, side, side).to(self.placement()[0])
        latents = self.encode_pixels(pixels).float().mean(dim=(2, 3)).cpu()  # (27, C)
        design = torch.cat([latents, torch.ones(len(latents), 1)], 1)  # (27, C+1)
        return torch.linalg.lstsq(design, colours).solution  # (C+1, 3)


class Detokenizer(DenoiseLoop, nn.Module):
    """The PyTorch de-tokenizer: the UNet and the VAE as modules."""

    def __init__(self, config: WeGenConfig) -> None:
        super().__init__()
        self.config = config
        self.unet = UNet2DConditionModel(**unet_kwargs(config))
        self.vae = AutoencoderKL(**vae_kwargs(config))
        self._preview_map = None

    #: set by the low-memory mode (engine.runtime.Offloader): where the UNet and the VAE run
    #: while their weights wait on the CPU
    execution_device: torch.device | None = None

    def placement(self) -> tuple[torch.device, torch.dtype]:
        ref = next(self.unet.parameters())
        return self.execution_device or ref.device, ref.dtype

    def forward(
        self,
        latents: torch.Tensor,
        timesteps: torch.Tensor,
        features: torch.Tensor,
        time_ids: torch.Tensor,
    ) -> torch.Tensor:
        """Noise prediction: latents (B, C, h, w), timesteps (B,), features (B, 64, F), time_ids (B, 6)."""
        dtype = next(self.unet.parameters()).dtype
        features = features.to(dtype)
        latents = latents.to(dtype)
        if self.config.unet.spatial_context:
            latents = torch.cat([latents, spatial_grid(features, latents.shape[-1])], dim=1)
        added = {
            "text_embeds": features.mean(dim=1),
            "time_ids": time_ids.to(dtype),
        }  # (B, F), (B, 6)
        return self.unet(
            latents, timesteps, encoder_hidden_states=features, added_cond_kwargs=added
        ).sample

    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """Scaled latents (B, C, h, w) -> pixels (B, 3, H, W) in [0, 1], float32 on the CPU.

        Runs in the VAE's own dtype: the runtime keeps the VAE in float32 when the config says
        ``force_upcast`` (the SDXL VAE overflows in float16).
        """
        dtype = next(self.vae.parameters()).dtype
        return self.vae_decode(latents.to(dtype)).float().cpu()

    def vae_decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Scaled latents -> pixels in [0, 1] in the VAE's dtype and device (the exported graph)."""
        pixels = self.vae.decode(latents / self.config.vae.scaling_factor).sample
        return ((pixels + 1) / 2).clamp(0, 1)

    def encode_pixels(
        self, pixels: torch.Tensor, sample: bool = False, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Pixels (B, 3, H, W) in [0, 1] -> scaled latents (B, C, h, w) (training and previews)."""
        dist = self.vae.encode(pixels.to(next(self.vae.parameters()).dtype) * 2 - 1).latent_dist
        latents = dist.sample(generator) if sample else dist.mean
        return latents * self.config.vae.scaling_factor
