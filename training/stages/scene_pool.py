"""A pool of encoded scenes for the UNet stage (the plan's ``unet_pool``).

Each scene of the pool is rendered, VAE-encoded and read by the vision tower once; every step then
draws a batch from the pool with fresh latent noise, timesteps, feature noise and dropped
conditions. On 2 CPU cores encoding a batch costs about as much as the UNet step that learns from
it (16 scenes at 128 px: 0.41 s beside 0.48 s, mostly the VAE encoder), so a pool nearly doubles
the steps a CPU session trains; with an accelerator the encode is cheap and the pool stays off
(``unet_pool = 0``: fresh renders every step).

The pool is saved in the run folder with a fingerprint of what made it (the VAE encoder, the
tower, the latent scale and the `PoolSpec`: render size, scene count, render chunk, seed and
process, and with written scenes the LLM and the requests' kinds): a resumed run loads it
instead of encoding again, and a pool that other weights or scenes made is never reused.

With ``PoolSpec.written`` above 0 that many of the pool's scenes are written ones
(training/stages/written_scenes.py): their condition is what the LLM writes for a request, not
what the tower reads, so the UNet also learns to draw from the features it is given at inference.
"""

from __future__ import annotations

import time
from collections.abc import Callable
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
from training.stages.written_scenes import Writer, written_chunk


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
    ``unet-pool``), for process ``rank``; the last ``written`` of them are written scenes
    (``written_chunk``'s chunks ``0, 1, ...``)."""

    size: int
    count: int
    batch_size: int
    seed: int
    rank: int = 0
    written: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.written <= self.count:
            raise ValueError(f"{self.written} written scenes in a pool of {self.count}")


def pool_fingerprint(
    decoder: Detokenizer, vision: VisionEncoder, spec: PoolSpec, writer: Writer | None = None
) -> str:
    vae = decoder.vae
    encoder = [m for m in (vae.encoder, getattr(vae, "quant_conv", None)) if m is not None]
    scale = decoder.config.vae.scaling_factor
    writes = writer if spec.written else None  # a writer makes no scene of a read-only pool
    modules, kinds = (writes.modules(), writes.weights) if writes else ([], ())
    return checksum(*encoder, vision, *modules, extra=f"{scale!r}/{spec!r}/{kinds!r}")


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


def _chunks(count: int, batch_size: int) -> list[int]:
    """The sizes of the chunks that make ``count`` scenes, ``batch_size`` at most each."""
    return [min(batch_size, count - start) for start in range(0, count, batch_size)]


@torch.no_grad()
def build_pool(
    decoder: Detokenizer, vision: VisionEncoder, spec: PoolSpec, writer: Writer | None = None
) -> ScenePool:
    """The scenes of ``spec`` rendered and encoded (then the written ones), a chunk at a time."""
    if spec.written and writer is None:
        raise ValueError("a pool with written scenes needs the LLM that writes them (a Writer)")
    latents, features = [], []
    read = _chunks(spec.count - spec.written, spec.batch_size)
    for chunk, n in enumerate(tqdm(read, desc="unet pool")):
        pixels = render_batch(spec.size, n, "unet-pool", spec.seed, chunk, spec.rank)
        lat, feat = encode_scenes(decoder, vision, pixels)
        latents.append(lat.half())
        features.append(feat.half())
    for chunk, n in enumerate(tqdm(_chunks(spec.written, spec.batch_size), desc="written")):
        assert writer is not None
        lat, feat = written_chunk(writer, decoder, spec.size, n, spec.seed, chunk, spec.rank)
        latents.append(lat.half())
        features.append(feat.half())
    # contiguous: the VAE may hand back channels-last latents, and safetensors stores plain ones
    return ScenePool(torch.cat(latents).contiguous(), torch.cat(features).contiguous())


def load_or_build(
    path: Path,
    fingerprint: str,
    build: Callable[[], dict[str, torch.Tensor]],
    device: str,
    metadata: dict[str, str] | None = None,
) -> dict[str, torch.Tensor]:
    """The tensors saved at ``path`` (on ``device``) when ``fingerprint`` made them; else
    ``build()``'s, saved there with the fingerprint, the seconds they took and ``metadata``."""
    if path.is_file():
        with safe_open(str(path), framework="pt") as f:
            same = f.metadata().get("fingerprint") == fingerprint
        if same:
            return load_file(str(path), device=device)
    tic = time.perf_counter()
    tensors = build()
    seconds = time.perf_counter() - tic
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    meta = {**(metadata or {}), "fingerprint": fingerprint, "seconds": f"{seconds:.3f}"}
    save_file({k: v.cpu() for k, v in tensors.items()}, str(tmp), metadata=meta)
    tmp.replace(path)
    return {k: v.to(device) for k, v in tensors.items()}


def load_or_build_pool(
    out: Path,
    decoder: Detokenizer,
    vision: VisionEncoder,
    spec: PoolSpec,
    writer: Writer | None = None,
) -> ScenePool:
    """The run's pool from ``out/unet/pool-RANK.safetensors`` when the same weights and spec
    made it; else built now and saved there."""
    fingerprint = pool_fingerprint(decoder, vision, spec, writer)
    device = str(next(decoder.unet.parameters()).device)

    def build() -> dict[str, torch.Tensor]:
        pool = build_pool(decoder, vision, spec, writer)
        return {"latents": pool.latents, "features": pool.features}

    tensors = load_or_build(
        pool_path(out, spec.rank), fingerprint, build, device, {"scenes": str(spec.count)}
    )
    return ScenePool(tensors["latents"], tensors["features"])
