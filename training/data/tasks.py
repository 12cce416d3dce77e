"""Every task WeGen claims, as chat samples of the shapes world (see samples.py for the format).

User turns follow the desktop composer: attachments first, then the text phrased for the task by
``engine.template.task_text`` (a share of samples use ``Task.AUTO`` with a plain request, so the
model also learns to pick the task from the text: drawing requests typed as people type them,
phrasings.py; questions in lower case or as a follow-up about the last image). Assistant turns
are one image or one text.

=========  ==========================================================================
kind       turns
=========  ==========================================================================
t2i        detailed caption -> image
vqa        image + question -> short canonical answer (colour, shape, size, pattern, position,
           count, yes/no, background, style); or, as a follow-up, a drawing request -> image,
           then the question about it (the image not attached again) -> answer
caption    image + "describe" -> detailed (or, asked briefly, brief) caption
edit       caption -> image, then 1-2 instructions -> edited image each (or: image + instruction
           -> edited image); untouched objects are identical
diic       caption (or a first frame) -> frame, then 1-3 narrated changes -> next frame
subject    reference image of one instance + text placing "the subject" -> new scene with it
condition  edge map or layout sketch + the text the map lacks -> image
restore    degraded image (noise, blur, low resolution, JPEG; 1-2 of them) -> clean image
style      content image + style reference (another scene) -> the content in that style
psr        PSR instruction with a brief prompt -> a detailed rewrite (sometimes -> image);
           ``Sample.rewrites`` holds several rewrites consistent with the brief, each naming
           what the brief names in the brief's own words
brief      a brief prompt, PSR off ("a red circle", as people first type) -> the image of its
           plain scene (`plain_scene`): what it names, the plainest choice for the rest
=========  ==========================================================================

A sample is checked against its split (splits.py) and re-drawn until it passes: in ``train``
no scene contains a held-out combination and no text names a held-out shape x colour pair; in
``heldout`` at least one evaluated scene (targets; the input for vqa/caption; the rewrites for
psr) contains one.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace

from engine.template import ImageRole, Role, Task, TemplateTurn
from training.data import captions as cap
from training.data.captions import (
    NO_WORDS,
    Brief,
    brief_of,
    brief_text,
    brief_words,
    detailed_caption,
)
from training.data.conditions import CONDITIONS
from training.data.degrade import sample_degradations
from training.data.edits import EDIT_KINDS, sample_change, sample_dynamics
from training.data.phrasings import (
    EVERYDAY_WORDS,
    drawing_request,
    phrase_request,
    typed_question,
)
from training.data.samples import SAMPLE_KINDS, Ask, ImageSpec, Rewrite, Sample
from training.data.splits import (
    HELDOUT_SHAPE_COLOUR,
    Split,
    allowed_for,
    check_split,
    is_heldout_key,
    is_heldout_scene,
    is_train_look,
    is_train_object,
    sample_scene,
)
from training.data.world import (
    BACKGROUNDS,
    COLOURS,
    POSITIONS,
    SHAPES,
    STYLES,
    ObjectSpec,
    Scene,
    sample_object,
    sample_objects,
)

#: Share of samples phrased for ``Task.AUTO`` (a plain request instead of the task's prefix).
AUTO_PROB = 0.25
#: Share of VQA questions asked as a follow-up about the conversation's last image (drawn the
#: turn before, not attached again), and of the others typed as people type them (lower case);
#: both with the task on automatic
FOLLOW_UP_PROB = 0.25
TYPED_QUESTION_PROB = 0.4
#: Share of follow-up questions about a scene's only object that call it "it"
IT_PROB = 0.7
BRIEF_DESCRIBE = ("What is in the image?", "Describe the image briefly.")
PSR_REWRITES = 4
MAX_ATTEMPTS = 200
#: where a brief's objects go, by how many it names, in the order it names them: it says
#: nothing of places, so it is drawn in the plainest layout (`plain_scene`)
PLAIN_LAYOUT: dict[int, tuple[str, ...]] = {
    1: ("centre",),
    2: ("left", "right"),
    3: ("left", "centre", "right"),
    4: ("top left", "top right", "bottom left", "bottom right"),
}
#: the colour of an object a brief names without one: the first of these that names no
#: held-out pair with its shape and no other object of the scene
PLAIN_COLOURS: tuple[str, ...] = (
    "red",
    "blue",
    "green",
    "yellow",
    "orange",
    "purple",
    "teal",
    "pink",
)
#: share of brief requests typed with the task on automatic (the app's default)
BRIEF_AUTO_PROB = 0.5
#: the share of training Generate captions that may name places and sizes in everyday words
#: (`_generate`; about 0.9 of such captions then use at least one)
EVERYDAY_CAPTION_PROB = 0.5


class _Chat:
    """A sample's turns and the asks behind its user turns, built together."""

    def __init__(self) -> None:
        self.turns: list[TemplateTurn] = []
        self.asks: list[Ask] = []

    def user(self, ask: Ask, *images: ImageRole) -> _Chat:
        """A user turn: its attachments first, then the text ``ask`` phrases."""
        self.turns.append(TemplateTurn(Role.USER, (*images, ask.text)))
        self.asks.append(ask)
        return self

    def assistant(self, part: str | ImageRole) -> _Chat:
        self.turns.append(TemplateTurn(Role.ASSISTANT, (part,)))
        return self

    def sample(
        self, kind: str, split: Split, specs: Sequence[ImageSpec], targets: Sequence[bool], **kw
    ) -> Sample:
        return Sample(
            kind,
            split,
            tuple(self.turns),
            tuple(specs),
            tuple(targets),
            asks=tuple(self.asks),
            **kw,
        )


