"""Zero loss under load across process events: SIGHUP, TTIN/TTOU, max_requests, SIGTERM.

Client threads keep a steady load of keep-alive requests (some with bodies, some held a few
ms by the app) and, for ASGI, open WebSockets echoing messages, while the test sends the
arbiter SIGHUP three times, raises the worker count with TTIN and lowers it with TTOU, lets
`max_requests` recycle workers, and finally sends SIGTERM. Every request carries an id the
app notes the moment it starts it (`tests/apps/reliability.py`). Each request sent ends as:

- answered: a complete response whose body names the request's id;
- closed unread: the connection closed before any byte of the response, and the app never
  started it (a keep-alive connection closed under a request the server never read, or a
  client in the backlog when the arbiter stopped): a client may safely retry it;
- lost: the app started it but no complete response came, a response cut short, wrong, or
  none within the timeout. The test fails on any.

Connections refused (after SIGTERM) are counted apart. The figures are printed and recorded
as the test's `figures` property.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest
from gunicorn_process import GunicornProcess, wait_for
from raw_http import ResponseReader
from websockets.exceptions import ConnectionClosed, InvalidMessage
from websockets.sync.client import connect as ws_connect

HTTP_CLIENTS = 6
WS_CLIENTS = 2
RESPONSE_TIMEOUT = 15.0
# Settings that make every kind of process event happen within a few seconds of load.
SETTINGS: dict[str, object] = {
    "max_requests": 300,
    "max_requests_jitter": 50,
    "graceful_timeout": 10,
    "keepalive": 5,
    "threads": 4,
}


class CountingReader(ResponseReader):
    """A response reader that counts the bytes it has received on its connection."""

    def __init__(self, sock: socket.socket, timeout: float) -> None:
        super().__init__(sock, timeout)
        self.received = 0

    def _fill(self) -> bool:
        before = len(self.buf)
        filled = super()._fill()
        self.received += len(self.buf) - before
        return filled


@dataclass
class Tally:
    """What happened to the requests and WebSocket messages of one or more clients."""

    sent: int = 0
    answered: int = 0
    refused: int = 0
    unanswered: list[str] = field(default_factory=list)  # closed before any response byte
    failures: list[str] = field(default_factory=list)  # cut, wrong or missing responses
    ws_sessions: int = 0
    ws_sent: int = 0
    ws_echoed: int = 0
    ws_clean_closes: int = 0
    ws_refused: int = 0
    ws_failures: list[str] = field(default_factory=list)

    def merge(self, other: Tally) -> None:
        for name, value in asdict(other).items():
            setattr(self, name, getattr(self, name) + value)


def request_bytes(request_id: str, seq: int) -> tuple[bytes, int]:
    """A keep-alive request to /r; every third one has a body, every other one waits."""
    body = b"b" * (seq % 3 * 700)
    head = (f"POST /r?id={request_id}&ms={seq % 4 * 5} HTTP/1.1\r\nHost: load\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode() + body, len(body)


def http_client(server: GunicornProcess, number: int, stop: threading.Event,
                tally: Tally) -> None:
    sock: socket.socket | None = None
    reader: CountingReader | None = None
    seq = 0
    try:
        while not stop.is_set():
            if sock is None or reader is None:
                try:
                    sock = socket.create_connection((server.host, server.port),
                                                    timeout=RESPONSE_TIMEOUT)
                except ConnectionRefusedError:
                    tally.refused += 1
                    stop.wait(0.05)  # back off: nothing listens (the arbiter stopped)
                    continue
                reader = CountingReader(sock, RESPONSE_TIMEOUT)
            seq += 1
            request_id = f"{number}-{seq}"
            data, length = request_bytes(request_id, seq)
            tally.sent += 1
            before = reader.received
            try:
                sock.sendall(data)
                resp = reader.read_response()
            except (EOFError, ConnectionError, TimeoutError) as exc:
                got = reader.received - before
                if got == 0 and not isinstance(exc, TimeoutError):
                    tally.unanswered.append(request_id)
                else:
                    tally.failures.append(f"{request_id}: {exc!r} after {got} response bytes")
                sock.close()
                sock = reader = None
                continue
            expected = b"%s " % request_id.encode()
            if (resp.status != 200 or not resp.body.startswith(expected)
                    or not resp.body.endswith(b" %d" % length)):
                tally.failures.append(f"{request_id}: wrong answer {resp.status} {resp.body!r}")
            else:
                tally.answered += 1
            if (resp.header(b"connection") or b"").lower() == b"close":
                sock.close()
                sock = reader = None
    finally:
        if sock is not None:
            sock.close()


def ws_client(server: GunicornProcess, stop: threading.Event, tally: Tally) -> None:
    """Echoes a message every few ms; a session may only end with a 1000 or 1001 close."""
    url = f"ws://{server.host}:{server.port}/ws"
    while not stop.is_set():
        try:
            ws = ws_connect(url, open_timeout=RESPONSE_TIMEOUT, close_timeout=5,
                            ping_interval=None)
        except (OSError, InvalidMessage, TimeoutError, ConnectionClosed):
            # Refused, or reset in the backlog as the arbiter stopped: no session began.
            tally.ws_refused += 1
            stop.wait(0.05)
            continue
        tally.ws_sessions += 1
        with ws:
            n = 0
            try:
                while not stop.is_set():
                    n += 1
                    text = f"message {n}"
                    tally.ws_sent += 1
                    ws.send(text)
                    echo = ws.recv(timeout=RESPONSE_TIMEOUT)
                    if echo != text:
                        tally.ws_failures.append(f"ws: sent {text!r}, got {echo!r}")
                        return
                    tally.ws_echoed += 1
                    stop.wait(0.01)  # pacing: a chatty client, not a flood
            except ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd is not None else None
                if code in (1000, 1001):
                    tally.ws_clean_closes += 1
                else:
                    tally.ws_failures.append(f"ws: session ended with {code} ({exc!r})")
            except TimeoutError:
                tally.ws_failures.append(f"ws: no echo of message {n} in {RESPONSE_TIMEOUT} s")


class Load:
    """The client threads and their tallies."""

    def __init__(self, server: GunicornProcess, websockets: bool) -> None:
        self.stop = threading.Event()
        self.tallies = [Tally() for _ in range(HTTP_CLIENTS + (WS_CLIENTS if websockets else 0))]
        self.threads = [threading.Thread(target=http_client, args=(server, i, self.stop, t))
                        for i, t in enumerate(self.tallies[:HTTP_CLIENTS])]
        self.threads += [threading.Thread(target=ws_client, args=(server, self.stop, t))
                         for t in self.tallies[HTTP_CLIENTS:]]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def finish(self) -> Tally:
        self.stop.set()
        for thread in self.threads:
            thread.join(RESPONSE_TIMEOUT + 10)
        assert not any(t.is_alive() for t in self.threads), "a client thread hangs"
        total = Tally()
        for tally in self.tallies:
            total.merge(tally)
        return total

    def answered(self) -> int:
        return sum(t.answered for t in self.tallies)

    def progress(self, requests: int) -> None:
        """Wait until `requests` more requests have been answered (the load goes on)."""
        target = self.answered() + requests
        wait_for(lambda: self.answered() >= target, timeout=30, interval=0.05,
                 what=f"{requests} more answered requests")


def signal_and_settle(server: GunicornProcess, sig: signal.Signals, workers: int,
                      replace: bool) -> None:
    """Send the arbiter `sig`; wait for `workers` live workers (none of the old ones if
    `replace`)."""
    assert server.proc is not None
    old = set(server.worker_pids())
    os.kill(server.proc.pid, sig)

    def settled() -> bool:
        pids = set(server.worker_pids())
        return len(pids) == workers and not (replace and pids & old)
    wait_for(settled, timeout=30, interval=0.05, what=f"{workers} workers after {sig.name}")


@pytest.mark.parametrize("interface", ["asgi", "wsgi"])
def test_no_request_lost_across_process_events(
        interface: str, gunicorn: Callable[..., GunicornProcess], tmp_path: Path,
        record_property: Callable[[str, object], None]) -> None:
    started_file = tmp_path / "started"
    app = "apps.reliability:app" if interface == "asgi" else "apps.reliability:wsgi_app"
    server = gunicorn(app, workers=2, settings=SETTINGS,
                      env={"GAW_TEST_STARTED": str(started_file)})
    assert server.proc is not None
    load = Load(server, websockets=interface == "asgi")
    load.start()
    try:
        load.progress(200)
        signal_and_settle(server, signal.SIGHUP, 2, replace=True)
        load.progress(100)
        signal_and_settle(server, signal.SIGTTIN, 3, replace=False)
        signal_and_settle(server, signal.SIGTTIN, 4, replace=False)
        load.progress(100)
        signal_and_settle(server, signal.SIGTTOU, 3, replace=False)
        load.progress(100)
        # A reload goes back to the configured number of workers.
        signal_and_settle(server, signal.SIGHUP, 2, replace=True)
        load.progress(100)
        signal_and_settle(server, signal.SIGHUP, 2, replace=True)
        wait_for(lambda: "Autorestarting worker" in server.logs(), timeout=30, interval=0.1,
                 what="a worker recycled by max_requests")
        load.progress(100)
        os.kill(server.proc.pid, signal.SIGTERM)
        code = server.proc.wait(30)
    finally:
        tally = load.finish()
    started = set(started_file.read_text().split())
    lost = [f"{rid}: started by the app, connection closed without a response"
            for rid in tally.unanswered if rid in started]
    figures = {
        "interface": interface, "sent": tally.sent, "answered": tally.answered,
        "closed_unread": len(tally.unanswered) - len(lost), "lost": len(lost) + len(tally.failures),
        "refused_connections": tally.refused,
        "recycled_by_max_requests": server.logs().count("Autorestarting worker"),
        "ws_sessions": tally.ws_sessions, "ws_echoed": tally.ws_echoed,
        "ws_clean_closes": tally.ws_clean_closes,
    }
    print("reliability figures:", json.dumps(figures))
    record_property("figures", json.dumps(figures))
    assert code == 0, server.logs()
    assert lost + tally.failures + tally.ws_failures == [], figures
    assert tally.answered >= 700, figures
    assert len(started) >= tally.answered, "the app did not note every request it served"
    assert tally.sent == tally.answered + len(tally.unanswered) + len(tally.failures)
    if interface == "asgi":
        assert tally.ws_echoed >= 20 and tally.ws_clean_closes >= 1, figures
    assert problems(server.logs()) == []


def problems(logs: str) -> list[str]:
    """ERROR and CRITICAL lines, and each traceback whole."""
    found: list[str] = []
    lines = logs.splitlines()
    for i, line in enumerate(lines):
        if " [ERROR] " in line or " [CRITICAL] " in line:
            found.append(line)
        elif line.startswith("Traceback") or line.startswith("Exception ignored"):
            end = i + 1
            while end < len(lines) and lines[end][:1] in (" ", "\t"):
                end += 1
            found.append("\n".join(lines[i:end + 1]))
    return found


def test_websocket_accepted_while_draining_is_closed_cleanly(
        gunicorn: Callable[..., GunicornProcess], tmp_path: Path) -> None:
    """A WebSocket the app accepts after its worker began to drain still gets a 1001 close,
    not an abort at graceful_timeout (found by the load test)."""
    markers = tmp_path / "markers"
    server = gunicorn("apps.reliability:app", settings={"graceful_timeout": 3},
                      env={"GAW_TEST_MARKERS": str(markers)})
    opened: list[Any] = []
    url = f"ws://{server.host}:{server.port}/ws?accept_ms=1000"
    opener = threading.Thread(target=lambda: opened.append(
        ws_connect(url, open_timeout=RESPONSE_TIMEOUT, ping_interval=None)))
    opener.start()
    line = wait_for(lambda: markers.exists() and markers.read_text().strip(), timeout=10,
                    what="the app holding the handshake")
    os.kill(int(str(line).split()[-1]), signal.SIGTERM)  # the worker drains from now on
    opener.join(RESPONSE_TIMEOUT + 5)
    assert opened, "the handshake did not complete"
    with opened[0] as ws, pytest.raises(ConnectionClosed) as closed:
        ws.recv(timeout=RESPONSE_TIMEOUT)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001, closed.value
