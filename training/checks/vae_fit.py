"""Can this VAE keep what the judge reads, even for images it is fitted to?

    python -m training.checks.vae_fit --model DIR [--scenes 32] [--steps 400] [--every 100]

`training.checks.decoder --ceilings` shows how much of each true answer survives the model's VAE. This
tells training time apart from capacity: the VAE is fitted, on random crops as stage 1a trains
it, to a fixed handful of held-out one-object scenes (the first ``--scenes`` that
``wegen-eval``'s ``t2i_single`` draws with ``--seed``), and every ``--every`` steps the judge
scores their whole-image round trips as ``t2i_single`` does. A VAE that cannot reach the target
on images it has seen hundreds of times needs more capacity (or less compression), not more
steps. Prints one JSON line per check; the model folder is not changed.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator

import torch

from engine.model import WeGenModel
from training.checks.decoder import load_for_check, vae_round_trip
from training.evaluation.capabilities import CAPABILITIES, heldout_samples
from training.evaluation.scores import Output
from training.stages.decoder import VAEObjective, vae_trainable
from training.stages.vision import pixels_of

(T2I,) = [c for c in CAPABILITIES if c.name == "t2i_single"]


def fit_vae(
    model: WeGenModel,
    scenes: int = 32,
    steps: int = 400,
    every: int = 100,
    seed: int = 1,
    batch: int = 16,
    lr: float = 3e-4,
    edge_weight: float = 0.0,
    decoder_only: bool = False,
) -> Iterator[dict[str, float]]:
    """Fit ``model``'s VAE in place to ``scenes`` fixed scenes; yield the judge's share of their
    round trips read right at step 0 and every ``every`` steps (with the last batch's losses).
    ``edge_weight`` and ``decoder_only`` are the plan's ``vae_edge_weight`` and
    ``vae_decoder_only``."""
    size = model.config.decoder.image_size
    down = model.config.vae.downsample
    crop = max(8 * down, size // 2)
    samples = [s for _, s in heldout_samples(T2I.kind, scenes, seed, T2I.accept, size)]
    device = next(model.decoder.vae.parameters()).device
    pixels = pixels_of([s.images[-1] for s in samples]).to(device)
    vae = model.decoder.vae
    g = torch.Generator().manual_seed(seed)

    @torch.no_grad()
    def share() -> float:
        vae.eval()
        made = vae_round_trip(model, pixels)
        vae.train()
        pairs = zip(samples, made, strict=True)
        hits = [T2I.score(s, Output(images=(im,)))["t2i_single"] for s, im in pairs]
        return sum(hits) / len(hits)

    start = time.perf_counter()
    yield {"step": 0, "share": share()}
    trained = vae_trainable(vae, decoder_only)
    vae.train()
    for module in trained:
        module.requires_grad_(True)
    objective = VAEObjective(vae, edge_weight=edge_weight)
    optimiser = torch.optim.AdamW([p for m in trained for p in m.parameters()], lr)
    for step in range(1, steps + 1):
        rows = torch.randint(0, scenes, (batch,), generator=g)
        y, x = (int(v) for v in torch.randint(0, size - crop + 1, (2,), generator=g))
        noise = torch.randn(batch, model.config.vae.latent_channels, crop // down, crop // down)
        loss, logs = objective(
            {"pixels": pixels[rows, :, y : y + crop, x : x + crop], "noise": noise.to(device)}
        )
        loss.backward()
        optimiser.step()
        optimiser.zero_grad()
        if step % every == 0 or step == steps:
            yield {
                "step": step,
                "share": share(),
                **{k: round(float(v.detach()), 4) for k, v in logs.items() if k != "kl"},
                "seconds": round(time.perf_counter() - start, 1),
            }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--model", required=True, help="a model folder")
    ap.add_argument("--scenes", type=int, default=32, help="fixed held-out one-object scenes")
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--every", type=int, default=100, help="score the round trips this often")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--edge-weight", type=float, default=0.0, help="image-gradient L1 weight")
    ap.add_argument(
        "--decoder-only", action="store_true", help="freeze the encoder (the UNet's latents)"
    )
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda, ...")
    args = ap.parse_args(argv)
    if args.scenes < 1 or args.steps < 1 or args.every < 1:
        ap.error("--scenes, --steps and --every must be at least 1")
    model = load_for_check(args.model, args.device)
    rows = fit_vae(
        model,
        args.scenes,
        args.steps,
        args.every,
        args.seed,
        lr=args.lr,
        edge_weight=args.edge_weight,
        decoder_only=args.decoder_only,
    )
    for row in rows:
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
