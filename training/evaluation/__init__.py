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

One module per part, in reading order:

* metrics.py: the metrics, their targets and what each measures;
* scores.py: what a request produced (`Output`) and the scorer of each metric;
* requests.py: how a sample becomes the request the desktop would send, and how it is run;
* capabilities.py: which samples, task hint and scorers each capability uses;
* report.py: the report (JSON and markdown), with judge ceilings and 95% intervals
  (confidence.py);
* run.py: `evaluate`;
* cli.py: the ``wegen-eval`` command.
"""

from training.evaluation.capabilities import (
    CAPABILITIES,
    CAPABILITY_NAMES,
    Capability,
    heldout_samples,
)
from training.evaluation.cli import main
from training.evaluation.metrics import (
    GAPS,
    METRICS,
    PSNR_CAP,
    PSR_CAPABILITY,
    PSR_STATISTICS,
    VQA_MAX_NEW_TOKENS,
    MetricSpec,
    meets,
)
from training.evaluation.report import MetricResult, Report
from training.evaluation.requests import build_request, psr_brief_text, run_request
from training.evaluation.run import count_turns, evaluate
from training.evaluation.scores import (
    Output,
    condition_score,
    edit_scores,
    normalise_answer,
    psnr,
    psr_scores,
    restoration_gain,
    style_score,
    subject_score,
    t2i_score,
    vqa_answer,
    vqa_kind,
    vqa_score,
)

__all__ = [
    "CAPABILITIES",
    "CAPABILITY_NAMES",
    "GAPS",
    "METRICS",
    "PSNR_CAP",
    "PSR_CAPABILITY",
    "PSR_STATISTICS",
    "VQA_MAX_NEW_TOKENS",
    "Capability",
    "MetricResult",
    "MetricSpec",
    "Output",
    "Report",
    "build_request",
    "condition_score",
    "count_turns",
    "edit_scores",
    "evaluate",
    "heldout_samples",
    "main",
    "meets",
    "normalise_answer",
    "psnr",
    "psr_brief_text",
    "psr_scores",
    "restoration_gain",
    "run_request",
    "style_score",
    "subject_score",
    "t2i_score",
    "vqa_answer",
    "vqa_kind",
    "vqa_score",
]
