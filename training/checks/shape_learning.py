"""How fast a vision tower learns to tell the shapes apart, by tower and by cell readout.

    python -m training.checks.shape_learning --tower vit --readout mean --steps 200
    python -m training.checks.shape_learning --tower cnn --readout max --steps 200 --device cuda

An experiment for stage 0 (training/stages/vision.py), whose tower learns colour in a few
hundred steps but shape barely (``training.checks.vision``). It trains one tower from scratch on
stage 0's batches with a shape head alone: a linear layer over each scene-grid cell's pooled
features (``--readout mean`` as stage 0's cell head reads them, or ``max``), or over each of the
64 tokens against the share of its patch each shape covers (``dense``, as stage 0's token head).
``vit`` is the preset's EVA tower (``--conv-stem none``: with EVA-CLIP's linear patch embedding
instead of the preset's conv stem); ``cnn`` a 4-layer strided convolution to the same 8x8 grid of
the same width, the reference for how hard the task is. It prints, as JSON, the head's mean
training accuracy over each window of ``--every`` steps (cells for ``mean``/``max``, tokens an
object covers at least half of for ``dense``) and, with ``--probe N`` for the ViT, the held-out
shape accuracy of ``training.checks.vision``'s linear probe fitted on N scenes: the one number
that compares readouts.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json

import torch
import torch.nn.functional as F
from torch import nn

from engine.api import RuntimeRequest
from engine.config import wegen_tiny
from engine.errors import WeGenError
from engine.runtime import select_runtime
from engine.vision import VisionEncoder
from training.checks.vision import check_vision
from training.stages.vision import (
    CELL_ATTRIBUTES,
    cell_features,
    make_vision_batch,
    token_scores,
)

TOWERS = ("vit", "cnn")
READOUTS = ("mean", "max", "dense")


class ConvTower(nn.Module):
    """Pixels (B, 3, 128, 128) in [0, 1] -> (B, 64, width): four stride-2 convolutions."""

    def __init__(self, width: int) -> None:
        super().__init__()
        chans = (3, 32, 64, 128)
        layers: list[nn.Module] = []
        for a, b in itertools.pairwise(chans):
            layers += [nn.Conv2d(a, b, 3, 2, 1), nn.GELU()]
        self.net = nn.Sequential(*layers, nn.Conv2d(chans[-1], width, 3, 2, 1))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.net(pixels * 2 - 1).flatten(2).transpose(1, 2)


def shape_learning(
    tower: str = "vit",
    readout: str = "mean",
    steps: int = 200,
    batch_size: int = 32,
    every: int = 25,
    lr: float = 1e-3,
    seed: int = 0,
    device: str = "cpu",
    probe: int = 0,
    stem: tuple[int, ...] | None = None,
) -> dict:
    """Train ``tower`` with a shape head read out as ``readout``: the accuracy curve, and with
    ``probe`` > 0 (ViT only) the held-out linear-probe shape accuracy afterwards. ``stem``: the
    ViT's conv stem widths, ``()`` for EVA's linear patch embedding, None for the preset's."""
    if tower not in TOWERS:
        raise ValueError(f"tower must be one of {', '.join(TOWERS)}, not {tower!r}")
    if readout not in READOUTS:
        raise ValueError(f"readout must be one of {', '.join(READOUTS)}, not {readout!r}")
    if (probe or stem is not None) and tower != "vit":
        raise ValueError("the probe and the conv stem are for the ViT tower; use --tower vit")
    torch.manual_seed(seed)
    config = wegen_tiny().vision
    if stem is not None:
        config = dataclasses.replace(config, conv_stem=stem)
    model = VisionEncoder(config) if tower == "vit" else ConvTower(config.width)
    classes = len(CELL_ATTRIBUTES["shape"]) + (readout == "dense")  # dense: background first
    head = nn.Linear(config.width, classes)
    model.to(device)
    head.to(device)
    params = [*model.parameters(), *head.parameters()]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.01, betas=(0.9, 0.99))
    curve: list[dict[str, float]] = []
    hits = total = 0
    for step in range(steps):
        batch = make_vision_batch(config.image_size, batch_size, seed, step, 0)
        feats = model(batch["pixels"].to(device))
        semantic = batch["semantic"][:, None].to(device) > 0
        if readout == "dense":
            logits = head(feats)  # (B, 64, 1 + shapes)
            per_token, target = token_scores(logits, batch["shape_tokens"].to(device), semantic)
            weight = semantic.expand_as(per_token).float()
            loss = (per_token * weight).sum() / weight.sum().clamp(min=1)
        else:
            target = batch["shape"].to(device).masked_fill(~semantic, -100)
            logits = head(cell_features(feats, readout))
            loss = F.cross_entropy(
                logits.reshape(-1, classes), target.reshape(-1), ignore_index=-100
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        scored = target >= 0
        hits += int(((logits.argmax(-1) == target) & scored).sum())
        total += int(scored.sum())
        if (step + 1) % every == 0 or step + 1 == steps:
            curve.append({"step": step + 1, "shape_accuracy": round(hits / max(1, total), 4)})
            hits = total = 0
    result: dict = {"tower": tower, "readout": readout, "curve": curve}
    if probe:
        result["probe_shape"] = check_vision(model, n=probe, n_eval=300, seed=seed)["shape"]
    return result


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--tower", choices=TOWERS, default="vit")
    ap.add_argument("--readout", choices=READOUTS, default="mean")
    ap.add_argument(
        "--conv-stem",
        default="preset",
        help="ViT only: the preset's conv stem (default), 'none' for EVA's linear patch "
        "embedding, or comma-separated widths (e.g. 16,32,64)",
    )
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--every", type=int, default=25)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda, ...")
    ap.add_argument(
        "--probe", type=int, default=0, help="fit check_vision's shape probe on N scenes after"
    )
    args = ap.parse_args(argv)
    if args.steps < 1 or args.batch < 1 or args.every < 1:
        ap.error("--steps, --batch and --every must be at least 1")
    if args.probe and (args.probe < 10 or args.tower != "vit"):
        ap.error("--probe needs at least 10 scenes and --tower vit")
    stem = None
    if args.conv_stem != "preset":
        if args.tower != "vit":
            ap.error("--conv-stem is for the ViT tower (--tower vit)")
        try:
            stem = () if args.conv_stem == "none" else tuple(map(int, args.conv_stem.split(",")))
            dataclasses.replace(wegen_tiny().vision, conv_stem=stem)
        except ValueError as e:
            ap.error(f"--conv-stem {args.conv_stem!r}: {e}")
    try:
        device = select_runtime(RuntimeRequest(device=args.device, precision="fp32")).device
    except WeGenError as e:
        ap.error(str(e))
    result = shape_learning(
        args.tower,
        args.readout,
        args.steps,
        args.batch,
        args.every,
        args.lr,
        args.seed,
        str(device),
        args.probe,
        stem,
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
