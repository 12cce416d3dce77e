"""Stage-1 check: can the de-tokenizer redraw a held-out scene from the vision tower's features?

    python -m training.checks.decoder --model DIR [--n 32] [--device auto] [--ceilings [--drawn]]

Before the LLM is trained (or when its generations are wrong) this separates the two halves of
text-to-image: held-out scenes (training/data/splits.py) are rendered, encoded by the frozen
vision tower, and drawn again by the de-tokenizer from those *true* 64 features, with the
model's default steps and guidance. The judge then reads each drawing:

* ``vae``: the share of VAE reconstructions (encode -> decode) the judge reads as the scene;
* ``detokenizer``: the share of drawings from true features read as the scene;
* ``*_attributes``: per attribute, the share of objects read right (a softer view of the same);
* ``*_psnr``: the mean PSNR (dB) against the render, how close in pixels;
* ``ceilings``: for every ``wegen-eval`` metric scored on an image, the score of the true
  answer image and of that image through the VAE, on ``n`` of its held-out samples
  (``--ceilings``). Every drawing leaves the model through the VAE's decoder, so the second is
  the most any LLM or UNet training can reach with this VAE; with ``--drawn`` also of that
  image drawn again from its true features, the most LLM training can reach with this
  de-tokenizer.

The LLM can only do as well as ``detokenizer`` on text-to-image; a low ``vae`` caps both.
"""

from __future__ import annotations

import argparse
import json
import random
import sys

import torch
from PIL import Image

from engine.api import RuntimeRequest
from engine.errors import WeGenError
from engine.folder import load_model_folder
from engine.model import WeGenModel
from engine.runtime import select_runtime
from engine.tokenizer import WeGenTokenizer
from training.data.judge import parse_scene
from training.data.render import render_scene
from training.data.scoring import attribute_accuracy, scene_match
from training.data.splits import sample_scene
from training.evaluation.capabilities import CAPABILITIES, heldout_samples
from training.evaluation.scores import Output, psnr
from training.stages.vision import pixels_of