def _phrase(task: Task, text: str, rng: random.Random, auto: str | None = None) -> Ask:
    """The user's ``text`` for ``task``, or with probability AUTO_PROB the plain ``auto`` text."""
    if auto is not None and rng.random() < AUTO_PROB:
        return Ask(Task.AUTO, auto)
    return Ask(task, text)


def _generate(chat: _Chat, scene: Scene, rng: random.Random, split: Split) -> _Chat:
    """A request for a drawing of ``scene`` and the drawing: its detailed caption with the
    Generate task, or (with probability AUTO_PROB) on automatic, typed as people type it in one
    of the training forms (phrasings.py; a share is the bare description: without it,
    wegen-tiny read "a green square at the bottom" as a prompt to rewrite).

    In training samples the caption names places and sizes in everyday words too ("huge",
    "mid-sized", "in the upper left corner") with probability EVERYDAY_CAPTION_PROB, as typed
    requests do: met only in automatic requests, they were read far worse than the captions' own
    ("huge" got the size right about a third of the time). Held-out samples keep the captions'
    own words and draw nothing more, so what wegen-eval asks in template wordings stays as it
    was."""
    everyday = split == "train" and rng.random() < EVERYDAY_CAPTION_PROB
    caption = detailed_caption(scene, rng, EVERYDAY_WORDS if everyday else NO_WORDS)
    if rng.random() < AUTO_PROB:
        ask = Ask(Task.AUTO, drawing_request(scene, rng, "train").text)
    else:
        ask = Ask(Task.GENERATE, caption)
    return chat.user(ask).assistant(ImageRole.IMAGE)


# --- planners: (rng, split) -> Sample -------------------------------------------------------
def plan_t2i(rng: random.Random, split: Split) -> Sample:
    scene = sample_scene(rng, split)
    return _generate(_Chat(), scene, rng, split).sample("t2i", split, (ImageSpec(scene),), (True,))


