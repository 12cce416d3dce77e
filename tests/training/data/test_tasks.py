"""Chat samples of every task, built with engine.template, and the held-out splits."""

from __future__ import annotations

import random
import re

import numpy as np
import pytest

from engine.template import Control, ImageRole, ImageSlot, Role, Task, render, task_text
from training.data import captions as cap
from training.data import splits
from training.data.judge import parse_scene
from training.data.phrasings import parse
from training.data.samples import SAMPLE_KINDS, Sample
from training.data.scoring import preservation
from training.data.tasks import (
    PLAIN_LAYOUT,
    evaluated_scenes,
    make_sample,
    names_heldout_pair,
    plain_scene,
    plan_sample,
    sample_stream,
)
from training.data.world import ObjectSpec, Scene
from training.evaluation.scores import brief_consistent, rewrite_keeps


@pytest.mark.parametrize("kind", SAMPLE_KINDS)
@pytest.mark.parametrize("split", splits.SPLITS)
def test_every_task_builds_valid_chat_samples(kind: str, split: str) -> None:
    for seed in range(6):
        sample = make_sample(kind, seed, split, size=64)
        assert sample.kind == kind and sample.split == split
        pieces = render(sample.turns, open_reply=False)
        slots = [p for p in pieces if isinstance(p, ImageSlot)]
        assert [s.index for s in slots] == list(range(len(sample.specs)))
        assert len(sample.images) == len(sample.specs) == len(sample.targets)
        assert all(im.mode == "RGB" and im.size == (64, 64) for im in sample.images)
        assert sample.turns[0].role is Role.USER and sample.turns[-1].role is Role.ASSISTANT
        assert pieces[-1] == Control("</s>")
        # the prompt up to the last user turn renders open for generation
        assert render(sample.turns[:-1], open_reply=True)
        if kind in ("vqa", "caption"):  # answered in text
            assert sample.texts()[-1] and ImageRole.IMAGE not in sample.turns[-1].parts
            # the one target is the drawing a follow-up question asks about
            assert sum(sample.targets) == (len(sample.turns) == 4)
        elif kind != "psr":
            assert sample.targets[-1]
        if kind == "psr":
            assert len(sample.rewrites) >= 2
            assert all(sample.brief.consistent(r.scene) for r in sample.rewrites)


@pytest.mark.parametrize("kind", SAMPLE_KINDS)
def test_samples_are_deterministic(kind: str) -> None:
    a, b = make_sample(kind, 11, size=32), make_sample(kind, 11, size=32)
    assert a == b
    assert all(
        np.array_equal(np.asarray(x), np.asarray(y))
        for x, y in zip(a.images, b.images, strict=True)
    )


def test_sample_rejects_mismatched_targets() -> None:
    good = make_sample("t2i", 0, size=32)
    with pytest.raises(ValueError, match="target"):
        Sample("t2i", "train", good.turns, good.specs, (False,))


def test_train_samples_never_contain_heldout_combinations() -> None:
    stream = sample_stream(0, "train", size=None)
    for _ in range(600):
        sample = next(stream)
        for scene in (*sample.scenes, *(r.scene for r in sample.rewrites)):
            assert not splits.is_heldout_scene(scene)
            for obj in scene.objects:
                assert (obj.shape, obj.colour) not in splits.HELDOUT_SHAPE_COLOUR
                assert (obj.shape, obj.position) not in splits.HELDOUT_SHAPE_POSITION
            assert (scene.style, scene.background) not in splits.HELDOUT_STYLE_BACKGROUND
        for text in (*sample.texts(), *(r.text for r in sample.rewrites)):
            assert not names_heldout_pair(text), text


def test_heldout_samples_contain_a_heldout_combination() -> None:
    stream = sample_stream(0, "heldout", size=None)
    for _ in range(300):
        sample = next(stream)
        if sample.kind == "psr":
            assert any(c and splits.is_heldout_key(c, s) for s, c in sample.brief.objects)
        else:
            assert any(splits.is_heldout_scene(s) for s in evaluated_scenes(sample))


def test_heldout_phrase_detection() -> None:
    assert names_heldout_pair("a large green striped star at the top")
    assert names_heldout_pair("Is there a violet disc?")
    assert not names_heldout_pair("a green circle and a red star")


