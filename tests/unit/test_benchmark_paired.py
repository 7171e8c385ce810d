"""The benchmark report's per-round ratios, their median's interval and the target verdicts."""

from __future__ import annotations

import random
from math import comb

import pytest

from benchmarks.paired import COVERAGE, median_interval, paired, round_ratios
from benchmarks.report import Target, target_verdict, targets_table


def record(round_no: int, rps: float, ok: bool = True) -> dict:
    return {"round": round_no, "ok": ok, "rps": rps}


def test_rounds_pair_by_number_and_a_failed_run_pairs_with_nothing() -> None:
    mine = [record(1, 300), record(2, 400), record(3, 500, ok=False), record(4, 100)]
    theirs = [record(2, 200), record(1, 100), record(3, 100), record(4, 0)]
    # round 3: mine failed; round 4: theirs measured nothing
    assert round_ratios(mine, theirs, "rps") == [3.0, 2.0]


@pytest.mark.parametrize(("n", "k"), [(6, 1), (8, 1), (9, 2), (12, 3), (20, 6), (24, 7)])
def test_the_interval_is_the_narrowest_pair_of_order_statistics_with_enough_coverage(
        n: int, k: int) -> None:
    values = [float(i) for i in range(n, 0, -1)]  # any order: sorted inside
    result = median_interval(values)
    assert result is not None and result.interval is not None
    interval = result.interval
    assert (interval.low, interval.high) == (float(k), float(n + 1 - k))
    assert interval.coverage == pytest.approx(1 - 2 * sum(comb(n, i) for i in range(k)) / 2**n)
    assert interval.coverage >= COVERAGE
    narrower = 1 - 2 * sum(comb(n, i) for i in range(k + 1)) / 2**n
    assert narrower < COVERAGE


def test_fewer_than_six_rounds_give_a_median_but_no_interval() -> None:
    result = median_interval([1.0, 3.0, 2.0, 4.0, 5.0])
    assert result is not None
    assert result.median == 3.0
    assert result.interval is None
    assert median_interval([]) is None


def test_the_interval_holds_the_true_median_as_often_as_it_claims() -> None:
    """Skewed noise with median 1.4: over many simulated runs of 12 rounds the interval
    misses 1.4 no more often than 1 - coverage allows."""
    rng = random.Random(7)
    runs, missed = 4000, 0
    for _ in range(runs):
        values = [1.4 * rng.lognormvariate(0, 0.15) for _ in range(12)]
        result = median_interval(values)
        assert result is not None and result.interval is not None
        missed += not (result.interval.low <= 1.4 <= result.interval.high)
    assert missed / runs <= 1 - COVERAGE + 0.01


GOAL = Target("ws-echo-16k", "gaw", "rps", ">=", 1.3)


def verdict(ratios: list[float], ratio_of_medians: float) -> str:
    mine = [record(i, r * 100) for i, r in enumerate(ratios)]
    theirs = [record(i, 100) for i in range(len(ratios))]
    return target_verdict(ratio_of_medians, paired(mine, theirs, "rps"), GOAL)


def test_a_goal_is_met_only_when_the_whole_interval_passes() -> None:
    assert verdict([1.35, 1.4, 1.45, 1.5, 1.4, 1.38, 1.42, 1.36], 1.4) == "met"
    # median 1.41 but two rounds of eight below the goal: the interval reaches below it
    assert verdict([1.2, 1.25, 1.4, 1.45, 1.5, 1.42, 1.38, 1.6], 1.41) == "**within noise**"
    assert verdict([1.2, 1.25, 1.22, 1.28, 1.3, 1.21], 1.24) == "**not met**"
    assert verdict([1.4, 1.5], 1.45) == "met (no interval)"
    assert target_verdict(None, None, GOAL) == "not measured"


def test_an_upper_goal_is_judged_by_the_interval_s_upper_end() -> None:
    cpu = Target("wsgi-plaintext", "gaw", "cpu_us_per_req", "<=", 0.33)
    mine = [{"round": i, "ok": True, "cpu_us_per_req": v} for i, v in
            enumerate([25, 26, 27, 28, 29, 40])]
    theirs = [{"round": i, "ok": True, "cpu_us_per_req": 100} for i in range(6)]
    # the interval of 6 rounds runs from the smallest to the largest ratio
    assert target_verdict(0.27, paired(mine, theirs, "cpu_us_per_req"), cpu) == (
        "**within noise**")
    mine[-1]["cpu_us_per_req"] = 30
    assert target_verdict(0.27, paired(mine, theirs, "cpu_us_per_req"), cpu) == "met"


def test_the_targets_table_shows_the_interval_beside_the_ratio_of_medians() -> None:
    ratios = [1.35, 1.4, 1.45, 1.5, 1.4, 1.38, 1.42, 1.36]
    workload = {
        "name": "ws-echo-16k",
        "protocol": "ws",
        "baseline": "uvicorn-worker",
        "configs": {"gaw": {"ratios": {"rps": 1.4}, "figures": {}},
                    "uvicorn-worker": {"ratios": {"rps": 1.0}, "figures": {}}},
        "rounds": {"gaw": [record(i, r * 100) for i, r in enumerate(ratios)],
                   "uvicorn-worker": [record(i, 100) for i in range(8)]},
    }
    rows = targets_table({"workloads": [workload]})
    row = next(line for line in rows if "uvicorn-worker |" in line)
    assert "| 1.40× | 1.40× [1.35–1.50, 99 %] (n=8) | met |" in row
