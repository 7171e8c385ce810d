"""Hostile clients: slowloris heads and slow bodies, connection floods, clients that never read,
pipelining floods, oversized bodies. Each must cost the worker a bounded amount of time,
memory and descriptors, and never stop it from serving others. Apps:
`tests/apps/reliability.py`.
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from gunicorn_process import GunicornProcess, error_log, rss, wait_for, worker_pid
from raw_http import ResponseReader
from slot_attacks import sockets
from soak import wait_until_steady

ASGI_APP = "apps.reliability:app"
WSGI_APP = "apps.reliability:wsgi_app"
APPS = {"asgi": ASGI_APP, "wsgi": WSGI_APP}
MiB = 1024 * 1024
HEADER_TIMEOUT = 2  # seconds, through GAW_HEADER_TIMEOUT
CUT_WITHIN = 30.0  # generous: the tick that enforces the timeout runs once a second


def connect(server: GunicornProcess, timeout: float = 10.0, rcvbuf: int = 0) -> socket.socket:
    """A client socket (a small receive buffer if `rcvbuf`); closed if it fails to connect."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.settimeout(timeout)
        s.connect((server.host, server.port))
    except OSError:
        s.close()
        raise
    return s


def reset(s: socket.socket) -> None:
    """Close with an RST, as a client that vanishes does."""
    with contextlib.suppress(OSError):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def get(server: GunicornProcess, target: str, timeout: float = 10.0) -> bytes:
    """The body of a 200 answer to GET `target` on a fresh connection."""
    with connect(server, timeout) as s:
        s.sendall(b"GET %s HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n" % target.encode())
        resp = ResponseReader(s, timeout).read_response()
    assert resp.status == 200, resp
    return resp.body


def closed_by_peer(s: socket.socket) -> bool:
    """Whether the server has closed (or reset) this connection; never blocks."""
    ready, _, _ = select.select([s], [], [], 0)
    if not ready:
        return False
    try:
        return s.recv(65536, socket.MSG_PEEK) == b""
    except (ConnectionError, BlockingIOError):
        return True


def bytes_written(pid: int) -> int:
    """Bytes the process has passed to write-like system calls (sockets included)."""
    with open(f"/proc/{pid}/io") as f:
        for line in f:
            if line.startswith("wchar:"):
                return int(line.split()[1])
    raise AssertionError(f"no wchar for {pid}")


def wait_until_writes_stall(pid: int) -> None:
    """Wait until the worker has written nothing for a second: every client is stalled."""
    wait_until_steady(lambda: bytes_written(pid), 1.0, 60, "the worker's writes stalling")


def warmed(gunicorn: Callable[..., GunicornProcess], app: str, targets: list[str],
           **kwargs: object) -> tuple[GunicornProcess, int, int]:
    """A server that has answered `targets` once (its own first allocations are not what a
    test measures): the server, its worker's pid and that worker's RSS now."""
    server = gunicorn(app, **kwargs)
    pid = worker_pid(server)
    for target in targets:
        get(server, target)
    return server, pid, rss(pid)


# -- slow heads and bodies -----------------------------------------------------------------------
def drip(server: GunicornProcess, start: bytes, clients: int, endless: bytes
         ) -> tuple[float, int]:
    """`clients` connections send `start`, then one byte of `endless` after another, every
    0.1 s, while a well-behaved client is served in between. Returns the seconds until the
    server had closed them all and how many normal requests were answered meanwhile; fails
    if it has not closed them within CUT_WITHIN seconds."""
    slow = [connect(server) for _ in range(clients)]
    answered = 0
    began = time.monotonic()
    try:
        for s in slow:
            s.sendall(start)
        open_ = list(slow)
        step = 0
        while open_ and time.monotonic() - began < CUT_WITHIN:
            for s in list(open_):
                try:
                    if closed_by_peer(s):
                        open_.remove(s)
                    else:
                        s.sendall(endless[step % len(endless):][:1])
                except (BrokenPipeError, ConnectionError):
                    open_.remove(s)
            step += 1
            if step % 5 == 0:
                assert get(server, "/r?id=polite", timeout=10).startswith(b"polite ")
                answered += 1
            time.sleep(0.1)  # pacing: a slow client's bytes, not synchronisation
        assert not open_, f"{len(open_)} of {clients} slow clients still open after " \
                          f"{CUT_WITHIN} s"
        return time.monotonic() - began, answered
    finally:
        for s in slow:
            s.close()