def to_images(pixels: torch.Tensor) -> list[Image.Image]:
    arr = (pixels.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    return [Image.fromarray(a) for a in arr]


@torch.no_grad()
def vae_round_trip(model: WeGenModel, pixels: torch.Tensor) -> list[Image.Image]:
    """Pixels (B, 3, H, W) in [0, 1], on the VAE's device, encoded (posterior mean) and decoded."""
    return to_images(model.decoder.decode_latents(model.decoder.encode_pixels(pixels)))


@torch.no_grad()
def draw_from_features(
    model: WeGenModel,
    pixels: torch.Tensor,
    seed: int,
    steps: int | None = None,
    guidance: float | None = None,
) -> list[Image.Image]:
    """Pixels (B, 3, H, W) in [0, 1] drawn again by the de-tokenizer from the vision tower's 64
    features of each (what a perfect LLM would hand it), seeds ``seed``, ``seed + 1``, ...; the
    model's default steps and guidance unless given."""
    decoder = model.config.decoder
    features = model.vision(model.vision.preprocess_pixels(pixels))
    return to_images(
        model.decoder.sample(
            features,
            seeds=list(range(seed, seed + len(pixels))),
            steps=steps or decoder.default_steps,
            guidance=decoder.default_guidance if guidance is None else guidance,
        )
    )


def load_with_tokenizer(folder: str, device: str) -> tuple[WeGenModel, WeGenTokenizer]:
    """A model folder in float32 on ``device`` ("auto" picks the best), in eval mode, and its
    tokenizer; a folder or device that will not do ends the command with the reason."""
    try:
        runtime = select_runtime(RuntimeRequest(device=device, precision="fp32"))
        model, tok = load_model_folder(folder, runtime)
    except WeGenError as e:
        sys.exit(f"cannot load {folder}: {e}")
    return model.eval(), tok


def load_for_check(folder: str, device: str) -> WeGenModel:
    """`load_with_tokenizer` without the tokenizer."""
    return load_with_tokenizer(folder, device)[0]


@torch.no_grad()
def check_decoder(
    model: WeGenModel,
    n: int = 32,
    seed: int = 0,
    batch: int = 8,
    steps: int | None = None,
    guidance: float | None = None,
) -> dict:
    """Judge scores of VAE reconstructions and of drawings from true features, on ``n`` held-out
    scenes, with the model's default steps and guidance unless given; ``ceiling`` is the judge's
    score on the renders themselves."""
    steps = steps or model.config.decoder.default_steps
    guidance = model.config.decoder.default_guidance if guidance is None else guidance
    size = model.config.decoder.image_size
    rng = random.Random(f"check_decoder/{seed}")
    scenes = [sample_scene(rng, "heldout") for _ in range(n)]
    renders = [render_scene(s, size) for s in scenes]
    device = next(model.decoder.unet.parameters()).device
    recon: list[Image.Image] = []
    drawn: list[Image.Image] = []
    for i in range(0, n, batch):
        pixels = pixels_of(renders[i : i + batch]).to(device)
        recon += vae_round_trip(model, pixels)
        drawn += draw_from_features(model, pixels, seed + i, steps, guidance)

    def share(images: list[Image.Image]) -> float:
        hits = [scene_match(s, parse_scene(im)) for s, im in zip(scenes, images, strict=True)]
        return sum(hits) / len(hits)

    def attributes(images: list[Image.Image]) -> dict[str, float]:
        pairs = [(s, parse_scene(im)) for s, im in zip(scenes, images, strict=True)]
        return {k: round(v, 4) for k, v in attribute_accuracy(pairs).items()}

    def mean_psnr(images: list[Image.Image]) -> float:
        return round(sum(psnr(im, r) for im, r in zip(images, renders, strict=True)) / n, 2)

    return {
        "n": n,
        "steps": steps,
        "guidance": guidance,
        "ceiling": share(renders),
        "vae": share(recon),
        "detokenizer": share(drawn),
        "vae_attributes": attributes(recon),
        "detokenizer_attributes": attributes(drawn),
        "vae_psnr": mean_psnr(recon),
        "detokenizer_psnr": mean_psnr(drawn),
    }


@torch.no_grad()
def vae_ceilings(
    model: WeGenModel, n: int = 32, seed: int = 0, drawn: bool = False, batch: int = 8
) -> dict[str, dict[str, float]]:
    """Per ``wegen-eval`` metric scored on an image: the mean score of the true answer image
    ("truth") and of that image encoded and decoded by the model's VAE ("vae"), on the first
    ``n`` held-out samples the report draws with ``seed``. With ``drawn``, also of that image
    drawn again by the de-tokenizer from its true features ("detokenizer", sample ``i`` with seed
    ``seed + i``): what the model reaches when the LLM writes exactly the features of the right
    answer. Images go through the model ``batch`` at a time."""
    size = model.config.decoder.image_size
    device = next(model.decoder.vae.parameters()).device
    scores: dict[str, dict[str, list[float]]] = {}
    for cap in (c for c in CAPABILITIES if c.reads_pixels):
        answered = []
        for _, sample in heldout_samples(cap.kind, n, seed, cap.accept, size):
            truth = cap.oracle(sample)
            if truth.image is None:
                break  # answered in text: no VAE on the way
            answered.append((sample, truth))
        for start in range(0, len(answered), batch):
            chunk = answered[start : start + batch]
            pixels = pixels_of([truth.image for _, truth in chunk]).to(device)
            through = vae_round_trip(model, pixels)
            again = draw_from_features(model, pixels, seed + start) if drawn else []
            for j, (sample, truth) in enumerate(chunk):
                outputs = [("truth", truth), ("vae", Output(images=(through[j],)))]
                if drawn:
                    outputs.append(("detokenizer", Output(images=(again[j],))))
                for name, out in outputs:
                    for metric, value in cap.score(sample, out).items():
                        scores.setdefault(metric, {}).setdefault(name, []).append(value)
    return {
        metric: {name: round(sum(v) / len(v), 4) for name, v in row.items()}
        for metric, row in scores.items()
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--model", required=True, help="a model folder")
    ap.add_argument("--n", type=int, default=32, help="held-out scenes")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda, ...")
    ap.add_argument("--steps", type=int, help="denoising steps (default: the model's)")
    ap.add_argument("--guidance", type=float, help="de-tokenizer CFG (default: the model's)")
    ap.add_argument(
        "--ceilings",
        action="store_true",
        help="also score wegen-eval's true answers through the VAE (n samples per metric)",
    )
    ap.add_argument(
        "--drawn",
        action="store_true",
        help="with --ceilings, also draw each true answer again from its true features "
        "(the de-tokenizer's ceiling: a perfect LLM)",
    )
    args = ap.parse_args(argv)
    model = load_for_check(args.model, args.device)
    result = check_decoder(model, args.n, args.seed, steps=args.steps, guidance=args.guidance)
    if args.ceilings:
        result["ceilings"] = vae_ceilings(model, args.n, args.seed, drawn=args.drawn)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
