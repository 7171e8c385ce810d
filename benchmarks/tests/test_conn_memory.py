"""`python -m benchmarks.conn_memory`, which measures memory per idle connection, run for real at
a small N on each of our worker classes (the peers live in the benchmarks' own venv): every
kind of idle connection is opened, held by the worker, measured and closed."""

from __future__ import annotations

from pathlib import Path

from benchmarks.tests.running import (
    CONFIG_NAMES,
    needs_control_socket_flag,
    run_module,
    tail,
    written,
)

CONNECTIONS = 200


@needs_control_socket_flag
def test_each_kind_of_idle_connection_is_held_and_measured(worker_class: str,
                                                           tmp_path: Path) -> None:
    name = CONFIG_NAMES[worker_class]
    out = tmp_path / "results"
    done = run_module("benchmarks.conn_memory", [
        "--only", name, "--connections", str(CONNECTIONS), "--rounds", "1", "--out", str(out)],
        timeout=120)
    result = written(out)
    assert done.returncode == 0, tail(done)
    # the server logs went beside the results, not into the tree
    assert Path(result["settings"]["raw_dir"]).is_relative_to(out)
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
