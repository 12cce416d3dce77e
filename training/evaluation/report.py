"""The evaluation's report: one `MetricResult` per metric and one item per evaluated sample, as
JSON (``--out``) and as a markdown table (``.md`` beside it).

Each metric also reports a **judge ceiling** where meaningful: the score of the ground-truth
render (the canonical answer for VQA) standing in for the model's output, i.e. what a perfect
model would get given the judge's own errors. And a **95% interval** (confidence.py: Wilson for
shares, a bootstrap over samples otherwise), worked out from the report's items, so that runs
are compared by what their samples can tell apart.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from engine import api
from training.evaluation.capabilities import CAPABILITIES
from training.evaluation.confidence import bootstrap, format_interval, mean_interval
from training.evaluation.metrics import (
    SPLIT,
    TUNABLE,
    is_statistic,
    meets,
    metric_rows,
    metric_statistic,
)
from training.evaluation.scores import PART_ORDER


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
        """The metric's 95% interval over this report's items (`confidence`); None
        when no item scored it."""
        rows = metric_rows(self.items, metric)
        if is_statistic(metric):  # a gap's rows are pairs: a paired bootstrap
            return bootstrap(rows, metric_statistic(metric)) if rows else None
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
                key=lambda n: PART_ORDER.get(n, len(PART_ORDER)),
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
