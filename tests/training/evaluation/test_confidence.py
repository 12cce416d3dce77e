"""95% intervals for evaluation metrics: Wilson for shares, a seeded bootstrap otherwise."""

from __future__ import annotations

import numpy as np
import pytest

from training.evaluation.confidence import _z, bootstrap, format_interval, mean_interval, wilson


def test_normal_quantile():
    assert _z(0.95) == pytest.approx(1.959964, abs=1e-5)
    assert _z(0.99) == pytest.approx(2.575829, abs=1e-5)
    with pytest.raises(ValueError, match="between 0 and 1"):
        _z(1.0)


@pytest.mark.parametrize(
    ("successes", "n", "low", "high"),
    # Newcombe (1998), "Two-sided confidence intervals for the single proportion", table I
    [(81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611)],
)
def test_wilson_matches_published_intervals(successes, n, low, high):
    lo, hi = wilson(successes, n)
    assert lo == pytest.approx(low, abs=1e-4) and hi == pytest.approx(high, abs=1e-4)


def test_wilson_is_symmetric_and_never_empty():
    lo, hi = wilson(8, 16)
    assert lo == pytest.approx(1 - hi) and lo < 0.5 < hi
    assert wilson(16, 16)[0] < 1.0 and wilson(16, 16)[1] == 1.0  # n/n still says "maybe less"
    assert wilson(0, 16)[1] == pytest.approx(0.1936, abs=1e-4)
    assert wilson(0, 64)[1] < wilson(0, 16)[1]  # more samples, a tighter bound
    with pytest.raises(ValueError, match="successes"):
        wilson(3, 2)
    with pytest.raises(ValueError, match="n > 0"):
        wilson(0, 0)


def test_bootstrap_of_a_mean_matches_the_normal_interval():
    values = list(np.random.default_rng(1).normal(3.0, 2.0, size=400))
    lo, hi = bootstrap(values, lambda rows: float(np.mean(rows)))
    half = 1.96 * np.std(values, ddof=1) / np.sqrt(len(values))
    assert lo < np.mean(values) < hi
    assert (hi - lo) / 2 == pytest.approx(half, rel=0.15)
    assert bootstrap(values, lambda rows: float(np.mean(rows))) == (lo, hi)  # seeded
    with pytest.raises(ValueError, match="at least one row"):
        bootstrap([], len)


def test_bootstrap_takes_any_statistic_of_rows():
    rows = [{"a": float(i % 5 + 1), "b": 2.0} for i in range(30)]
    lo, hi = bootstrap(rows, lambda r: np.mean([x["a"] for x in r]) / np.mean([x["b"] for x in r]))
    assert lo < 1.5 < hi and lo > 1.0 and hi < 2.0
    assert bootstrap(rows[:1], lambda r: r[0]["a"] / r[0]["b"]) == (0.5, 0.5)


def test_mean_interval_chooses_by_the_scores():
    assert mean_interval([]) is None
    assert mean_interval([1.0, 0.0, 1.0, 1.0]) == wilson(3, 4)
    gains = [0.5, -1.0, 2.0, 1.5, 0.0, 3.0]
    assert mean_interval(gains) == bootstrap(gains, lambda rows: float(np.mean(rows)))


def test_format_interval():
    assert format_interval((0.3912, 0.8201)) == "[0.39, 0.82]"
    assert format_interval((-3.546, 0.77), digits=1) == "[-3.5, 0.8]"
    assert format_interval(None) == "–"