def _question(
    scene: Scene, rng: random.Random, split: Split, *, it: bool = False
) -> tuple[str, str]:
    """A question about ``scene`` and its canonical answer; ``it``: a question about a scene's
    only object calls it "it" ("What colour is it?")."""
    obj = rng.choice(scene.objects)
    the, where = cap.the(obj, rng), cap.word(cap.POSITION_WORDS, obj.position, rng)
    it = it and len(scene.objects) == 1
    kind = rng.choice(
        ["colour", "shape", "size", "pattern", "position", "count", "exists", "background", "style"]
    )
    if kind == "colour":
        shape = cap.word(cap.SHAPE_WORDS, obj.shape, rng)
        return f"What colour is {'it' if it else f'the {shape} {where}'}?", obj.colour
    if kind == "shape":
        return f"What shape is {'it' if it else f'the object {where}'}?", obj.shape
    if it:
        the = "it"
    if kind == "size":
        return f"What size is {the}?", obj.size
    if kind == "pattern":
        return f"What pattern does {the} have?", obj.pattern
    if kind == "position":
        return f"Where is {the}?", obj.position
    if kind == "count":
        which = rng.choice(["all", "shape", "colour"])
        if which == "shape":
            n = sum(o.shape == obj.shape for o in scene.objects)
            noun = cap.pluralise(cap.word(cap.SHAPE_WORDS, obj.shape, rng))
            return f"How many {noun} are there?", cap.NUMBER_WORDS[n]
        if which == "colour":
            n = sum(o.colour == obj.colour for o in scene.objects)
            colour = cap.word(cap.COLOUR_WORDS, obj.colour, rng)
            return f"How many {colour} objects are there?", cap.NUMBER_WORDS[n]
        return "How many objects are there?", cap.NUMBER_WORDS[len(scene.objects)]
    if kind == "exists":
        if rng.random() < 0.5:
            return f"Is there {cap.with_article(cap.name(obj, rng))}?", "yes"
        keys = {o.key for o in scene.objects}
        absent = [
            (c, s)
            for c in COLOURS
            for s in SHAPES
            if (c, s) not in keys and (split == "heldout" or not is_heldout_key(c, s))
        ]
        colour, shape = rng.choice(absent)
        words = f"{cap.word(cap.COLOUR_WORDS, colour, rng)} {cap.word(cap.SHAPE_WORDS, shape, rng)}"
        return f"Is there {cap.with_article(words)}?", "no"
    if kind == "background":
        return "What is the background?", scene.background
    return "What style is the image?", scene.style


def plan_vqa(rng: random.Random, split: Split) -> Sample:
    """A question about an attached image, asked with the Describe task or typed in lower case
    on automatic; or, as a follow-up about the image drawn the turn before, on automatic."""
    scene = sample_scene(rng, split)
    if rng.random() < FOLLOW_UP_PROB:
        chat = _generate(_Chat(), scene, rng, split)
        question, answer = _question(scene, rng, split, it=rng.random() < IT_PROB)
        chat.user(Ask(Task.AUTO, typed_question(question, rng, follow_up=True)))
        return chat.assistant(answer).sample("vqa", split, (ImageSpec(scene),), (True,))
    question, answer = _question(scene, rng, split)
    ask = Ask(Task.DESCRIBE, question)
    if rng.random() < TYPED_QUESTION_PROB:
        ask = Ask(Task.AUTO, typed_question(question, rng))
    chat = _Chat().user(ask, ImageRole.IMAGE).assistant(answer)
    return chat.sample("vqa", split, (ImageSpec(scene),), (False,))


def plan_caption(rng: random.Random, split: Split) -> Sample:
    scene = sample_scene(rng, split)
    if rng.random() < 0.3:
        question, answer = rng.choice(BRIEF_DESCRIBE), cap.brief_caption(scene, rng)
    else:
        question, answer = "", detailed_caption(scene, rng)
    chat = _Chat().user(Ask(Task.DESCRIBE, question), ImageRole.IMAGE).assistant(answer)
    return chat.sample("caption", split, (ImageSpec(scene),), (False,))


def plan_edit(rng: random.Random, split: Split) -> Sample:
    scene = sample_scene(rng, split)
    allowed = allowed_for(split)
    chat = _Chat()
    specs, targets = [ImageSpec(scene)], []
    from_chat = rng.random() < 0.6
    if from_chat:
        _generate(chat, scene, rng, split)
        targets.append(True)
    else:
        targets.append(False)
    for step in range(rng.choice([1, 1, 2])):
        change = sample_change(scene, rng, kinds=EDIT_KINDS, allowed=allowed)
        if change is None:
            break
        ask = _phrase(Task.EDIT, change.instruction, rng, change.instruction)
        image_first = () if from_chat or step > 0 else (ImageRole.IMAGE,)
        chat.user(ask, *image_first).assistant(ImageRole.IMAGE)
        scene = change.after
        specs.append(ImageSpec(scene))
        targets.append(True)
    return chat.sample("edit", split, specs, targets)


