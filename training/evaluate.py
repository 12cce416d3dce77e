"""``wegen-eval``: score every WeGen capability on held-out samples of the shapes world.

    wegen-eval --model DIR --out report.json [--n 8] [--seed 0] [--device auto] [--threads 1]

Every request goes through the Engine API exactly as the desktop sends it (`engine.api.Request`
with `api.Turn` / `api.ImagePart` holding PIL images, a task hint, `GenerationSettings` with a
fixed seed per sample and the model's default steps). Only samples of the ``"heldout"`` split
(training/data/splits.py) are used, so a score measures composition of attributes the model
learnt separately. The report is JSON (``--out``) plus a markdown table (``.md`` beside it, also
printed). Training calls `evaluate` on an in-memory model::

    engine = WeGenEngine()
    engine.attach(model, tokenizer, Runtime(device, dtype))
    report = evaluate(engine, n_per_metric=8, seed=0)

How a request is built from a sample (`build_request`)
------------------------------------------------------
The sample's last user turn becomes ``Request.message`` (attachments first, then the text); the
turns before it become ``Request.history``, every image slot filled with the sample's
ground-truth render. For multi-turn edits the history therefore holds the previous assistant
turn with the *true* render of the previous scene, not the model's own earlier output, so each
edit is scored in isolation. History texts are passed verbatim (as the model saw them in
training).

Text phrasing: the sample's user text was already phrased by ``engine.template.task_text``, and
the engine phrases ``message`` again from the task hint. We pass the task hint that matches the
sample kind and the RAW text: `unphrase` strips the task's instruction so that
``task_text(task, raw)`` reproduces the sample text byte for byte (checked; the prompt the model
sees is exactly the training prompt). Samples phrased for ``Task.AUTO`` (a plain request) are
skipped when drawing, so every request carries the real task hint.

Metrics (per sample a score; the metric is the mean over samples)
-----------------------------------------------------------------
* ``t2i_single`` / ``t2i_pair``: detailed caption of a 1- / 2-object scene -> image; 1 if the
  judge (judge.parse_scene) reads every object with every attribute and nothing extra
  (scoring.scene_match; background and style not required).
* ``vqa``: image + question -> text; 1 if `normalise_answer` of the reply equals that of the
  canonical answer (lower case, punctuation and a leading article dropped, digits as words).
  The markdown also breaks it down by what the question asks (`vqa_kind`: colour, shape, size,
  pattern, position, count, exists, background, style), as it breaks text-to-image down by
  attribute.
* ``edit_success``: 1 if every object the edit creates or changes is read at its new cell with
  all its new attributes, every cell the edit empties is read empty, and a background edit shows
  the new background. ``edit_preservation``: scoring.preservation (share of untouched objects
  read unchanged). Only edits that leave at least one object untouched are drawn, so both are
  measured on the same samples and preservation is never vacuous.
* ``subject_identity``: 1 if an object with the reference's shape, colour and pattern is read.
* ``condition_adherence``: 1 if the judge reads exactly the scene's objects, each at its cell
  with its shape (and its colour when the condition is a layout sketch, which shows colours).
* ``restoration_psnr_gain_db``: PSNR(output, clean) - PSNR(degraded, clean), both capped at
  `PSNR_CAP` dB, output resized to the clean render's size.
* ``style_transfer``: 1 if the judged style is the style reference's and the content is kept:
  the same number of objects, each at its cell with its shape and colour.
* ``psr_diversity_ratio``: for each held-out brief prompt, K seeds with PSR on and K with PSR
  off (same prompt, same seeds); mean over prompts of scoring.diversity (mean pairwise
  image_distance) with PSR on, divided by the same with PSR off (floored at `DIVERSITY_FLOOR`).
  ``psr_fidelity_drop``: (share of PSR-off images whose judged scene satisfies the brief,
  captions.Brief.consistent) - (the same share with PSR on).

A request that ends in ``Failed`` / ``Cancelled`` (or raises) is a miss: 0 for fractions, a gain
of 0 dB for restoration, and no image for PSR (not consistent; left out of the diversity). Its
message is kept in the report. Each metric also reports a **judge ceiling** where meaningful:
the score of the ground-truth render (the canonical answer for VQA) standing in for the model's
output, i.e. what a perfect model would get given the judge's own errors. And a **95% interval**
(training/confidence.py: Wilson for shares, a bootstrap over samples otherwise), worked out from
the report's items, so that runs are compared by what their samples can tell apart.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from engine import api
from engine.template import (
    PSR_INSTRUCTION,
    TASK_INSTRUCTIONS,
    ImageRole,
    Role,
    Task,
    TemplateTurn,
    task_text,
)
from training.confidence import bootstrap, format_interval, mean_interval
from training.data.captions import NUMBER_WORDS, Brief
from training.data.judge import ParsedScene, parse_scene
from training.data.samples import Sample
from training.data.scoring import (
    attribute_hits,
    diversity,
    preservation,
    scene_match,
    untouched,
)
from training.data.splits import SPLITS, Split, check_split
from training.data.tasks import fits_split, plan_sample
from training.data.world import (
    BACKGROUNDS,
    OBJECT_VALUES,
    STYLES,
    ObjectSpec,
    Scene,
)

__all__ = [
    "CAPABILITIES",
    "METRICS",
    "MetricResult",
    "Output",
    "Report",
    "build_request",
    "condition_score",
    "count_turns",
    "edit_scores",
    "evaluate",
    "heldout_samples",
    "main",
    "normalise_answer",
    "psnr",
    "psr_brief_text",
    "psr_scores",
    "restoration_gain",
    "run_request",
    "style_score",
    "subject_score",
    "t2i_score",
    "unphrase",
    "vqa_score",
]

SPLIT = "heldout"
#: Samples per metric by default: a full run of the tiny model takes a few minutes on 2 cores.
DEFAULT_N = 8
#: Seeds per brief prompt for the PSR metrics (each seed runs with PSR on and off).
DEFAULT_PSR_SEEDS = 3
#: Text budget of a VQA reply (answers are one to three words).
VQA_MAX_NEW_TOKENS = 32
#: PSNR of identical images would be infinite.
PSNR_CAP = 60.0
#: Diversity without PSR below this counts as this (a deterministic model can reach 0).
DIVERSITY_FLOOR = 1e-3
#: Candidate samples drawn per metric before giving up on finding n that fit.
MAX_DRAWS = 5000
#: Generation settings the command line can set for every request (the rest are per item).
TUNABLE = ("steps", "guidance", "embedding_cfg", "denoise_strength")


# --- metrics --------------------------------------------------------------------------------
@dataclass(frozen=True)
class MetricSpec:
    target: float
    op: str  # ">=" or "<="
    description: str
    has_ceiling: bool = True


def meets(value: float, target: float, op: str) -> bool:
    """Whether ``value`` reaches ``target`` in the direction ``op`` (">=" or "<=")."""
    return value >= target if op == ">=" else value <= target


METRICS: dict[str, MetricSpec] = {
    "t2i_single": MetricSpec(0.9, ">=", "1-object detailed caption: every attribute right"),
    "t2i_pair": MetricSpec(0.75, ">=", "2-object detailed caption: every attribute right"),
    "vqa": MetricSpec(0.9, ">=", "exact match of the normalised answer"),
    "edit_success": MetricSpec(0.8, ">=", "the edited object has its new attributes"),
    "edit_preservation": MetricSpec(0.9, ">=", "untouched objects unchanged"),
    "subject_identity": MetricSpec(0.85, ">=", "reference shape+colour+pattern appears"),
    "condition_adherence": MetricSpec(
        0.85, ">=", "objects follow the map: shape+position (+colour for sketches)"
    ),
    "restoration_psnr_gain_db": MetricSpec(
        6.0, ">=", "PSNR(restored, clean) - PSNR(degraded, clean)", has_ceiling=False
    ),
    "style_transfer": MetricSpec(0.85, ">=", "reference style and content kept"),
    "psr_diversity_ratio": MetricSpec(
        2.0, ">=", "image diversity over seeds, PSR on / off", has_ceiling=False
    ),
    "psr_fidelity_drop": MetricSpec(
        0.05, "<=", "brief consistency without PSR - with PSR", has_ceiling=False
    ),
}


# --- outputs and scorers --------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Output:
    """What one request produced: the reply's text and images, or why it failed."""

    text: str = ""
    images: tuple[Image.Image, ...] = ()
    failure: str | None = None

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