@pytest.fixture
def timeouts_server(gunicorn: Callable[..., GunicornProcess]) -> GunicornProcess:
    return gunicorn(ASGI_APP, settings={"keepalive": 60},
                    env={"GAW_HEADER_TIMEOUT": str(HEADER_TIMEOUT)})


def test_slowloris_heads_are_cut_off_and_others_are_served(
        timeouts_server: GunicornProcess) -> None:
    seconds, answered = drip(timeouts_server, b"GET /r?id=slow HTTP/1.1\r\nHost: h\r\n", 50,
                             b"X-Drip: " + b"a" * 1000)
    print(f"slowloris: 50 connections cut after {seconds:.1f} s; {answered} others served")
    assert answered >= 1


def test_slow_request_bodies_are_cut_off_and_others_are_served(
        gunicorn: Callable[..., GunicornProcess], worker_class: str) -> None:
    server = gunicorn(ASGI_APP, settings={"keepalive": 60},
                      env={"GAW_HEADER_TIMEOUT": str(HEADER_TIMEOUT),
                           "GAW_BODY_TIMEOUT": str(HEADER_TIMEOUT)})
    head = b"POST /r?id=slow HTTP/1.1\r\nHost: h\r\nContent-Length: 100000\r\n\r\n"
    drip(server, head, 20, b"b" * 1000)


# -- connection floods ---------------------------------------------------------------------------
def test_connection_flood_beyond_worker_connections_waits_in_the_backlog(
        gunicorn: Callable[..., GunicornProcess]) -> None:
    cap, flood = 50, 300
    server = gunicorn(ASGI_APP, settings={"worker_connections": cap, "keepalive": 60})
    pid = worker_pid(server)
    idle_sockets = sockets(pid)
    mark = len(error_log(server))
    clients = [connect(server, timeout=30) for _ in range(flood)]
    most = 0
    try:
        for i, s in enumerate(clients):
            s.sendall(b"GET /r?id=%d HTTP/1.1\r\nHost: h\r\n\r\n" % i)
        # In accept order, each answered client leaves and lets the next one in.
        for i, s in enumerate(clients):
            most = max(most, sockets(pid) - idle_sockets)
            resp = ResponseReader(s, 30).read_response()
            assert resp.status == 200 and resp.body.startswith(b"%d " % i)
            s.close()
    finally:
        for s in clients:
            s.close()
    print(f"connection flood: {flood} clients, at most {most} connections open at once")
    assert most <= cap + 1, f"{most} connections open with worker_connections = {cap}"
    assert server.worker_pids() == [pid]
    assert " [ERROR] " not in error_log(server)[mark:]


def test_flood_beyond_the_descriptor_limit_does_not_spin(
        gunicorn: Callable[..., GunicornProcess]) -> None:
    limit = """
import resource

def post_fork(server, worker):
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
"""
    server = gunicorn(ASGI_APP, config_text=limit, settings={"keepalive": 60})
    pid = worker_pid(server)
    clients = [connect(server, timeout=30) for _ in range(150)]
    try:
        wait_for(lambda: "accept() failed" in error_log(server), timeout=20,
                 what="the worker out of descriptors")
        mark = len(error_log(server))
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:  # an observation window, nothing to wait for
            assert server.worker_pids() == [pid]
            time.sleep(0.25)
        warnings = error_log(server)[mark:].count("accept() failed")
    finally:
        for s in clients:
            reset(s)
    assert get(server, "/pid") == str(pid).encode()
    assert warnings <= 20, f"{warnings} 'accept() failed' lines in 2 s"