def plan_diic(rng: random.Random, split: Split) -> Sample:
    scene = sample_scene(rng, split)
    allowed = allowed_for(split)
    chat = _Chat()
    from_chat = rng.random() < 0.5
    if from_chat:
        _generate(chat, scene, rng, split)
    specs, targets = [ImageSpec(scene)], [from_chat]
    for step in range(rng.randint(1, 3)):
        scene, narration, changes = sample_dynamics(scene, rng, allowed=allowed)
        if not changes:
            break
        ask = Ask(Task.AUTO, f"Next frame: {narration}.")
        image_first = () if from_chat or step > 0 else (ImageRole.IMAGE,)
        chat.user(ask, *image_first).assistant(ImageRole.IMAGE)
        specs.append(ImageSpec(scene))
        targets.append(True)
    return chat.sample("diic", split, specs, targets)


def plan_subject(rng: random.Random, split: Split) -> Sample:
    allowed = allowed_for(split)
    n = rng.randint(1, 3)
    positions = rng.sample(POSITIONS, n)
    subject = sample_object(rng, positions[0], allowed=allowed, plain_prob=0.15)
    others = sample_objects(
        rng,
        n - 1,
        positions=positions[1:],
        allowed=lambda o: o.key != subject.key and (allowed is None or allowed(o)),
    )
    background, style = rng.choice(list(BACKGROUNDS)), rng.choice(STYLES)
    target = Scene((subject, *others), background, style)
    reference_obj = replace(subject, position="centre", size="large", jitter=(0.0, 0.0))
    reference = Scene((reference_obj,), rng.choice(list(BACKGROUNDS)), rng.choice(STYLES))
    size = cap.word(cap.SIZE_WORDS, subject.size, rng)
    text = f"the {size} subject {cap.word(cap.POSITION_WORDS, subject.position, rng)}"
    if others:
        text += ", with " + cap.join_list([cap.describe_object(o, rng) for o in others])
    text += f", {cap.background_phrase(background, rng)}, {cap.style_phrase(style, rng)}"
    chat = _Chat().user(Ask(Task.SUBJECT, text), ImageRole.REFERENCE).assistant(ImageRole.IMAGE)
    specs = (ImageSpec(reference), ImageSpec(target))
    return chat.sample("subject", split, specs, (False, True))


def plan_condition(rng: random.Random, split: Split) -> Sample:
    scene = sample_scene(rng, split)
    view = rng.choice(CONDITIONS)
    objects = sorted(scene.objects, key=lambda o: POSITIONS.index(o.position))
    if view == "edges":  # the map shows shapes, sizes, places and patterns; text adds colours
        parts = [cap.with_article(cap.name(o, rng)) for o in objects]
    else:  # the sketch shows places, sizes and colours; text adds shapes and patterns
        parts = [
            cap.with_article(
                f"{cap.word(cap.PATTERN_WORDS, o.pattern, rng)} {cap.word(cap.SHAPE_WORDS, o.shape, rng)}"
            )
            + " "
            + cap.word(cap.POSITION_WORDS, o.position, rng)
            for o in objects
        ]
    text = f"{cap.join_list(parts)} {cap.background_phrase(scene.background, rng)}"
    text += f", {cap.style_phrase(scene.style, rng)}"
    chat = _Chat().user(Ask(Task.CONDITION, text), ImageRole.CONDITION)
    specs = (ImageSpec(scene, view=view), ImageSpec(scene))
    return chat.assistant(ImageRole.IMAGE).sample("condition", split, specs, (False, True))


def plan_restore(rng: random.Random, split: Split) -> Sample:
    scene = sample_scene(rng, split)
    degraded = ImageSpec(scene, degradations=sample_degradations(rng))
    chat = _Chat().user(Ask(Task.RESTORE, ""), ImageRole.RESTORE).assistant(ImageRole.IMAGE)
    return chat.sample("restore", split, (degraded, ImageSpec(scene)), (False, True))


