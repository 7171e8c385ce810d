"""Hostile WebSocket peers (issue 19): whatever a peer sends, its connection costs the worker
less than one message (`ws_max_size`) and a few MiB, and other clients stay served.

The four attacks, each a raw-socket client writing masked frames over loopback, bounded in
bytes and seconds: a message of a million empty (or one-byte) fragments, messages sent to an
app that never calls `receive`, and pings from a client that never reads the pongs. While
one runs, a second client measures echo round trips on its own WebSocket. Each test starts
its own server, so memory freed by an earlier attack cannot hide this one's growth.
Apps: `tests/apps/ws_apps.py`.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from gunicorn_process import GunicornProcess, rss, wait_for, worker_pid
from raw_http import ResponseReader
from ws_frames import BINARY, CONT, PING, ZERO_MASK, frame, upgrade_request

APP = "apps.ws_apps:app"
MiB = 1024 * 1024
MAX_SIZE = 1 * MiB  # ws_max_size of the server under attack
BOUND = MAX_SIZE + 8 * MiB  # the most one attack may grow the worker by
ATTACK_SECONDS = 6.0  # the longest an attacker sends for
STALLED = 1.0  # seconds without a byte accepted: the worker has stopped reading
P99_BOUND = 1.0  # seconds: other clients' 99th percentile echo round trip


@pytest.fixture
def server(gunicorn: Callable[..., GunicornProcess], worker_class: str) -> GunicornProcess:
    module, name = worker_class.rsplit(".", 1)
    config = (f"from {module} import {name} as _Worker\n"
              f"worker_class = _Worker.configure(ws_max_size={MAX_SIZE}, "
              "ws_ping_interval=0)\n")
    return gunicorn(APP, config_text=config)


def open_websocket(server: GunicornProcess, path: str, rcvbuf: int = 0) -> socket.socket:
    """A raw socket that has completed the handshake on `path` (nothing read past the 101)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.settimeout(10.0)
        sock.connect((server.host, server.port))
        sock.sendall(upgrade_request(path))
        reader = ResponseReader(sock, 10.0)
        assert reader.read_response().status == 101
        assert not reader.buf, "the app sent something first"
    except BaseException:
        sock.close()
        raise
    return sock


def abort(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class EchoProbe:
    """Another client: echo round trips of a small message, timed, until stopped."""

    def __init__(self, server: GunicornProcess) -> None:
        self.sock = open_websocket(server, "/echo")
        self.times: list[float] = []
        self.failure: BaseException | None = None
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _read_exact(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise EOFError("the server closed the probe's connection")
            data += chunk
        return data

    def _run(self) -> None:
        message = frame(BINARY, b"probe")
        try:
            while not self.stopping.is_set():
                began = time.monotonic()
                self.sock.sendall(message)
                head = self._read_exact(2)
                assert head == b"\x82\x05", head  # an unmasked binary frame of 5 bytes
                assert self._read_exact(5) == b"probe"
                self.times.append(time.monotonic() - began)
        except BaseException as exc:  # reported by `stop`
            self.failure = exc

    def __enter__(self) -> EchoProbe:
        self.thread.start()
        wait_for(lambda: self.times or self.failure, 10, what="the probe's first echo")
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.thread.join(15)
        abort(self.sock)

    def p99(self) -> float:
        assert self.failure is None, f"the other client failed: {self.failure!r}"
        assert not self.thread.is_alive(), "the other client's last echo never came"
        times = sorted(self.times)
        return times[min(len(times) - 1, int(len(times) * 0.99))]


def push(sock: socket.socket, data: bytes) -> int:
    """Send `data` as fast as the worker reads it, for at most ATTACK_SECONDS; stop early
    once the worker has accepted nothing for STALLED seconds or has closed the connection.
    Returns the bytes sent."""
    view = memoryview(data)
    sent = 0
    sock.settimeout(0.2)
    now = last = time.monotonic()
    deadline = now + ATTACK_SECONDS
    while sent < len(view) and now < deadline and now - last < STALLED:
        try:
            sent += sock.send(view[sent:sent + MiB])
            last = time.monotonic()
        except TimeoutError:
            pass
        except (BrokenPipeError, ConnectionResetError):
            break
        now = time.monotonic()
    return sent


def settled_growth(pid: int, before: int) -> int:
    """The worker's RSS growth once it has not changed for half a second; fails as soon as
    it passes BOUND."""
    seen = {"value": -1, "since": time.monotonic()}

    def settled() -> bool:
        grown, now = rss(pid) - before, time.monotonic()
        assert grown < BOUND, f"worker RSS grew by {grown / MiB:.1f} MiB (bound " \
                              f"{BOUND / MiB:.0f} MiB)"
        if grown != seen["value"]:
            seen.update(value=grown, since=now)
            return False
        return now - seen["since"] >= 0.5

    wait_for(settled, 20, interval=0.05, what="the worker's RSS settling")
    return seen["value"]


@contextlib.contextmanager
def attack(server: GunicornProcess, path: str, rcvbuf: int = 0
           ) -> Iterator[tuple[socket.socket, EchoProbe]]:
    """An attacker's socket on `path` and a probe client running meanwhile; on the way out,
    the worker's growth and the probe's p99 are checked against their bounds."""
    pid = worker_pid(server)
    with EchoProbe(server) as probe:
        before = rss(pid)
        sock = open_websocket(server, path, rcvbuf)
        try:
            yield sock, probe
            grown = settled_growth(pid, before)
        finally:
            abort(sock)
    p99 = probe.p99()
    print(f"{path}: worker RSS grew by {grown / MiB:.1f} MiB; other client's p99 "
          f"{p99 * 1000:.0f} ms over {len(probe.times)} echoes")
    assert p99 < P99_BOUND, f"other client's p99 was {p99:.2f} s"
    assert server.worker_pids() == [pid]


@pytest.mark.parametrize("size", [0, 1], ids=["empty", "one-byte"])
def test_a_million_fragments_cost_no_more_than_one_message(
        server: GunicornProcess, size: int) -> None:
    fragments = 1_000_000
    first = frame(BINARY, b"f" * size, fin=False, mask=ZERO_MASK)
    data = first + frame(CONT, b"f" * size, fin=False, mask=ZERO_MASK) * fragments
    with attack(server, "/echo") as (sock, _):
        sent = push(sock, data)
    print(f"{size}-byte fragments: {sent} of {len(data)} bytes sent")


def test_messages_an_app_never_receives_cost_a_bounded_queue(
        server: GunicornProcess, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    message = frame(BINARY, b"\x5a" * MAX_SIZE, mask=ZERO_MASK)
    data = message * 40  # 40 MiB for an app that reads nothing
    try:
        with attack(server, f"/deaf?gate={gate}") as (sock, _):
            sent = push(sock, data)
    finally:
        gate.touch()
    print(f"messages to a deaf app: {sent / MiB:.1f} of {len(data) / MiB:.0f} MiB sent")
    assert sent < len(data), "the worker read every message an app never asked for"


def test_pings_from_a_client_that_never_reads_the_pongs_are_bounded(
        server: GunicornProcess) -> None:
    pings = 200_000  # 26 MB of pings, 25 MB of pongs
    data = frame(PING, b"p" * 125, mask=ZERO_MASK) * pings
    with attack(server, "/echo", rcvbuf=4096) as (sock, _):
        sent = push(sock, data)
    print(f"pings: {sent / MiB:.1f} of {len(data) / MiB:.0f} MiB sent")
    assert sent < len(data), "the worker read every ping while its pongs piled up"
