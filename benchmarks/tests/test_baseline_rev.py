"""`python -m benchmarks --baseline-rev REV`: gaw as of another git revision runs beside this
checkout's gaw in the same run, as its baseline; a smoke run for real (one round of 2 s)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from benchmarks.tests.running import REPO, needs_control_socket_flag, run_module, tail, written


def git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True,
                          check=True, timeout=60).stdout.strip()


@needs_control_socket_flag
def test_the_other_revision_runs_as_the_baseline_from_an_export_that_is_removed_after(
        tmp_path: Path) -> None:
    out = tmp_path / "results"
    commit, short = git("rev-parse", "HEAD"), git("rev-parse", "--short", "HEAD")
    done = run_module("benchmarks.cli", [
        "--smoke", "--baseline-rev", "HEAD", "--only", "gaw,ws-echo-64", "--out", str(out)],
        timeout=120)
    result = written(out)
    assert done.returncode == 0, tail(done)
    other = f"gaw@{short}"
    assert result["settings"]["baseline_rev"] == {"rev": "HEAD", "commit": commit,
                                                  "name": other}
    [workload] = result["workloads"]
    assert workload["baseline"] == other
    for name in ("gaw", other):  # both ran; the preflight checked gaw@ loads from the export
        [record] = workload["rounds"][name]
        assert record["ok"] and record["requests"] > 0 and record["cpu_us_per_req"] > 0
    assert workload["configs"]["gaw"]["ratios"]["cpu_us_per_req"] > 0
    report = (out / "latest.md").read_text()
    assert f"**{other}** (`--baseline-rev HEAD`): gaw as of commit `{commit}`" in report
    assert re.search(rf"\| ws-echo-64 \| gaw \| {re.escape(other)} \| [0-9.]+× \| [0-9.]+× \| "
                     r"[0-9.]+× \| 1 \(no interval\) \|", report), report
    # the export lived outside the tree and is gone; the raw files went beside the results
    [exported] = re.findall(r"exported to (\S+)", done.stdout)
    assert not Path(exported).is_relative_to(REPO) and not Path(exported).exists()
    assert Path(result["settings"]["raw_dir"]).is_relative_to(out)


def test_a_revision_the_repo_does_not_have_stops_the_run_with_one_line(tmp_path: Path) -> None:
    done = run_module("benchmarks.cli", [
        "--smoke", "--baseline-rev", "no-such-revision", "--out", str(tmp_path)], timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith(
        "--baseline-rev no-such-revision: no commit 'no-such-revision' in ")
    assert not any(tmp_path.iterdir())
