"""Words and captions: every phrasing of a scene, brief or detailed, with a few synonyms.

The first word of each synonym list is canonical: it is what short answers (VQA) and the judge's
labels use. Captions are deterministic given the ``random.Random`` passed in; pass
``rng=None`` for the canonical phrasing. ``words`` (`Words`) overrides the tables for some values:
everyday synonyms a request may use (phrasings.py), or the one word a brief used, which its PSR
rewrites repeat (`brief_words`).

A ``Brief`` is what a vague request pins down (shapes, some colours, maybe the background or
style); Prompt Self-Rewriting expands it into detailed captions of scenes consistent with it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from training.data.world import (
    BACKGROUNDS,
    COLOURS,
    PATTERNS,
    POSITIONS,
    SHAPES,
    SIZES,
    STYLES,
    ObjectSpec,
    Scene,
)

SHAPE_WORDS: dict[str, tuple[str, ...]] = {
    "circle": ("circle", "disc"),
    "square": ("square",),
    "triangle": ("triangle",),
    "star": ("star",),
    "hexagon": ("hexagon",),
    "cross": ("cross", "plus sign"),
}
COLOUR_WORDS: dict[str, tuple[str, ...]] = {c: (c,) for c in COLOURS} | {
    "teal": ("teal", "turquoise"),
    "purple": ("purple", "violet"),
}
SIZE_WORDS: dict[str, tuple[str, ...]] = {
    "small": ("small", "little"),
    "medium": ("medium", "medium-sized"),
    "large": ("large", "big"),
}
PATTERN_WORDS: dict[str, tuple[str, ...]] = {
    "plain": ("plain", "solid"),
    "striped": ("striped", "stripy"),
    "dotted": ("dotted", "spotted"),
    "checkered": ("checkered", "checked"),
}
POSITION_WORDS: dict[str, tuple[str, ...]] = {
    "top left": ("at the top left", "in the top left corner"),
    "top": ("at the top", "at the top centre"),
    "top right": ("at the top right", "in the top right corner"),
    "left": ("on the left", "at the left"),
    "centre": ("in the centre", "in the middle"),
    "right": ("on the right", "at the right"),
    "bottom left": ("at the bottom left", "in the bottom left corner"),
    "bottom": ("at the bottom", "at the bottom centre"),
    "bottom right": ("at the bottom right", "in the bottom right corner"),
}
BACKGROUND_WORDS: dict[str, tuple[str, ...]] = {b: (b,) for b in BACKGROUNDS}
STYLE_WORDS: dict[str, tuple[str, ...]] = {
    "flat": ("flat", "flat colour"),
    "outline": ("outline", "outlined"),
    "soft": ("soft", "soft shaded"),
    "pixel": ("pixel", "pixel art"),
}
NUMBER_WORDS: tuple[str, ...] = ("zero", "one", "two", "three", "four", "five")
#: Words for some attribute values instead of the tables' (the values of all tables are distinct
#: names, so a value alone says which table it overrides): ``{"circle": ("disc",)}``.
Words = dict[str, tuple[str, ...]]
NO_WORDS: Words = {}

for _table, _keys in (
    (SHAPE_WORDS, SHAPES),
    (SIZE_WORDS, SIZES),
    (PATTERN_WORDS, PATTERNS),
    (POSITION_WORDS, POSITIONS),
    (STYLE_WORDS, STYLES),
):
    assert tuple(_table) == tuple(_keys), "every vocabulary entry needs its words"
WORD_TABLES: tuple[dict[str, tuple[str, ...]], ...] = (
    SHAPE_WORDS,
    COLOUR_WORDS,
    SIZE_WORDS,
    PATTERN_WORDS,
    POSITION_WORDS,
    BACKGROUND_WORDS,
    STYLE_WORDS,
)
_values = [value for table in WORD_TABLES for value in table]
assert len(set(_values)) == len(_values), "a value names itself in `Words`: no two may share a name"


def word(
    table: dict[str, tuple[str, ...]],
    key: str,
    rng: random.Random | None = None,
    words: Words = NO_WORDS,
) -> str:
    """A phrasing of ``key`` (from ``words`` if it names ``key``, else from ``table``): the first
    without ``rng``, else a random synonym."""
    options = words.get(key) or table[key]
    return options[0] if rng is None else rng.choice(options)


def with_article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def join_list(items: list[str]) -> str:
    """ "a", "a and b", "a, b and c"."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def pluralise(noun: str) -> str:
    if noun.endswith(("s", "x")):
        return noun + "es"
    return noun + "s"


# --- objects --------------------------------------------------------------------------------
def name(obj: ObjectSpec, rng: random.Random | None = None) -> str:
    """The referring name, without article: "red star" (unique within a scene)."""
    return f"{word(COLOUR_WORDS, obj.colour, rng)} {word(SHAPE_WORDS, obj.shape, rng)}"


def the(obj: ObjectSpec, rng: random.Random | None = None) -> str:
    return f"the {name(obj, rng)}"