def plan_style(rng: random.Random, split: Split) -> Sample:
    content = sample_scene(rng, split)
    reference = sample_scene(rng, split)
    style = rng.choice([s for s in STYLES if s != content.style])
    reference = replace(reference, style=style)
    target = replace(content, style=style)
    chat = _Chat().user(Ask(Task.STYLE, ""), ImageRole.IMAGE, ImageRole.STYLE)
    specs = (ImageSpec(content), ImageSpec(reference), ImageSpec(target))
    return chat.assistant(ImageRole.IMAGE).sample("style", split, specs, (False, False, True))


def rewrite_scene(brief: Brief, rng: random.Random, split: Split) -> Scene:
    """A random scene consistent with ``brief`` (within the split's rules)."""
    train = split == "train"
    for _ in range(MAX_ATTEMPTS):
        objects: list[ObjectSpec] = []
        for shape, colour in brief.objects:
            free = [p for p in POSITIONS if p not in {o.position for o in objects}]
            base = sample_object(rng, rng.choice(free))
            obj = replace(base, shape=shape, colour=colour or rng.choice(list(COLOURS)))
            if obj.key in {o.key for o in objects} or (train and not is_train_object(obj)):
                break
            objects.append(obj)
        background = brief.background or rng.choice(list(BACKGROUNDS))
        style = brief.style or rng.choice(STYLES)
        if len(objects) == len(brief.objects) and (not train or is_train_look(background, style)):
            return Scene(tuple(objects), background, style)
    raise RuntimeError(f"no scene fits {brief}")


def plain_scene(brief: Brief) -> Scene:
    """The one scene a brief is drawn as with PSR off: what it names, and for everything it
    leaves open the plainest choice (large, plain, unjittered, laid out by `PLAIN_LAYOUT`, a
    `PLAIN_COLOURS` colour, on white, flat).

    One scene, not a random one: the LLM regresses the 64 features, and trained on random
    completions of "a red circle" it writes their average, which the de-tokenizer draws as an
    empty canvas (wegen-tiny before the ``brief`` kind, every time). Variety is what PSR is for.
    """
    taken = {(colour, shape) for shape, colour in brief.objects if colour is not None}
    objects: list[ObjectSpec] = []
    for (shape, named), position in zip(
        brief.objects, PLAIN_LAYOUT[len(brief.objects)], strict=True
    ):
        colour = named or next(
            c for c in PLAIN_COLOURS if not is_heldout_key(c, shape) and (c, shape) not in taken
        )
        taken.add((colour, shape))
        objects.append(ObjectSpec(shape, colour, "large", position))
    return Scene(tuple(objects), brief.background or "white", brief.style or "flat")


def plan_brief(rng: random.Random, split: Split) -> Sample:
    """A brief typed as people type a first request (with the Generate task, or on automatic
    inside a request form), PSR off, and the image of its `plain_scene`."""
    brief = brief_of(sample_scene(rng, split), rng)
    text = brief_text(brief, rng, brief_words(brief, rng))
    if rng.random() < BRIEF_AUTO_PROB:
        ask = Ask(Task.AUTO, phrase_request(text, rng, "train").text)
    else:
        ask = Ask(Task.GENERATE, text)
    chat = _Chat().user(ask).assistant(ImageRole.IMAGE)
    return chat.sample("brief", split, (ImageSpec(plain_scene(brief)),), (True,), brief=brief)


def plan_psr(rng: random.Random, split: Split) -> Sample:
    """A brief, and rewrites of it that add what it leaves open: each names what the brief
    names in the brief's own words (`brief_words`), never a synonym ("disc" stays "disc")."""
    scene = sample_scene(rng, split)
    brief = brief_of(scene, rng)
    words = brief_words(brief, rng)
    scenes = [scene] + [rewrite_scene(brief, rng, split) for _ in range(PSR_REWRITES - 1)]
    rewrites = tuple(Rewrite(detailed_caption(s, rng, words), s) for s in scenes)
    # the user types the brief with the Generate task and PSR on; the model rewrites it
    chat = _Chat().user(Ask(Task.GENERATE, brief_text(brief, rng, words), psr=True))
    chat.assistant(rewrites[0].text)
    specs: tuple[ImageSpec, ...] = ()
    if rng.random() < 0.5:
        chat.user(Ask(Task.GENERATE, rewrites[0].text)).assistant(ImageRole.IMAGE)
        specs = (ImageSpec(scene),)
    return chat.sample("psr", split, specs, (True,) * len(specs), brief=brief, rewrites=rewrites)


