"""The evaluation's metrics: their targets, and how each is computed from the report's items.

Per sample a score; a metric is the mean over samples (the PSR metrics are statistics of the
per-prompt scores, `PSR_STATISTICS`):

* ``t2i_single`` / ``t2i_pair``: detailed caption of a 1- / 2-object scene -> image; 1 if the
  judge (judge.parse_scene) reads every object with every attribute and nothing extra
  (scoring.scene_match; background and style not required).
* ``t2i_phrasing``: the scenes of ``t2i_single`` asked for as people type, in a phrasing
  training never used (training/data/phrasings.py: a held-out request form, maybe a held-out
  opener or closing, a case, now and then a held-out kind of typo; the description in everyday
  words), with the task left on automatic as the app starts; scored as ``t2i_single``.
  ``t2i_phrasing_gap`` (`GAPS`): ``t2i_single`` - ``t2i_phrasing`` on the same samples and
  seeds, reported when both ran: how much is lost when a request is not phrased as training
  phrased it.
* ``vqa``: image + question -> text; 1 if `normalise_answer` of the reply equals that of the
  canonical answer (lower case, punctuation and a leading article dropped, digits as words).
  The markdown also breaks it down by what the question asks (`vqa_kind`: colour, shape, size,
  pattern, position, count, exists, background, style), as it breaks text-to-image down by
  attribute.
* ``answer_routing`` / ``draw_routing``: the task left on automatic (the app's default), a
  question about an image must be answered in text (no image) and a drawing request drawn. The
  model decides from the text alone; the other capabilities pass the task hint. The requests are
  typed as people type them (capabilities.py: in lower case, as a sentence, and questions as a
  follow-up about the conversation's last image), not only as training phrased them.
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
  captions.Brief.consistent) - (the same share with PSR on). ``psr_attributes_kept``: the share
  of what the brief names (each object's shape and colour, the background, the style) that the
  rewrite still names (scores.rewrite_keeps): a rewrite may add, never drop or change.
  ``brief_drawn``: the share of the PSR-off images that satisfy the brief (the first term of
  ``psr_fidelity_drop``): a brief typed as people first type one ("a red circle"), drawn as
  asked. Without it the fidelity drop can pass with nothing drawn (both shares 0).

(`vqa_kind` and `normalise_answer` live in training/evaluation/scores.py with the scorers.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

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
#: The capability behind the PSR metrics (the others are in capabilities.CAPABILITIES).
PSR_CAPABILITY = "psr"


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
    # t2i_single's target less the gap allowed
    "t2i_phrasing": MetricSpec(
        0.8, ">=", "t2i_single's scenes asked in held-out phrasings, task automatic"
    ),
    "t2i_phrasing_gap": MetricSpec(
        0.1, "<=", "t2i_single - t2i_phrasing on the same samples", has_ceiling=False
    ),
    "t2i_pair": MetricSpec(0.75, ">=", "2-object detailed caption: every attribute right"),
    "vqa": MetricSpec(0.9, ">=", "exact match of the normalised answer"),
    "answer_routing": MetricSpec(
        0.95, ">=", "task automatic: a question about an image is answered in text"
    ),
    "draw_routing": MetricSpec(0.95, ">=", "task automatic: a drawing request is drawn"),
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
    "psr_attributes_kept": MetricSpec(
        0.95, ">=", "what the brief names, the rewrite still names", has_ceiling=False
    ),
    # t2i_pair's target: briefs name one to four objects, but fewer attributes
    "brief_drawn": MetricSpec(
        0.75, ">=", "PSR off: the image shows what the brief names", has_ceiling=False
    ),
}


def mean(values: Sequence[float]) -> float:
    """The mean, 0 for no values."""
    return float(np.mean(values)) if values else 0.0


def _psr_diversity_ratio(prompts: Sequence[dict[str, float]]) -> float:
    on = mean([p["diversity_on"] for p in prompts])
    return on / max(mean([p["diversity_off"] for p in prompts]), DIVERSITY_FLOOR)


def _psr_fidelity_drop(prompts: Sequence[dict[str, float]]) -> float:
    return mean([p["consistent_off"] for p in prompts]) - mean(
        [p["consistent_on"] for p in prompts]
    )


def _psr_attributes_kept(prompts: Sequence[dict[str, float]]) -> float:
    # items of reports written before this metric existed have no "kept"
    return mean([p["kept"] for p in prompts if "kept" in p])


def _brief_drawn(prompts: Sequence[dict[str, float]]) -> float:
    return mean([p["consistent_off"] for p in prompts])


#: the PSR metrics, each a statistic of the per-prompt scores (not a mean of per-prompt values)
PSR_STATISTICS: dict[str, Callable[[Sequence[dict[str, float]]], float]] = {
    "psr_diversity_ratio": _psr_diversity_ratio,
    "psr_fidelity_drop": _psr_fidelity_drop,
    "psr_attributes_kept": _psr_attributes_kept,
    "brief_drawn": _brief_drawn,
}


#: metrics that compare two others scored on the same samples: name -> (reference, compared);
#: the value is reference - compared (the run adds it once both have run)
GAPS: dict[str, tuple[str, str]] = {"t2i_phrasing_gap": ("t2i_single", "t2i_phrasing")}


def _gap(reference: str, compared: str) -> Callable[[Sequence[dict[str, float]]], float]:
    def statistic(scores: Sequence[dict[str, float]]) -> float:
        # rows of one item each (compare_reports) or merged pairs (`metric_rows`): the same
        return mean([s[reference] for s in scores if reference in s]) - mean(
            [s[compared] for s in scores if compared in s]
        )

    return statistic


def is_statistic(metric: str) -> bool:
    """Whether ``metric`` is a statistic of several scores per row (PSR, a gap) rather than the
    mean of one score per sample."""
    return metric in PSR_STATISTICS or metric in GAPS


def scores_metric(item: dict[str, Any], metric: str) -> bool:
    """Whether a report item is one of the samples ``metric`` is computed over."""
    if metric in PSR_STATISTICS:
        return item["capability"] == PSR_CAPABILITY
    if metric in GAPS:
        return any(m in item["scores"] for m in GAPS[metric])
    return metric in item["scores"]


def metric_statistic(metric: str) -> Callable[[Sequence[dict[str, float]]], float]:
    """The metric as a function of its items' scores: a PSR statistic, a gap, else the mean
    score."""
    if metric in PSR_STATISTICS:
        return PSR_STATISTICS[metric]
    if metric in GAPS:
        return _gap(*GAPS[metric])
    return lambda scores: mean([s[metric] for s in scores])


def metric_rows(items: Sequence[dict[str, Any]], metric: str) -> list[dict[str, float]]:
    """The scores `metric_statistic` reads, one row per sample: each item's scores, or for a gap
    the scores of both its metrics on the same sample in one row (samples scored by only one of
    them left out), so that a bootstrap resamples pairs."""
    if metric not in GAPS:
        return [i["scores"] for i in items if scores_metric(i, metric)]
    rows: dict[int, dict[str, float]] = {}
    for item in items:
        if scores_metric(item, metric):
            rows.setdefault(item["sample_seed"], {}).update(item["scores"])
    return [row for row in rows.values() if all(m in row for m in GAPS[metric])]