def _object_pixels(image, scene: Scene, obj: ObjectSpec) -> np.ndarray:
    a = np.asarray(image)
    (x, y), r = obj.centre, obj.diameter / 2 + 0.02
    s = a.shape[0]
    return a[int((y - r) * s) : int((y + r) * s) + 1, int((x - r) * s) : int((x + r) * s) + 1]


@pytest.mark.parametrize("kind", ["edit", "diic"])
def test_untouched_objects_render_identically(kind: str) -> None:
    checked = 0
    for seed in range(30):
        sample = make_sample(kind, seed, size=128)
        for i in range(1, len(sample.specs)):
            before, after = sample.scenes[i - 1], sample.scenes[i]
            if before.background != after.background:
                continue
            moved = {o.position for o in before.objects} ^ {o.position for o in after.objects}
            changed = {o.position for o in before.objects if o not in after.objects}
            for obj in before.objects:
                if obj in after.objects and not (moved | changed) & {obj.position}:
                    a = _object_pixels(sample.images[i - 1], before, obj)
                    b = _object_pixels(sample.images[i], after, obj)
                    assert np.array_equal(a, b)
                    checked += 1
    assert checked > 20


def test_edit_preservation_is_measurable() -> None:
    samples = (make_sample("edit", seed, size=128) for seed in range(20))
    scored = [s for s in samples if s.scenes[-1].style != "pixel"][:5]  # judge is exact off pixel
    assert scored
    for sample in scored:
        before, after = sample.scenes[-2], sample.scenes[-1]
        assert preservation(before, after, parse_scene(sample.images[-1])) == 1.0


def test_subject_keeps_the_instance_identity() -> None:
    for seed in range(10):
        sample = make_sample("subject", seed, size=32)
        reference, target = sample.scenes
        (subject,) = reference.objects
        assert subject.identity in {o.identity for o in target.objects}


def test_style_sample_changes_only_the_style() -> None:
    for seed in range(10):
        content, style_ref, target = make_sample("style", seed, size=32).scenes
        assert target.objects == content.objects and target.background == content.background
        assert target.style == style_ref.style != content.style


def test_plan_rejects_unknown_inputs() -> None:
    with pytest.raises(ValueError, match="kind"):
        plan_sample("dance", random.Random(0))
    with pytest.raises(ValueError, match="split"):
        plan_sample("t2i", random.Random(0), "test")


def test_automatic_drawing_requests_include_the_bare_description() -> None:
    """With no task chosen, people mostly type just what they want to see: some text-to-image
    samples are phrased that way, so such a message draws rather than being read as text to
    rewrite (PSR rewrites always carry their instruction)."""
    instruction = task_text(Task.GENERATE, "")
    texts = [make_sample("t2i", seed, size=32).texts()[0] for seed in range(400)]
    automatic = [t for t in texts if not t.startswith(instruction)]
    bare = [t for t in automatic if parse(t).form is None]
    assert 0.15 < len(automatic) / len(texts) < 0.35  # the rest name the task
    assert 0.1 < len(bare) / len(automatic) < 0.45 and all(t == t.strip() for t in bare)


def _word_for(names: tuple[str, ...], text: str) -> str | None:
    """Which of ``names`` (one value's words) ``text`` calls it, as whole words: the longest
    ("pixel art" over "pixel")."""
    padded = f" {' '.join(re.findall(r'[a-z-]+', text.lower()))} "
    found = [n for n in names if f" {n} " in padded]
    return max(found, key=len) if found else None


@pytest.mark.parametrize("split", splits.SPLITS)
def test_psr_rewrites_repeat_the_briefs_own_words(split: str) -> None:
    """Every rewrite names what the brief names, in the brief's own words (a disc stays a disc),
    and may add what the brief leaves open."""
    added = 0
    for seed in range(150):
        sample = plan_sample("psr", random.Random(f"psr words/{seed}"), split)
        brief, typed = sample.brief, sample.asks[0].raw
        named = [cap.SHAPE_WORDS[s] for s, _ in brief.objects]
        named += [cap.COLOUR_WORDS[c] for _, c in brief.objects if c is not None]
        named += [cap.BACKGROUND_WORDS[brief.background]] if brief.background else []
        named += [cap.STYLE_WORDS[brief.style]] if brief.style else []
        for rewrite in sample.rewrites:
            assert brief.consistent(rewrite.scene)
            assert rewrite_keeps(brief, rewrite.text) == 1.0
            for names in named:
                assert _word_for(names, rewrite.text) == _word_for(names, typed), (typed, rewrite)
            for obj in rewrite.scene.objects:  # a colour for every object, named or not
                assert _word_for(cap.COLOUR_WORDS[obj.colour], rewrite.text)
            added += any(c is None for _, c in brief.objects)
    assert added > 100  # many briefs leave a colour open for the rewrites to choose
    # the check tells a synonym from the brief's word
    assert _word_for(cap.SHAPE_WORDS["circle"], "a red disc") == "disc"
    assert _word_for(cap.STYLE_WORDS["pixel"], "pixel art style") == "pixel art"


