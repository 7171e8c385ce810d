"""The nginx static reference: it runs the plaintext and json workloads only, answers them with
the apps' own bytes (the apps, called in-process, are the oracle), is measured through its
master and worker like any server's tree, and is left out with one line when nginx is missing.

The tests that start nginx skip when it is not installed (the suite's bootstrap installs it);
the short real run also needs wrk."""

from __future__ import annotations

import asyncio
import dataclasses
import http.client
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from benchmarks import nginx, probe, proctree, suite
from benchmarks.apps import asgi_apps, wsgi_apps
from benchmarks.server_process import RunningServer
from benchmarks.servers import CONFIGS_BY_NAME, HOST
from benchmarks.tests.running import run_module, tail, written
from benchmarks.workloads import WORKLOADS, WORKLOADS_BY_NAME

NGINX = CONFIGS_BY_NAME["nginx"]
PATHS = ("/plaintext", "/json")

needs_nginx = pytest.mark.skipif(nginx.binary() is None, reason="nginx is not installed")


def asgi_answer(path: str) -> tuple[int, str, bytes]:
    """Status, content-type and body the ASGI app sends for a GET of path."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(dict(message))

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "GET", "path": path, "raw_path": path.encode(), "query_string": b"",
             "headers": []}
    asyncio.run(asgi_apps.app(scope, receive, send))
    start, *bodies = sent
    headers = dict(start["headers"])
    return (start["status"], headers[b"content-type"].decode(),
            b"".join(m.get("body", b"") for m in bodies))


def wsgi_answer(path: str) -> tuple[int, str, bytes]:
    """Status, content-type and body the WSGI app sends for a GET of path."""
    started: list[tuple[str, list[tuple[str, str]]]] = []
    body = b"".join(wsgi_apps.app({"REQUEST_METHOD": "GET", "PATH_INFO": path},
                                  lambda status, headers: started.append((status, headers))))
    [(status, headers)] = started
    return int(status.split()[0]), dict(headers)["Content-Type"], body


def test_nginx_runs_only_the_plaintext_and_json_workloads_of_both_kinds() -> None:
    served = [w.name for w in WORKLOADS if w.serves(NGINX)]
    # not idle-1000, although it requests /plaintext too: only the four named workloads
    assert served == ["plaintext", "json", "wsgi-plaintext", "wsgi-json"]
    assert NGINX.label == "nginx (static reference)"
    assert all(c.label == c.name for c in CONFIGS_BY_NAME.values() if c is not NGINX)


def test_without_nginx_the_preflight_leaves_it_out_with_one_line(tmp_path: Path) -> None:
    why = "nginx is not installed (test)"
    absent = dataclasses.replace(NGINX, missing=lambda: why)
    settings = suite.Settings(configs=(absent,), workloads=WORKLOADS, rounds=1, duration_s=1,
                              warmup_s=1, server_cpu=None, client_cpu=None, raw_dir=tmp_path)
    lines: list[str] = []
    skipped = suite.preflight(settings, lines.append)
    assert lines == [f"  nginx: skipped, {why}"]
    assert skipped == {("nginx", name): f"not available: {why}" for name in nginx.WORKLOADS}


@needs_nginx
def test_nginx_answers_both_paths_with_the_apps_bytes_from_its_master_and_worker(
        tmp_path: Path) -> None:
    log_path = tmp_path / "nginx.log"
    with RunningServer(NGINX, "wsgi", log_path, cpu=None) as server:
        server.wait_ready(timeout=10)
        workdir = server.workdir
        # the suite's own probe passes for the four workloads
        for name in nginx.WORKLOADS:
            assert probe.problem(WORKLOADS_BY_NAME[name], HOST, server.port) is None
        connection = http.client.HTTPConnection(HOST, server.port, timeout=10)
        try:
            for round_no in range(2):  # all on one keep-alive connection
                for path in PATHS:
                    connection.request("GET", path)
                    response = connection.getresponse()
                    answer = (response.status, response.getheader("Content-Type"),
                              response.read())
                    assert answer == asgi_answer(path) == wsgi_answer(path), (path, answer)
                    assert response.getheader("Connection") == "keep-alive"
                    if round_no == 0 and path == PATHS[0]:
                        first_socket = connection.sock
            assert connection.sock is first_socket
        finally:
            connection.close()
        # the tree the suite reads CPU time from: the master, then its one worker
        tree = server.tree()
        assert tree[0] == server.pid and proctree.children(server.pid) == tree[1:]
        assert len(tree) == 2
        assert set(proctree.cpu_seconds(tree)) == set(tree)
    assert not any(proctree.is_alive(pid) for pid in tree)
    assert not workdir.exists()
    assert log_path.read_text().startswith(f"$ {nginx.binary()} -p {workdir}/ -c ")


@needs_nginx
@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_a_short_run_measures_nginx_as_a_labelled_reference(tmp_path: Path) -> None:
    out = tmp_path / "results"
    done = run_module("benchmarks.cli", [
        "--only", "nginx,plaintext,echo-16k", "--rounds", "1", "--duration", "1",
        "--warmup", "1", "--out", str(out)], timeout=60)
    result = written(out)
    assert done.returncode == 0, tail(done)
    by_name = {w["name"]: w for w in result["workloads"]}
    assert by_name["echo-16k"]["rounds"] == {}  # not a workload it answers
    [record] = by_name["plaintext"]["rounds"]["nginx"]
    assert record["ok"] and record["requests"] > 0 and record["cpu_us_per_req"] > 0, record
    assert record["processes"] == 2  # master and worker, both counted
    assert result["labels"] == {"nginx": "nginx (static reference)"}
    [command] = result["commands"]  # one row: no app runs, whatever the kind
    assert command["kind"] == "none (asgi workloads)", command
    assert result["machine"]["versions"]["nginx"] == nginx.version() != "not installed"
    report = (out / "latest.md").read_text()
    # its row in the plaintext table: req/s, and no ratio (no baseline in this run)
    assert re.search(r"^\| nginx \(static reference\) \| [0-9,]+ \| n/a \|", report, re.M), report
    assert "nginx (static reference): not a peer." in report
