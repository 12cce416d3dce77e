"""The judge reads clean renders back into scenes; the scoring helpers built on it."""

from __future__ import annotations

import random
from dataclasses import replace

from training.data.judge import parse_scene
from training.data.render import render_scene
from training.data.scoring import (
    diversity,
    image_distance,
    judge_accuracy,
    preservation,
    scene_match,
)
from training.data.splits import sample_scene
from training.data.world import OBJECT_ATTRIBUTES, ObjectSpec, Scene


def test_judge_accuracy_on_clean_renders() -> None:
    accuracy = judge_accuracy(300, seed=0, styles=("flat", "outline", "soft"))
    print(
        "judge accuracy, 300 scenes, flat/outline/soft:",
        {k: round(v, 4) for k, v in accuracy.items()},
    )
    for name in (*OBJECT_ATTRIBUTES, "count", "background", "style"):
        assert accuracy[name] >= 0.99, (name, accuracy)


def test_judge_on_pixel_style_is_documented_lower() -> None:
    accuracy = judge_accuracy(60, seed=1, styles=("pixel",))
    print("judge accuracy, 60 scenes, pixel:", {k: round(v, 4) for k, v in accuracy.items()})
    assert accuracy["style"] >= 0.95 and accuracy["count"] >= 0.95
    assert accuracy["colour"] >= 0.9 and accuracy["position"] >= 0.9
    assert min(accuracy[a] for a in OBJECT_ATTRIBUTES) >= 0.75


def test_judge_reads_any_image_size() -> None:
    scene = sample_scene(random.Random(3), "train")
    scene = replace(scene, style="flat")
    assert scene_match(scene, parse_scene(render_scene(scene, 256)), look=True)


def test_judge_on_an_empty_image() -> None:
    parsed = parse_scene(render_scene(Scene((), "cream", "flat")))
    assert parsed.objects == () and parsed.background == "cream"


def test_scene_match_and_preservation() -> None:
    a = ObjectSpec("star", "red", "large", "top left", "striped")
    b = ObjectSpec("circle", "blue", "small", "centre", "dotted")
    before = Scene((a, b), "white", "flat")
    after = Scene((a, replace(b, colour="green")), "white", "flat")
    parsed_after = parse_scene(render_scene(after))
    assert scene_match(after, parsed_after)
    assert not scene_match(before, parsed_after)
    assert preservation(before, after, parsed_after) == 1.0
    wrong = parse_scene(render_scene(Scene((replace(a, size="small"), b), "white", "flat")))
    assert preservation(before, after, wrong) == 0.0


def test_image_distance_and_diversity() -> None:
    rng = random.Random(5)
    scenes = [sample_scene(rng, "train") for _ in range(4)]
    images = [render_scene(s) for s in scenes]
    assert image_distance(images[0], images[0]) == 0.0
    assert image_distance(images[0], images[1]) > 0.01
    assert diversity([images[0]] * 3) == 0.0
    assert diversity(images) > 0.01
