"""How fast a vision tower learns to tell the shapes apart, by tower and by cell readout.

    python -m training.shape_learning --tower vit --readout mean --steps 200
    python -m training.shape_learning --tower cnn --readout max --steps 200 --device cuda

An experiment for stage 0 (training/stage0_vision.py), whose tower learns colour in a few
hundred steps but shape barely (``training.check_vision``). It trains one tower from scratch on
stage 0's batches with a shape head alone: a linear layer over each scene-grid cell's pooled
features (``--readout mean`` as stage 0 reads them, or ``max``). ``vit`` is the preset's EVA
tower; ``cnn`` a 4-layer strided convolution to the same 8x8 grid of the same width, the
reference for how hard the task is. It prints the mean training accuracy of the shape head over
each window of ``--every`` steps, as JSON.
"""

from __future__ import annotations

import argparse
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
from training.stage0_vision import CELL_ATTRIBUTES, cell_features, make_vision_batch

TOWERS = ("vit", "cnn")


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
) -> list[dict[str, float]]:
    """Train ``tower`` with a shape head on ``readout``-pooled cells; the accuracy curve."""
    if tower not in TOWERS:
        raise ValueError(f"tower must be one of {', '.join(TOWERS)}, not {tower!r}")
    torch.manual_seed(seed)
    config = wegen_tiny().vision
    model = VisionEncoder(config) if tower == "vit" else ConvTower(config.width)
    head = nn.Linear(config.width, len(CELL_ATTRIBUTES["shape"]))
    model.to(device)
    head.to(device)
    params = [*model.parameters(), *head.parameters()]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.01, betas=(0.9, 0.99))
    curve: list[dict[str, float]] = []
    hits = total = 0
    for step in range(steps):
        batch = make_vision_batch(config.image_size, batch_size, seed, step, 0)
        target = batch["shape"].masked_fill(batch["semantic"][:, None] == 0, -100).to(device)
        logits = head(cell_features(model(batch["pixels"].to(device)), readout))
        loss = F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=-100
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
    return curve


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--tower", choices=TOWERS, default="vit")
    ap.add_argument("--readout", choices=("mean", "max"), default="mean")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--every", type=int, default=25)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda, ...")
    args = ap.parse_args(argv)
    if args.steps < 1 or args.batch < 1 or args.every < 1:
        ap.error("--steps, --batch and --every must be at least 1")
    try:
        device = select_runtime(RuntimeRequest(device=args.device, precision="fp32")).device
    except WeGenError as e:
        ap.error(str(e))
    curve = shape_learning(
        args.tower,
        args.readout,
        args.steps,
        args.batch,
        args.every,
        args.lr,
        args.seed,
        str(device),
    )
    print(json.dumps({"tower": args.tower, "readout": args.readout, "curve": curve}))


if __name__ == "__main__":
    main()
