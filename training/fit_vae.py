"""Gate 1 of a de-tokenizer that is not the ceiling: train a fresh autoencoder and read its ceilings.

    python -m training.fit_vae --out runs/vae-4x --candidate 4x16-w64 --minutes 60
    python -m training.fit_vae --out runs/vae-4x --resume --minutes 30      # continue a run
    python -m training.fit_vae --out runs/vae-4x --ceilings-only            # score a saved run

Every drawing leaves the model through its VAE's decoder, so no LLM or UNet training reaches a
target above what a round trip through the VAE keeps (``checks.decoder --ceilings``). This trains
a candidate autoencoder from nothing on training renders, as a plain autoencoder on the
posterior mean first and with posterior noise and the KL term for the last ``--sample-share`` of
the time. Every ``--every`` minutes the judge reads the round trips of held-out one-object
scenes (``t2i_single``'s scoring, as ``checks.vae_fit`` reads them) and the run is saved; at the
end the ceilings of every image metric are measured. Output folder: ``model.safetensors`` (the
autoencoder in fp16, named as in a whole model), ``config.json`` (wegen-tiny with the
candidate's VAE, its latent scale measured), ``log.jsonl``, ``ceilings.json``.

Objects are a few percent of a render's pixels, so an unweighted loss spends the autoencoder on
the smooth background: their pixels and a 2-pixel rim count ``--object-weight`` (20) times more,
and an image-gradient term (``--edge-weight``) makes soft edges cost. Continuing vae-4x16-w64 so
for 70 minutes lifted its one-object ceiling from 0.71 to 0.90 (training/NOTES.md).

Train at the size the autoencoder runs at. It is fully convolutional, so ``--crop 32`` trains
on 32-px crops for a sixteenth of the cost, but its GroupNorm layers normalise each image by its
own statistics, which differ with the size: one trained on 32-px crops to 32.7 dB on such crops
gave 19.6 dB on 64-px ones and 17.9 dB on whole 128-px renders.

The candidates (``CANDIDATES``: downsampling x latent channels x width) and what each reached
are written down in training/NOTES.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL
from PIL import Image
from safetensors.torch import load_file, save_file

from engine.config import VAEConfig, WeGenConfig, wegen_tiny
from engine.model import WeGenModel
from training.checks.decoder import vae_ceilings, vae_round_trip
from training.data.degrade import degrade, sample_degradations
from training.data.render import render_scene
from training.data.splits import sample_scene
from training.data.world import Scene
from training.evaluation.capabilities import CAPABILITIES, heldout_samples
from training.evaluation.scores import Output, psnr
from training.stages.decoder import VAEObjective, latent_scale
from training.stages.vision import pixels_of

(T2I,) = [c for c in CAPABILITIES if c.name == "t2i_single"]


def _fully_convolutional(**kw: object) -> VAEConfig:
    return VAEConfig(layers_per_block=1, mid_block_attention=False, **kw)  # type: ignore[arg-type]


#: name -> the autoencoder it trains (downsampling 2^(levels-1))
CANDIDATES: dict[str, VAEConfig] = {
    "8x16-w64": _fully_convolutional(block_out_channels=(32, 64, 64, 64), latent_channels=16),
    "8x32-w64": _fully_convolutional(block_out_channels=(32, 64, 64, 64), latent_channels=32),
    "4x16-w64": _fully_convolutional(block_out_channels=(32, 64, 64), latent_channels=16),
    "4x16-w128": _fully_convolutional(block_out_channels=(64, 128, 128), latent_channels=16),
    "4x8-w64": _fully_convolutional(block_out_channels=(32, 64, 64), latent_channels=8),
}


def with_vae(vae: VAEConfig, base: WeGenConfig | None = None) -> WeGenConfig:
    return (base or wegen_tiny()).replace(vae=vae)


def object_mask(
    scene: Scene, size: int, margin: int = 2, render: Image.Image | None = None
) -> torch.Tensor:
    """(1, size, size): 1 on the scene's objects and ``margin`` pixels around them (their rims,
    outlines and anti-aliasing), 0 on the bare background. ``render``: the scene's clean render
    at ``size``, when the caller has made it already."""
    full = pixels_of([render if render is not None else render_scene(scene, size)])[0]
    bare = pixels_of([render_scene(dataclasses.replace(scene, objects=()), size)])[0]
    mask = (full - bare).abs().amax(0, keepdim=True).gt(0).float()
    return F.max_pool2d(mask[None], 2 * margin + 1, stride=1, padding=margin)[0]


def crops_batch(
    size: int,
    crop: int,
    batch: int,
    per_image: int,
    seed: int,
    step: int,
    degraded: float,
    object_weight: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch`` random ``crop``-pixel crops, ``per_image`` from each of ``batch / per_image``
    fresh training renders (a share of them degraded, as restoration inputs are), (B, 3, c, c),
    and how much each pixel counts, (B, 1, c, c): 1 + ``object_weight`` on objects, 1 elsewhere."""
    rng = random.Random(f"fit_vae/{seed}/{step}")
    crops, weights = [], []
    for _ in range(batch // per_image):
        scene = sample_scene(rng, "train")
        clean = image = render_scene(scene, size)
        if rng.random() < degraded:
            image = degrade(image, sample_degradations(rng))
        pixels = pixels_of([image])[0]
        weight = (
            1 + object_weight * object_mask(scene, size, render=clean) if object_weight else None
        )
        for _ in range(per_image):
            y, x = rng.randrange(size - crop + 1), rng.randrange(size - crop + 1)
            crops.append(pixels[:, y : y + crop, x : x + crop])
            if weight is not None:
                weights.append(weight[:, y : y + crop, x : x + crop])
    stacked = torch.stack(crops)
    return stacked, torch.stack(weights) if weights else torch.ones_like(stacked[:, :1])


class RoundTripProbe:
    """The judge's reading of held-out one-object scenes after a VAE round trip."""

    def __init__(self, model: WeGenModel, n: int, seed: int) -> None:
        size = model.config.decoder.image_size
        self.model = model
        self.samples = [s for _, s in heldout_samples(T2I.kind, n, seed, T2I.accept, size)]
        self.pixels = pixels_of([s.images[-1] for s in self.samples])

    @torch.no_grad()
    def __call__(self) -> dict[str, float]:
        vae = self.model.decoder.vae
        vae.eval()
        made = [
            im
            for i in range(0, len(self.samples), 16)
            for im in vae_round_trip(self.model, self.pixels[i : i + 16].to(_device(self.model)))
        ]
        vae.train()
        pairs = list(zip(self.samples, made, strict=True))
        hits = [T2I.score(s, Output(images=(im,)))["t2i_single"] for s, im in pairs]
        db = [psnr(im, s.images[-1]) for s, im in pairs]
        return {"share": round(sum(hits) / len(hits), 4), "psnr": round(sum(db) / len(db), 2)}


#: fit_vae's weights file: the autoencoder's tensors under their names in a whole model, so
#: ``warm_start --take decoder.vae.=RUN`` can take them into a model that uses this VAE
WEIGHTS = "model.safetensors"
PREFIX = "decoder.vae."


def _device(model: WeGenModel) -> torch.device:
    return next(model.decoder.vae.parameters()).device


def save(out: Path, model: WeGenModel) -> None:
    """The autoencoder in float16 (written atomically) and the config it belongs to."""
    vae = model.decoder.vae
    state = {
        PREFIX + k: v.detach().to("cpu", torch.float16).contiguous()
        for k, v in vae.state_dict().items()
    }
    save_file(state, out / (WEIGHTS + ".tmp"))
    (out / (WEIGHTS + ".tmp")).replace(out / WEIGHTS)
    model.config.save(out / "config.json")


def load(out: Path) -> WeGenModel:
    """A model (random but for its autoencoder) from a folder `save` wrote."""
    model = WeGenModel(WeGenConfig.load(out / "config.json"))
    state = {k.removeprefix(PREFIX): v.float() for k, v in load_file(out / WEIGHTS).items()}
    model.decoder.vae.load_state_dict(state)
    return model


def train(model: WeGenModel, out: Path, args: argparse.Namespace, probe: RoundTripProbe) -> None:
    size = model.config.decoder.image_size
    vae: AutoencoderKL = model.decoder.vae
    device = _device(model)

    def record(row: dict[str, object]) -> None:
        print(json.dumps(row), flush=True)
        with (out / "log.jsonl").open("a") as log:
            log.write(json.dumps(row) + "\n")

    objective = VAEObjective(vae, edge_weight=args.edge_weight, sample_posterior=False)
    optimiser = torch.optim.AdamW(vae.parameters(), args.lr)
    step = args.first_step
    record({"step": step, "minutes": 0.0, **probe()})
    start = last_check = time.perf_counter()
    seconds = 60 * args.minutes
    vae.train()
    while (elapsed := time.perf_counter() - start) < seconds and step < args.max_steps:
        objective.sample_posterior = elapsed > (1 - args.sample_share) * seconds
        # constant, then linearly down to a tenth over the last ``decay_share`` of the time
        left = (seconds - elapsed) / (args.decay_share * seconds) if args.decay_share else 1.0
        for group in optimiser.param_groups:
            group["lr"] = args.lr * max(0.1, min(1.0, left))
        per_image = 4 if 4 * args.crop <= size else 1  # several small crops from one render
        pixels, weight = crops_batch(
            size,
            args.crop,
            args.batch,
            per_image,
            args.seed,
            step,
            args.degraded,
            args.object_weight,
        )
        pixels, weight = pixels.to(device), weight.to(device)
        down = model.config.vae.downsample
        noise = torch.randn(args.batch, model.config.vae.latent_channels, *[args.crop // down] * 2)
        noise = noise.to(device)
        loss, logs = objective({"pixels": pixels, "noise": noise, "weight": weight})
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        optimiser.step()
        optimiser.zero_grad(set_to_none=True)
        step += 1
        if time.perf_counter() - last_check > 60 * args.every:
            last_check = time.perf_counter()
            save(out, model)
            record(
                {
                    "step": step,
                    "minutes": round((last_check - start) / 60, 1),
                    "s_per_step": round((last_check - start) / (step - args.first_step), 3),
                    "sampled": objective.sample_posterior,
                    **{k: round(float(v.detach()), 4) for k, v in logs.items()},
                    **probe(),
                }
            )
    # the latent scale the UNet will train with (SDXL's 0.13025 was measured the same way)
    vae.eval()
    scale_pixels, _ = crops_batch(size, size, 32, 1, args.seed, -1, 0.0)
    scale = latent_scale(vae, scale_pixels.to(device))
    model.config = model.decoder.config = with_vae(
        dataclasses.replace(model.config.vae, scaling_factor=scale), model.config
    )
    save(out, model)
    record({"step": step, "minutes": round(elapsed / 60, 1), "scaling_factor": scale, **probe()})


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--out", required=True, type=Path, help="the run folder")
    ap.add_argument("--candidate", choices=sorted(CANDIDATES), default="4x16-w64")
    ap.add_argument("--resume", action="store_true", help="continue the run saved in --out")
    ap.add_argument("--ceilings-only", action="store_true", help="score the saved run and stop")
    ap.add_argument("--minutes", type=float, default=30.0, help="training time")
    ap.add_argument("--max-steps", type=int, default=10**9, help="stop after this many steps")
    ap.add_argument("--every", type=float, default=5.0, help="minutes between probes and saves")
    ap.add_argument(
        "--sample-share",
        type=float,
        default=0.1,
        help="the last share of the time trains with posterior noise and KL",
    )
    ap.add_argument(
        "--decay-share",
        type=float,
        default=0.3,
        help="the last share of the time decays the learning rate to a tenth",
    )
    ap.add_argument(
        "--object-weight",
        type=float,
        default=20.0,
        help="extra weight of the pixels on and around objects (0: every pixel counts the same)",
    )
    ap.add_argument(
        "--edge-weight", type=float, default=1.0, help="weight of the image-gradient L1 term"
    )
    ap.add_argument("--crop", type=int, default=128, help="training crop side (128: whole renders)")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--degraded", type=float, default=0.2, help="share of degraded renders")
    ap.add_argument("--probe-n", type=int, default=48, help="held-out scenes the probe reads")
    ap.add_argument("--ceilings-n", type=int, default=48, help="samples per metric; 0: skip")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's choice)")
    ap.add_argument("--device", default="cpu", help="cpu, cuda, ... (the VAE trains there)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    args.first_step = 0
    if args.resume or args.ceilings_only:
        model = load(args.out)
        log = (args.out / "log.jsonl").read_text().splitlines()
        args.first_step = json.loads(log[-1])["step"] if log else 0
    else:
        model = WeGenModel(with_vae(CANDIDATES[args.candidate]))
    model.decoder.vae.to(args.device)
    model.eval()
    if not args.ceilings_only:
        probe = RoundTripProbe(model, args.probe_n, seed=0)
        train(model, args.out, args, probe)
    if args.ceilings_n:
        ceilings = vae_ceilings(model, args.ceilings_n, seed=0)
        print(json.dumps({"ceilings": ceilings}), flush=True)
        (args.out / "ceilings.json").write_text(json.dumps(ceilings, indent=2) + "\n")


if __name__ == "__main__":
    main()
