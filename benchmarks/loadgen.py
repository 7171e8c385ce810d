"""Run wrk pinned to the client core and parse its --latency output."""

from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks.server_process import taskset

WRK_TIMEOUT = "5s"
_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_PERCENTILE = re.compile(r"^\s*(50|75|90|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s|m|h)\s*$", re.M)
_REQUESTS = re.compile(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h)", re.M)
_RPS = re.compile(r"^Requests/sec:\s+([\d.]+)", re.M)
_SOCKET_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_NON_2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")


class WrkError(RuntimeError):
    """wrk failed or printed something the parser does not understand."""


@dataclass(frozen=True)
class WrkResult:
    """The figures of one wrk run."""

    requests: int
    duration_s: float
    rps: float
    p50_ms: float
    p75_ms: float
    p90_ms: float
    p99_ms: float
    socket_errors: dict[str, int]
    non_2xx: int
    output: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly, without the raw output."""
        data = asdict(self)
        data.pop("output")
        return data


def parse(output: str) -> WrkResult:
    """Parse the text wrk prints with --latency."""
    percentiles = {
        int(name): float(value) * _UNITS_MS[unit]
        for name, value, unit in _PERCENTILE.findall(output)
    }
    requests = _REQUESTS.search(output)
    rps = _RPS.search(output)
    if requests is None or rps is None or set(percentiles) != {50, 75, 90, 99}:
        raise WrkError(f"cannot parse wrk output: {output.strip()[-400:]!r}")
    errors = _SOCKET_ERRORS.search(output)
    names = ("connect", "read", "write", "timeout")
    socket_errors = dict(zip(names, map(int, errors.groups()), strict=True)) if errors else {}
    non_2xx = _NON_2XX.search(output)
    return WrkResult(
        requests=int(requests.group(1)),
        duration_s=float(requests.group(2)) * _UNITS_MS[requests.group(3)] / 1000.0,
        rps=float(rps.group(1)),
        p50_ms=percentiles[50],
        p75_ms=percentiles[75],
        p90_ms=percentiles[90],
        p99_ms=percentiles[99],
        socket_errors=socket_errors if any(socket_errors.values()) else {},
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        output=output,
    )


def run(
    url: str,
    duration_s: float,
    connections: int,
    script: str | None,
    cpu: int | None,
    raw_path: Path | None = None,
) -> WrkResult:
    """Run `wrk -t1 -cN -dS --latency` (with a temporary Lua script if given) and parse it."""
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as scratch:
        command = [
            *taskset(cpu),
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(duration_s))}s",
            "--latency",
            "--timeout",
            WRK_TIMEOUT,
        ]
        if script is not None:
            script_path = Path(scratch) / "request.lua"
            script_path.write_text(script)
            command += ["-s", str(script_path)]
        command.append(url)
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=duration_s + 60)
        except subprocess.TimeoutExpired as error:
            raise WrkError(f"wrk did not finish: {error}") from error
    text = f"$ {' '.join(command)}\n{done.stdout}{done.stderr}"
    if raw_path is not None:
        raw_path.parent.mkdir(parents=True, exist_ok=True)
        raw_path.write_text(text)
    if done.returncode != 0:
        raise WrkError(f"wrk exited with {done.returncode}: {done.stderr.strip()[-400:]}")
    return parse(done.stdout)
