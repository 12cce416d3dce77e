"""Seconds per UNet training step (stage 1b) drawing batches from a scene pool (the plan's
``unet_pool``: each scene encoded once) against fresh renders encoded every step (the baseline),
in the same process, alternating step by step.

A fresh batch is rendered, VAE-encoded and read by the vision tower before the UNet learns from
it; a pooled batch is only indexed. Both then get fresh noise, timesteps and feature noise, and
the same UNet step (forward, backward, AdamW). Also printed: the seconds a scene costs to encode,
so the pool's one-off cost against the steps it saves.

    python benchmarks/unet_pool.py --model runs/MODEL      # CPU, batch 16, 8 steps of each
    python benchmarks/unet_pool.py --model runs/MODEL --device cuda --batch 64
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from engine.bundled import BUNDLED_DIR
from training.checks.decoder import load_for_check
from training.stages.decoder import (
    UNetObjective,
    make_unet_batch,
    noised_unet_batch,
    render_batch,
)
from training.stages.scene_pool import PoolSpec, load_or_build_pool, pool_indices


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=str(BUNDLED_DIR))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=8)
    args = ap.parse_args()

    model = load_for_check(args.model, args.device)
    decoder, vision = model.decoder, model.vision
    size = model.config.decoder.image_size
    objective = UNetObjective(decoder).train()
    decoder.unet.requires_grad_(True)
    optimizer = torch.optim.AdamW(decoder.unet.parameters(), lr=1e-5)
    scenes = args.batch * (args.steps + 1)
    with tempfile.TemporaryDirectory() as tmp:
        tic = time.perf_counter()
        pool = load_or_build_pool(Path(tmp), decoder, vision, PoolSpec(size, scenes, args.batch, 0))
        per_scene = (time.perf_counter() - tic) / scenes

    def fresh(i: int, g: torch.Generator) -> dict[str, torch.Tensor]:
        pixels = render_batch(size, args.batch, "bench", 0, i, 0)
        return make_unet_batch(decoder, vision, pixels, g, 0.1, 0.1)

    def pooled(i: int, g: torch.Generator) -> dict[str, torch.Tensor]:
        latents, features = pool.take(pool_indices(len(pool), args.batch, 0, i, 0))
        return noised_unet_batch(decoder, latents, features, g, 0.1, 0.1)

    seconds: dict[str, list[float]] = {"fresh renders (baseline)": [], "scene pool": []}
    for i in range(args.steps + 1):  # the first step of each warms up
        for name, make in zip(seconds, (fresh, pooled), strict=True):
            tic = time.perf_counter()
            loss, _ = objective(make(i, torch.Generator().manual_seed(i)))
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if args.device == "cuda":
                torch.cuda.synchronize()
            if i:
                seconds[name].append(time.perf_counter() - tic)
    print(
        f"{args.steps} UNet steps of {args.batch} at {size} px each way, {args.model} on "
        f"{args.device} ({torch.get_num_threads()} threads)"
    )
    print("| batches from | training step (s, median) |")
    print("|---|---:|")
    for name, values in seconds.items():
        print(f"| {name} | {statistics.median(values):.3f} |")
    base, now = (statistics.median(v) for v in seconds.values())
    print(f"step speed-up: {base / now:.2f}x; encoding a pool scene: {per_scene * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
