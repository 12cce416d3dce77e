"""`evaluate`: every capability scored on held-out samples through the Engine API.

A request that ends in ``Failed`` / ``Cancelled`` (or raises) is a miss: 0 for fractions, a gain
of 0 dB for restoration, and no image for PSR (not consistent; left out of the diversity). Its
message is kept in the report.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from PIL import Image

from engine import api
from engine.template import Task
from training.data.samples import Sample
from training.data.splits import Split, check_split
from training.evaluation.capabilities import (
    CAPABILITIES,
    CAPABILITY_NAMES,
    Capability,
    heldout_samples,
)
from training.evaluation.metrics import (
    DEFAULT_N,
    DEFAULT_PSR_SEEDS,
    GAPS,
    METRICS,
    PSR_CAPABILITY,
    PSR_STATISTICS,
    SPLIT,
    mean,
    metric_rows,
    metric_statistic,
)
from training.evaluation.report import MetricResult, Report
from training.evaluation.requests import build_request, psr_brief_text, run_request
from training.evaluation.scores import psr_scores


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
    _add_gaps(report)
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
        if cap.as_typed is not None:
            request = cap.as_typed(sample, request, sample_seed)
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
            mean(scores[metric]),
            spec.target,
            spec.op,
            len(scores[metric]),
            failed,
            mean(ceilings[metric]) if spec.has_ceiling else None,
            spec.description,
        )


def _add_gaps(report: Report) -> None:
    """Each gap (`GAPS`) whose two metrics both ran, then every metric in the order of
    `METRICS`, so that a gap is reported beside what it compares."""
    for gap, (reference, compared) in GAPS.items():
        if reference in report.metrics and compared in report.metrics:
            spec = METRICS[gap]
            rows = metric_rows(report.items, gap)
            report.metrics[gap] = MetricResult(
                gap,
                metric_statistic(gap)(rows),
                spec.target,
                spec.op,
                len(rows),
                report.metrics[reference].failed + report.metrics[compared].failed,
                None,
                spec.description,
            )
    report.metrics = {name: report.metrics[name] for name in METRICS if name in report.metrics}


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
        rewrites: list[str | None] = []
        failures: list[str] = []
        for j, on in itertools.product(range(k), (True, False)):
            settings = replace(base, seed=_seed(sample_seed, j), psr=on)
            output = run_request(
                engine, api.Request(api.Turn.user(brief), settings=settings, task=Task.GENERATE)
            )
            tick(PSR_CAPABILITY)
            images[on].append(output.image)
            if on:
                rewrites.append(output.rewrite)
            if output.failure:
                failures.append(output.failure)
        failed += len(failures)
        scores = psr_scores(sample.brief, images[True], images[False], rewrites)
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
