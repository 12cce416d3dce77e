"""A pool of encoded scenes for the UNet stage (the plan's ``unet_pool``).

Each scene of the pool is rendered, VAE-encoded and read by the vision tower once; every step then
draws a batch from the pool with fresh latent noise, timesteps, feature noise and dropped
conditions. On 2 CPU cores encoding a batch costs about as much as the UNet step that learns from
it (16 scenes at 128 px: 0.41 s beside 0.48 s, mostly the VAE encoder), so a pool nearly doubles
the steps a CPU session trains; with an accelerator the encode is cheap and the pool stays off
(``unet_pool = 0``: fresh renders every step).

The pool is saved in the run folder with a fingerprint of what made it (the VAE encoder, the
tower, the latent scale and the `PoolSpec`: render size, scene count, render chunk, seed and
process): a resumed run loads it instead of encoding again, and a pool that other weights or
scenes made is never reused.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from engine.decoder import Detokenizer
from engine.vision import VisionEncoder
from training.checksum import checksum
from training.loop import stage_generator
from training.stages.decoder import encode_scenes, render_batch


class ScenePool:
    """Latents and tower features of ``len(self)`` scenes, stored as float16 on the UNet's
    device (about 56 KB a scene at wegen-tiny's sizes)."""

    def __init__(self, latents: torch.Tensor, features: torch.Tensor) -> None:
        if latents.shape[0] != features.shape[0]:
            raise ValueError(f"{latents.shape[0]} latents for {features.shape[0]} features")
        self.latents, self.features = latents, features

    def __len__(self) -> int:
        return self.latents.shape[0]

    def take(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The latents and features of scenes ``index``, as float32."""
        index = index.to(self.latents.device)
        return self.latents[index].float(), self.features[index].float()


@dataclass(frozen=True)
class PoolSpec:
    """Which scenes a pool holds: ``count`` training scenes rendered at ``size`` px,
    ``batch_size`` to a render chunk (chunk ``i`` is ``render_batch``'s step ``i`` of tag
    ``unet-pool``), for process ``rank``."""

    size: int
    count: int
    batch_size: int
    seed: int
    rank: int = 0


def pool_fingerprint(decoder: Detokenizer, vision: VisionEncoder, spec: PoolSpec) -> str:
    vae = decoder.vae
    encoder = [m for m in (vae.encoder, getattr(vae, "quant_conv", None)) if m is not None]
    scale = decoder.config.vae.scaling_factor
    return checksum(*encoder, vision, extra=f"{scale!r}/{spec!r}")


def pool_indices(count: int, batch_size: int, seed: int, step: int, rank: int) -> torch.Tensor:
    """The pool scenes of one step (drawn with replacement; a host batch: picklable)."""
    g = stage_generator(seed, "unet/pool", step, rank)
    return torch.randint(0, count, (batch_size,), generator=g)


def pool_path(out: Path, rank: int) -> Path:
    return out / "unet" / f"pool-{rank}.safetensors"


def pool_build_seconds(path: Path) -> tuple[int, float]:
    """How many scenes the pool at ``path`` holds and the seconds encoding them took."""
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    return int(meta["scenes"]), float(meta["seconds"])


@torch.no_grad()
def build_pool(decoder: Detokenizer, vision: VisionEncoder, spec: PoolSpec) -> ScenePool:
    """The scenes of ``spec`` rendered and encoded, a render chunk at a time."""
    latents, features = [], []
    chunks = range(0, spec.count, spec.batch_size)
    for chunk, start in enumerate(tqdm(chunks, desc="unet pool")):
        n = min(spec.batch_size, spec.count - start)
        pixels = render_batch(spec.size, n, "unet-pool", spec.seed, chunk, spec.rank)
        lat, feat = encode_scenes(decoder, vision, pixels)
        latents.append(lat.half())
        features.append(feat.half())
    # contiguous: the VAE may hand back channels-last latents, and safetensors stores plain ones
    return ScenePool(torch.cat(latents).contiguous(), torch.cat(features).contiguous())


def load_or_build_pool(
    out: Path, decoder: Detokenizer, vision: VisionEncoder, spec: PoolSpec
) -> ScenePool:
    """The run's pool from ``out/unet/pool-RANK.safetensors`` when the same weights and spec
    made it; else built now and saved there."""
    path = pool_path(out, spec.rank)
    fingerprint = pool_fingerprint(decoder, vision, spec)
    device = next(decoder.unet.parameters()).device
    if path.is_file():
        with safe_open(str(path), framework="pt") as f:
            same = f.metadata().get("fingerprint") == fingerprint
        if same:
            tensors = load_file(str(path), device=str(device))
            return ScenePool(tensors["latents"], tensors["features"])
    tic = time.perf_counter()
    pool = build_pool(decoder, vision, spec)
    seconds = time.perf_counter() - tic
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file(
        {"latents": pool.latents.cpu(), "features": pool.features.cpu()},
        str(tmp),
        metadata={
            "fingerprint": fingerprint,
            "scenes": str(spec.count),
            "seconds": f"{seconds:.3f}",
        },
    )
    tmp.replace(path)
    return pool
