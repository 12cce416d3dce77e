"""The shapes world: its vocabulary, the frozen scene dataclasses and the seeded scene sampler.

A scene is 1-4 objects on a background, drawn in one style. Every object sits in its own cell of
a 3 x 3 grid (so objects never overlap) with a small jitter that keeps it inside the cell, and no
two objects share a (colour, shape) pair, so "the red star" always names exactly one object.

Geometry is in normalised image units (0..1, origin top left, y down): an object's ``diameter``
is the larger side of its bounding box and it is centred at ``centre``. Rendering (render.py),
captions (captions.py), held-out splits (splits.py) and the judge (judge.py) all read these
definitions; nothing else spells the vocabulary.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

# --- vocabulary -----------------------------------------------------------------------------
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "hexagon", "cross")

#: Eight saturated colours, far apart in CIELAB and from every (light) background.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 35, 40),
    "orange": (245, 130, 20),
    "yellow": (240, 200, 15),
    "green": (40, 160, 60),
    "teal": (20, 170, 180),
    "blue": (35, 85, 215),
    "purple": (135, 55, 185),
    "pink": (240, 105, 175),
}
#: The second tone of a patterned object is its colour scaled by this factor (a darker shade).
PATTERN_SHADE = 0.5
#: The ink of the outline style.
INK: tuple[int, int, int] = (30, 30, 35)

SIZES: tuple[str, ...] = ("small", "medium", "large")
#: An object's diameter as a fraction of its grid cell (1/3 of the image side).
SIZE_FRACTION: dict[str, float] = {"small": 0.44, "medium": 0.64, "large": 0.84}
#: Space kept free between an object and its cell's border, as a fraction of the cell.
CELL_MARGIN = 0.05

#: The 3 x 3 grid, row by row; an object's position is the name of its cell.
POSITIONS: tuple[str, ...] = (
    "top left",
    "top",
    "top right",
    "left",
    "centre",
    "right",
    "bottom left",
    "bottom",
    "bottom right",
)

PATTERNS: tuple[str, ...] = ("plain", "striped", "dotted", "checkered")

#: Backgrounds: (top colour, bottom colour); plain ones have equal ends. All are light.
BACKGROUNDS: dict[str, tuple[tuple[int, int, int], tuple[int, int, int]]] = {
    "white": ((250, 250, 250), (250, 250, 250)),
    "light grey": ((215, 215, 218), (215, 215, 218)),
    "cream": ((248, 240, 212), (248, 240, 212)),
    "pale blue": ((200, 222, 245), (200, 222, 245)),
    "blue gradient": ((170, 200, 240), (245, 248, 252)),
    "peach gradient": ((252, 246, 236), (250, 205, 175)),
}

#: Drawing styles: flat fill; fill with a dark outline; soft (shaded and blurred); pixel art.
STYLES: tuple[str, ...] = ("flat", "outline", "soft", "pixel")

#: Every object attribute and its values, in the order captions and the judge report them.
OBJECT_VALUES: dict[str, tuple[str, ...]] = {
    "shape": SHAPES,
    "colour": tuple(COLOURS),
    "size": SIZES,
    "position": POSITIONS,
    "pattern": PATTERNS,
}
OBJECT_ATTRIBUTES: tuple[str, ...] = tuple(OBJECT_VALUES)

MAX_OBJECTS = 4


# --- scenes ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class ObjectSpec:
    """One object. ``jitter`` moves it inside its cell: (-1..1, -1..1) times the free slack."""

    shape: str
    colour: str
    size: str
    position: str
    pattern: str = "plain"
    jitter: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self) -> None:
        for name, allowed in OBJECT_VALUES.items():
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(f"unknown {name} {value!r}; expected one of {sorted(allowed)}")
        if not all(-1.0 <= j <= 1.0 for j in self.jitter):
            raise ValueError(f"jitter {self.jitter} is outside -1..1")

    @property
    def diameter(self) -> float:
        """The larger side of the bounding box, in image units."""
        return SIZE_FRACTION[self.size] / 3.0

    @property
    def centre(self) -> tuple[float, float]:
        """(x, y) of the bounding-box centre, in image units."""
        row, col = divmod(POSITIONS.index(self.position), 3)
        slack = (1.0 - SIZE_FRACTION[self.size] - 2 * CELL_MARGIN) / 2 / 3.0
        return ((col + 0.5) / 3 + self.jitter[0] * slack, (row + 0.5) / 3 + self.jitter[1] * slack)

    @property
    def identity(self) -> tuple[str, str, str]:
        """What makes an instance recognisable across scenes: shape, colour and pattern."""
        return (self.shape, self.colour, self.pattern)

    @property
    def key(self) -> tuple[str, str]:
        """The (colour, shape) pair that names the object uniquely within its scene."""
        return (self.colour, self.shape)

    def attributes(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in OBJECT_ATTRIBUTES}


@dataclass(frozen=True)
class Scene:
    """Objects (each in its own cell, unique by colour and shape), a background and a style."""

    objects: tuple[ObjectSpec, ...]
    background: str = "white"
    style: str = "flat"
    _by_position: dict[str, ObjectSpec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.background not in BACKGROUNDS:
            raise ValueError(f"unknown background {self.background!r}")
        if self.style not in STYLES:
            raise ValueError(f"unknown style {self.style!r}")
        positions = [o.position for o in self.objects]
        if len(set(positions)) != len(positions):
            raise ValueError(f"two objects share a cell: {positions}")
        keys = [o.key for o in self.objects]
        if len(set(keys)) != len(keys):
            raise ValueError(f"two objects share a colour and shape: {keys}")
        object.__setattr__(self, "_by_position", {o.position: o for o in self.objects})

    def at(self, position: str) -> ObjectSpec | None:
        return self._by_position.get(position)

    def find(self, colour: str, shape: str) -> ObjectSpec | None:
        return next((o for o in self.objects if o.key == (colour, shape)), None)

    def free_positions(self) -> list[str]:
        return [p for p in POSITIONS if p not in self._by_position]

    def replace_object(self, old: ObjectSpec, new: ObjectSpec | None) -> Scene:
        """This scene with ``old`` swapped for ``new`` (or removed when ``new`` is None)."""
        objects = tuple(new if o == old else o for o in self.objects if new is not None or o != old)
        return replace(self, objects=objects)

    def add_object(self, new: ObjectSpec) -> Scene:
        return replace(self, objects=(*self.objects, new))


# --- sampling -------------------------------------------------------------------------------
def sample_jitter(rng: random.Random) -> tuple[float, float]:
    return (round(rng.uniform(-1, 1), 3), round(rng.uniform(-1, 1), 3))


def sample_object(
    rng: random.Random,
    position: str,
    *,
    taken: Iterable[tuple[str, str]] = (),
    allowed=None,
    plain_prob: float = 0.4,
) -> ObjectSpec:
    """A random object at ``position`` whose (colour, shape) is not in ``taken``.

    ``allowed(obj) -> bool`` filters candidates (the split's rule); sampling retries until one
    passes, which is quick because every rule forbids only a small part of the space.
    """
    taken = set(taken)
    for _ in range(1000):
        pattern = "plain" if rng.random() < plain_prob else rng.choice(PATTERNS[1:])
        obj = ObjectSpec(
            shape=rng.choice(SHAPES),
            colour=rng.choice(list(COLOURS)),
            size=rng.choice(SIZES),
            position=position,
            pattern=pattern,
            jitter=sample_jitter(rng),
        )
        if obj.key not in taken and (allowed is None or allowed(obj)):
            return obj
    raise RuntimeError(f"no allowed object at {position!r}")


def sample_objects(
    rng: random.Random, n: int, *, positions: Iterable[str] | None = None, allowed=None
) -> tuple[ObjectSpec, ...]:
    """``n`` objects in distinct random cells (from ``positions`` if given), unique by key."""
    cells = rng.sample(list(POSITIONS if positions is None else positions), n)
    objects: list[ObjectSpec] = []
    for cell in cells:
        objects.append(sample_object(rng, cell, taken=[o.key for o in objects], allowed=allowed))
    return tuple(objects)
