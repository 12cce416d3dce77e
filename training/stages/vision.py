"""Stage 0 (tiny only): train the vision tower so its 64 pooled features are semantic and enough to
redraw the image.

The official model uses a frozen EVA-CLIP-E; no such weights exist at our size, so we train the
small EVA ourselves with two heads that are discarded afterwards:
* a semantic head: from the 8x8 feature grid pooled to the 3x3 scene grid, predict for every
  cell whether it holds an object and that object's shape, colour, size and pattern, and from the
  mean feature the background and drawing style;
* a token head: from each of the 64 features alone, the share of its 16x16-pixel patch that
  each shape, colour, size and pattern covers (the rest is background). A dense, local target:
  read through the cell means alone, a ViT learns colour in a few hundred steps but shape barely;
  with the preset's conv stem and this head it learns shape too (``training.checks.shape_learning``,
  the model card);
* a reconstruction head: a small upsampling decoder that redraws the input from the 64 features.
A penalty keeps the feature RMS near 1, the scale the projectors and the de-tokenizer expect.
Inputs are clean renders, degraded renders and condition maps (all three reach the encoder in
use); attribute targets apply to the renders only.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.template import NUM_IMAGE_TOKENS
from engine.vision import VisionEncoder
from training.data.conditions import render_condition
from training.data.degrade import degrade, sample_degradations
from training.data.render import object_coverage, render_scene
from training.data.samples import Sample
from training.data.splits import sample_scene
from training.data.world import (
    BACKGROUNDS,
    OBJECT_VALUES,
    POSITIONS,
    STYLES,
    Scene,
)

BACKGROUND_NAMES = tuple(BACKGROUNDS)
#: the object attributes the semantic head reads from each cell of the scene grid, and their values
#: (all but position, which is the cell itself; the heads are built in this order)
CELL_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    name: OBJECT_VALUES[name] for name in ("shape", "colour", "size", "pattern")
}
HEADS = {name: len(values) for name, values in CELL_ATTRIBUTES.items()}


def pixels_of(images: list) -> torch.Tensor:
    """PIL images -> (B, 3, H, W) float in [0, 1]."""
    return torch.from_numpy(
        np.stack([np.asarray(im, dtype=np.float32) / 255.0 for im in images])
    ).permute(0, 3, 1, 2)


@torch.no_grad()
def target_features(
    vision: VisionEncoder, samples: Sequence[Sample], chunk: int = 64
) -> torch.Tensor:
    """(N, 64, F) float32 on the CPU: the tower's features of each sample's target render (its
    last image), read ``chunk`` renders at a time on the tower's device."""
    device = next(vision.parameters()).device
    pixels = pixels_of([s.images[-1] for s in samples])
    return torch.cat(
        [
            vision(vision.preprocess_pixels(part.to(device))).float().cpu()
            for part in pixels.split(chunk)
        ]
    )


def cell_features(feats: torch.Tensor, reduce: str = "mean") -> torch.Tensor:
    """(B, N, F) features of a square token grid -> (B, 9, F): the grid averaged (``mean``) or
    max-pooled (``max``) over the scene's 3x3 cells, in ``POSITIONS`` order."""
    b, n, c = feats.shape
    side = int(n**0.5)
    grid = feats.transpose(1, 2).reshape(b, c, side, side)
    if reduce not in ("mean", "max"):
        raise ValueError(f"reduce must be 'mean' or 'max', not {reduce!r}")
    pool = F.adaptive_avg_pool2d if reduce == "mean" else F.adaptive_max_pool2d
    return pool(grid, 3).flatten(2).transpose(1, 2)


