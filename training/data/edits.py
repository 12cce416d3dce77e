"""Changes to a scene, phrased two ways: as an instruction ("make the red star blue") for edits
and as a narration ("the red star turns blue") for DIIC frame sequences.

A change touches one object (or the background); every other object keeps its exact
``ObjectSpec`` and so renders identical pixels. Objects are referred to as "the {colour}
{shape}", which is unique within a scene.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

from training.data import captions as cap
from training.data.world import (
    BACKGROUNDS,
    COLOURS,
    MAX_OBJECTS,
    PATTERNS,
    SIZES,
    ObjectSpec,
    Scene,
    sample_object,
)

#: Instruction edits (all of them change exactly one thing).
EDIT_KINDS: tuple[str, ...] = (
    "recolour",
    "move",
    "resize",
    "repattern",
    "add",
    "remove",
    "background",
)
#: What may happen between two DIIC frames (instances keep their identity).
DYNAMICS_KINDS: tuple[str, ...] = ("move", "resize", "recolour", "add", "remove")

RECOLOUR_VERBS = (
    "make {obj} {value}",
    "change the colour of {obj} to {value}",
    "paint {obj} {value}",
)
MOVE_VERBS = ("move {obj} {value}", "put {obj} {value}")
RESIZE_VERBS = ("make {obj} {value}",)
REPATTERN_VERBS = ("make {obj} {value}",)
ADD_VERBS = ("add {value}", "put {value}")
REMOVE_VERBS = ("remove {obj}", "delete {obj}", "take away {obj}")
BACKGROUND_VERBS = ("change the background to {value}", "make the background {value}")
NARRATIONS = {
    "recolour": ("{obj} turns {value}", "{obj} changes colour to {value}"),
    "move": ("{obj} moves {value}", "{obj} slides {value}"),
    "resize": ("{obj} {value}",),
    "add": ("{value} appears",),
    "remove": ("{obj} disappears", "{obj} leaves"),
}


@dataclass(frozen=True)
class Change:
    kind: str
    before: Scene
    after: Scene
    instruction: str  # imperative, for edits
    narration: str  # descriptive, for DIIC
    touched: str  # the grid cell the change is about ("" for the background)


def destination(position: str, rng: random.Random | None = None) -> str:
    """ "to the top left", "to the centre": a position phrase with "to" in front."""
    phrase = cap.word(cap.POSITION_WORDS, position, rng)
    return "to " + phrase.split(" ", 1)[1]


def _text(templates, rng: random.Random, **fields) -> str:
    return rng.choice(templates).format(**fields)


def sample_change(
    scene: Scene,
    rng: random.Random,
    *,
    kinds: tuple[str, ...] = EDIT_KINDS,
    allowed=None,
    avoid: frozenset[str] = frozenset(),
) -> Change | None:
    """A random change of one of ``kinds``; new or changed objects pass ``allowed(obj)``;
    objects in cells ``avoid`` are left alone. None if no such change exists."""
    order = list(kinds)
    rng.shuffle(order)
    candidates = [o for o in scene.objects if o.position not in avoid]
    for kind in order:
        change = _try_change(kind, scene, rng, candidates, allowed, avoid)
        if change is not None:
            return change
    return None


def _ok(obj: ObjectSpec, allowed) -> bool:
    return allowed is None or allowed(obj)


def _try_change(kind, scene, rng, candidates, allowed, avoid) -> Change | None:
    taken = {o.key for o in scene.objects}
    free = [p for p in scene.free_positions() if p not in avoid]
    if kind == "background":
        value = rng.choice([b for b in BACKGROUNDS if b != scene.background])
        after = replace(scene, background=value)
        text = cap.word(cap.BACKGROUND_WORDS, value, rng)
        return Change(
            kind,
            scene,
            after,
            _text(BACKGROUND_VERBS, rng, value=text),
            f"the background changes to {text}",
            "",
        )
    if kind == "add":
        if len(scene.objects) >= MAX_OBJECTS or not free:
            return None
        new = sample_object(rng, rng.choice(free), taken=taken, allowed=allowed)
        value = cap.describe_object(new, rng)
        return Change(
            kind,
            scene,
            scene.add_object(new),
            _text(ADD_VERBS, rng, value=value),
            _text(NARRATIONS["add"], rng, value=value),
            new.position,
        )
    if not candidates:
        return None
    obj = rng.choice(candidates)
    the = cap.the(obj, rng)
    if kind == "remove":
        if len(scene.objects) <= 1:
            return None
        return Change(
            kind,
            scene,
            scene.replace_object(obj, None),
            _text(REMOVE_VERBS, rng, obj=the),
            _text(NARRATIONS["remove"], rng, obj=the),
            obj.position,
        )
    new, value, narrated = _modified(kind, obj, rng, taken, free)
    if new is None or not _ok(new, allowed):
        return None
    templates = {
        "recolour": RECOLOUR_VERBS,
        "move": MOVE_VERBS,
        "resize": RESIZE_VERBS,
        "repattern": REPATTERN_VERBS,
    }[kind]
    instruction = _text(templates, rng, obj=the, value=value)
    narration = _text(
        NARRATIONS.get(kind, ("{obj} becomes {value}",)), rng, obj=the, value=narrated
    )
    return Change(kind, scene, scene.replace_object(obj, new), instruction, narration, obj.position)


def _modified(kind: str, obj: ObjectSpec, rng: random.Random, taken, free):
    """(new object, instruction value, narration value) or (None, "", "")."""
    if kind == "recolour":
        colours = [c for c in COLOURS if c != obj.colour and (c, obj.shape) not in taken]
        if not colours:
            return None, "", ""
        colour = rng.choice(colours)
        word = cap.word(cap.COLOUR_WORDS, colour, rng)
        return replace(obj, colour=colour), word, word
    if kind == "move":
        if not free:
            return None, "", ""
        position = rng.choice(free)
        value = destination(position, rng)
        return replace(obj, position=position), value, value
    if kind == "resize":
        i = SIZES.index(obj.size)
        j = rng.choice([k for k in range(len(SIZES)) if k != i])
        size = SIZES[j]
        if abs(i - j) == 1 and rng.random() < 0.6:
            value = "bigger" if j > i else "smaller"
            narrated = "grows" if j > i else "shrinks"
        else:
            value = cap.word(cap.SIZE_WORDS, size, rng)
            narrated = f"becomes {value}"
        return replace(obj, size=size), value, narrated
    if kind == "repattern":
        pattern = rng.choice([p for p in PATTERNS if p != obj.pattern])
        word = cap.word(cap.PATTERN_WORDS, pattern, rng)
        return replace(obj, pattern=pattern), word, word
    raise ValueError(f"unknown change {kind!r}")


def sample_dynamics(
    scene: Scene, rng: random.Random, *, allowed=None, max_changes: int = 2
) -> tuple[Scene, str, tuple[Change, ...]]:
    """One DIIC step: 1..``max_changes`` changes to different objects, narrated together
    ("the red star moves to the left and the blue circle grows")."""
    changes: list[Change] = []
    touched: set[str] = set()
    current = scene
    for _ in range(rng.randint(1, max_changes)):
        change = sample_change(
            current, rng, kinds=DYNAMICS_KINDS, allowed=allowed, avoid=frozenset(touched)
        )
        if change is None:
            break
        changes.append(change)
        touched.add(change.touched)
        if change.kind == "move":
            touched.add(
                next(o.position for o in change.after.objects if o not in change.before.objects)
            )
        current = change.after
    return current, cap.join_list([c.narration for c in changes]), tuple(changes)