@pytest.mark.parametrize("split", splits.SPLITS)
def test_a_brief_is_drawn_as_its_one_plain_scene(split: str) -> None:
    """A brief with PSR off ("a red circle") asks for its plain scene: what it names, the rest
    the plainest choice, the same scene whenever the brief is the same (a regressor trained on
    random completions draws their average: an empty canvas)."""
    tasks = set()
    for seed in range(40):
        sample = make_sample("brief", seed, split, size=128)
        brief, ask, (target,) = sample.brief, sample.asks[-1], sample.target_scenes
        assert not ask.psr and ask.task in (Task.GENERATE, Task.AUTO)
        tasks.add(ask.task)
        assert target == plain_scene(brief) and brief.consistent(target)
        layout = PLAIN_LAYOUT[len(brief.objects)]
        assert [o.position for o in target.objects] == list(layout)  # in the order named
        assert all(
            (o.size, o.pattern, o.jitter) == ("large", "plain", (0, 0)) for o in target.objects
        )
        assert target.background == (brief.background or "white")
        assert target.style == (brief.style or "flat")
        for (shape, colour), obj in zip(brief.objects, target.objects, strict=True):
            assert any(w in ask.raw.lower() for w in cap.SHAPE_WORDS[shape])  # as typed
            if colour is None:  # an open colour never makes a held-out pair
                assert not splits.is_heldout_key(obj.colour, shape)
        if target.style != "pixel":  # the judge misreads some pixel-style objects
            assert brief_consistent(brief, sample.images[-1])
    assert tasks == {Task.GENERATE, Task.AUTO}


def test_plain_scenes_fill_open_colours_without_clashes() -> None:
    red_circle = plain_scene(cap.Brief((("circle", "red"),)))
    assert red_circle == Scene((ObjectSpec("circle", "red", "large", "centre"),), "white", "flat")
    # an open colour takes the first free one: not the named red, not a held-out pair
    pair = plain_scene(cap.Brief((("circle", None), ("circle", "red"))))
    assert [(o.colour, o.position) for o in pair.objects] == [("blue", "left"), ("red", "right")]
    (triangle,) = plain_scene(cap.Brief((("triangle", None),), "cream", "soft")).objects
    assert triangle.colour == "red" and not splits.is_heldout_key("blue", "circle")
    assert splits.is_heldout_key("blue", "triangle")  # which "blue" would have been
    three = plain_scene(cap.Brief((("triangle", None), ("triangle", None), ("star", "red"))))
    assert [o.colour for o in three.objects] == ["red", "green", "red"]


def test_training_captions_also_name_places_and_sizes_in_everyday_words() -> None:
    """Generate-task captions of training samples use the everyday words of typed requests
    ("huge", "in the upper left corner") beside their own; held-out ones never do, so the
    template-worded metrics ask as before."""
    from training.data.phrasings import _EVERYDAY_EXTRA

    extra = {name for names in _EVERYDAY_EXTRA.values() for name in names}
    instruction = task_text(Task.GENERATE, "")

    def everyday(split: str) -> list[bool]:
        texts = [make_sample("t2i", seed, split, size=32).texts()[0] for seed in range(300)]
        captions = [t.removeprefix(instruction) for t in texts if t.startswith(instruction)]
        assert len(captions) > 150
        return [_word_for(tuple(extra), c) is not None for c in captions]

    train = everyday("train")
    assert 0.3 < sum(train) / len(train) < 0.6  # a share: the captions' own words stay common
    assert not any(everyday("heldout"))