def describe_object(
    obj: ObjectSpec,
    rng: random.Random | None = None,
    *,
    position: bool = True,
    words: Words = NO_WORDS,
) -> str:
    """Every attribute: "a large red striped star at the top left"."""
    size, colour = (
        word(SIZE_WORDS, obj.size, rng, words),
        word(COLOUR_WORDS, obj.colour, rng, words),
    )
    pattern = word(PATTERN_WORDS, obj.pattern, rng, words)
    shape = word(SHAPE_WORDS, obj.shape, rng, words)
    order = 0 if rng is None else rng.randrange(2)
    core = (
        f"{size} {colour} {pattern} {shape}" if order == 0 else f"{size} {pattern} {colour} {shape}"
    )
    text = with_article(core)
    return f"{text} {word(POSITION_WORDS, obj.position, rng, words)}" if position else text


def background_phrase(
    background: str, rng: random.Random | None = None, words: Words = NO_WORDS
) -> str:
    return f"on {with_article(word(BACKGROUND_WORDS, background, rng, words))} background"


def style_phrase(style: str, rng: random.Random | None = None, words: Words = NO_WORDS) -> str:
    return f"{word(STYLE_WORDS, style, rng, words)} style"


# --- scenes ---------------------------------------------------------------------------------
def brief_caption(scene: Scene, rng: random.Random | None = None) -> str:
    """Colour and shape of each object: "a red star and a blue circle"."""
    return join_list([with_article(name(o, rng)) for o in _ordered(scene, rng)])


def detailed_caption(
    scene: Scene, rng: random.Random | None = None, words: Words = NO_WORDS
) -> str:
    """Every attribute of every object, the background and the style."""
    objects = join_list([describe_object(o, rng, words=words) for o in _ordered(scene, rng)])
    bg = background_phrase(scene.background, rng, words)
    style = style_phrase(scene.style, rng, words)
    template = 0 if rng is None else rng.randrange(3)
    if template == 0:
        return f"{objects} {bg}, {style}"
    if template == 1:
        return f"{with_article(style)} picture of {objects} {bg}"
    return f"{style}: {objects}, {bg}"


def _ordered(scene: Scene, rng: random.Random | None) -> list[ObjectSpec]:
    """Objects in reading order (canonical) or shuffled."""
    objects = sorted(scene.objects, key=lambda o: POSITIONS.index(o.position))
    if rng is not None and rng.random() < 0.5:
        rng.shuffle(objects)
    return objects


# --- briefs (Prompt Self-Rewriting) ---------------------------------------------------------
@dataclass(frozen=True)
class Brief:
    """A vague request: each object's shape and maybe colour; maybe background and style."""

    objects: tuple[tuple[str, str | None], ...]  # (shape, colour or None)
    background: str | None = None
    style: str | None = None

    def consistent(self, scene: Scene) -> bool:
        """Whether ``scene`` is one of the scenes this brief allows (same objects, any order)."""
        if len(scene.objects) != len(self.objects):
            return False
        if self.background not in (None, scene.background) or self.style not in (None, scene.style):
            return False
        remaining = list(scene.objects)
        for shape, colour in sorted(self.objects, key=lambda m: m[1] is None):
            match = next(
                (o for o in remaining if o.shape == shape and colour in (None, o.colour)), None
            )
            if match is None:
                return False
            remaining.remove(match)
        return True


def brief_of(scene: Scene, rng: random.Random, *, colour_prob: float = 0.7) -> Brief:
    """A brief that ``scene`` satisfies, forgetting most details."""
    objects = tuple(
        (o.shape, o.colour if rng.random() < colour_prob else None)
        for o in sorted(scene.objects, key=lambda o: POSITIONS.index(o.position))
    )
    background = scene.background if rng.random() < 0.3 else None
    style = scene.style if rng.random() < 0.3 else None
    return Brief(objects, background, style)


def brief_words(brief: Brief, rng: random.Random | None = None) -> Words:
    """One word for each value ``brief`` names (each object's shape and colour, the background,
    the style): what the brief is typed with, and what a PSR rewrite of it repeats (a rewrite
    may add what the brief leaves open, never change what it names, not even into a synonym)."""
    named = [(SHAPE_WORDS, shape) for shape, _ in brief.objects]
    named += [(COLOUR_WORDS, colour) for _, colour in brief.objects if colour is not None]
    if brief.background is not None:
        named.append((BACKGROUND_WORDS, brief.background))
    if brief.style is not None:
        named.append((STYLE_WORDS, brief.style))
    words: Words = {}
    for table, value in named:
        words.setdefault(value, (word(table, value, rng),))
    return words


def brief_text(brief: Brief, rng: random.Random | None = None, words: Words = NO_WORDS) -> str:
    """ "a red star and a circle on a cream background"."""
    parts = []
    for shape, colour in brief.objects:
        noun = word(SHAPE_WORDS, shape, rng, words)
        named = noun if colour is None else f"{word(COLOUR_WORDS, colour, rng, words)} {noun}"
        parts.append(with_article(named))
    text = join_list(parts)
    if brief.background is not None:
        text += " " + background_phrase(brief.background, rng, words)
    if brief.style is not None:
        text += ", " + style_phrase(brief.style, rng, words)
    return text
