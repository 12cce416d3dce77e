"""The shapes world: scenes, rendering, captions, conditions, degradations, corpus."""

from __future__ import annotations

import random
from dataclasses import replace

import numpy as np
import pytest

from training.data import captions as cap
from training.data.conditions import edge_map, layout_sketch
from training.data.corpus import text_corpus
from training.data.degrade import DEGRADATIONS, Degradation, sample_degradations
from training.data.render import render_scene
from training.data.splits import sample_scene
from training.data.world import POSITIONS, STYLES, ObjectSpec, Scene


def _scenes(n: int, seed: int = 0, split: str = "train") -> list[Scene]:
    rng = random.Random(seed)
    return [sample_scene(rng, split) for _ in range(n)]


def test_scenes_are_deterministic_from_the_seed() -> None:
    assert _scenes(20, seed=5) == _scenes(20, seed=5)
    assert _scenes(20, seed=5) != _scenes(20, seed=6)


def test_scene_rules_are_enforced() -> None:
    obj = ObjectSpec("star", "red", "small", "top left")
    with pytest.raises(ValueError, match="share a cell"):
        Scene((obj, replace(obj, shape="circle")))
    with pytest.raises(ValueError, match="colour and shape"):
        Scene((obj, replace(obj, position="top")))
    with pytest.raises(ValueError, match="unknown shape"):
        ObjectSpec("blob", "red", "small", "top left")


def test_objects_stay_inside_their_cells() -> None:
    for scene in _scenes(200):
        assert 1 <= len(scene.objects) <= 4
        for obj in scene.objects:
            row, col = divmod(POSITIONS.index(obj.position), 3)
            (x, y), r = obj.centre, obj.diameter / 2
            assert col / 3 < x - r and x + r < (col + 1) / 3
            assert row / 3 < y - r and y + r < (row + 1) / 3


@pytest.mark.parametrize("size", [64, 128, 200, 256])
def test_renders_at_any_size(size: int) -> None:
    for scene in _scenes(4):
        for style in STYLES:
            image = render_scene(replace(scene, style=style), size)
            assert image.mode == "RGB" and image.size == (size, size)


def test_rendering_is_pure() -> None:
    scenes = _scenes(20, seed=1)
    first = [np.asarray(render_scene(scene, 128)) for scene in scenes]
    again = [np.asarray(render_scene(scene, 128)) for scene in reversed(scenes)][::-1]
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))


def test_styles_differ() -> None:
    scene = _scenes(1, seed=2)[0]
    images = [np.asarray(render_scene(replace(scene, style=s)), np.float32) for s in STYLES]
    for i in range(len(images)):
        for j in range(i + 1, len(images)):
            assert np.abs(images[i] - images[j]).mean() > 0.2


def test_captions_are_deterministic_and_complete() -> None:
    scene = _scenes(1, seed=3)[0]
    assert cap.detailed_caption(scene, random.Random(1)) == cap.detailed_caption(
        scene, random.Random(1)
    )
    canonical = cap.detailed_caption(scene)
    for obj in scene.objects:
        for value in (obj.shape, obj.colour, obj.size, obj.pattern):
            assert value in canonical
        assert cap.POSITION_WORDS[obj.position][0] in canonical
    assert scene.background in canonical and scene.style in canonical
    assert (
        cap.brief_caption(Scene((ObjectSpec("star", "red", "large", "top left"),))) == "a red star"
    )
    assert (
        cap.brief_caption(Scene((ObjectSpec("cross", "orange", "large", "top"),)))
        == "an orange cross"
    )


def test_briefs_accept_their_scene() -> None:
    rng = random.Random(4)
    for scene in _scenes(50, seed=4):
        brief = cap.brief_of(scene, rng)
        assert brief.consistent(scene)
        assert cap.brief_text(brief, rng)


def test_condition_maps() -> None:
    scene = _scenes(1, seed=7)[0]
    edges = np.asarray(edge_map(scene, 128))
    assert set(np.unique(edges)) <= {0, 255} and edges.max() == 255
    sketch = np.asarray(layout_sketch(scene, 128))
    assert sketch.shape == (128, 128, 3) and (sketch != 255).any()


@pytest.mark.parametrize("kind", DEGRADATIONS)
def test_degradations_change_the_image_and_are_seeded(kind: str) -> None:
    image = render_scene(_scenes(1, seed=8)[0], 128)
    clean = np.asarray(image, np.float32)
    a = Degradation(kind, 0.5, seed=1).apply(image)
    b = Degradation(kind, 0.5, seed=1).apply(image)
    assert a.size == image.size and a.mode == "RGB"
    assert np.array_equal(np.asarray(a), np.asarray(b))
    assert np.abs(np.asarray(a, np.float32) - clean).mean() > 0.5
    if kind == "noise":
        c = Degradation(kind, 0.5, seed=2).apply(image)
        assert not np.array_equal(np.asarray(a), np.asarray(c))
    assert sample_degradations(random.Random(3)) == sample_degradations(random.Random(3))


def test_text_corpus_covers_the_vocabulary() -> None:
    corpus = list(text_corpus(samples_per_kind=20, seed=0))
    assert corpus == list(text_corpus(samples_per_kind=20, seed=0))
    words = {w for line in corpus for w in line.replace(",", " ").split()}
    for table in (cap.SHAPE_WORDS, cap.COLOUR_WORDS, cap.PATTERN_WORDS, cap.STYLE_WORDS):
        for options in table.values():
            assert all(w in words for option in options for w in option.split())
    assert len(words) < 400
