"""The benchmark suite's contended mode (`python -m benchmarks --contended`), which the README's
WebSocket figures come from: run for real on two of our own worker classes (the peers live in
the benchmarks' own venv), two short rounds of WebSocket echo."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from gunicorn.config import KNOWN_SETTINGS
from gunicorn_process import REPO

RUN = ("import sys\n"
       "from benchmarks import cli\n"
       "sys.exit(cli.main(sys.argv[1:]))\n")


# The suite's Gunicorn commands pass --no-control-socket; its own venv pins a Gunicorn that has it.
@pytest.mark.skipif(not any(s.name == "control_socket_disable" for s in KNOWN_SETTINGS),
                    reason="the benchmark suite's Gunicorn commands need --no-control-socket")
def test_contended_rounds_measure_every_server_at_once_and_say_so(tmp_path: Path) -> None:
    out = tmp_path / "results"
    done = subprocess.run(
        [sys.executable, "-c", RUN, "--only", "gaw,gaw-asyncio,ws-echo-64", "--contended",
         "--rounds", "2", "--duration", "1", "--warmup", "1", "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=180, check=False,
    )
    result = json.loads((out / "latest.json").read_text()) if done.returncode == 0 else {}
    raw = result.get("settings", {}).get("raw_dir")
    if raw:  # the suite's raw files (wsload output, server logs) go under benchmarks/results
        shutil.rmtree(REPO / raw, ignore_errors=True)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert result["settings"]["contended"] is True
    progress = [line for line in done.stdout.splitlines() if "(contended)" in line]
    assert len(progress) == 4, done.stdout  # 2 rounds × 2 servers, each round's pair together
    [workload] = result["workloads"]
    for name in ("gaw", "gaw-asyncio"):
        rounds = workload["rounds"][name]
        assert [r["round"] for r in rounds] == [1, 2]
        assert all(r["ok"] and r["requests"] > 0 and r["cpu_us_per_req"] > 0 for r in rounds)
    # Each round's two servers shared the server core over their measured windows: together
    # they used about one core's worth of CPU time, where one after another (or on two cores)
    # each would have had a core to itself for its window (the echo keeps a server busy).
    for first, second in zip(workload["rounds"]["gaw"], workload["rounds"]["gaw-asyncio"],
                             strict=True):
        shares = [r["cpu_s"] / r["duration_s"] for r in (first, second)]
        assert sum(shares) < 1.3, shares
    assert "**contended**" in (out / "latest.md").read_text()