def _text(turn: TemplateTurn) -> str:
    """A template turn's text (``ImageRole`` is a str enum: leave the image slots out)."""
    return "".join(p for p in turn.parts if not isinstance(p, ImageRole))


def vqa_answer(sample: Sample) -> str:
    """The canonical answer: the text of the sample's final assistant turn."""
    return _text(sample.turns[-1])


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


_PART_ORDER = {kind: i for i, (kind, _) in enumerate(VQA_KINDS)}


def _vqa_by_kind(sample: Sample, out: Output) -> dict[str, list[int]]:
    return {vqa_kind(sample): [int(vqa_score(sample, out.text)), 1]}


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


def psr_scores(
    brief: Brief, on: Sequence[Image.Image | None], off: Sequence[Image.Image | None]
) -> dict[str, float]:
    """One PSR prompt: diversity and brief-consistency rate of the images with PSR on / off
    (None marks a failed request)."""
    return {
        "diversity_on": diversity([im for im in on if im is not None]),
        "diversity_off": diversity([im for im in off if im is not None]),
        "consistent_on": float(np.mean([brief_consistent(brief, im) for im in on])),
        "consistent_off": float(np.mean([brief_consistent(brief, im) for im in off])),
    }


# --- requests -------------------------------------------------------------------------------
def unphrase(task: Task, text: str) -> str | None:
    """The raw text ``raw`` with ``task_text(task, raw) == text``, or None if ``text`` is not
    phrased for ``task``."""
    if task_text(task, "") == text:
        return ""
    prefix, suffix = TASK_INSTRUCTIONS[task].split("{text}")
    if text.startswith(prefix) and text.endswith(suffix):
        raw = text[len(prefix) : len(text) - len(suffix)]
        if task_text(task, raw) == text:
            return raw
    return None


