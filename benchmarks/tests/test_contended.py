"""The benchmark suite's contended mode (`python -m benchmarks --contended`), which the README's
WebSocket figures come from: run for real on two of our own worker classes (the peers live in
the benchmarks' own venv), two short rounds of WebSocket echo."""

from __future__ import annotations

from pathlib import Path

from benchmarks.tests.running import needs_control_socket_flag, run_module, tail, written


@needs_control_socket_flag
def test_contended_rounds_measure_every_server_at_once_and_say_so(tmp_path: Path) -> None:
    out = tmp_path / "results"
    done = run_module("benchmarks.cli", [
        "--only", "gaw,gaw-asyncio,ws-echo-64", "--contended", "--rounds", "2",
        "--duration", "1", "--warmup", "1", "--out", str(out)], timeout=180)
    result = written(out)
    assert done.returncode == 0, tail(done)
    # the raw files (wsload output, server logs) went beside the results, not into the tree
    assert Path(result["settings"]["raw_dir"]).is_relative_to(out)
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