# -- clients that do not read ---------------------------------------------------------------------
@pytest.mark.parametrize("interface", ["asgi", "wsgi"])
def test_clients_that_never_read_large_responses_cost_bounded_memory(
        interface: str, gunicorn: Callable[..., GunicornProcess]) -> None:
    clients, size = 200, 8 * MiB
    server, pid, before = warmed(gunicorn, APPS[interface], ["/big?size=100000", "/r?id=0"] * 20,
                                 settings={"threads": 4})
    stalled = [connect(server, timeout=30, rcvbuf=4096) for _ in range(clients)]
    try:
        for s in stalled:
            s.sendall(b"GET /big?size=%d HTTP/1.1\r\nHost: h\r\n\r\n" % size)
        wait_until_writes_stall(pid)
        growth = rss(pid) - before
    finally:
        for s in stalled:
            reset(s)
    print(f"{clients} clients not reading {size // MiB} MiB responses ({interface}): worker RSS "
          f"grew by {growth / MiB:.1f} MiB")
    assert growth < 64 * MiB, f"RSS grew by {growth / MiB:.0f} MiB"
    assert get(server, "/pid") == str(pid).encode()


def test_pipelining_flood_from_a_client_that_never_reads_is_bounded(
        gunicorn: Callable[..., GunicornProcess]) -> None:
    server, pid, before = warmed(gunicorn, ASGI_APP, ["/big?size=65536"])
    requests = 4000  # 4000 x 64 KiB = 250 MiB of responses if the worker answers them all
    s = connect(server, timeout=2, rcvbuf=4096)
    sent = 0
    try:
        batch = b"GET /big?size=65536 HTTP/1.1\r\nHost: h\r\n\r\n" * 100
        with contextlib.suppress(TimeoutError):  # the worker stopped reading: as it should
            while sent < requests:
                s.sendall(batch)
                sent += 100
        wait_until_writes_stall(pid)
        growth = rss(pid) - before
    finally:
        reset(s)
    print(f"pipelining flood: {sent} requests sent, worker RSS grew by {growth / MiB:.1f} MiB")
    assert growth < 64 * MiB, f"RSS grew by {growth / MiB:.0f} MiB after {sent} requests"


def test_pipelining_flood_is_answered_in_order_with_bounded_memory(
        gunicorn: Callable[..., GunicornProcess]) -> None:
    server, pid, before = warmed(gunicorn, ASGI_APP, ["/r?id=warm"])
    requests = 5000
    with connect(server, timeout=30) as s:
        data = b"".join(b"GET /r?id=%d HTTP/1.1\r\nHost: h\r\n\r\n" % i for i in range(requests))
        sender = threading.Thread(target=s.sendall, args=(data,))
        sender.start()
        try:
            reader = ResponseReader(s, 30)
            peak = 0
            for i in range(requests):
                resp = reader.read_response()
                assert resp.status == 200 and resp.body.startswith(b"%d " % i), (i, resp)
                if i % 500 == 0:
                    peak = max(peak, rss(pid) - before)
        finally:
            sender.join(30)
    print(f"pipelining flood: {requests} requests answered in order, RSS peak growth "
          f"{peak / MiB:.1f} MiB")
    assert peak < 32 * MiB


# -- oversized bodies ------------------------------------------------------------------------------
@pytest.fixture
def started_file(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "started"


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_body_over_the_maximum_is_refused_with_413(
        gunicorn: Callable[..., GunicornProcess], started_file: Path, framing: str) -> None:
    server = gunicorn(ASGI_APP, env={"GAW_MAX_BODY_SIZE": "1024",
                                     "GAW_TEST_STARTED": str(started_file)})
    body = b"b" * 4096
    if framing == "chunked":
        head = b"Transfer-Encoding: chunked"
        body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    else:
        head = b"Content-Length: %d" % len(body)
    with connect(server) as s:
        s.sendall(b"POST /r?id=big HTTP/1.1\r\nHost: h\r\n%s\r\n\r\n%s" % (head, body))
        reader = ResponseReader(s, 10)
        assert reader.read_response().status == 413
        assert reader.at_eof()
    assert get(server, "/r?id=small").startswith(b"small ")
    assert "big" not in started_file.read_text().split()