def psr_brief_text(sample: Sample) -> str:
    """The brief prompt of a PSR sample (its first user turn without the PSR instruction)."""
    text = _text(sample.turns[0])
    prefix, suffix = PSR_INSTRUCTION.split("{text}")
    if not text.startswith(prefix) or not text.endswith(suffix):
        raise ValueError(f"not a PSR instruction: {text!r}")
    return text[len(prefix) : len(text) - len(suffix)].strip()


def _last_user_text(sample: Sample) -> str:
    return _text(sample.turns[-2])


def build_request(
    sample: Sample, task: Task, settings: api.GenerationSettings, *, tag: str = ""
) -> api.Request:
    """The request that asks for the sample's final assistant turn (see the module docstring).

    Raises ValueError if the sample's last user text is not phrased for ``task`` or its images
    are not rendered.
    """
    if len(sample.turns) < 2 or sample.turns[-1].role is not Role.ASSISTANT:
        raise ValueError("a sample must end with a user turn and the assistant's reply")
    if len(sample.images) != len(sample.specs):
        raise ValueError("render the sample first (Sample.rendered)")
    slots = iter(enumerate(sample.images))
    turns: list[api.Turn] = []
    for turn in sample.turns[:-1]:
        parts: list[str | api.ImagePart] = []
        for part in turn.parts:
            if isinstance(part, ImageRole):
                index, image = next(slots)
                parts.append(api.ImagePart(image, part, f"{tag or sample.kind}/slot{index}.png"))
            elif part:
                parts.append(part)
        turns.append(api.Turn(turn.role, tuple(parts)))
    *history, last = turns
    if any(isinstance(p, api.ImagePart) for p in last.parts[len(last.images) :]):
        raise ValueError("the last user turn must have its images before its text")
    raw = unphrase(task, last.text)
    if raw is None:
        raise ValueError(f"{last.text!r} is not phrased for task {task.value}")
    return api.Request(
        message=api.Turn.user(raw, *last.images),
        history=tuple(history),
        settings=settings,
        task=task,
    )


def run_request(engine: api.Engine, request: api.Request) -> Output:
    """Run one request; a Failed / Cancelled event, a missing final event or an exception is a
    failure (reported, never raised)."""
    events: list[api.Event] = []
    try:
        engine.run(request, events.append, threading.Event())
    except Exception as e:  # an engine must not raise, but a broken one must not stop the eval
        return Output(failure=f"engine raised {type(e).__name__}: {e}")
    final = events[-1] if events else None
    if isinstance(final, api.Finished):
        images = tuple(p.image for p in final.reply.images)
        return Output(final.reply.text, images)
    if isinstance(final, api.Failed):
        return Output(failure=final.message)
    if isinstance(final, api.Cancelled):
        return Output(failure="cancelled")
    return Output(failure="the engine sent no final event")


# --- capabilities ---------------------------------------------------------------------------
def _phrased_for(task: Task) -> Callable[[Sample], bool]:
    return lambda s: len(s.turns) >= 2 and unphrase(task, _last_user_text(s)) is not None


def _objects(n: int) -> Callable[[Sample], bool]:
    phrased = _phrased_for(Task.GENERATE)
    return lambda s: phrased(s) and len(s.target_scenes[-1].objects) == n


def _edit_accept(sample: Sample) -> bool:
    """Phrased for EDIT and with at least one object the edit must keep (else preservation is
    vacuously 1)."""
    return _phrased_for(Task.EDIT)(sample) and bool(
        untouched(sample.specs[-2].scene, sample.specs[-1].scene)
    )


