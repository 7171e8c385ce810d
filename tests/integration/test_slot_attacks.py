"""Slots are never held hostage (issue 19): with default settings and the default
`worker_connections`, 1,000 slow heads, slow bodies or stalled TLS handshakes must not keep a
polite client (a request every 50 ms, each on a fresh connection) from every answer, with p99
under 1 s, nor grow the worker without bound. The attacks and the polite client are in
`tests/slot_attacks.py` (which also runs them full size: `python -m tests.slot_attacks`).
Also: at the cap, a connection whose app is answering is never the one closed, and a slow
but honest upload survives a body attack.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import trustme
from gunicorn_process import GunicornProcess, wait_for, worker_pid
from raw_http import ResponseReader
from slot_attacks import (
    Polite,
    raise_fd_limit,
    sockets,
    start_attacker,
    stop_attacker,
    under_attack,
)

APP = "apps.reliability:app"
CONNECTIONS = 1000  # Gunicorn's default worker_connections, as the issue measured
SECONDS = 6.0  # per attack and worker class: long enough for several cycles of eviction
P99_BOUND = 1.0  # the issue's bound
# The worker's RSS growth allowed per attack: what 1,000 connections cost (stdlib asyncio's
# TLS transport preallocates a 256 KiB read buffer per connection), not more.
RSS_BOUND = {"heads": 64 << 20, "bodies": 64 << 20, "tls": 400 << 20}


@pytest.fixture(scope="module", autouse=True)
def _descriptors() -> None:
    raise_fd_limit(4 * CONNECTIONS + 1000)  # the workers inherit it


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ssl.SSLContext]:
    ca = trustme.CA()
    path = tmp_path_factory.mktemp("slot-certs") / "server.pem"
    ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(path))
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return path, client


def check(outcome: object) -> None:
    print(outcome.line())  # type: ignore[attr-defined]
    assert not outcome.failures, outcome.failures[:5]  # type: ignore[attr-defined]
    assert outcome.p99 < P99_BOUND, outcome.line()  # type: ignore[attr-defined]
    bound = RSS_BOUND[outcome.kind]  # type: ignore[attr-defined]
    assert outcome.rss_growth < bound, outcome.line()  # type: ignore[attr-defined]


@pytest.mark.parametrize("kind", ["heads", "bodies"])
def test_slow_attack_never_holds_the_slots(kind: str,
                                           gunicorn: Callable[..., GunicornProcess]) -> None:
    server = gunicorn(APP)
    check(under_attack(kind, server.host, server.port, worker_pid(server), CONNECTIONS,
                       SECONDS))


def test_stalled_tls_handshakes_never_hold_the_slots(
        worker_class: str, certificate: tuple[Path, ssl.SSLContext]) -> None:
    path, client = certificate
    server = GunicornProcess(APP, worker_class, settings={"certfile": str(path)})
    server.start(probe=False)
    try:
        wait_for(lambda: Polite(server.host, server.port, client).ok(), 20,
                 what="a TLS answer")
        check(under_attack("tls", server.host, server.port, worker_pid(server),
                           CONNECTIONS, SECONDS, client))
    finally:
        server.stop()


def test_at_the_cap_running_requests_are_never_closed_for_a_newcomer(
        gunicorn: Callable[..., GunicornProcess]) -> None:
    """Five requests the app is answering fill worker_connections=5: a sixth client waits
    (nobody may be closed for it) and is answered once one of them finishes."""
    server = gunicorn(APP, settings={"worker_connections": 5})
    held = [server.connect(10.0) for _ in range(5)]
    extra = server.connect(10.0)
    try:
        for i, s in enumerate(held):
            s.sendall(b"GET /r?id=held%d&ms=3000 HTTP/1.1\r\nHost: h\r\n"
                      b"Connection: close\r\n\r\n" % i)
        extra.sendall(b"GET /r?id=extra HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        extra_reader = ResponseReader(extra, 20.0)
        for i, s in enumerate(held):
            resp = ResponseReader(s, 20.0).read_response()
            assert resp.status == 200 and resp.body.startswith(b"held%d " % i), resp
        assert extra_reader.read_response().body.startswith(b"extra ")
    finally:
        extra.close()
        for s in held:
            s.close()


def test_at_the_cap_an_idle_keep_alive_connection_makes_room(
        gunicorn: Callable[..., GunicornProcess]) -> None:
    """Idle keep-alive connections fill worker_connections=5: a sixth client is answered
    without waiting for keepalive (60 s) to run out, and the idle one closed for it has its
    answer whole before the close."""
    server = gunicorn(APP, settings={"worker_connections": 5, "keepalive": 60})
    held = [server.connect(10.0) for _ in range(5)]
    try:
        readers = []
        for i, s in enumerate(held):
            s.sendall(b"GET /r?id=idle%d HTTP/1.1\r\nHost: h\r\n\r\n" % i)
            readers.append(ResponseReader(s, 10.0))
            assert readers[-1].read_response().body.startswith(b"idle%d " % i)
        began = time.monotonic()
        with server.connect(10.0) as extra:
            extra.sendall(b"GET /r?id=extra HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
            assert ResponseReader(extra, 20.0).read_response().body.startswith(b"extra ")
        assert time.monotonic() - began < 30, "the newcomer waited for keepalive"
        # One idle connection made room (its close is on its way, if not here yet); the
        # other four stay open.
        for s in held:
            s.settimeout(0.05)
        closed = wait_for(lambda: [i for i, r in enumerate(readers) if r.at_eof()], 10,
                          what="the idle connection closed for the newcomer")
        assert len(closed) == 1, closed
    finally:
        for s in held:
            s.close()


def test_slow_honest_upload_survives_a_body_attack(
        gunicorn: Callable[..., GunicornProcess]) -> None:
    """512 KiB at 64 KiB/s while 1,000 slow bodies fill the slots, with `min_rate_grace`
    at 1 s so that the attackers' bodies fall below `body_min_rate` within the test: the
    upload is above the rate, so neither the rate rule nor eviction closes it."""
    server = gunicorn(APP, env={"GAW_MIN_RATE_GRACE": "1"})
    pid = worker_pid(server)
    size, rate = 512 * 1024, 64 * 1024
    attacker = start_attacker("bodies", server.host, server.port, CONNECTIONS, 14.0)
    result: list[bytes] = []
    try:
        wait_for(lambda: sockets(pid) >= CONNECTIONS * 0.9, 20, what="the attack in place")
        upload = threading.Thread(target=_upload, args=(server, size, rate, result))
        upload.start()
        upload.join(60)
        assert not upload.is_alive(), "the upload did not end"
    finally:
        stop_attacker(attacker)
    assert result and result[0].startswith(b"honest "), result
    assert result[0].endswith(b" %d" % size), result


def _upload(server: GunicornProcess, size: int, rate: int, result: list[bytes]) -> None:
    with socket.create_connection((server.host, server.port), timeout=30) as s:
        s.sendall(b"POST /r?id=honest HTTP/1.1\r\nHost: h\r\nConnection: close\r\n"
                  b"Content-Length: %d\r\n\r\n" % size)
        piece = rate // 8
        began = time.monotonic()
        for sent in range(0, size, piece):
            s.sendall(b"u" * piece)
            pause = began + (sent + piece) / rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)  # pacing: the client's rate, not synchronisation
        resp = ResponseReader(s, 30).read_response()
        result.append(resp.body if resp.status == 200 else b"status %d" % resp.status)

