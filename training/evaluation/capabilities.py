"""The capabilities `wegen-eval` scores: for each, which held-out samples, which task hint, which
metrics, and how an output (and the ground truth, for the judge's ceiling) is scored; and for
some, how the request is typed instead of as training phrased it (`Capability.as_typed`).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from PIL import Image

from engine import api
from engine.template import ImageRole, Task
from training.data.captions import detailed_caption
from training.data.judge import parse_scene
from training.data.phrasings import drawing_request
from training.data.samples import Sample
from training.data.scoring import attribute_hits, untouched
from training.data.splits import Split, check_split
from training.data.tasks import fits_split, plan_sample
from training.evaluation.metrics import MAX_DRAWS, PSR_CAPABILITY, SPLIT, VQA_MAX_NEW_TOKENS
from training.evaluation.scores import (
    Output,
    condition_score,
    edit_scores,
    restoration_gain,
    style_score,
    subject_score,
    t2i_score,
    vqa_answer,
    vqa_kind,
    vqa_score,
)


def _asked_for(task: Task) -> Callable[[Sample], bool]:
    """Samples whose last request names ``task`` (not a plain request left on automatic)."""

    def accept(sample: Sample) -> bool:
        if len(sample.turns) < 2:
            return False
        ask = sample.asks[-1]
        return ask.task is task and not ask.psr

    return accept


def _left_on_automatic(sample: Sample) -> bool:
    """Samples whose last request is plain text with the task left on automatic (the app's
    default): the model itself must tell a drawing request from anything else."""
    return len(sample.turns) >= 2 and sample.asks[-1].task is Task.AUTO and not sample.asks[-1].psr


def _question_as_typed(sample: Sample, request: api.Request, sample_seed: int) -> api.Request:
    """The question as people type it, one of four forms by ``sample_seed``: as trained (the
    image attached, a capital letter), in lower case, and both again as a follow-up about the
    conversation's last image (asked for in the turn before, not attached)."""
    text, form = request.message.text, sample_seed % 4
    if form % 2:
        text = text[:1].lower() + text[1:]
    if form < 2:
        return replace(request, message=api.Turn.user(text, *request.message.images))
    (image,) = request.message.images
    drawn = api.ImagePart(image.image, ImageRole.IMAGE, image.source)
    earlier = (api.Turn.user(detailed_caption(sample.specs[0].scene)), api.Turn.assistant(drawn))
    return replace(request, history=(*request.history, *earlier), message=api.Turn.user(text))


def _drawing_as_typed(sample: Sample, request: api.Request, sample_seed: int) -> api.Request:
    """The drawing request as trained, or (odd ``sample_seed``) as a sentence: a capital letter
    and a full stop."""
    text = request.message.text
    if sample_seed % 2:
        text = f"{text[:1].upper()}{text[1:].rstrip('.')}."
    return replace(request, message=api.Turn.user(text, *request.message.images))


def _heldout_phrasing(sample: Sample, request: api.Request, sample_seed: int) -> api.Request:
    """The drawing request typed in a phrasing training never used, with the task on automatic
    as the app starts: the scene's detailed caption in everyday words inside a held-out request
    form (training/data/phrasings.py), chosen by ``sample_seed``."""
    rng = random.Random(f"t2i_phrasing/{sample_seed}")
    text = drawing_request(sample.target_scenes[-1], rng, "heldout").text
    return replace(request, message=api.Turn.user(text), task=Task.AUTO)


def _answered_in_text(sample: Sample, out: Output) -> dict[str, float]:
    return {"answer_routing": float(out.image is None and bool(out.text.strip()))}


def _drawn(sample: Sample, out: Output) -> dict[str, float]:
    return {"draw_routing": float(out.image is not None)}


def _objects(n: int) -> Callable[[Sample], bool]:
    asked = _asked_for(Task.GENERATE)
    return lambda s: asked(s) and len(s.target_scenes[-1].objects) == n


def _edit_accept(sample: Sample) -> bool:
    """Asked for EDIT and with at least one object the edit must keep (else preservation is
    vacuously 1)."""
    return _asked_for(Task.EDIT)(sample) and bool(
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
    #: the request as people type it rather than as training phrased it (sample, the request
    #: `build_request` made, the sample's seed); None sends the training prompt itself
    as_typed: Callable[[Sample, api.Request, int], api.Request] | None = None
    #: whether the score reads the image's pixels (routing only asks whether there is one), so
    #: that a VAE round trip can change it (`training.checks.decoder.vae_ceilings`)
    reads_pixels: bool = True


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


def _vqa_by_kind(sample: Sample, out: Output) -> dict[str, list[int]]:
    return {vqa_kind(sample): [int(vqa_score(sample, out.text)), 1]}


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
        "t2i_phrasing",
        "t2i",
        Task.GENERATE,  # the sample's request; as_typed asks it on automatic, phrased anew
        ("t2i_phrasing",),
        _objects(1),  # t2i_single's samples and seeds: the gap between them is paired
        _one("t2i_phrasing", t2i_score),
        attributes=_target_attributes,
        breakdown=_T2I_BREAKDOWN,
        as_typed=_heldout_phrasing,
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
        _asked_for(Task.DESCRIBE),
        lambda s, out: {"vqa": vqa_score(s, out.text)},
        oracle=lambda s: Output(text=vqa_answer(s)),
        max_new_tokens=VQA_MAX_NEW_TOKENS,
        attributes=_vqa_by_kind,
        breakdown=_VQA_BREAKDOWN,
    ),
    Capability(
        "answer_routing",
        "vqa",
        Task.AUTO,  # a question reads the same with the task on automatic as on Describe
        ("answer_routing",),
        _asked_for(Task.DESCRIBE),
        _answered_in_text,
        oracle=lambda s: Output(text=vqa_answer(s)),
        max_new_tokens=VQA_MAX_NEW_TOKENS,
        as_typed=_question_as_typed,
        reads_pixels=False,
    ),
    Capability(
        "draw_routing",
        "t2i",
        Task.AUTO,
        ("draw_routing",),
        _left_on_automatic,
        _drawn,
        as_typed=_drawing_as_typed,
        reads_pixels=False,
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
        _asked_for(Task.SUBJECT),
        _one("subject_identity", subject_score),
    ),
    Capability(
        "condition",
        "condition",
        Task.CONDITION,
        ("condition_adherence",),
        _asked_for(Task.CONDITION),
        _one("condition_adherence", condition_score),
    ),
    Capability(
        "restore",
        "restore",
        Task.RESTORE,
        ("restoration_psnr_gain_db",),
        _asked_for(Task.RESTORE),
        _one("restoration_psnr_gain_db", restoration_gain),
    ),
    Capability(
        "style",
        "style",
        Task.STYLE,
        ("style_transfer",),
        _asked_for(Task.STYLE),
        _one("style_transfer", style_score),
    ),
)
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