def _image_oracle(sample: Sample) -> Output:
    return Output(images=(sample.images[-1],))


@dataclass(frozen=True)
class Capability:
    """One capability: which held-out samples, which task hint, how to score an output."""

    name: str
    kind: str  # sample kind (training/data/tasks.py)
    task: Task
    metrics: tuple[str, ...]
    accept: Callable[[Sample], bool]
    score: Callable[[Sample, Output], dict[str, float]]
    oracle: Callable[[Sample], Output] = _image_oracle
    max_new_tokens: int | None = None
    #: partial credit: per part (an attribute of a drawing, a kind of question), [correct,
    #: total] (`Report.attribute_accuracy`); empty when there is nothing to read
    attributes: Callable[[Sample, Output], dict[str, list[int]]] | None = None
    #: the heading of the markdown table that shows those shares
    breakdown: str = ""


_T2I_BREAKDOWN = (
    "Text-to-image, attribute by attribute (the share the judge reads right; the metrics above "
    "need every one):"
)
_VQA_BREAKDOWN = "VQA, by what the question asks (the share answered right):"


def _target_attributes(sample: Sample, out: Output) -> dict[str, list[int]]:
    # the metric needs every attribute right; training moves these first
    if out.image is None:
        return {}
    hits = attribute_hits(sample.target_scenes[-1], parse_scene(out.image))
    return {name: list(pair) for name, pair in hits.items()}


def _one(metric: str, scorer: Callable[[Sample, Image.Image | None], float]):
    return lambda s, out: {metric: scorer(s, out.image)}


def _edit(sample: Sample, out: Output) -> dict[str, float]:
    success, kept = edit_scores(sample, out.image)
    return {"edit_success": success, "edit_preservation": kept}


CAPABILITIES: tuple[Capability, ...] = (
    Capability(
        "t2i_single",
        "t2i",
        Task.GENERATE,
        ("t2i_single",),
        _objects(1),
        _one("t2i_single", t2i_score),
        attributes=_target_attributes,
        breakdown=_T2I_BREAKDOWN,
    ),
    Capability(
        "t2i_pair",
        "t2i",
        Task.GENERATE,
        ("t2i_pair",),
        _objects(2),
        _one("t2i_pair", t2i_score),
        attributes=_target_attributes,
        breakdown=_T2I_BREAKDOWN,
    ),
    Capability(
        "vqa",
        "vqa",
        Task.DESCRIBE,
        ("vqa",),
        _phrased_for(Task.DESCRIBE),
        lambda s, out: {"vqa": vqa_score(s, out.text)},
        oracle=lambda s: Output(text=vqa_answer(s)),
        max_new_tokens=VQA_MAX_NEW_TOKENS,
        attributes=_vqa_by_kind,
        breakdown=_VQA_BREAKDOWN,
    ),
    Capability(
        "edit",
        "edit",
        Task.EDIT,
        ("edit_success", "edit_preservation"),
        _edit_accept,
        _edit,
    ),
    Capability(
        "subject",
        "subject",
        Task.SUBJECT,
        ("subject_identity",),
        _phrased_for(Task.SUBJECT),
        _one("subject_identity", subject_score),
    ),
    Capability(
        "condition",
        "condition",
        Task.CONDITION,
        ("condition_adherence",),
        _phrased_for(Task.CONDITION),
        _one("condition_adherence", condition_score),
    ),
    Capability(
        "restore",
        "restore",
        Task.RESTORE,
        ("restoration_psnr_gain_db",),
        _phrased_for(Task.RESTORE),
        _one("restoration_psnr_gain_db", restoration_gain),
    ),
    Capability(
        "style",
        "style",
        Task.STYLE,
        ("style_transfer",),
        _phrased_for(Task.STYLE),
        _one("style_transfer", style_score),
    ),
)
PSR_CAPABILITY = "psr"
CAPABILITY_NAMES: tuple[str, ...] = (*(c.name for c in CAPABILITIES), PSR_CAPABILITY)


def heldout_samples(
    kind: str,
    n: int,
    seed: int,
    accept: Callable[[Sample], bool],
    size: int,
    split: Split = SPLIT,
) -> Iterator[tuple[int, Sample]]:
    """``n`` held-out samples of ``kind`` that pass ``accept``, as (sample seed, sample rendered
    at ``size``); the same as ``tasks.make_sample(kind, sample_seed, split, size)``.

    ``split="train"`` draws samples of the training distribution instead (combinations seen in
    training, fresh seeds): the place to tune generation settings without looking at the
    held-out samples the report is about."""
    import random

    check_split(split)
    found = 0
    for i in range(MAX_DRAWS):
        sample_seed = seed * 10_000 + i
        plan = plan_sample(kind, random.Random(f"{kind}/{split}/{sample_seed}"), split)
        if plan.split != split or not fits_split(plan) or not accept(plan):
            continue
        yield sample_seed, plan.rendered(size)
        found += 1
        if found == n:
            return
    raise RuntimeError(f"only {found} of {n} {split} {kind} samples fit in {MAX_DRAWS} draws")