class VisionObjective(nn.Module):
    def __init__(self, vision: VisionEncoder) -> None:
        super().__init__()
        self.vision = vision
        width = vision.config.width
        self.cell_head = nn.Linear(width, 1 + sum(HEADS.values()))
        self.scene_head = nn.Linear(width, len(BACKGROUNDS) + len(STYLES))
        self.token_head = nn.Linear(width, sum(1 + k for k in HEADS.values()))
        chans = (128, 96, 64, 32)
        layers: list[nn.Module] = [nn.Conv2d(width, chans[0], 1)]
        size = 8
        for i, c in enumerate(chans):
            nxt = chans[min(i + 1, len(chans) - 1)]
            layers += [
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Conv2d(c, nxt, 3, padding=1),
                nn.GELU(),
            ]
            size *= 2
        layers.append(nn.Conv2d(chans[-1], 3, 3, padding=1))
        self.redraw = nn.Sequential(*layers)  # 8x8 -> 128x128

    def forward(
        self, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        feats = self.vision(batch["pixels"])  # (B, 64, F)
        b, _, c = feats.shape
        grid = feats.transpose(1, 2).reshape(b, c, 8, 8)
        logits = self.cell_head(cell_features(feats))  # (B, 9, 1 + sum heads)
        semantic = batch["semantic"]  # (B,) 1 where attribute targets apply
        present = batch["present"]  # (B, 9) float
        attr_loss = F.binary_cross_entropy_with_logits(
            logits[..., 0], present, reduction="none"
        ).mean(1)
        offset = 1
        logged: dict[str, torch.Tensor] = {}
        for name, k in HEADS.items():
            target = batch[name]  # (B, 9) long, -100 where no object
            head = logits[..., offset : offset + k]
            ce = F.cross_entropy(
                head.reshape(-1, k), target.reshape(-1), ignore_index=-100, reduction="none"
            ).reshape(b, 9)
            attr_loss = attr_loss + ce.sum(1) / present.sum(1).clamp(min=1)
            # the head's accuracy on this batch's rendered objects: is the attribute in there yet?
            scored = (target >= 0) & (semantic[:, None] > 0)
            hits = (head.argmax(-1) == target) & scored
            logged[f"{name}_acc"] = hits.sum() / scored.sum().clamp(min=1)
            offset += k
        dense = token_loss(self.token_head(feats), batch, logged)
        logged["token_loss"] = (dense * semantic).sum() / semantic.sum().clamp(min=1)
        attr_loss = attr_loss + dense
        scene_logits = self.scene_head(feats.mean(1))
        nb = len(BACKGROUNDS)
        attr_loss = attr_loss + F.cross_entropy(
            scene_logits[:, :nb], batch["background"], reduction="none"
        )
        attr_loss = attr_loss + F.cross_entropy(
            scene_logits[:, nb:], batch["style"], reduction="none"
        )
        attr_loss = (attr_loss * semantic).sum() / semantic.sum().clamp(min=1)
        redraw = self.redraw(grid)  # (B, 3, 128, 128)
        target = F.interpolate(
            batch["pixels"], size=redraw.shape[-2:], mode="bilinear", align_corners=False
        )
        recon = F.l1_loss(redraw, target)
        rms = feats.pow(2).mean().sqrt()
        scale = (rms - 1).pow(2)
        loss = attr_loss + 5.0 * recon + scale
        logged.update(attributes=attr_loss, recon_l1=recon, feature_rms=rms)
        return loss, logged


def token_loss(
    logits: torch.Tensor, batch: dict[str, torch.Tensor], logged: dict[str, torch.Tensor]
) -> torch.Tensor:
    """Per sample, the token head's cross-entropy against the coverage shares, summed over the
    attributes and averaged over the 64 tokens; logs each attribute's accuracy on the tokens an
    object covers at least half of."""
    offset = 0
    loss = logits.new_zeros(logits.shape[0])
    semantic = batch["semantic"][:, None] > 0
    for name, k in HEADS.items():
        head = logits[..., offset : offset + 1 + k]
        ce, target = token_scores(head, batch[f"{name}_tokens"], semantic)
        loss = loss + ce.mean(1)
        scored = target >= 0
        hits = (head.argmax(-1) == target) & scored
        logged[f"{name}_token_acc"] = hits.sum() / scored.sum().clamp(min=1)
        offset += 1 + k
    return loss


def token_scores(
    logits: torch.Tensor, share: torch.Tensor, semantic: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and coverage shares (B, 64, 1 + values), background first, and which samples carry
    attribute targets (B, 1) -> each token's cross-entropy against its shares (B, 64), and the
    value an object covers at least half of the token with (B, 64; -100 elsewhere and where the
    sample has no targets), to score accuracy on."""
    ce = -(share * F.log_softmax(logits, -1)).sum(-1)
    target = share.argmax(-1).masked_fill((share[..., 1:].max(-1).values < 0.5) | ~semantic, -100)
    return ce, target


def token_targets(scene: Scene, grid: int = 8) -> dict[str, torch.Tensor]:
    """Per attribute, (grid * grid, 1 + values): the share of each patch of a ``grid`` x ``grid``
    partition that is background or covered by an object with each value, row-major."""
    cover = torch.from_numpy(object_coverage(scene, grid)).flatten(1)  # (objects, grid*grid)
    out = {}
    for name, values in CELL_ATTRIBUTES.items():
        share = torch.zeros(grid * grid, 1 + len(values))
        for obj, c in zip(scene.objects, cover, strict=True):
            share[:, 1 + values.index(getattr(obj, name))] += c
        share[:, 0] = (1 - share[:, 1:].sum(1)).clamp(min=0)
        out[name] = share
    return out


def make_vision_batch(
    size: int, batch_size: int, seed: int, step: int, rank: int
) -> dict[str, torch.Tensor]:
    rng = random.Random(f"vision/{seed}/{step}/{rank}")
    images, rows = [], []
    for _ in range(batch_size):
        scene = sample_scene(rng, "train")
        roll = rng.random()
        if roll < 0.15:
            images.append(render_condition(rng.choice(("edges", "sketch")), scene, size))
            rows.append((scene, 0.0))
            continue
        image = render_scene(scene, size)
        if roll < 0.35:
            image = degrade(image, sample_degradations(rng))
        images.append(image)
        rows.append((scene, 1.0))
    batch: dict[str, torch.Tensor] = {
        "pixels": pixels_of(images),
        "semantic": torch.tensor([r[1] for r in rows]),
    }
    present = torch.zeros(batch_size, 9)
    targets = {name: torch.full((batch_size, 9), -100, dtype=torch.long) for name in HEADS}
    for i, (scene, _) in enumerate(rows):
        for obj in scene.objects:
            cell = POSITIONS.index(obj.position)
            present[i, cell] = 1
            for name in HEADS:
                targets[name][i, cell] = CELL_ATTRIBUTES[name].index(getattr(obj, name))
    batch["present"] = present
    batch.update(targets)
    side = int(NUM_IMAGE_TOKENS**0.5)
    tokens = [token_targets(scene, side) for scene, _ in rows]
    for name in HEADS:
        batch[f"{name}_tokens"] = torch.stack([t[name] for t in tokens])
    batch["background"] = torch.tensor([BACKGROUND_NAMES.index(s.background) for s, _ in rows])
    batch["style"] = torch.tensor([STYLES.index(s.style) for s, _ in rows])
    return batch
