"""Gunicorn's statsd settings (`statsd_host`, `statsd_prefix`, `dogstatsd_tags`): our workers
send the datagrams Gunicorn's own workers send for the same requests.

A UDP socket bound in the test is the statsd server. Our worker and Gunicorn's reference
worker (`-k sync` for a WSGI app, `-k asgi` for an ASGI app) serve the same requests; the
datagrams each worker sends for them are compared in order, the request duration by its
shape only.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from gunicorn_process import GunicornProcess, needs_gunicorn_asgi, read_until_close

PREFIX = "gaw.test"
TAGS = "env:test,team:web"
DURATION = re.compile(rf"{re.escape(PREFIX)}\.gunicorn\.request\.duration:(\d+(\.\d+)?)\|ms")
# The arbiter's own gauge comes once per loop, whatever the requests: not compared.
ARBITER_METRICS = ("gunicorn.workers",)


@pytest.fixture
def statsd() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    yield sock
    sock.close()


def receive_until(sock: socket.socket, last: str, timeout: float = 10.0) -> list[str]:
    """Datagrams (the arbiter's gauge left out) up to and including one that starts with
    `last`; bounded in time."""
    got: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data = sock.recv(65536).decode("ascii")
        except TimeoutError:
            break
        if any(f"{PREFIX}.{name}:" in data for name in ARBITER_METRICS):
            continue
        got.append(data)
        if data.startswith(last):
            return got
    raise AssertionError(f"no {last!r} within {timeout} s; got {got}")


def normalised(datagram: str) -> str:
    """A datagram with its duration value replaced by its shape (checked here)."""
    body, _, tags = datagram.partition("|#")
    assert tags == TAGS, datagram  # every datagram carries the dogstatsd tags
    match = DURATION.fullmatch(body)
    if match:
        assert float(match.group(1)) >= 0
        return f"{PREFIX}.gunicorn.request.duration:<ms>|ms"
    return body


def metrics(app: str, worker_class: str, statsd: socket.socket, targets: list[str],
            **settings: object) -> list[str]:
    """What the worker sends to statsd for `targets` (GETs, one connection each; the last
    target must answer 404, which ends the collection)."""
    port = statsd.getsockname()[1]
    server = GunicornProcess(app, worker_class, settings={
        "statsd_host": f"127.0.0.1:{port}", "statsd_prefix": PREFIX,
        "dogstatsd_tags": TAGS, **settings})
    with server:
        # The harness's readiness request was counted: let its datagrams go by first.
        receive_until(statsd, f"{PREFIX}.gunicorn.request.status.")
        for target in targets:
            with server.connect() as s:
                s.sendall(f"GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
                          .encode())
                read_until_close(s)
        got = receive_until(statsd, f"{PREFIX}.gunicorn.request.status.404:")
    return [normalised(d) for d in got]


def expected_request(status: int) -> list[str]:
    return [f"{PREFIX}.gunicorn.request.duration:<ms>|ms",
            f"{PREFIX}.gunicorn.requests:1|c|@1.0",
            f"{PREFIX}.gunicorn.request.status.{status}:1|c|@1.0"]


def test_wsgi_metrics_match_gunicorn_sync(worker_class: str, statsd: socket.socket) -> None:
    targets = ["/plain", "/raise", "/plain?again", "/nothere"]
    ours = metrics("apps.wsgi_apps:app", worker_class, statsd, targets)
    theirs = metrics("apps.wsgi_apps:app", "sync", statsd, targets)
    assert ours == theirs
    assert ours == [*expected_request(200), f"{PREFIX}.gunicorn.log.exception:1|c|@1.0",
                    *expected_request(500), *expected_request(200), *expected_request(404)]


@needs_gunicorn_asgi
def test_asgi_metrics_match_gunicorn_asgi(worker_class: str, statsd: socket.socket,
                                          tmp_path: Path) -> None:
    """Gunicorn's -k asgi counts requests only when an access log is configured (its WSGI
    workers always do, and so do ours): the comparison runs with one."""
    targets = ["/head", "/raise_before", "/status/201", "/status/404"]
    log = str(tmp_path / "access.log")
    ours = metrics("apps.http_behaviour:app", worker_class, statsd, targets, accesslog=log)
    theirs = metrics("apps.http_behaviour:app", "asgi", statsd, targets, accesslog=log)
    assert ours == theirs
    assert metrics("apps.http_behaviour:app", worker_class, statsd, targets) == ours
    assert ours == [*expected_request(200), f"{PREFIX}.gunicorn.log.exception:1|c|@1.0",
                    *expected_request(500), *expected_request(201), *expected_request(404)]


def test_a_stuck_wsgi_request_is_counted(worker_class: str, statsd: socket.socket,
                                         tmp_path: Path) -> None:
    """A WSGI request held in its thread past `timeout` is counted once, as
    `gunicorn.wsgi.stuck_requests`, beside its WARNING line."""
    port = statsd.getsockname()[1]
    release = tmp_path / "release"
    server = GunicornProcess("apps.wsgi_apps:app", worker_class, settings={
        "statsd_host": f"127.0.0.1:{port}", "statsd_prefix": PREFIX, "dogstatsd_tags": TAGS,
        "threads": 1, "timeout": 2})
    with server:
        receive_until(statsd, f"{PREFIX}.gunicorn.request.status.")
        with server.connect() as s:
            s.sendall(f"GET /sleep?s=30&until={release} HTTP/1.1\r\nHost: t\r\n"
                      "Connection: close\r\n\r\n".encode())
            got = receive_until(statsd, f"{PREFIX}.gunicorn.wsgi.stuck_requests:")
            release.touch()
            assert read_until_close(s).startswith(b"HTTP/1.1 200 ")
    stuck = [d for d in got if ".stuck_requests:" in d]
    assert [d.partition("|#")[0] for d in stuck] == [
        f"{PREFIX}.gunicorn.wsgi.stuck_requests:1|c|@1.0"]  # count 1, sampling rate 1