PLANNERS: dict[str, Callable[[random.Random, Split], Sample]] = {
    "t2i": plan_t2i,
    "vqa": plan_vqa,
    "caption": plan_caption,
    "edit": plan_edit,
    "diic": plan_diic,
    "subject": plan_subject,
    "condition": plan_condition,
    "restore": plan_restore,
    "style": plan_style,
    "psr": plan_psr,
    "brief": plan_brief,
}
assert tuple(PLANNERS) == SAMPLE_KINDS


# --- split checks ---------------------------------------------------------------------------
_HELDOUT_PHRASES = [
    re.compile(rf"\b{c} (?:\w+ )?{s}\b")
    for shape, colour in HELDOUT_SHAPE_COLOUR
    for c in cap.COLOUR_WORDS[colour]
    for s in cap.SHAPE_WORDS[shape]
]


def names_heldout_pair(text: str) -> bool:
    """Whether ``text`` names a held-out shape x colour pair ("green star", "green dotted star")."""
    return any(p.search(text) for p in _HELDOUT_PHRASES)


def evaluated_scenes(sample: Sample) -> tuple[Scene, ...]:
    """The scenes an evaluation scores: the rewrites (psr), the input (vqa, caption), else the
    generation targets."""
    if sample.kind == "psr":
        return tuple(r.scene for r in sample.rewrites)
    if sample.kind in ("vqa", "caption"):
        return sample.scenes
    return sample.target_scenes


def fits_split(sample: Sample) -> bool:
    scenes = (*sample.scenes, *(r.scene for r in sample.rewrites))
    if sample.split == "train":
        return not any(is_heldout_scene(s) for s in scenes) and not any(
            names_heldout_pair(t) for t in (*sample.texts(), *(r.text for r in sample.rewrites))
        )
    if sample.kind == "psr":
        return sample.brief is not None and any(
            c is not None and is_heldout_key(c, s) for s, c in sample.brief.objects
        )
    return any(is_heldout_scene(s) for s in evaluated_scenes(sample))


# --- entry points ---------------------------------------------------------------------------
def plan_sample(kind: str, rng: random.Random, split: Split = "train") -> Sample:
    """A sample of ``kind`` without pixels (cheap), re-drawn until it fits ``split``."""
    check_split(split)
    if kind not in PLANNERS:
        raise ValueError(f"unknown sample kind {kind!r}; expected one of {SAMPLE_KINDS}")
    for _ in range(MAX_ATTEMPTS):
        sample = PLANNERS[kind](rng, split)
        if fits_split(sample):
            return sample
    raise RuntimeError(f"could not draw a {split} {kind} sample in {MAX_ATTEMPTS} attempts")


def make_sample(kind: str, seed: int, split: Split = "train", size: int = 128) -> Sample:
    """The sample of ``kind`` for ``seed``, with its images rendered at ``size``."""
    return plan_sample(kind, random.Random(f"{kind}/{split}/{seed}"), split).rendered(size)


def sample_mix(
    rng: random.Random,
    weights: Sequence[tuple[str, float]],
    n: int,
    size: int,
    split: Split = "train",
) -> list[Sample]:
    """``n`` samples of ``weights``' kinds (kind, relative weight), drawn from ``rng`` and
    rendered at ``size``: a training batch's samples, or a written pool chunk's requests."""
    kinds, w = zip(*weights, strict=True)
    return [
        plan_sample(rng.choices(kinds, weights=w)[0], rng, split).rendered(size) for _ in range(n)
    ]


def sample_stream(
    seed: int,
    split: Split = "train",
    *,
    kinds: Sequence[str] = SAMPLE_KINDS,
    weights: Sequence[float] | None = None,
    size: int | None = 128,
) -> Iterator[Sample]:
    """An endless, seeded stream of samples (rendered at ``size``; plans only if None)."""
    rng = random.Random(f"stream/{split}/{seed}")
    while True:
        kind = rng.choices(list(kinds), weights=weights)[0]
        sample = plan_sample(kind, rng, split)
        yield sample if size is None else sample.rendered(size)
