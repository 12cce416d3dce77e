"""95% intervals for evaluation metrics measured on a few dozen samples.

A score of 0.625 on 16 questions says little on its own: the interval says which values the
samples cannot tell apart, so two runs (or a run and a target) are compared by their intervals,
not by their point values.

* Scores that are all 0 or 1 (a share of samples right) get the Wilson score interval, which stays
  inside [0, 1] and is not empty at 0/n or n/n, where a bootstrap would collapse to a point.
* Anything else (a mean of continuous scores, or a statistic of several per-sample values such as
  a ratio of means) gets a percentile bootstrap over samples, with a fixed seed so that a report
  reads the same each time it is written.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np

LEVEL = 0.95
RESAMPLES = 2000
Row = TypeVar("Row")


def _z(level: float) -> float:
    """The standard normal quantile for a two-sided ``level`` interval (bisection on erf)."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be between 0 and 1, got {level}")
    lo, hi = 0.0, 10.0
    for _ in range(100):
        mid = (lo + hi) / 2
        if math.erf(mid / math.sqrt(2)) < level:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def wilson(successes: int, n: int, level: float = LEVEL) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``successes / n``."""
    if n <= 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n and n > 0, got {successes} of {n}")
    z = _z(level)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def bootstrap(
    rows: Sequence[Row],
    statistic: Callable[[Sequence[Row]], float],
    level: float = LEVEL,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> tuple[float, float]:
    """The percentile bootstrap interval of ``statistic`` over ``rows`` resampled with
    replacement."""
    if not rows:
        raise ValueError("bootstrap needs at least one row")
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(rows), size=(resamples, len(rows)))
    values = np.array([statistic([rows[i] for i in pick]) for pick in picks])
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(values, [tail, 100 - tail])
    return float(lo), float(hi)


def mean_interval(values: Sequence[float], level: float = LEVEL) -> tuple[float, float] | None:
    """The interval of a mean score: Wilson for 0/1 scores, the bootstrap otherwise; None for
    no scores."""
    if not values:
        return None
    if all(v in (0.0, 1.0) for v in values):
        return wilson(int(sum(values)), len(values), level)
    return bootstrap(list(values), lambda rows: float(np.mean(rows)), level)


def format_interval(interval: tuple[float, float] | None, digits: int = 2) -> str:
    """ "[0.39, 0.82]", or "–" for no interval."""
    return "–" if interval is None else f"[{interval[0]:.{digits}f}, {interval[1]:.{digits}f}]"
