"""Compare two wegen-eval reports sample by sample: is run B better than run A, or is the
difference within what the samples can tell apart?

    python -m training.checks.compare_reports A.json B.json [--out diff.md]

Both reports must come from the same ``--seed`` and ``--split`` (any ``--n``): items are paired by
capability and sample seed, so each pair is the same prompt, image and generation seed. The
difference B - A of each metric gets a 95% paired bootstrap interval (`training.evaluation.confidence`): the
pairs are resampled together, which cancels what the two runs share (a hard prompt is hard for
both) and so separates runs that overlapping per-report intervals cannot. The verdict says which
run is better when the interval leaves out 0, by the metric's direction (higher is better for a
``>=`` target, lower for a ``<=`` one).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from training.evaluation.confidence import bootstrap, format_interval
from training.evaluation.metrics import METRICS, metric_statistic, scores_metric
from training.evaluation.report import Report

Pair = tuple[dict, dict]


@dataclass(frozen=True)
class Difference:
    metric: str
    a: float  # over the paired samples only
    b: float
    interval: tuple[float, float]
    n: int  # pairs
    higher_is_better: bool

    @property
    def delta(self) -> float:
        return self.b - self.a

    @property
    def verdict(self) -> str:
        lo, hi = self.interval
        if lo > 0 or hi < 0:
            b_better = (lo > 0) == self.higher_is_better
            return "B better" if b_better else "B worse"
        return "no difference shown"


def _pairs(a: Report, b: Report, metric: str) -> list[Pair]:
    """Items of both reports that scored ``metric`` on the same sample, in A's order."""

    def scored(report: Report) -> dict[tuple[str, int], dict]:
        return {
            (i["capability"], i["sample_seed"]): i for i in report.items if scores_metric(i, metric)
        }

    b_items = scored(b)
    return [(item, b_items[key]) for key, item in scored(a).items() if key in b_items]


def compare(a: Report, b: Report) -> list[Difference]:
    """One `Difference` per metric both reports scored on at least one common sample (a metric
    newer than a report is read from the report's items, as its statistic reads them)."""
    if (a.split, a.seed) != (b.split, b.seed):
        raise ValueError(
            f"the reports evaluated different samples (A: {a.split} split, seed {a.seed}; "
            f"B: {b.split} split, seed {b.seed}): run wegen-eval on both with the same --split "
            "and --seed"
        )
    out = []
    for metric in METRICS:
        pairs = _pairs(a, b, metric)
        if not pairs:
            continue
        stat = metric_statistic(metric)

        def delta(rows: Sequence[Pair], stat: Callable[[Sequence[dict]], float] = stat) -> float:
            return stat([y["scores"] for _, y in rows]) - stat([x["scores"] for x, _ in rows])

        out.append(
            Difference(
                metric,
                stat([x["scores"] for x, _ in pairs]),
                stat([y["scores"] for _, y in pairs]),
                bootstrap(pairs, delta),
                len(pairs),
                METRICS[metric].op == ">=",
            )
        )
    if not out:
        raise ValueError(
            "the reports share no scored samples: run wegen-eval on both with the same --seed, "
            "--split and --only"
        )
    return out


def to_markdown(differences: Sequence[Difference], a_name: str, b_name: str) -> str:
    lines = [
        f"A: {a_name}  ",
        f"B: {b_name}",
        "",
        "| metric | A | B | B − A | 95% interval | pairs | verdict |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    lines += [
        f"| {d.metric} | {d.a:.3f} | {d.b:.3f} | {d.delta:+.3f} | {format_interval(d.interval)} "
        f"| {d.n} | {d.verdict} |"
        for d in differences
    ]
    return "\n".join(lines) + "\n"


def load(path: Path) -> Report:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ValueError(f"cannot read {path}: {e.strerror}") from e
    try:
        return Report.from_json(text)
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{path} is not a wegen-eval report.json ({e!r})") from e


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m training.checks.compare_reports",
        description="Compare two wegen-eval reports on the same samples (B - A, paired).",
    )
    ap.add_argument("a", type=Path, help="the baseline report (report.json)")
    ap.add_argument("b", type=Path, help="the report to compare with it")
    ap.add_argument("--out", type=Path, help="also write the markdown table here")
    args = ap.parse_args(argv)
    try:
        text = to_markdown(compare(load(args.a), load(args.b)), str(args.a), str(args.b))
    except ValueError as e:
        print(f"compare_reports: {e}", file=sys.stderr)
        return 2
    print(text, end="")
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
