"""The benchmark report's per-round ratios, their median's interval and the target verdicts."""

from __future__ import annotations

import json
import random
from math import comb
from pathlib import Path

import pytest

from benchmarks.paired import COVERAGE, median_interval, median_range, paired, round_ratios
from benchmarks.pool import main as pool_main
from benchmarks.pool import pooled_ratios, pooled_report
from benchmarks.report import Target, per_round_table, target_verdict, targets_table


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


def test_below_six_rounds_the_range_is_the_interval_with_the_coverage_it_has() -> None:
    result = median_range([1.3, 1.2, 1.4])
    assert result is not None and result.interval is not None
    assert (result.median, result.interval.low, result.interval.high) == (1.3, 1.2, 1.4)
    assert result.interval.coverage == 0.75  # misses the median when all 3 fall on one side
    assert median_range([1.0, 2.0]).interval.coverage == 0.5  # type: ignore[union-attr]
    one = median_range([1.3])
    assert one is not None and one.interval is None
    assert median_range([]) is None
    # from 6 rounds on it is median_interval's 95 % interval
    values = [1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.7, 1.8]
    assert median_range(values) == median_interval(values)


def test_the_per_round_table_divides_each_round_by_the_baseline_s_same_round() -> None:
    workload = {
        "name": "plaintext", "baseline": "gaw@abc1234",
        "configs": {"gaw": {}, "gaw@abc1234": {}},
        "rounds": {
            "gaw": [{"round": r, "ok": True, "rps": rps, "cpu_us_per_req": cpu, "p99_ms": 1.0}
                    for r, rps, cpu in ((1, 110, 9.0), (2, 50, 20.0), (3, 210, 4.5))],
            "gaw@abc1234": [{"round": r, "ok": True, "rps": rps, "cpu_us_per_req": cpu,
                             "p99_ms": 2.0}
                            for r, rps, cpu in ((1, 100, 10.0), (2, 50, 20.0), (3, 200, 5.0))],
        },
    }
    rows = per_round_table({"workloads": [workload]})
    assert rows[2] == ("| plaintext | gaw | gaw@abc1234 | 1.05× [1.00–1.10] | 0.90× [0.90–1.00] "
                       "| 0.50× [0.50–0.50] | 3 (75 %) |")
    assert len(rows) == 3  # the baseline has no row of its own


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


def ws_run(gaw: list[float], uvicorn: list[float], contended: bool = False,
           started_at: str = "2026-11-23T22:00:00+00:00") -> dict:
    """A result file's fields that pooling reads: rounds of ws-echo-16k msg/s."""
    return {
        "started_at": started_at,
        "machine": {"git": "abc1234"},
        "settings": {"rounds": len(gaw), "duration_s": 5.0, "contended": contended},
        "workloads": [{
            "name": "ws-echo-16k", "protocol": "ws", "baseline": "uvicorn-worker",
            "rounds": {"gaw": [record(i + 1, v) for i, v in enumerate(gaw)],
                       "uvicorn-worker": [record(i + 1, v) for i, v in enumerate(uvicorn)]},
        }],
    }


def test_pooled_runs_pair_each_round_within_its_own_run() -> None:
    # run 1 on a fast machine, run 2 on a slow one: across runs, round 1 would pair 300
    # with 50 (6×); within each run every ratio is 1.5×
    fast = ws_run([300, 330, 360], [200, 220, 240])
    slow = ws_run([75, 90, 60, 45], [50, 60, 40, 30], started_at="2026-11-23T23:00:00+00:00")
    pooled = pooled_ratios([fast, slow], GOAL)
    assert pooled is not None
    assert pooled.ratios == pytest.approx([1.5] * 7)
    assert pooled.interval is not None and pooled.interval.low == pytest.approx(1.5)
    assert pooled_ratios([ws_run([], [])], GOAL) is None


def test_the_pooled_table_names_its_runs_and_judges_the_pooled_interval() -> None:
    first = ws_run([135, 140, 145], [100, 100, 100])
    second = ws_run([150, 140, 138, 142, 136], [100, 100, 100, 100, 100],
                    started_at="2026-11-23T23:00:00+00:00")
    lines = pooled_report([first, second], ["first.json", "second.json"])
    assert lines[2].startswith("| first.json (2026-11-23T22:00:00+00:00) | `abc1234` | "
                               "one after another | 3 × 5 |")
    row = next(line for line in lines if "msg/s ÷ uvicorn-worker" in line)
    assert row.endswith("| 1.40× [1.35–1.50, 99 %] (n=8) | met |")
    # the same ratios with two rounds of eight below the goal: within noise
    second = ws_run([120, 125, 138, 142, 136], [100, 100, 100, 100, 100],
                    started_at="2026-11-23T23:00:00+00:00")
    lines = pooled_report([first, second], ["first.json", "second.json"])
    row = next(line for line in lines if "msg/s ÷ uvicorn-worker" in line)
    assert row.endswith("| **within noise** |")


def test_runs_of_different_kinds_or_a_run_given_twice_are_refused_with_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = {"seq.json": ws_run([140] * 6, [100] * 6),
            "seq2.json": ws_run([140] * 6, [100] * 6, started_at="2026-11-23T23:00:00+00:00"),
            "cont.json": ws_run([140] * 6, [100] * 6, contended=True)}
    for name, run in runs.items():
        (tmp_path / name).write_text(json.dumps(run))
    seq, seq2, cont = (str(tmp_path / name) for name in runs)
    for files, message in (([seq, cont], "contended runs and runs one after another "
                                         "measure different things: pool each kind on its own"),
                           ([seq, seq], "the same run is given twice: its rounds would count "
                                        "twice")):
        with pytest.raises(SystemExit) as exit_info:
            pool_main(files)
        assert exit_info.value.code == 2
        assert capsys.readouterr().err.strip().splitlines()[-1].endswith(message)
    out = tmp_path / "pooled.md"
    pool_main([seq, seq2, "--out", str(out)])
    written = out.read_text()
    assert written.startswith(f"# Runs pooled\n\n`python -m benchmarks.pool {seq} {seq2}`")
    assert "| 1.40× [1.40–1.40, 96 %] (n=12) | met |" in written
