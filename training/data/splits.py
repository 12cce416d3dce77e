"""Held-out splits: attribute combinations that never appear in training.

The model is evaluated only on samples of the ``"heldout"`` split, so a good score means it
composes attributes it learnt separately rather than recalling seen combinations.

Held out (never in any image, caption, question or instruction of the ``"train"`` split):

* six shape x colour pairs, one per shape and one per colour:
  green star, purple circle, blue triangle, orange square, pink hexagon, yellow cross;
* three shape x position pairs: a circle at the top left, a star in the centre,
  a triangle at the bottom right;
* one style x background pair: pixel style on a cream background.

Every shape, colour, position, style and background still appears in training, just never in
these combinations. A ``"heldout"`` scene contains at least one held-out combination; a
``"train"`` scene contains none. Task builders (tasks.py) check every scene and every text of a
sample against these rules, so a training sample never even *names* a held-out pair.
"""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Literal

from training.data.world import (
    BACKGROUNDS,
    COLOURS,
    MAX_OBJECTS,
    POSITIONS,
    STYLES,
    ObjectSpec,
    Scene,
    sample_object,
    sample_objects,
)

Split = Literal["train", "heldout"]
SPLITS: tuple[Split, ...] = ("train", "heldout")

HELDOUT_SHAPE_COLOUR: frozenset[tuple[str, str]] = frozenset(
    {
        ("star", "green"),
        ("circle", "purple"),
        ("triangle", "blue"),
        ("square", "orange"),
        ("hexagon", "pink"),
        ("cross", "yellow"),
    }
)
HELDOUT_SHAPE_POSITION: frozenset[tuple[str, str]] = frozenset(
    {("circle", "top left"), ("star", "centre"), ("triangle", "bottom right")}
)
HELDOUT_STYLE_BACKGROUND: frozenset[tuple[str, str]] = frozenset({("pixel", "cream")})


def check_split(split: str) -> Split:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return split  # type: ignore[return-value]


def is_heldout_key(colour: str, shape: str) -> bool:
    """Whether naming "the {colour} {shape}" names a held-out pair."""
    return (shape, colour) in HELDOUT_SHAPE_COLOUR


def is_heldout_object(obj: ObjectSpec) -> bool:
    return (obj.shape, obj.colour) in HELDOUT_SHAPE_COLOUR or (
        obj.shape,
        obj.position,
    ) in HELDOUT_SHAPE_POSITION


def is_heldout_look(background: str, style: str) -> bool:
    return (style, background) in HELDOUT_STYLE_BACKGROUND


def is_heldout_scene(scene: Scene) -> bool:
    """Whether the scene contains at least one held-out combination."""
    return is_heldout_look(scene.background, scene.style) or any(
        is_heldout_object(o) for o in scene.objects
    )


def is_train_object(obj: ObjectSpec) -> bool:
    return not is_heldout_object(obj)


def is_train_look(background: str, style: str) -> bool:
    return not is_heldout_look(background, style)


def _sample_look(rng: random.Random, split: Split) -> tuple[str, str]:
    while True:
        background, style = rng.choice(list(BACKGROUNDS)), rng.choice(STYLES)
        if split == "heldout" or is_train_look(background, style):
            return background, style


def sample_heldout_object(rng: random.Random, position: str | None, taken=()) -> ObjectSpec:
    """An object carrying one held-out combination (at ``position`` if given and possible)."""
    taken = set(taken)
    while True:
        if rng.random() < 0.7:
            shape, colour = rng.choice(sorted(HELDOUT_SHAPE_COLOUR))
            cell = position or rng.choice(POSITIONS)
        else:
            shape, cell = rng.choice(sorted(HELDOUT_SHAPE_POSITION))
            if position is not None and position != cell:
                continue
            colour = rng.choice(list(COLOURS))
        obj = replace(sample_object(rng, cell), shape=shape, colour=colour)
        if obj.key not in taken:
            return obj


def sample_scene(
    rng: random.Random, split: Split = "train", *, n_objects: int | None = None
) -> Scene:
    """A random scene of the split: ``train`` avoids every held-out combination, ``heldout``
    contains at least one (usually an object, sometimes the style x background pair)."""
    check_split(split)
    n = rng.randint(1, MAX_OBJECTS) if n_objects is None else n_objects
    if split == "train":
        objects = sample_objects(rng, n, allowed=is_train_object)
        background, style = _sample_look(rng, split)
        return Scene(objects, background, style)
    if rng.random() < 0.1:
        style, background = next(iter(HELDOUT_STYLE_BACKGROUND))
        return Scene(sample_objects(rng, n), background, style)
    first = sample_heldout_object(rng, None)
    others = [p for p in POSITIONS if p != first.position]
    rest = sample_objects(rng, n - 1, positions=others, allowed=lambda o: o.key != first.key)
    background, style = _sample_look(rng, split)
    objects = [first, *rest]
    rng.shuffle(objects)
    return Scene(tuple(objects), background, style)


def allowed_for(split: Split):
    """The object filter for new objects in a split (heldout: anything goes)."""
    return is_train_object if split == "train" else None


__all__ = [
    "HELDOUT_SHAPE_COLOUR",
    "HELDOUT_SHAPE_POSITION",
    "HELDOUT_STYLE_BACKGROUND",
    "SPLITS",
    "Split",
    "allowed_for",
    "check_split",
    "is_heldout_key",
    "is_heldout_look",
    "is_heldout_object",
    "is_heldout_scene",
    "sample_heldout_object",
    "sample_scene",
]
