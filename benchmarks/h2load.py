"""Run h2load (nghttp2's HTTP/2 load generator) pinned to the client core and parse its output.

h2load speaks cleartext HTTP/2 with prior knowledge to an http:// URL. Its summary gives
req/s, the request counts (done, succeeded, failed, errored, timed out) and min/max/mean/sd of
the "time for request", but no percentiles; the percentiles come from its `--log-file`, one
line per completed request (start time µs, status or -1 for a failed stream, µs until the end
of the response), which this module reads back.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks.server_process import taskset

BINARY = "h2load"
_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_FINISHED = re.compile(r"^finished in ([\d.]+)(us|ms|s|m|h), ([\d.]+) req/s", re.M)
_REQUESTS = re.compile(
    r"^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
    r"(\d+) errored, (\d+) timeout",
    re.M,
)
_STATUS = re.compile(r"^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", re.M)
_TIME = r"([\d.]+)(us|ms|s|m|h)"
_REQUEST_TIME = re.compile(
    rf"^time for request:\s+{_TIME}\s+{_TIME}\s+{_TIME}\s+{_TIME}", re.M
)
_PROTOCOL = re.compile(r"^Application protocol: (\S+)", re.M)
PERCENTILES = (50, 75, 90, 99)


class H2loadError(RuntimeError):
    """h2load failed, did not speak HTTP/2, or printed something the parser does not know."""


@dataclass(frozen=True)
class H2loadResult:
    """The figures of one h2load run, in the shape of a wrk result (`loadgen.WrkResult`) where
    they mean the same, plus h2load's own counts.

    `socket_errors` holds the errored requests (stream or connection errors, timeouts among
    them) and `non_2xx` the other failed ones (HTTP-level failures), so the suite's error
    count, their sum, is h2load's `failed`. The percentiles are those of the completed
    requests' times in the log (None when the log had none).
    """

    requests: int
    duration_s: float
    rps: float
    p50_ms: float | None
    p75_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    mean_ms: float
    max_ms: float
    sd_ms: float
    succeeded: int
    failed: int
    errored: int
    timeout: int
    status_4xx: int
    status_5xx: int
    socket_errors: dict[str, int]
    non_2xx: int
    output: str
    client_cpu_pct: float | None = None  # h2load's CPU time over the run ÷ its length

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly, without the raw output."""
        data = asdict(self)
        data.pop("output")
        return data


def _ms(value: str, unit: str) -> float:
    return float(value) * _UNITS_MS[unit]


def request_times_us(log: str) -> list[int]:
    """The µs until the end of the response of every request the log shows as answered (a
    status of -1 marks a failed stream, left out)."""
    times = []
    for line in log.splitlines():
        fields = line.split("\t")
        if len(fields) >= 3 and fields[1] != "-1":
            times.append(int(fields[2]))
    return times


def percentile(sorted_values: list[int], pct: int) -> int:
    """The nearest-rank percentile of sorted values (the smallest value with at least pct %
    of them at or below it)."""
    rank = max(1, -(-len(sorted_values) * pct // 100))
    return sorted_values[rank - 1]


def parse(output: str, log: str) -> H2loadResult:
    """Parse h2load's summary (`output`) and its `--log-file` (`log`)."""
    finished = _FINISHED.search(output)
    counts = _REQUESTS.search(output)
    request_time = _REQUEST_TIME.search(output)
    if finished is None or counts is None or request_time is None:
        raise H2loadError(f"cannot parse h2load output: {output.strip()[-400:]!r}")
    protocol = _PROTOCOL.search(output)
    if protocol is None or protocol.group(1) not in ("h2c", "h2"):
        spoken = protocol.group(1) if protocol else "none"
        raise H2loadError(f"h2load did not speak HTTP/2 (application protocol: {spoken})")
    _total, _started, done, succeeded, failed, errored, timeout = map(int, counts.groups())
    statuses = _STATUS.search(output)
    status_4xx, status_5xx = (
        (int(statuses.group(3)), int(statuses.group(4))) if statuses else (0, 0)
    )
    times = sorted(request_times_us(log))
    shown = {pct: percentile(times, pct) / 1000.0 if times else None for pct in PERCENTILES}
    fields = request_time.groups()
    return H2loadResult(
        requests=done,
        duration_s=_ms(finished.group(1), finished.group(2)) / 1000.0,
        rps=float(finished.group(3)),
        p50_ms=shown[50],
        p75_ms=shown[75],
        p90_ms=shown[90],
        p99_ms=shown[99],
        mean_ms=_ms(fields[4], fields[5]),
        max_ms=_ms(fields[2], fields[3]),
        sd_ms=_ms(fields[6], fields[7]),
        succeeded=succeeded,
        failed=failed,
        errored=errored,
        timeout=timeout,
        status_4xx=status_4xx,
        status_5xx=status_5xx,
        socket_errors={"errored": errored} if errored else {},
        non_2xx=failed - errored,
        output=output,
    )


def unavailable_reason() -> str | None:
    """None when h2load is on the PATH, else why the h2 workloads cannot run."""
    if shutil.which(BINARY) is None:
        return "h2load is not installed (Debian: apt-get install nghttp2-client)"
    return None


def _run_measured(command: list[str], output_path: Path, timeout: float) -> tuple[int, float]:
    """Run command with its output in output_path; its exit code and the CPU seconds it used
    (taskset execs h2load in the same process, so the child's own rusage is h2load's)."""
    with output_path.open("w") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            process.returncode = os.waitstatus_to_exitcode(status)
            return process.returncode, usage.ru_utime + usage.ru_stime
        if time.monotonic() > deadline:
            process.kill()
            process.wait()
            raise H2loadError(f"h2load did not finish within {timeout:.0f} s")
        time.sleep(0.05)


def run(
    url: str,
    duration_s: float,
    connections: int,
    streams: int,
    cpu: int | None,
    raw_path: Path | None = None,
) -> H2loadResult:
    """Run `h2load -t1 -cN -mM -DS --log-file=…` against url and parse it, with h2load's own
    CPU share of its core (`client_cpu_pct`: near 100 % it may be what limits the rate); the
    raw output goes to raw_path when given (the request log, megabytes, is not kept)."""
    with tempfile.TemporaryDirectory(prefix="bench-h2load-") as scratch:
        log_path = Path(scratch) / "requests.tsv"
        output_path = Path(scratch) / "output.txt"
        command = [
            *taskset(cpu),
            BINARY,
            "-t1",
            f"-c{connections}",
            f"-m{streams}",
            f"-D{max(1, round(duration_s))}",
            f"--log-file={log_path}",
            url,
        ]
        code, cpu_s = _run_measured(command, output_path, duration_s + 60)
        output = output_path.read_text(errors="replace")
        log = log_path.read_text() if log_path.exists() else ""
    if raw_path is not None:
        raw_path.parent.mkdir(parents=True, exist_ok=True)
        raw_path.write_text(f"$ {' '.join(command)}\n{output}")
    if code != 0:
        raise H2loadError(f"h2load exited with {code}: {output.strip()[-400:]}")
    result = parse(output, log)
    return dataclasses.replace(result, client_cpu_pct=round(100 * cpu_s / result.duration_s, 1))
