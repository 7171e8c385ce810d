"""Timers are minimums: a connection stays open at least its configured time, a blocked worker
lives at least `timeout`, and the coarse tick may only add to either (never take away).

Each test measures both bounds: not before the configured time (less a few milliseconds for
the moment the client reads a response after the server finished it), and within the
configured time plus the tick and a generous slack.
"""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from gunicorn_process import GunicornProcess, wait_for
from raw_http import ResponseReader

APP = "apps.reliability:app"
# The server's tick with the default `timeout` (30): once a second.
TICK = 1.0
# What the client's clock may run behind the server's start of a timer: the time between the
# server sending a response's last byte and the client reading it.
EARLY = 0.05
# Scheduling noise on a shared machine, added to every upper bound.
SLACK = 1.5

Gunicorn = Callable[..., GunicornProcess]


def get(target: str, *headers: str) -> bytes:
    lines = [f"GET {target} HTTP/1.1", "Host: timers", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def whole_response(buf: bytes) -> bool:
    """Whether `buf` holds a whole response with a content-length (all this app sends)."""
    head, sep, body = buf.partition(b"\r\n\r\n")
    if not sep:
        return False
    assert head.startswith(b"HTTP/1.1 200 "), head
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    assert len(body) <= length, "bytes after the response"
    return len(body) == length


def watch(socks: dict[socket.socket, float], within: float, answered: bool = False,
          requests: dict[socket.socket, tuple[float, bytes]] | None = None
          ) -> dict[socket.socket, float]:
    """Seconds from each socket's start until the server closed it (EOF or reset), waiting
    at most `within` seconds; a socket still open is missing from the answer.

    A socket's start is given, or (`answered=False`) the moment its one response has been
    read whole: all are watched at once, so each response and close is seen as it happens.
    `requests` are sent at their time (time.monotonic()) from within the same loop.
    """
    started = dict(socks) if answered else {}
    to_send = sorted(((at, id(s), s, data) for s, (at, data) in (requests or {}).items()),
                     key=lambda r: r[0])
    buffers = {s: b"" for s in socks}
    closed: dict[socket.socket, float] = {}
    deadline = time.monotonic() + within
    while len(closed) < len(socks) and time.monotonic() < deadline:
        while to_send and to_send[0][0] <= time.monotonic():
            _, _, sock, data = to_send.pop(0)
            sock.sendall(data)
        waiting = [s for s in socks if s not in closed]
        wake = min(deadline, to_send[0][0]) if to_send else deadline
        readable, _, _ = select.select(waiting, [], [], max(0.0, wake - time.monotonic()))
        now = time.monotonic()
        for s in readable:
            try:
                data = s.recv(65536)
            except ConnectionResetError:
                data = b""
            if s in started:
                assert data == b"", f"unexpected bytes on an idle connection: {data!r}"
                closed[s] = now - started[s]
            else:
                assert data, f"closed before the response was whole: {buffers[s]!r}"
                buffers[s] += data
                if whole_response(buffers[s]):
                    started[s] = now
    return closed


def assert_within(elapsed: list[float], low: float, high: float, what: str) -> None:
    assert all(low <= e <= high for e in elapsed), (
        f"{what}: took {', '.join(f'{e:.3f}' for e in elapsed)} s; "
        f"must be in [{low:.2f}, {high:.2f}]")


def idle_times(server: GunicornProcess, targets: list[str], spread: float, limit: float
               ) -> list[float]:
    """Each target on its own connection, sent `spread` seconds apart (so that together they
    see every phase of the server's tick): seconds from each response until the server
    closed that connection."""
    socks: dict[socket.socket, float] = {}
    try:
        first = time.monotonic() + 0.1
        requests = {}
        for i, target in enumerate(targets):
            s = server.connect(10.0)
            socks[s] = 0.0
            requests[s] = (first + i * spread, get(target))
        closed = watch(socks, 10.0 + limit + TICK + SLACK, requests=requests)
        assert len(closed) == len(socks), "an idle connection was never closed"
        return [closed[s] for s in socks]
    finally:
        for s in socks:
            s.close()


# -- keepalive ------------------------------------------------------------------------------
@pytest.mark.parametrize("keepalive", [1, 2])
def test_idle_connection_stays_open_its_whole_keepalive(
        gunicorn: Gunicorn, keepalive: int) -> None:
    server = gunicorn(APP, settings={"keepalive": keepalive})
    elapsed = idle_times(server, ["/pid"] * 4, spread=TICK / 4, limit=keepalive)
    assert_within(elapsed, keepalive - EARLY, keepalive + TICK + SLACK, f"keepalive={keepalive}")


def test_keepalive_counts_from_the_end_of_a_response_longer_than_it(gunicorn: Gunicorn) -> None:
    """The idle clock restarts when a response completes: a request that ran 1.5 s on a
    connection with keepalive=1 is followed by a whole second of keep-alive."""
    server = gunicorn(APP, settings={"keepalive": 1})
    elapsed = idle_times(server, [f"/r?id={i}&ms=1500" for i in range(3)], spread=TICK / 3,
                         limit=1)
    assert_within(elapsed, 1 - EARLY, 1 + TICK + SLACK, "after a 1.5 s response, keepalive=1")


def test_keepalive_counts_from_when_the_response_left_the_write_buffer(
        gunicorn: Gunicorn) -> None:
    """A client that reads three pipelined 1 MiB responses slowly (the last one over about
    three seconds, much longer than keepalive=1) and then sends a fourth request on the same
    connection is answered: the connection was not idle while its responses were leaving."""
    server = gunicorn(APP, settings={"keepalive": 1})
    size = 1 << 20
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # A small receive window, so the responses wait in the server's write buffer, not in
    # the kernel's buffers on the client's side.
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
    s.settimeout(10.0)
    with s:
        s.connect((server.host, server.port))
        big = get(f"/big?size={size}&piece={size}")  # one body message: 1 MiB written at once
        s.sendall(big * 3)
        received = 0
        started = time.monotonic()
        while received < 3 * size:
            data = s.recv(16 * 1024)
            assert data, f"closed after {received} of {3 * size} bytes"
            received += len(data)
            if received > 2 * size:  # the last response: about 3 s at 16 KiB per 50 ms
                time.sleep(0.05)  # the slow reader is the scenario, not a synchronisation
        slow_read = time.monotonic() - started
        s.sendall(get("/pid"))
        resp = ResponseReader(s, 10.0).read_response()
    assert resp.status == 200, resp
    assert slow_read > 1 + TICK, f"read in {slow_read:.2f} s: not slower than keepalive + tick"


def test_first_request_and_proxy_header_wait_header_timeout_not_keepalive(
        gunicorn: Gunicorn) -> None:
    """With keepalive=0, a new connection's first request (and a PROXY header before it) may
    come after a tick: it is governed by header_timeout, which closes a silent connection
    after its own time."""
    header_timeout = 2.5
    server = gunicorn(APP, settings={"keepalive": 0, "proxy_protocol": True,
                                     "proxy_allow_ips": "127.0.0.1"},
                      env={"GAW_HEADER_TIMEOUT": str(header_timeout)})
    late = [server.connect(10.0) for _ in range(2)]
    silent = server.connect(10.0)
    opened = time.monotonic()
    try:
        time.sleep(TICK + 0.2)  # the client's delay before its first request: past a tick
        late[0].sendall(b"PROXY TCP4 198.51.100.7 127.0.0.1 5555 80\r\n" + get("/pid"))
        late[1].sendall(get("/pid"))
        for s in late:
            resp = ResponseReader(s, 10.0).read_response()
            assert resp.status == 200, resp
            assert resp.header(b"connection") == b"close"  # keepalive=0: one request each
        closed = watch({silent: opened}, header_timeout + TICK + SLACK, answered=True)
        assert silent in closed, "a silent connection was never closed"
        assert_within([closed[silent]], header_timeout - EARLY, header_timeout + TICK + SLACK,
                      f"silent connection, header_timeout={header_timeout}")
    finally:
        for s in [*late, silent]:
            s.close()


# -- timeout ----------------------------------------------------------------------------------
def test_blocked_loop_is_killed_no_earlier_than_timeout(
        gunicorn: Gunicorn, tmp_path: Path) -> None:
    """An app that blocks the loop with timeout=2 is killed (worker_abort runs) no earlier
    than 2 s after the block started, and within the heartbeat interval (1 s), the arbiter's
    check period (1 s) and a slack later. Two workers blocked at independent phases."""
    timeout = 2
    markers = tmp_path / "markers"
    abort_hook = (
        "import os, time\n"
        "def worker_abort(worker):\n"
        f"    with open({str(markers)!r}, 'a') as f:\n"
        "        f.write(f'abort {time.monotonic():.6f} {os.getpid()}\\n')\n")
    server = gunicorn(APP, workers=2, settings={"timeout": timeout}, config_text=abort_hook,
                      env={"GAW_TEST_MARKERS": str(markers)})

    def notes() -> dict[tuple[str, int], float]:
        lines = markers.read_text().split("\n") if markers.exists() else []
        return {(kind, int(pid)): float(at)
                for kind, at, pid in (line.split() for line in lines if line)}

    blockers: list[socket.socket] = []
    try:
        for _ in range(2):
            before = len(notes())
            s = server.connect(30.0)
            blockers.append(s)
            s.sendall(get("/block?s=60"))
            wait_for(lambda b=before: len(notes()) > b, timeout=10, what="the app blocking")
            time.sleep(0.4)  # the second block at another phase of the heartbeat
        found = wait_for(lambda: len(notes()) >= 4 and notes(), timeout=20,
                         what="both blocked workers aborted")
        assert isinstance(found, dict)
    finally:
        for s in blockers:
            s.close()
    blocks = {pid: at for (kind, pid), at in found.items() if kind == "block"}
    aborts = {pid: at for (kind, pid), at in found.items() if kind == "abort"}
    assert blocks.keys() == aborts.keys() and len(blocks) == 2, found
    lived = [aborts[pid] - blocks[pid] for pid in blocks]
    assert_within(lived, timeout, timeout + 1 + 1 + SLACK, f"blocked loop, timeout={timeout}")