# --- report ---------------------------------------------------------------------------------
@dataclass
class MetricResult:
    name: str
    value: float
    target: float
    op: str
    n: int  # samples (prompts for PSR)
    failed: int = 0  # requests that ended in Failed / Cancelled
    ceiling: float | None = None  # the score of the ground truth, given the judge
    description: str = ""

    @property
    def passed(self) -> bool:
        return meets(self.value, self.target, self.op)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"passed": self.passed}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MetricResult:
        # "passed" and "interval" are derived (the latter from the report's items)
        return cls(**{k: v for k, v in data.items() if k not in ("passed", "interval")})


@dataclass
class Report:
    model: str
    seed: int
    n_per_metric: int
    psr_seeds: int
    image_size: int
    #: which samples: "heldout" (what the targets are about) or "train" (for tuning settings)
    split: str = SPLIT
    #: the generation settings every request started from (each item's seed is its own)
    settings: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, MetricResult] = field(default_factory=dict)
    #: one record per evaluated sample: capability, kind, sample_seed, split, scores, failures
    items: list[dict[str, Any]] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def passed(self) -> bool:
        return all(m.passed for m in self.metrics.values())

    @property
    def failures(self) -> list[str]:
        return [f for item in self.items for f in item.get("failures", [])]

    def attribute_accuracy(self, capability: str) -> dict[str, float]:
        """Per attribute, the share read right in ``capability``'s drawings (objects for object
        attributes, images for count, background and style); empty when no item has them."""
        correct: Counter[str] = Counter()
        total: Counter[str] = Counter()
        for item in self.items:
            if item["capability"] == capability:
                for name, (c, t) in item.get("attributes", {}).items():
                    correct[name] += c
                    total[name] += t
        return {name: correct[name] / total[name] for name in total if total[name]}

    def interval(self, metric: str) -> tuple[float, float] | None:
        """The metric's 95% interval over this report's items (`training.confidence`); None
        when no item scored it."""
        rows = [i["scores"] for i in self.items if scores_metric(i, metric)]
        if metric in PSR_STATISTICS:
            return bootstrap(rows, PSR_STATISTICS[metric]) if rows else None
        return mean_interval([r[metric] for r in rows])

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        intervals = {k: self.interval(k) for k in self.metrics}
        data["metrics"] = {
            k: m.to_dict() | {"interval": None if (i := intervals[k]) is None else list(i)}
            for k, m in self.metrics.items()
        }
        data["passed"] = self.passed
        return data

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        data = {k: v for k, v in data.items() if k != "passed"}
        data["metrics"] = {k: MetricResult.from_dict(m) for k, m in data["metrics"].items()}
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> Report:
        return cls.from_dict(json.loads(text))

    def to_markdown(self) -> str:
        which = "Held-out samples only" if self.split == SPLIT else f"{self.split} samples"
        default = api.GenerationSettings()
        changed = {
            k: v for k, v in self.settings.items() if k in TUNABLE and v != getattr(default, k)
        }
        lines = [
            f"# WeGen evaluation: {self.model}",
            "",
            f"{which} · seed {self.seed} · n = {self.n_per_metric} per metric · "
            f"PSR seeds {self.psr_seeds} · image size {self.image_size} · "
            f"{self.elapsed_s:.0f} s" + "".join(f" · {k} {v}" for k, v in changed.items()),
            "",
            "| metric | value | 95% interval | target | result | n | failed | judge ceiling |",
            "|---|---:|---:|---:|---|---:|---:|---:|",
        ]
        for m in self.metrics.values():
            op = "≥" if m.op == ">=" else "≤"
            ceiling = "–" if m.ceiling is None else f"{m.ceiling:.3f}"
            lines.append(
                f"| {m.name} | {m.value:.3f} | {format_interval(self.interval(m.name))} | "
                f"{op} {m.target:g} | {'pass' if m.passed else 'FAIL'} | {m.n} | {m.failed} | "
                f"{ceiling} |"
            )
        passed = sum(m.passed for m in self.metrics.values())
        lines += ["", f"{passed} of {len(self.metrics)} targets met."]
        for heading, caps in itertools.groupby(CAPABILITIES, key=lambda c: c.breakdown):
            partial = {c.name: self.attribute_accuracy(c.name) for c in caps if c.attributes}
            partial = {c: shares for c, shares in partial.items() if shares}
            if not partial:
                continue
            names = sorted(
                dict.fromkeys(n for shares in partial.values() for n in shares),
                key=lambda n: _PART_ORDER.get(n, len(_PART_ORDER)),
            )
            lines += [
                "",
                heading,
                "",
                "| | " + " | ".join(names) + " |",
                "|---|" + "---:|" * len(names),
            ]
            lines += [
                f"| {c} | " + " | ".join(_share(shares.get(n)) for n in names) + " |"
                for c, shares in partial.items()
            ]
        failures = Counter(self.failures)
        if failures:
            lines += ["", f"Failed requests ({sum(failures.values())}), each a miss:"]
            lines += [f"- {count} × {message}" for message, count in failures.most_common(10)]
        return "\n".join(lines) + "\n"


