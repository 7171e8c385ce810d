"""Ratios between two configurations' runs of the same round, and how sure their median is.

Rounds run one configuration after another, so a slow spell of a shared machine moves one
round's figures together. The ratio within a round cancels much of it; the median of those
ratios, with a distribution-free interval from their order statistics (the sign test's),
says whether a goal is met beyond the noise of the run rather than by one lucky round.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from math import comb
from typing import Any

# the least coverage an interval must have
COVERAGE = 0.95


@dataclass(frozen=True)
class Interval:
    """Where the true median lies with probability ≥ `coverage`."""

    low: float
    high: float
    coverage: float


@dataclass(frozen=True)
class PairedRatios:
    """The per-round ratios of one metric, their median and its interval (None when there
    are too few rounds for an interval of at least COVERAGE)."""

    ratios: tuple[float, ...]
    median: float
    interval: Interval | None


def round_ratios(mine: list[dict[str, Any]], theirs: list[dict[str, Any]],
                 metric: str) -> list[float]:
    """mine ÷ theirs for each round both measured (a run that failed pairs with nothing)."""
    by_round = {r["round"]: r for r in theirs if r.get("ok") and r.get(metric)}
    return [
        r[metric] / by_round[r["round"]][metric]
        for r in mine
        if r.get("ok") and r.get(metric) and r["round"] in by_round
    ]


def median_interval(values: list[float]) -> PairedRatios | None:
    """The median of `values` and the narrowest order-statistic interval [x(k), x(n+1-k)]
    that holds the true median with probability ≥ COVERAGE, whatever the distribution."""
    if not values:
        return None
    xs = sorted(values)
    n = len(xs)
    # P(x(k) ≤ median ≤ x(n+1-k)) = 1 - 2·P(Binomial(n, ½) < k): the largest k (the
    # narrowest interval) that keeps this at least COVERAGE
    interval = None
    below = 0  # ways for fewer than k of n coin flips to come up heads
    for k in range(1, n // 2 + 1):
        below += comb(n, k - 1)
        coverage = 1 - 2 * below / 2**n
        if coverage < COVERAGE:
            break
        interval = Interval(xs[k - 1], xs[n - k], coverage)
    return PairedRatios(tuple(values), statistics.median(xs), interval)


def median_range(values: list[float]) -> PairedRatios | None:
    """`median_interval`'s answer; but where there are too few values for an interval of
    COVERAGE (fewer than 6), the widest there is, their whole range [x(1), x(n)], with the
    lower coverage it has: 1 - 2/2**n (50 % for 2 values, 75 % for 3, 94 % for 5)."""
    result = median_interval(values)
    if result is None or result.interval is not None or len(values) < 2:
        return result
    xs = sorted(values)
    return PairedRatios(result.ratios, result.median,
                        Interval(xs[0], xs[-1], 1 - 2 / 2 ** len(xs)))


def paired(mine: list[dict[str, Any]], theirs: list[dict[str, Any]],
           metric: str) -> PairedRatios | None:
    """The paired ratios of `metric` between two configurations' round records."""
    return median_interval(round_ratios(mine, theirs, metric))
