"""Scores for evaluation: compare the judge's reading of an image with the ground truth.

* ``attribute_accuracy``: per attribute, the share of ground-truth objects read correctly (an
  object the judge missed counts as wrong for every attribute);
* ``scene_match``: every object read right, no extra object (optionally background and style);
* ``preservation``: of the objects an edit should not touch, the share still read unchanged;
* ``judge_accuracy``: how well the judge reads clean renders (the figure tests check);
* ``image_distance`` / ``diversity``: distance in a small perceptual feature space (CIELAB
  colours and edge strength on a 32 x 32 grid), and its mean over all pairs of images.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterable, Sequence
from dataclasses import replace

import numpy as np
from PIL import Image

from training.data.judge import ParsedScene, srgb_to_lab
from training.data.world import OBJECT_ATTRIBUTES, ObjectSpec, Scene

#: Scene-level attributes the judge also reads.
SCENE_ATTRIBUTES: tuple[str, ...] = ("count", "background", "style")
FEATURE_SIZE = 32


def _pairs(truth: Scene, parsed: ParsedScene):
    return [(o, parsed.at(o.position)) for o in truth.objects]


def attribute_hits(truth: Scene, parsed: ParsedScene) -> dict[str, tuple[int, int]]:
    """Per attribute: (correct, total) for one image. Objects are matched by grid cell."""
    hits = {a: 0 for a in OBJECT_ATTRIBUTES}
    for obj, read in _pairs(truth, parsed):
        for a in OBJECT_ATTRIBUTES:
            hits[a] += read is not None and getattr(read, a) == getattr(obj, a)
    n = len(truth.objects)
    result = {a: (hits[a], n) for a in OBJECT_ATTRIBUTES}
    result["count"] = (int(len(parsed.objects) == n), 1)
    result["background"] = (int(parsed.background == truth.background), 1)
    result["style"] = (int(parsed.style == truth.style), 1)
    return result


def attribute_accuracy(pairs: Iterable[tuple[Scene, ParsedScene]]) -> dict[str, float]:
    """Accuracy of each object attribute (over objects) and scene attribute (over images)."""
    correct: dict[str, int] = {}
    total: dict[str, int] = {}
    for truth, parsed in pairs:
        for name, (c, t) in attribute_hits(truth, parsed).items():
            correct[name] = correct.get(name, 0) + c
            total[name] = total.get(name, 0) + t
    return {name: correct[name] / total[name] for name in total if total[name]}


def scene_match(truth: Scene, parsed: ParsedScene, *, look: bool = False) -> bool:
    """All objects present with every attribute right and nothing extra; with ``look`` the
    background and style must match too."""
    if len(parsed.objects) != len(truth.objects):
        return False
    for obj, read in _pairs(truth, parsed):
        if read is None or read.attributes() != obj.attributes():
            return False
    return not look or (parsed.background, parsed.style) == (truth.background, truth.style)


def untouched(before: Scene, after: Scene) -> list[ObjectSpec]:
    """Objects an edit from ``before`` to ``after`` left exactly as they were."""
    kept = {tuple(o.attributes().values()) for o in after.objects}
    return [o for o in before.objects if tuple(o.attributes().values()) in kept]


def preservation(before: Scene, after: Scene, parsed_after: ParsedScene) -> float:
    """Share of the objects the edit ``before`` -> ``after`` should keep that the judge reads
    unchanged (same cell, all attributes) in the generated image; 1.0 if there are none."""
    keep = untouched(before, after)
    if not keep:
        return 1.0
    same = 0
    for obj in keep:
        read = parsed_after.at(obj.position)
        same += read is not None and read.attributes() == obj.attributes()
    return same / len(keep)


def image_features(image: Image.Image) -> np.ndarray:
    """(32 * 32 * 4,) CIELAB colour and edge strength, scaled to comparable ranges."""
    small = image.convert("RGB").resize((FEATURE_SIZE, FEATURE_SIZE), Image.Resampling.BOX)
    lab = srgb_to_lab(np.asarray(small, np.float32)) / np.array([100.0, 128.0, 128.0])
    light = lab[..., 0]
    gx = np.zeros_like(light)
    gy = np.zeros_like(light)
    gx[:, 1:-1] = light[:, 2:] - light[:, :-2]
    gy[1:-1] = light[2:] - light[:-2]
    return np.concatenate([lab, np.hypot(gx, gy)[..., None]], -1).ravel()


def image_distance(a: Image.Image, b: Image.Image) -> float:
    """Root-mean-square feature difference: 0 for identical images, about 0.1-0.4 between
    different scenes of the shapes world."""
    return float(np.sqrt(np.mean((image_features(a) - image_features(b)) ** 2)))


def diversity(images: Sequence[Image.Image]) -> float:
    """Mean pairwise ``image_distance`` (0 for fewer than two images)."""
    feats = [image_features(im) for im in images]
    dists = [float(np.sqrt(np.mean((x - y) ** 2))) for x, y in itertools.combinations(feats, 2)]
    return float(np.mean(dists)) if dists else 0.0


def judge_accuracy(
    n_scenes: int = 300,
    *,
    seed: int = 0,
    styles: Sequence[str] = ("flat", "outline", "soft"),
    size: int = 128,
) -> dict[str, float]:
    """The judge's accuracy on clean renders of ``n_scenes`` random scenes (both splits), the
    i-th drawn in ``styles[i % len(styles)]``; also ``"scene"``, the share read entirely right."""
    from training.data.judge import parse_scene
    from training.data.render import render_scene
    from training.data.splits import sample_scene

    rng = random.Random(f"judge/{seed}")
    pairs, matches = [], 0
    for i in range(n_scenes):
        scene = sample_scene(rng, "heldout" if i % 2 else "train")
        scene = replace(scene, style=styles[i % len(styles)])
        parsed = parse_scene(render_scene(scene, size))
        pairs.append((scene, parsed))
        matches += scene_match(scene, parsed, look=True)
    return attribute_accuracy(pairs) | {"scene": matches / n_scenes}