def _share(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


# --- the evaluation -------------------------------------------------------------------------
def count_turns(
    n_per_metric: int = DEFAULT_N,
    psr_seeds: int = DEFAULT_PSR_SEEDS,
    only: Sequence[str] | None = None,
) -> int:
    """How many engine turns `evaluate` runs (for a progress bar)."""
    names = CAPABILITY_NAMES if only is None else only
    plain = sum(c.name in names for c in CAPABILITIES) * n_per_metric
    return plain + (2 * psr_seeds * n_per_metric if PSR_CAPABILITY in names else 0)


def _seed(sample_seed: int, k: int = 0) -> int:
    return (sample_seed * 7919 + k) % 2**31


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if values else 0.0


def _psr_diversity_ratio(prompts: Sequence[dict[str, float]]) -> float:
    on = _mean([p["diversity_on"] for p in prompts])
    return on / max(_mean([p["diversity_off"] for p in prompts]), DIVERSITY_FLOOR)


def _psr_fidelity_drop(prompts: Sequence[dict[str, float]]) -> float:
    return _mean([p["consistent_off"] for p in prompts]) - _mean(
        [p["consistent_on"] for p in prompts]
    )


#: the PSR metrics, each a statistic of the per-prompt scores (not a mean of per-prompt values)
PSR_STATISTICS: dict[str, Callable[[Sequence[dict[str, float]]], float]] = {
    "psr_diversity_ratio": _psr_diversity_ratio,
    "psr_fidelity_drop": _psr_fidelity_drop,
}


def scores_metric(item: dict[str, Any], metric: str) -> bool:
    """Whether a report item is one of the samples ``metric`` is computed over."""
    if metric in PSR_STATISTICS:
        return item["capability"] == PSR_CAPABILITY
    return metric in item["scores"]


def metric_statistic(metric: str) -> Callable[[Sequence[dict[str, float]]], float]:
    """The metric as a function of its items' scores: a PSR statistic, else the mean score."""
    if metric in PSR_STATISTICS:
        return PSR_STATISTICS[metric]
    return lambda scores: _mean([s[metric] for s in scores])


def evaluate(
    engine: api.Engine,
    n_per_metric: int = DEFAULT_N,
    seed: int = 0,
    *,
    psr_seeds: int = DEFAULT_PSR_SEEDS,
    size: int | None = None,
    only: Sequence[str] | None = None,
    progress: Callable[[str], None] | None = None,
    settings: api.GenerationSettings | None = None,
    split: Split = SPLIT,
) -> Report:
    """Score every capability (or those named in ``only``, see `CAPABILITY_NAMES`) on
    ``n_per_metric`` held-out samples each; ``progress(capability)`` is called after every turn.

    Every request starts from ``settings`` (default: the model's defaults) with its own seed.
    ``split="train"`` scores training-distribution samples instead, to tune settings on.

    ``engine`` is anything with the Engine API's ``run`` (a loaded or attached `WeGenEngine`).
    Input images are rendered at ``size`` (default: the model's image size, else 128). An
    attached model in training mode is switched to eval mode for the run and back afterwards.
    """
    if n_per_metric < 1 or psr_seeds < 2:
        raise ValueError("n_per_metric must be at least 1 and psr_seeds at least 2")
    check_split(split)
    base = settings or api.GenerationSettings()
    names = tuple(CAPABILITY_NAMES if only is None else only)
    unknown = [n for n in names if n not in CAPABILITY_NAMES]
    if unknown:
        raise ValueError(f"unknown capabilities {unknown}; choose from {CAPABILITY_NAMES}")
    info = getattr(engine, "info", None)
    size = size or getattr(info, "image_size", None) or 128
    report = Report(
        model=str(getattr(info, "name", type(engine).__name__)),
        seed=seed,
        n_per_metric=n_per_metric,
        psr_seeds=psr_seeds,
        image_size=size,
        split=split,
        settings=base.to_dict(),
    )
    tick = progress or (lambda name: None)
    start = time.perf_counter()
    model = getattr(engine, "model", None)
    was_training = bool(getattr(model, "training", False))
    if was_training:
        model.eval()  # type: ignore[union-attr]
    try:
        for cap in CAPABILITIES:
            if cap.name in names:
                _run_capability(engine, cap, n_per_metric, seed, size, base, report, tick)
        if PSR_CAPABILITY in names:
            _run_psr(engine, n_per_metric, seed, psr_seeds, size, base, report, tick)
    finally:
        if was_training:
            model.train()  # type: ignore[union-attr]
    report.elapsed_s = round(time.perf_counter() - start, 2)
    return report


def _item(cap: str, sample_seed: int, sample: Sample, **extra: Any) -> dict[str, Any]:
    return {
        "capability": cap,
        "kind": sample.kind,
        "sample_seed": sample_seed,
        "split": sample.split,
        **extra,
    }


def _run_capability(
    engine: api.Engine,
    cap: Capability,
    n: int,
    seed: int,
    size: int,
    base: api.GenerationSettings,
    report: Report,
    tick: Callable[[str], None],
) -> None:
    scores: dict[str, list[float]] = {m: [] for m in cap.metrics}
    ceilings: dict[str, list[float]] = {m: [] for m in cap.metrics}
    failed = 0
    split = report.split
    for sample_seed, sample in heldout_samples(cap.kind, n, seed, cap.accept, size, split):
        settings = replace(
            base,
            seed=_seed(sample_seed),
            **({"max_new_tokens": cap.max_new_tokens} if cap.max_new_tokens else {}),
        )
        request = build_request(sample, cap.task, settings, tag=f"{cap.kind}-{sample_seed}")
        output = run_request(engine, request)
        tick(cap.name)
        got = cap.score(sample, output)
        best = cap.oracle(sample)
        for metric, value in cap.score(sample, best).items():
            ceilings[metric].append(value)
        for metric, value in got.items():
            scores[metric].append(value)
        failed += output.failure is not None
        extra: dict[str, Any] = {
            "prompt": request.message.text,
            "scores": got,
            "failures": [output.failure] if output.failure else [],
        }
        if cap.task is Task.DESCRIBE:
            extra |= {"answer": output.text[:200], "expected": best.text}
        parts = cap.attributes(sample, output) if cap.attributes else {}
        if parts:
            extra["attributes"] = parts
        report.items.append(_item(cap.name, sample_seed, sample, **extra))
    for metric in cap.metrics:
        spec = METRICS[metric]
        report.metrics[metric] = MetricResult(
            metric,
            _mean(scores[metric]),
            spec.target,
            spec.op,
            len(scores[metric]),
            failed,
            _mean(ceilings[metric]) if spec.has_ceiling else None,
            spec.description,
        )


def _run_psr(
    engine: api.Engine,
    n: int,
    seed: int,
    k: int,
    size: int,
    base: api.GenerationSettings,
    report: Report,
    tick: Callable[[str], None],
) -> None:
    per_prompt: list[dict[str, float]] = []
    failed = 0
    accept = lambda s: s.brief is not None  # noqa: E731
    for sample_seed, sample in heldout_samples("psr", n, seed, accept, size, report.split):
        assert sample.brief is not None
        brief = psr_brief_text(sample)
        images: dict[bool, list[Image.Image | None]] = {True: [], False: []}
        failures: list[str] = []
        for j, on in itertools.product(range(k), (True, False)):
            settings = replace(base, seed=_seed(sample_seed, j), psr=on)
            output = run_request(
                engine, api.Request(api.Turn.user(brief), settings=settings, task=Task.GENERATE)
            )
            tick(PSR_CAPABILITY)
            images[on].append(output.image)
            if output.failure:
                failures.append(output.failure)
        failed += len(failures)
        scores = psr_scores(sample.brief, images[True], images[False])
        per_prompt.append(scores)
        report.items.append(
            _item(
                PSR_CAPABILITY, sample_seed, sample, prompt=brief, scores=scores, failures=failures
            )
        )
    for metric, statistic in PSR_STATISTICS.items():
        spec = METRICS[metric]
        report.metrics[metric] = MetricResult(
            metric,
            statistic(per_prompt),
            spec.target,
            spec.op,
            len(per_prompt),
            failed,
            None,
            spec.description,
        )


# --- command line ---------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="wegen-eval",
        description="Score every WeGen capability on held-out shapes-world samples.",
    )
    p.add_argument("--model", help="model folder (default: $WEGEN_MODEL or the bundled wegen-tiny)")
    p.add_argument("--out", required=True, help="report JSON path; the markdown goes beside it")
    p.add_argument("--n", type=int, default=DEFAULT_N, help="samples per metric")
    p.add_argument("--seed", type=int, default=0, help="which held-out samples (and seeds)")
    p.add_argument("--psr-seeds", type=int, default=DEFAULT_PSR_SEEDS, help="seeds per PSR prompt")
    p.add_argument("--size", type=int, help="input render size (default: the model's image size)")
    p.add_argument(
        "--split",
        default=SPLIT,
        choices=SPLITS,
        help="held-out samples (the report) or training-distribution ones (to tune settings on)",
    )
    p.add_argument("--steps", type=int, help="denoising steps (default: the model's)")
    p.add_argument("--guidance", type=float, help="de-tokenizer CFG scale (default: the model's)")
    p.add_argument(
        "--embedding-cfg",
        type=float,
        default=1.0,
        help="the LLM's embedding-space CFG scale for image tokens (1 = off)",
    )
    p.add_argument(
        "--denoise-strength",
        type=float,
        default=1.0,
        help="share of the image worked on that the de-tokenizer redraws (1 = from noise)",
    )
    p.add_argument(
        "--only",
        help=f"comma-separated capabilities to run (default all: {','.join(CAPABILITY_NAMES)})",
    )
    p.add_argument("--device", default="auto", help="auto, cuda, cuda:N, npu, mps or cpu")
    p.add_argument("--precision", default="auto", help="auto, fp32, fp16 or bf16")
    p.add_argument("--backend", default="eager", choices=["eager", "compiled"])
    p.add_argument(
        "--threads", type=int, help="CPU threads for torch (1 is fastest on a busy machine)"
    )
    p.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from tqdm import tqdm

    from engine.bundled import require_model_dir
    from engine.chat_engine import WeGenEngine
    from engine.errors import WeGenError

    only = [s.strip() for s in args.only.split(",") if s.strip()] if args.only else None
    unknown = [name for name in only or () if name not in CAPABILITY_NAMES]
    if unknown:
        build_parser().error(f"unknown capabilities {unknown}; choose from {CAPABILITY_NAMES}")
    if args.n < 1 or args.psr_seeds < 2:
        build_parser().error("--n must be at least 1 and --psr-seeds at least 2")
    if (args.steps is not None and args.steps < 1) or (
        args.guidance is not None and args.guidance < 1
    ):
        build_parser().error("--steps must be at least 1 and --guidance at least 1 (1 = off)")
    if not 0 < args.denoise_strength <= 1:
        build_parser().error("--denoise-strength must be above 0 and at most 1")
    settings = api.GenerationSettings(
        steps=args.steps,
        guidance=args.guidance,
        embedding_cfg=args.embedding_cfg,
        denoise_strength=args.denoise_strength,
    )
    if args.threads is not None:
        import torch

        torch.set_num_threads(max(1, args.threads))
    try:
        folder = require_model_dir(args.model)
        engine = WeGenEngine()
        print(f"loading {folder} …", file=sys.stderr)
        info = engine.load(
            str(folder), api.RuntimeRequest(args.device, args.precision, args.backend)
        )
        print(f"{info.name} on {info.device} ({info.precision})", file=sys.stderr)
        total = count_turns(args.n, args.psr_seeds, only)
        with tqdm(total=total, desc="evaluating", unit="turn", file=sys.stderr) as bar:

            def progress(name: str) -> None:
                bar.set_postfix_str(name, refresh=False)
                bar.update(1)

            report = evaluate(
                engine,
                args.n,
                args.seed,
                psr_seeds=args.psr_seeds,
                size=args.size,
                only=only,
                progress=progress,
                settings=settings,
                split=args.split,
            )
    except WeGenError as e:
        print(f"wegen-eval: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("wegen-eval: interrupted", file=sys.stderr)
        return 130
    report.model = f"{info.name} ({folder})"
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report.to_json(), encoding="utf-8")
    markdown = report.to_markdown()
    out.with_suffix(".md").write_text(markdown, encoding="utf-8")
    print(markdown)
    print(f"wrote {out} and {out.with_suffix('.md')}", file=sys.stderr)
    return 1 if args.strict and not report.passed else 0


if __name__ == "__main__":
    sys.exit(main())
