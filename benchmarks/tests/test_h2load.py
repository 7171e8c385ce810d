"""The h2 workloads' figures: h2load's captured output and request log parsed into the numbers
the suite records (req/s, requests, failed and errored, latency percentiles), the report's flag
on a run with failed requests, and which configurations `--only h2` runs."""

from __future__ import annotations

import pytest

from benchmarks import cli, h2load, report
from benchmarks.summary import summarise_workload

# h2load -t1 -c64 -m10 -D 2 against granian --http 2, /plaintext (nghttp2 1.52.0), verbatim
CLEAN = """\
starting benchmark...
spawning thread #0: 64 total client(s). Timing-based test with 0s of warm-up time and 2s of main duration for measurements.
Warm-up started for thread #0.
progress: 9% of clients started
progress: 93% of clients started
Warm-up phase is over for thread #0.
Main benchmark duration is started for thread #0.
Application protocol: h2c
Main benchmark duration is over for thread #0. Stopping all clients.
Stopped all clients for thread #0

finished in 2.00s, 68085.00 req/s, 2.60MB/s
requests: 136170 total, 136810 started, 136170 done, 136170 succeeded, 0 failed, 0 errored, 0 timeout
status codes: 136170 2xx, 0 3xx, 0 4xx, 0 5xx
traffic: 5.20MB (5455632) total, 1.17MB (1230842) headers (space savings 90.38%), 1.69MB (1770210) data
                     min         max         mean         sd        +/- sd
time for request:     2.36ms     22.09ms      9.32ms      2.22ms    81.91%
time for connect:       57us       901us       550us       255us    62.50%
time to 1st byte:    11.97ms     12.84ms     12.53ms       162us    76.56%
req/s           :    1058.37     1072.14     1063.35        2.60    70.31%
"""  # noqa: E501

# h2load -t1 -c8 -m10 -D 3 with two URIs, /plaintext and /missing (a 404), against granian
FAILING = """\
starting benchmark...
spawning thread #0: 8 total client(s). Timing-based test with 0s of warm-up time and 3s of main duration for measurements.
Warm-up started for thread #0.
Warm-up phase is over for thread #0.
Main benchmark duration is started for thread #0.
Application protocol: h2c
Main benchmark duration is over for thread #0. Stopping all clients.
Stopped all clients for thread #0

finished in 3.00s, 28319.67 req/s, 1.01MB/s
requests: 84959 total, 85039 started, 84959 done, 42483 succeeded, 42476 failed, 0 errored, 0 timeout
status codes: 42483 2xx, 0 3xx, 42476 4xx, 0 5xx
traffic: 3.04MB (3187084) total, 705.88KB (722819) headers (space savings 90.90%), 912.66KB (934563) data
                     min         max         mean         sd        +/- sd
time for request:      231us      7.19ms      1.39ms       492us    69.23%
time for connect:       66us       137us       105us        23us    75.00%
time to 1st byte:     6.08ms      7.08ms      6.95ms       348us    87.50%
req/s           :    7022.37     7093.42     7066.77       26.09    62.50%
"""  # noqa: E501

# 100 answered requests taking 1..100 ms, and a failed stream (status -1) that took 5 s
LOG = "".join(f"1796549151631{i:03d}\t200\t{i * 1000}\n" for i in range(100, 0, -1))
LOG += "1796549151632000\t-1\t5000000\n"


def test_a_clean_run_gives_its_rate_counts_and_latencies() -> None:
    result = h2load.parse(CLEAN, LOG)
    assert (result.rps, result.requests, result.duration_s) == (68085.0, 136170, 2.0)
    assert (result.succeeded, result.failed, result.errored, result.timeout) == (136170, 0, 0, 0)
    assert (result.mean_ms, result.max_ms, result.sd_ms) == (9.32, 22.09, 2.22)
    # nearest rank over the answered requests; the failed stream's 5 s is not among them
    assert (result.p50_ms, result.p75_ms, result.p90_ms, result.p99_ms) == (50.0, 75.0, 90.0,
                                                                              99.0)
    assert result.socket_errors == {} and result.non_2xx == 0


