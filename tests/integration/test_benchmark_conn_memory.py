"""`python -m benchmarks.conn_memory`, which measures memory per idle connection, run for real at
a small N on each of our worker classes (the peers live in the benchmarks' own venv): every
kind of idle connection is opened, held by the worker, measured and closed."""

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
       "from benchmarks import conn_memory\n"
       "sys.exit(conn_memory.main(sys.argv[1:]))\n")
CONFIG_NAMES = {"gaw.UvloopWorker": "gaw", "gaw.AsyncioWorker": "gaw-asyncio",
                "gaw.H11Worker": "gaw-h11"}
CONNECTIONS = 200


# The suite's Gunicorn commands pass --no-control-socket; its own venv pins a Gunicorn that has it.
@pytest.mark.skipif(not any(s.name == "control_socket_disable" for s in KNOWN_SETTINGS),
                    reason="the benchmark suite's Gunicorn commands need --no-control-socket")
def test_each_kind_of_idle_connection_is_held_and_measured(worker_class: str,
                                                           tmp_path: Path) -> None:
    name = CONFIG_NAMES[worker_class]
    out = tmp_path / "results"
    done = subprocess.run(
        [sys.executable, "-c", RUN, "--only", name, "--connections", str(CONNECTIONS),
         "--rounds", "1", "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )
    result = json.loads((out / "latest.json").read_text()) if (out / "latest.json").exists() else {}
    raw = result.get("settings", {}).get("raw_dir")
    if raw:  # the server logs go under benchmarks/results/raw
        shutil.rmtree(REPO / raw, ignore_errors=True)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    # Gunicorn's worker_connections is raised above N, so its cap never binds
    assert f"--worker-connections {CONNECTIONS + 100} " in result["commands"][name]
    records = {r["kind"]: r for r in result["records"]}
    assert sorted(records) == ["http", "ws", "ws-deflate"]
    for record in records.values():
        assert record["config"] == name and record["ok"], record
        # every connection was opened, held by the worker (its descriptors) until measured
        assert record["opened"] == record["still_open"] == CONNECTIONS, record
        assert record["worker_fds"] >= CONNECTIONS, record
        for metric in ("rss", "pss", "uss"):
            before, held = record["before_kib"][metric], record["held_kib"][metric]
            assert before > 0 and held > 0, record
            assert record[f"{metric}_per_conn"] == round((held - before) * 1024 / CONNECTIONS)
    assert records["ws"]["negotiated"] == ""
    assert records["ws-deflate"]["negotiated"].startswith("permessage-deflate")
    # Held WebSockets cost the worker memory, and compressed ones more: zlib's state.
    assert records["ws-deflate"]["rss_per_conn"] > records["ws"]["rss_per_conn"] > 0
    report = (out / "latest.md").read_text()
    assert f"--only {name} --connections {CONNECTIONS}" in report
    for title in ("HTTP keep-alive", "WebSocket, no extension",
                  "WebSocket with permessage-deflate"):
        assert f"### {title}" in report
