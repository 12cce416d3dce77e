"""Comparing two wegen-eval reports sample by sample (paired bootstrap of B - A)."""

from __future__ import annotations

import pytest

from training import evaluation as ev
from training.checks.compare_reports import compare, main


def report(vqa: list[float], seed: int = 0, psr: list[dict] | None = None, first: int = 0):
    """A report whose VQA item k (sample seed ``first + k``) scored ``vqa[k]``."""
    r = ev.Report("m", seed, len(vqa), 2, 32)
    r.metrics["vqa"] = ev.MetricResult("vqa", sum(vqa) / len(vqa), 0.9, ">=", len(vqa))
    r.items += [
        {"capability": "vqa", "sample_seed": first + k, "scores": {"vqa": v}}
        for k, v in enumerate(vqa)
    ]
    for k, scores in enumerate(psr or []):
        r.items.append({"capability": ev.PSR_CAPABILITY, "sample_seed": k, "scores": scores})
    for metric, statistic in ev.PSR_STATISTICS.items() if psr else ():
        spec = ev.METRICS[metric]
        r.metrics[metric] = ev.MetricResult(metric, statistic(psr), spec.target, spec.op, len(psr))
    return r


def psr(on: float, consistent_on: float) -> dict:
    return {
        "diversity_on": on,
        "diversity_off": 0.1,
        "consistent_on": consistent_on,
        "consistent_off": 0.5,
    }


def test_a_clear_gain_on_the_same_samples_is_called_better():
    a = report([1.0] * 10 + [0.0] * 10)
    b = report([1.0] * 18 + [0.0] * 2)
    (d,) = compare(a, b)
    assert (d.metric, d.a, d.b, d.n) == ("vqa", 0.5, 0.9, 20)
    assert d.delta == pytest.approx(0.4) and 0 < d.interval[0] < 0.4 < d.interval[1]
    assert d.verdict == "B better"
    assert compare(b, a)[0].verdict == "B worse"


def test_the_same_scores_show_no_difference():
    a = report([1.0, 0.0, 1.0, 1.0])
    (d,) = compare(a, report([1.0, 0.0, 1.0, 1.0]))
    assert d.delta == 0 and d.interval == (0.0, 0.0) and d.verdict == "no difference shown"
    # one flip in four pairs is not a difference the samples can show
    assert compare(a, report([1.0, 1.0, 1.0, 1.0]))[0].verdict == "no difference shown"


def test_pairs_are_the_same_samples_whatever_the_order_and_n():
    a = report([1.0, 0.0, 0.0, 1.0])  # sample seeds 0-3
    b = report([1.0, 1.0, 0.0, 0.0, 0.0, 0.0], first=2)  # sample seeds 2-7, mean 1/3
    b.items.reverse()
    (d,) = compare(a, b)
    assert (d.n, d.a, d.b) == (2, 0.5, 1.0)  # only seeds 2 and 3 are in both


def test_psr_metrics_are_compared_through_their_statistic_and_direction():
    prompts = 12
    a = report([1.0], psr=[psr(0.2, 0.5)] * prompts)
    b = report([1.0], psr=[psr(0.6, 0.2)] * prompts)
    found = {d.metric: d for d in compare(a, b)}
    ratio, drop = found["psr_diversity_ratio"], found["psr_fidelity_drop"]
    assert (ratio.a, ratio.b) == pytest.approx((2.0, 6.0)) and ratio.verdict == "B better"
    # B keeps the brief less often with PSR on: a larger drop, and lower is better
    assert (drop.a, drop.b) == pytest.approx((0.0, 0.3)) and drop.verdict == "B worse"


def test_a_metric_newer_than_a_report_is_read_from_its_items():
    prompts = [psr(0.2, 0.5)] * 12
    old = report([1.0], psr=prompts)
    del old.metrics["brief_drawn"]  # written before the metric existed
    new = report([1.0], psr=[psr(0.2, 0.5) | {"consistent_off": 1.0}] * 12)
    found = {d.metric: d for d in compare(old, new)}
    assert (found["brief_drawn"].a, found["brief_drawn"].b) == (0.5, 1.0)
    assert found["brief_drawn"].verdict == "B better"


def test_reports_of_different_samples_are_refused():
    with pytest.raises(ValueError, match="same --split and --seed"):
        compare(report([1.0]), report([1.0], seed=1))
    with pytest.raises(ValueError, match="share no scored samples"):
        compare(report([1.0]), report([1.0], first=5))


def test_cli_prints_and_writes_the_table(tmp_path, capsys):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(report([0.0] * 12).to_json())
    b.write_text(report([1.0] * 12).to_json())
    out = tmp_path / "diff.md"
    assert main([str(a), str(b), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed == out.read_text()
    assert "| vqa | 0.000 | 1.000 | +1.000 | [1.00, 1.00] | 12 | B better |" in printed

    broken = tmp_path / "broken.json"
    broken.write_text('{"model": "m"}')
    assert main([str(a), str(broken)]) == 2
    assert "broken.json is not a wegen-eval report.json" in capsys.readouterr().err
    assert main([str(a), str(tmp_path / "missing.json")]) == 2
    assert "cannot read" in capsys.readouterr().err
