"""What one request produced (`Output`) and the scorers: each reads an output against its sample.

Every scorer takes the sample and the output's image (or text) and returns a score per sample
(see metrics.py for what each metric means); a missing image (a failed request) scores as a
miss. The judge (training/data/judge.py) reads the drawings.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from training.data.captions import (
    BACKGROUND_WORDS,
    COLOUR_WORDS,
    NUMBER_WORDS,
    SHAPE_WORDS,
    STYLE_WORDS,
    Brief,
)
from training.data.judge import ParsedScene, parse_scene
from training.data.samples import Sample, turn_text
from training.data.scoring import diversity, preservation, scene_match
from training.data.world import BACKGROUNDS, OBJECT_VALUES, STYLES, ObjectSpec, Scene
from training.evaluation.metrics import PSNR_CAP


@dataclass(frozen=True, eq=False)
class Output:
    """What one request produced: the reply's text and images, or why it failed."""

    text: str = ""
    images: tuple[Image.Image, ...] = ()
    failure: str | None = None
    rewrite: str | None = None  # PSR's detailed prompt, when PSR was on

    @property
    def image(self) -> Image.Image | None:
        return self.images[0] if self.images else None


def _attrs(obj: ObjectSpec) -> tuple[str, ...]:
    return tuple(obj.attributes().values())


def t2i_score(sample: Sample, image: Image.Image | None) -> float:
    """1.0 if the judge reads the target scene's objects exactly (all attributes, nothing else)."""
    if image is None:
        return 0.0
    return float(scene_match(sample.target_scenes[-1], parse_scene(image)))


_ARTICLE = re.compile(r"^(?:a|an|the)\s+")


def normalise_answer(text: str) -> str:
    """Lower case, whitespace collapsed, punctuation and a leading article dropped, digits 0-5
    as words ("The Red." -> "red", "2" -> "two")."""
    text = re.sub(r"[^\w\s-]", " ", text.lower())
    text = " ".join(text.split())
    text = _ARTICLE.sub("", text)
    if text.isdigit() and int(text) < len(NUMBER_WORDS):
        text = NUMBER_WORDS[int(text)]
    return text


def vqa_answer(sample: Sample) -> str:
    """The canonical answer: the text of the sample's final assistant turn."""
    return turn_text(sample.turns[-1])


def vqa_score(sample: Sample, text: str) -> float:
    return float(normalise_answer(text) == normalise_answer(vqa_answer(sample)) != "")


#: what a VQA question asks, told apart by its canonical answer (the vocabularies are disjoint)
#: (in the order of the text-to-image attributes, so the report's tables line up)
VQA_KINDS: tuple[tuple[str, frozenset[str]], ...] = (
    *((name, frozenset(values)) for name, values in OBJECT_VALUES.items()),
    ("count", frozenset(NUMBER_WORDS)),
    ("exists", frozenset({"yes", "no"})),
    ("background", frozenset(BACKGROUNDS)),
    ("style", frozenset(STYLES)),
)


def vqa_kind(sample: Sample) -> str:
    """What the question asks: ``colour``, ``shape``, ..., ``style`` (`VQA_KINDS`)."""
    answer = vqa_answer(sample)
    for kind, answers in VQA_KINDS:
        if answer in answers:
            return kind
    raise ValueError(f"no VQA kind answers {answer!r}")


#: the order of the parts in the report's breakdown tables
PART_ORDER = {kind: i for i, (kind, _) in enumerate(VQA_KINDS)}


def edit_applied(before: Scene, after: Scene, parsed: ParsedScene) -> bool:
    """Whether ``parsed`` shows the edit ``before`` -> ``after``: created or changed objects at
    their cells with all new attributes, emptied cells empty, a new background."""
    old = {_attrs(o) for o in before.objects}
    new = {_attrs(o) for o in after.objects}
    for obj in after.objects:
        if _attrs(obj) not in old:
            read = parsed.at(obj.position)
            if read is None or read.attributes() != obj.attributes():
                return False
    occupied = {o.position for o in after.objects}
    for obj in before.objects:
        emptied = _attrs(obj) not in new and obj.position not in occupied
        if emptied and parsed.at(obj.position) is not None:
            return False
    return before.background == after.background or parsed.background == after.background


def edit_scores(sample: Sample, image: Image.Image | None) -> tuple[float, float]:
    """(success, preservation) of the sample's last edit (previous image slot -> target)."""
    if image is None:
        return 0.0, 0.0
    before, after = sample.specs[-2].scene, sample.specs[-1].scene
    parsed = parse_scene(image)
    return float(edit_applied(before, after, parsed)), preservation(before, after, parsed)


