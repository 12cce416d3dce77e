"""Stage-0 check: which scene attributes the frozen vision tower's 64 features carry, read by
linear probes.

    python -m training.checks.vision --model DIR [--n 1500] [--device auto]

Everything after stage 0 reads these features: the de-tokenizer draws from them and the LLM
learns to predict them, so an attribute they do not carry cannot come back in any drawing. This
fits one linear probe per attribute (ridge regression on one-hot targets, argmax to read) on
``n`` training-split scenes: the object attributes (shape, colour, size, pattern) from the
features averaged over the object's cell of the 3x3 scene grid, as stage 0's semantic head reads
them, and background and drawing style from the mean feature. A ``position`` probe reads which
cell that averaged feature came from: the features' order tells the de-tokenizer where things
are, but the LLM sees them through positions in a sequence, and answers "Where is ...?" only as
well as the features themselves say where they sit. It then scores

* ``train``: other training-split scenes (does the tower carry the attribute at all?);
* ``heldout``: held-out scenes, whose attribute combinations training never showed (does it carry
  the attribute apart from the others?);
* ``chance``: the share of the most common value among the probe's fitting rows.

A tower ready for stage 1 reads every attribute far above chance on both. Run it on a model
folder or on a run's output folder after stage 0 (``OUT`` of ``training.reproduce``).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Sequence

import torch

from engine.vision import VisionEncoder
from training.checks.decoder import load_for_check
from training.data.render import render_scene
from training.data.splits import sample_scene
from training.data.world import POSITIONS, STYLES, Scene
from training.stages.vision import BACKGROUND_NAMES, CELL_ATTRIBUTES, cell_features, pixels_of

#: read from an object's cell feature: its attributes, and which cell it is (the LLM must know
#: *where* a feature sits to answer "Where is ...?")
CELL_VALUES: dict[str, tuple[str, ...]] = {**CELL_ATTRIBUTES, "position": POSITIONS}
#: scene attributes, read from the mean feature
SCENE_VALUES: dict[str, tuple[str, ...]] = {"background": BACKGROUND_NAMES, "style": STYLES}
RIDGE = 1.0


@torch.no_grad()
def encode_scenes(
    vision: VisionEncoder, scenes: Sequence[Scene], batch: int = 64
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cell features (N, 9, F) and mean features (N, F) of the scenes' clean renders."""
    device = next(vision.parameters()).device
    cells, means = [], []
    for i in range(0, len(scenes), batch):
        images = [render_scene(s, vision.config.image_size) for s in scenes[i : i + batch]]
        feats = vision(vision.preprocess_pixels(pixels_of(images).to(device))).float().cpu()
        cells.append(cell_features(feats))
        means.append(feats.mean(1))
    return torch.cat(cells), torch.cat(means)


def probe_rows(
    scenes: Sequence[Scene], cells: torch.Tensor, means: torch.Tensor
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Per attribute: (inputs, value indices): one row per object for object attributes (its
    cell's feature), one per scene for scene attributes (the mean feature)."""
    rows: dict[str, tuple[list[torch.Tensor], list[int]]] = {
        name: ([], []) for name in (*CELL_VALUES, *SCENE_VALUES)
    }
    for scene, cell, mean in zip(scenes, cells, means, strict=True):
        for obj in scene.objects:
            for name, values in CELL_VALUES.items():
                rows[name][0].append(cell[POSITIONS.index(obj.position)])
                rows[name][1].append(values.index(getattr(obj, name)))
        for name, values in SCENE_VALUES.items():
            rows[name][0].append(mean)
            rows[name][1].append(values.index(getattr(scene, name)))
    return {name: (torch.stack(x), torch.tensor(y)) for name, (x, y) in rows.items()}


def _with_bias(x: torch.Tensor) -> torch.Tensor:
    return torch.cat([x.double(), torch.ones(len(x), 1, dtype=torch.float64)], 1)


def fit_probe(x: torch.Tensor, y: torch.Tensor, classes: int, ridge: float = RIDGE) -> torch.Tensor:
    """Ridge regression from ``x`` (N, F) to one-hot ``y``: weights (F + 1, classes), bias last."""
    xa = _with_bias(x)
    target = torch.nn.functional.one_hot(y, classes).double()
    gram = xa.T @ xa + ridge * torch.eye(xa.shape[1], dtype=torch.float64)
    return torch.linalg.solve(gram, xa.T @ target)


def fit_probes(
    rows: dict[str, tuple[torch.Tensor, torch.Tensor]],
) -> dict[str, torch.Tensor]:
    """One probe per attribute from `probe_rows` of the fitting scenes."""
    values = {**CELL_VALUES, **SCENE_VALUES}
    return {name: fit_probe(x, y, len(values[name])) for name, (x, y) in rows.items()}


def probe_accuracy(weights: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> float:
    return float(((_with_bias(x) @ weights).argmax(1) == y).double().mean())


def check_vision(vision: VisionEncoder, n: int = 1500, n_eval: int = 300, seed: int = 0) -> dict:
    """Probe accuracies per attribute on training-split and held-out scenes (see the module)."""
    if n < 10 or n_eval < 1:
        raise ValueError("check_vision needs n >= 10 fitting scenes and n_eval >= 1")
    rng = random.Random(f"check_vision/{seed}")
    fit = [sample_scene(rng, "train") for _ in range(n)]
    splits = {
        "train": [sample_scene(rng, "train") for _ in range(n_eval)],
        "heldout": [sample_scene(rng, "heldout") for _ in range(n_eval)],
    }
    vision.eval()
    fit_rows = probe_rows(fit, *encode_scenes(vision, fit))
    eval_rows = {k: probe_rows(s, *encode_scenes(vision, s)) for k, s in splits.items()}
    result: dict = {"n": n, "n_eval": n_eval}
    for name, weights in fit_probes(fit_rows).items():
        y = fit_rows[name][1]
        result[name] = {
            "chance": round(float(torch.bincount(y).max()) / len(y), 4),
            **{k: round(probe_accuracy(weights, *rows[name]), 4) for k, rows in eval_rows.items()},
        }
    return result


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--model", required=True, help="a model folder, or a training run's OUT")
    ap.add_argument("--n", type=int, default=1500, help="training-split scenes to fit probes on")
    ap.add_argument("--n-eval", type=int, default=300, help="scenes scored per split")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda, ...")
    args = ap.parse_args(argv)
    model = load_for_check(args.model, args.device)
    try:
        print(json.dumps(check_vision(model.vision, args.n, args.n_eval, args.seed)))
    except ValueError as e:
        sys.exit(str(e))


if __name__ == "__main__":
    main()