def test_failed_requests_are_counted_and_split_from_errored_ones() -> None:
    result = h2load.parse(FAILING, "")
    assert (result.rps, result.requests, result.succeeded) == (28319.67, 84959, 42483)
    assert (result.failed, result.errored, result.status_4xx) == (42476, 0, 42476)
    # the suite's error count, socket errors plus non-2xx, is h2load's failed
    assert sum(result.socket_errors.values()) + result.non_2xx == 42476
    assert result.mean_ms == pytest.approx(1.39) and result.max_ms == pytest.approx(7.19)
    assert result.p99_ms is None  # no log: no percentile, rather than an invented one
    errored = h2load.parse(FAILING.replace("42476 failed, 0 errored, 0 timeout",
                                           "42476 failed, 30 errored, 2 timeout"), "")
    assert (errored.errored, errored.timeout, errored.socket_errors, errored.non_2xx) == (
        30, 2, {"errored": 30}, 42446)


def test_units_of_request_time_are_read_as_milliseconds() -> None:
    slow = CLEAN.replace("2.36ms     22.09ms      9.32ms      2.22ms",
                         "2.36ms      1.65s    155.37ms    191.59us")
    result = h2load.parse(slow, LOG)
    assert (result.max_ms, result.mean_ms, result.sd_ms) == (1650.0, 155.37, pytest.approx(0.19159))


def test_output_that_is_not_http2_or_not_h2load_is_refused() -> None:
    with pytest.raises(h2load.H2loadError, match="did not speak HTTP/2"):
        h2load.parse(CLEAN.replace("Application protocol: h2c", "Application protocol: http/1.1"),
                     LOG)
    with pytest.raises(h2load.H2loadError, match="cannot parse"):
        h2load.parse(CLEAN.replace("finished in", "done in"), LOG)


def test_a_run_with_failed_requests_is_flagged_in_the_report() -> None:
    good = {"ok": True, "round": 1, "rps": 1.0, "cpu_us_per_req": 1.0, "p50_ms": 1.0,
            "p99_ms": 1.0, "rss_mib": 1.0}
    clean = h2load.parse(CLEAN, LOG).as_dict()
    failing = h2load.parse(FAILING, LOG).as_dict()
    by_config = {"gunicorn-asgi": [{**good, **clean}],
                 "gaw": [{**good, **clean}, {**good, **failing, "round": 2}]}
    workload = {"name": "h2-plaintext", "protocol": "h2", "idle_connections": 0,
                "baseline": "gunicorn-asgi",
                "configs": summarise_workload(by_config, "gunicorn-asgi", idle=False)}
    table = report.workload_table(workload)
    assert "failed (errored)" in table[0]
    [gaw_row] = [line for line in table if line.startswith("| gaw |")]
    assert "**42476 (0) FAILED**" in gaw_row
    [asgi_row] = [line for line in table if line.startswith("| **gunicorn-asgi** |")]
    assert "| 0 (0) |" in asgi_row
    note = report.failed_runs_note(workload)
    assert note[1].startswith("- **gaw, round 2: 42476 failed requests**"), note
    assert len(note) == 2


def test_only_h2_selects_the_http2_workloads_and_the_servers_that_speak_it() -> None:
    configs, workloads = cli.select(["h2"])
    assert [w.name for w in workloads] == ["h2-plaintext", "h2-json"]
    runs = sorted({c.name for c in configs for w in workloads if w.serves(c)})
    assert runs == ["gaw", "granian", "gunicorn-asgi", "hypercorn"]
    assert {w.baseline for w in workloads} == {"gunicorn-asgi"}
    # naming an HTTP/1.1 workload keeps to it: the h2 ones are not dragged in
    _, plain = cli.select(["gaw,plaintext"])
    assert [w.name for w in plain] == ["plaintext"]