def subject_score(sample: Sample, image: Image.Image | None) -> float:
    """1.0 if an object with the reference instance's shape, colour and pattern is read."""
    if image is None:
        return 0.0
    (reference,) = sample.specs[0].scene.objects
    parsed = parse_scene(image)
    return float(any((o.shape, o.colour, o.pattern) == reference.identity for o in parsed.objects))


def _layout_match(truth: Scene, parsed: ParsedScene, attributes: Sequence[str]) -> bool:
    """Same number of objects, each truth object read at its cell with ``attributes`` equal."""
    if len(parsed.objects) != len(truth.objects):
        return False
    for obj in truth.objects:
        read = parsed.at(obj.position)
        if read is None or any(getattr(read, a) != getattr(obj, a) for a in attributes):
            return False
    return True


def condition_score(sample: Sample, image: Image.Image | None) -> float:
    """1.0 if the objects follow the condition map: shape and cell, plus colour for a sketch."""
    if image is None:
        return 0.0
    view = sample.specs[0].view
    attributes = ("shape", "colour") if view == "sketch" else ("shape",)
    return float(_layout_match(sample.specs[-1].scene, parse_scene(image), attributes))


def style_score(sample: Sample, image: Image.Image | None) -> float:
    """1.0 if the judged style is the reference's and every content object keeps its cell,
    shape and colour (size and pattern are left out: pixel style hides them from the judge)."""
    if image is None:
        return 0.0
    target = sample.specs[-1].scene
    parsed = parse_scene(image)
    return float(
        parsed.style == target.style and _layout_match(target, parsed, ("shape", "colour"))
    )


def psnr(image: Image.Image, reference: Image.Image) -> float:
    """PSNR in dB of ``image`` against ``reference`` (resized to it), capped at `PSNR_CAP`."""
    image = image.convert("RGB")
    if image.size != reference.size:
        image = image.resize(reference.size, Image.Resampling.BICUBIC)
    a = np.asarray(image, np.float64)
    b = np.asarray(reference.convert("RGB"), np.float64)
    mse = float(np.mean((a - b) ** 2))
    if mse == 0.0:
        return PSNR_CAP
    return min(PSNR_CAP, 10.0 * math.log10(255.0**2 / mse))


def restoration_gain(sample: Sample, image: Image.Image | None) -> float:
    """PSNR(output, clean) - PSNR(degraded, clean) in dB; 0 for a missing output."""
    if image is None:
        return 0.0
    degraded, clean = sample.images[0], sample.images[-1]
    return psnr(image, clean) - psnr(degraded, clean)


def brief_consistent(brief: Brief, image: Image.Image | None) -> bool:
    """Whether the judged scene of ``image`` is one the brief allows."""
    if image is None:
        return False
    # Brief.consistent reads only .objects (.shape, .colour), .background and .style, which a
    # ParsedScene has too; building a Scene could fail on a garbled parse (two equal objects).
    return brief.consistent(parse_scene(image))  # type: ignore[arg-type]


def rewrite_keeps(brief: Brief, rewrite: str | None) -> float:
    """The share of what ``brief`` names (each object's shape and colour, the background, the
    style) that ``rewrite`` still names, in any of the captions' words for it. A rewrite may
    add what the brief leaves open, never drop or change what it names; no rewrite keeps 0."""
    text = f" {' '.join(re.findall(r'[a-z-]+', (rewrite or '').lower()))} "
    named = [
        words
        for shape, colour in brief.objects
        for words in (SHAPE_WORDS[shape], COLOUR_WORDS[colour] if colour else None)
        if words
    ]
    if brief.background is not None:
        named.append(BACKGROUND_WORDS[brief.background])
    if brief.style is not None:
        named.append(STYLE_WORDS[brief.style])
    kept = [any(f" {w} " in text for w in words) for words in named]
    return float(np.mean(kept)) if kept else 1.0


def psr_scores(
    brief: Brief,
    on: Sequence[Image.Image | None],
    off: Sequence[Image.Image | None],
    rewrites: Sequence[str | None] = (),
) -> dict[str, float]:
    """One PSR prompt: diversity and brief-consistency rate of the images with PSR on / off
    (None marks a failed request), and the share of the brief the rewrites keep."""
    return {
        "diversity_on": diversity([im for im in on if im is not None]),
        "diversity_off": diversity([im for im in off if im is not None]),
        "consistent_on": float(np.mean([brief_consistent(brief, im) for im in on])),
        "consistent_off": float(np.mean([brief_consistent(brief, im) for im in off])),
        "kept": float(np.mean([rewrite_keeps(brief, r) for r in rewrites])) if rewrites else 0.0,
    }
