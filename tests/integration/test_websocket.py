"""WebSockets as clients see them: the upgrade, the ASGI WebSocket messages, the protocol's
checks (UTF-8, sizes, protocol errors, compression, keep-alive pings), flow control in both
directions and the session's life in the worker (shutdown, worker_connections, access log).

Clients are the `websockets` asyncio client and raw sockets (for handshakes and frames that
no well-behaved client sends). Apps: `tests/apps/ws_apps.py`; what an app saw is read from
the JSON lines it appends to a per-test `record` file.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import signal
import socket
import struct
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from conftest import WORKER_CLASSES
from gunicorn_process import GunicornProcess, rss, serving, wait_for, worker_pid
from raw_http import RawResponse, ResponseReader
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from ws_frames import BINARY, CLOSE, CONT, KEY, PING, PONG, TEXT, frame, upgrade_request

from gunicorn_async_workers.asgi.websocket import CLOSE_TIMEOUT, FRAGMENT_COST

APP = "apps.ws_apps:app"
ROOT_PATH = "/api"
MAX_SIZE = 1024  # ws_max_size of the `tuned` server
PING_INTERVAL = 0.2  # ws_ping_interval of the `tuned` server
PING_TIMEOUT = 0.5  # ws_ping_timeout of the `tuned` server
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MIB = 1 << 20


# -- servers ----------------------------------------------------------------------------------
def configured(worker_class: str, **options: object) -> str:
    """Config text setting `worker_class` to the class with our `options`."""
    module, name = worker_class.rsplit(".", 1)
    return (f"from {module} import {name} as _Worker\n"
            f"worker_class = _Worker.configure(**{options!r})\n")


@pytest.fixture(scope="module", params=WORKER_CLASSES)
def server(request: pytest.FixtureRequest) -> Iterator[GunicornProcess]:
    """Default ws_* options, the app mounted at ROOT_PATH."""
    yield from serving(GunicornProcess(APP, request.param, settings={"root_path": ROOT_PATH}))


@pytest.fixture(scope="module", params=WORKER_CLASSES)
def tuned(request: pytest.FixtureRequest) -> Iterator[GunicornProcess]:
    """Small messages, no compression, fast keep-alive pings."""
    text = configured(request.param, ws_max_size=MAX_SIZE, ws_per_message_deflate=False,
                      ws_ping_interval=PING_INTERVAL, ws_ping_timeout=PING_TIMEOUT)
    yield from serving(GunicornProcess(APP, request.param, config_text=text))


@pytest.fixture(scope="module", params=WORKER_CLASSES)
def limited(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[GunicornProcess]:
    """worker_connections=3 and an access log (at `limited.access_log`)."""
    access_log = tmp_path_factory.mktemp("ws-access") / "access.log"
    proc = GunicornProcess(APP, request.param, settings={
        "worker_connections": 3, "accesslog": str(access_log)})
    proc.access_log = access_log  # type: ignore[attr-defined]
    yield from serving(proc)


# -- helpers ----------------------------------------------------------------------------------
def target(route: str, record: Path | None = None, **params: object) -> str:
    """A request target: `route` with `record=` and other query parameters, quoted."""
    if record is not None:
        params = {"record": record, **params}
    query = "&".join(f"{k}={quote(str(v), safe='')}" for k, v in params.items())
    return f"{route}?{query}" if query else route


def records(path: Path) -> list[dict[str, Any]]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines() if line]


def events(path: Path, name: str) -> list[dict[str, Any]]:
    return [r for r in records(path) if r["event"] == name]


def wait_event(path: Path, name: str, timeout: float = 10.0) -> dict[str, Any]:
    """The first `name` event the app recorded, waiting for it."""
    found = wait_for(lambda: events(path, name), timeout, what=f"the app noting {name!r}")
    return found[0]  # type: ignore[index]


def read_int(path: Path) -> int | None:
    try:
        return int(path.read_text())
    except (FileNotFoundError, ValueError):
        return None




def abort(sock: socket.socket) -> None:
    """Close with RST: the server drops what it had not read yet."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def run(coro: Coroutine[Any, Any, Any], timeout: float = 30.0) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout))


def ws_connect(proc: GunicornProcess, path: str, **kwargs: Any) -> Any:
    """The `websockets` client, without its own keep-alive pings unless asked."""
    kwargs.setdefault("open_timeout", 10)
    kwargs.setdefault("close_timeout", 5)
    kwargs.setdefault("ping_interval", None)
    kwargs.setdefault("proxy", None)
    return connect(f"ws://{proc.host}:{proc.port}{path}", **kwargs)


# -- raw WebSocket client ---------------------------------------------------------------------
def close_payload(code: int, reason: str = "") -> bytes:
    return code.to_bytes(2, "big") + reason.encode()


@dataclass
class Frame:
    fin: bool
    rsv: int
    opcode: int
    payload: bytes


class RawWebSocket:
    """Frames off a raw socket, after a 101 read by `ResponseReader`."""

    def __init__(self, sock: socket.socket, buffered: bytes = b"") -> None:
        self.sock = sock
        self.buf = buffered
        self.pings = 0

    def _exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("the server closed the connection")
            self.buf += data
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_frame(self) -> Frame:
        b0, b1 = self._exact(2)
        n = b1 & 0x7F
        if n == 126:
            n = int.from_bytes(self._exact(2), "big")
        elif n == 127:
            n = int.from_bytes(self._exact(8), "big")
        assert not b1 & 0x80, "a server frame was masked"
        return Frame(bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0x0F, self._exact(n))

    def send(self, opcode: int, payload: bytes = b"", **kwargs: Any) -> None:
        self.sock.sendall(frame(opcode, payload, **kwargs))

    def read_message(self, answer_pings: bool = True) -> Frame:
        """The next data or close frame; pings are counted (and answered)."""
        while True:
            f = self.read_frame()
            if f.opcode == PING:
                self.pings += 1
                if answer_pings:
                    self.send(PONG, f.payload)
                continue
            if f.opcode != PONG:
                return f

    def read_close(self, answer_pings: bool = True) -> tuple[int | None, str]:
        """The code and reason of the server's close frame; (None, why) if none came."""
        try:
            while True:
                f = self.read_message(answer_pings)
                if f.opcode == CLOSE:
                    if len(f.payload) < 2:
                        return 1005, ""
                    return int.from_bytes(f.payload[:2], "big"), f.payload[2:].decode()
        except (EOFError, ConnectionResetError) as exc:
            return None, f"no close frame: {exc!r}"

    def ends_within(self, seconds: float) -> bool:
        """Whether the server ends the TCP connection within `seconds` (nothing else may
        arrive but pings)."""
        self.sock.settimeout(seconds)
        try:
            f = self.read_message(answer_pings=False)
        except (EOFError, ConnectionResetError):
            return True
        except TimeoutError:
            return False
        raise AssertionError(f"unexpected frame {f}")

    def closed_by_server(self) -> bool:
        """After the close frame: the server ends the TCP connection, nothing else arrives."""
        try:
            data = self.buf or self.sock.recv(65536)
        except ConnectionResetError:
            return True
        assert data == b"", f"bytes after the close frame: {data!r}"
        return True


def open_raw(proc: GunicornProcess, path: str, *extra: str,
             sock: socket.socket | None = None) -> tuple[RawWebSocket, RawResponse]:
    """A raw WebSocket handshake; the response and, after a 101, the frames."""
    if sock is None:
        sock = proc.connect(10.0)
    sock.sendall(upgrade_request(path, *extra))
    reader = ResponseReader(sock, 10.0)
    resp = reader.read_response()
    return RawWebSocket(sock, reader.buf), resp


def expected_accept(key: str = KEY) -> bytes:
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest())


def refused_over_http(sock: socket.socket, data: bytes) -> tuple[RawResponse, bool]:
    """Send a handshake that must be refused: the response, and whether the server then
    closed the connection (bounded: a hang is a timeout, not a pass)."""
    sock.sendall(data)
    reader = ResponseReader(sock, 10.0)
    resp = reader.read_response()
    assert resp.status != 101, "the handshake was accepted"
    return resp, reader.at_eof()


# == 1. the upgrade ===========================================================================
@pytest.mark.parametrize("variant", [
    pytest.param({}, id="plain"),
    pytest.param({"connection": "keep-alive, Upgrade", "upgrade": "WebSocket"},
                 id="firefox-style-connection-header"),
    pytest.param({"after_request": True}, id="after-a-request-on-the-same-connection"),
])
def test_valid_handshake_reaches_the_app(server: GunicornProcess, tmp_path: Path,
                                         variant: dict[str, Any]) -> None:
    record = tmp_path / "record"
    headers = {k: v for k, v in variant.items() if k != "after_request"}
    with server.connect(10.0) as sock:
        reader = ResponseReader(sock, 10.0)
        if variant.get("after_request"):
            sock.sendall(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
            assert reader.read_response().status == 200
        sock.sendall(upgrade_request(target("/echo", record), **headers))
        resp = reader.read_response()
        assert resp.status == 101, resp
        assert resp.header(b"upgrade").lower() == b"websocket"
        assert b"upgrade" in resp.header(b"connection").lower()
        assert resp.header(b"sec-websocket-accept") == expected_accept()
        raw = RawWebSocket(sock, reader.buf)
        raw.send(TEXT, "héllo".encode())
        reply = raw.read_message()
        assert (reply.opcode, reply.payload) == (TEXT, "héllo".encode())
        raw.send(CLOSE, close_payload(1000))
        assert raw.read_close() == (1000, "")
        assert raw.closed_by_server()
    assert events(record, "first") == [{"event": "first", "type": "websocket.connect"}]


def test_frames_sent_with_the_handshake_are_delivered(server: GunicornProcess) -> None:
    """Frames in the same packet as the upgrade request are the first messages, not HTTP."""
    with server.connect(10.0) as sock:
        sock.sendall(upgrade_request("/echo") + frame(TEXT, b"early") + frame(BINARY, b"\0\1"))
        reader = ResponseReader(sock, 10.0)
        assert reader.read_response().status == 101
        raw = RawWebSocket(sock, reader.buf)
        first, second = raw.read_message(), raw.read_message()
        assert (first.opcode, first.payload) == (TEXT, b"early")
        assert (second.opcode, second.payload) == (BINARY, b"\0\1")


@pytest.mark.parametrize(("kwargs", "status"), [
    pytest.param({"key": None}, 400, id="no-sec-websocket-key"),
    pytest.param({"key": "c2hvcnQ="}, 400, id="sec-websocket-key-not-16-bytes"),
    pytest.param({"version": "8"}, 426, id="sec-websocket-version-8"),
    pytest.param({"method": "POST"}, 400, id="post"),
    pytest.param({"http": "1.0"}, 400, id="http-1.0"),
])
def test_bad_handshake_never_reaches_the_app(server: GunicornProcess, tmp_path: Path,
                                             kwargs: dict[str, Any], status: int) -> None:
    record = tmp_path / "record"
    extra = ["Content-Length: 0"] if kwargs.get("method") == "POST" else []
    with server.connect(10.0) as sock:
        resp, closed = refused_over_http(
            sock, upgrade_request(target("/echo", record), *extra, **kwargs))
    assert resp.status == status, resp
    if status == 426:
        assert resp.header(b"sec-websocket-version") == b"13"
    assert closed, "the connection stayed open after the refusal"
    # A good handshake with the same record file is noted once: the bad one never was.
    raw, resp = open_raw(server, target("/echo", record))
    with raw.sock:
        assert resp.status == 101
        wait_event(record, "first")
    assert len(events(record, "first")) == 1, records(record)


@pytest.mark.parametrize(("route", "status"), [
    pytest.param("/raise", 500, id="app-raises"),
    pytest.param("/ignore", 403, id="app-returns-without-accepting"),
])
def test_app_that_does_not_serve_websockets_refuses_over_http(
        server: GunicornProcess, tmp_path: Path, route: str, status: int) -> None:
    record = tmp_path / "record"
    with server.connect(10.0) as sock:
        resp, closed = refused_over_http(sock, upgrade_request(target(route, record)))
    assert resp.status == status, resp
    assert closed, "the connection stayed open after the refusal"
    assert len(events(record, "first")) == 1  # the app ran and did not accept


def test_wsgi_app_answers_an_upgrade_request_as_plain_http(
        gunicorn: Callable[..., GunicornProcess]) -> None:
    proc = gunicorn("apps.ws_apps:wsgi_app")
    with proc.connect(10.0) as sock:
        # A frame right behind the request: not HTTP, must not be parsed as a request.
        resp, closed = refused_over_http(sock, upgrade_request("/chat") + frame(TEXT, b"hi"))
    assert (resp.status, resp.body) == (200, b"wsgi"), resp
    assert resp.header(b"connection") == b"close"
    assert closed, "the connection stayed open after the response"


# == 2. the ASGI WebSocket messages ===========================================================
def test_scope(server: GunicornProcess) -> None:
    path = "/scope/caf%C3%A9%20x?a=1&b=%2F"

    async def scenario() -> tuple[dict[str, Any], dict[str, Any], Any]:
        async with ws_connect(server, path, subprotocols=["chat", "superchat"],
                              additional_headers={"X-Custom": "yes"}) as ws:
            first = json.loads(await ws.recv())
            local = ws.local_address
        async with ws_connect(server, path) as ws:
            second = json.loads(await ws.recv())
        return first, second, local

    scope, again, local = run(scenario())
    types = scope["_types"]
    assert scope["type"] == "websocket"
    assert scope["asgi"]["version"] == "3.0"
    assert scope["http_version"] == "1.1"
    assert scope["scheme"] == "ws"
    assert scope["path"] == ROOT_PATH + "/scope/café x"
    assert types["raw_path"] == "bytes"
    assert scope["raw_path"] in ("/scope/caf%C3%A9%20x", ROOT_PATH + "/scope/caf%C3%A9%20x")
    assert (types["query_string"], scope["query_string"]) == ("bytes", "a=1&b=%2F")
    assert scope["root_path"] == ROOT_PATH
    assert ["x-custom", "yes"] in scope["headers"]
    assert scope["_header_types"] == ["bytes,bytes"]
    assert all(name == name.lower() for name, _ in scope["headers"])
    assert scope["client"] == [local[0], local[1]]
    assert scope["server"] == [server.host, server.port]
    assert types["subprotocols"] in ("list", "tuple")
    assert scope["subprotocols"] == ["chat", "superchat"]
    assert again["subprotocols"] == []
    assert scope["state"] == {"booted": "yes"}
    assert again["state"] == {"booted": "yes"}, "state is not a copy per connection"
    assert "websocket.http.response" in scope["extensions"]


def test_connect_first_then_text_and_bytes_both_ways(server: GunicornProcess,
                                                      tmp_path: Path) -> None:
    record = tmp_path / "record"

    async def scenario() -> list[str | bytes]:
        async with ws_connect(server, target("/echo", record)) as ws:
            replies = []
            for message in ("hello", "☃ snow", b"\x00\xff\x10", b""):
                await ws.send(message)
                replies.append(await ws.recv())
            return replies

    assert run(scenario()) == ["hello", "☃ snow", b"\x00\xff\x10", b""]
    assert records(record)[0] == {"event": "first", "type": "websocket.connect"}


def test_a_burst_of_sends_arrives_whole_and_in_order_before_the_close(
        server: GunicornProcess) -> None:
    """Frames sent without yielding go out together (one write per burst, or every 256 KiB);
    none is lost or reordered, and the close frame comes after them all."""
    count = 20000

    async def scenario() -> tuple[list[str | bytes], int | None, str | None]:
        received: list[str | bytes] = []
        async with ws_connect(server, f"/burst?count={count}") as ws:
            with contextlib.suppress(ConnectionClosed):  # 4000 is not a normal closure
                while True:
                    received.append(await ws.recv())
            return received, ws.close_code, ws.close_reason

    received, code, reason = run(scenario())
    assert received == [str(number) for number in range(count)]
    assert (code, reason) == (4000, "burst done")


def test_accept_with_subprotocol_and_headers(server: GunicornProcess) -> None:
    path = target("/echo", subprotocol="superchat", header="x-accepted:yes")

    async def scenario() -> tuple[str | None, str | None]:
        async with ws_connect(server, path, subprotocols=["chat", "superchat"]) as ws:
            return ws.subprotocol, ws.response.headers.get("x-accepted")

    assert run(scenario()) == ("superchat", "yes")


def test_close_before_accept_is_an_http_403(server: GunicornProcess, tmp_path: Path) -> None:
    record = tmp_path / "record"
    with server.connect(10.0) as sock:
        resp, closed = refused_over_http(
            sock, upgrade_request(target("/close_before_accept", record)))
    assert resp.status == 403, resp
    assert closed
    assert len(events(record, "first")) == 1


@pytest.mark.parametrize(("route", "code"), [
    pytest.param("/accept_and_return", 1000, id="app-returns"),
    pytest.param("/raise_after_accept", 1011, id="app-raises"),
])
def test_app_ending_after_accept_closes_the_websocket(server: GunicornProcess, route: str,
                                                      code: int) -> None:
    async def scenario() -> ConnectionClosed:
        async with ws_connect(server, route) as ws:
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()
            return info.value

    closed = run(scenario())
    assert closed.rcvd is not None and closed.rcvd.code == code, closed


def test_close_after_accept_with_code_and_reason(server: GunicornProcess,
                                                 tmp_path: Path) -> None:
    record = tmp_path / "record"

    async def scenario() -> ConnectionClosed:
        async with ws_connect(server, target("/close", record, code=4000, reason="bye")) as ws:
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()
            return info.value

    closed = run(scenario())
    assert closed.rcvd is not None
    assert (closed.rcvd.code, closed.rcvd.reason) == (4000, "bye")
    wait_event(record, "disconnect")


def test_disconnect_has_the_client_close_code_and_a_later_send_raises_oserror(
        server: GunicornProcess, tmp_path: Path) -> None:
    record = tmp_path / "record"

    async def scenario() -> None:
        async with ws_connect(server, target("/after_disconnect", record)) as ws:
            await ws.close(4001, "client done")

    run(scenario())
    disconnect = wait_event(record, "disconnect")
    assert (disconnect["code"], disconnect["reason"]) == (4001, "client done")
    error = wait_event(record, "send_error")
    assert error["oserror"], f"send after websocket.disconnect raised {error['exc']}"


def test_send_after_the_app_closed_raises_oserror(server: GunicornProcess,
                                                  tmp_path: Path) -> None:
    record = tmp_path / "record"

    async def scenario() -> None:
        async with ws_connect(server, target("/after_close", record)) as ws:
            with pytest.raises(ConnectionClosed):
                await ws.recv()

    run(scenario())
    error = wait_event(record, "send_error")
    assert error["oserror"], f"send after websocket.close raised {error['exc']}"


def test_unanswered_close_from_the_app_ends_the_connection(server: GunicornProcess,
                                                           tmp_path: Path) -> None:
    record = tmp_path / "record"
    raw, resp = open_raw(server, target("/close", record, code=4000))
    with raw.sock:
        assert resp.status == 101
        assert raw.read_message().opcode == CLOSE
        # The client reads the close frame and never answers it.
        assert raw.ends_within(CLOSE_TIMEOUT + 2), "the connection is still open"
        disconnect = wait_event(record, "disconnect", timeout=1)
    assert disconnect["code"] in (1006, 4000)


def test_denial_response_extension(server: GunicornProcess, tmp_path: Path) -> None:
    record = tmp_path / "record"
    with server.connect(10.0) as sock:
        resp, closed = refused_over_http(sock, upgrade_request(target("/deny", record,
                                                                      status=401)))
    assert resp.status == 401, resp
    assert resp.header(b"x-denied") == b"yes"
    assert resp.header(b"content-type") == b"text/plain"
    assert resp.body == b"denied: go away"
    assert closed
    assert len(events(record, "first")) == 1


# == 3. protocol behaviour ====================================================================
def test_fragmented_messages_are_reassembled(server: GunicornProcess) -> None:
    async def scenario() -> tuple[Any, Any]:
        async with ws_connect(server, "/echo") as ws:
            await ws.send(["frag1-", "frag2-", "frag3"])
            text = await ws.recv()
            await ws.send([b"\x01\x02", b"", b"\x03"])
            return text, await ws.recv()

    assert run(scenario()) == ("frag1-frag2-frag3", b"\x01\x02\x03")


def test_ping_between_fragments_is_answered_and_the_message_kept(
        server: GunicornProcess) -> None:
    raw, resp = open_raw(server, "/echo")
    with raw.sock:
        assert resp.status == 101
        raw.send(TEXT, b"one \xc3", fin=False)  # "\xc3\xa9" is one character split in two
        raw.send(PING, b"between")
        pong = raw.read_frame()
        assert (pong.opcode, pong.payload) == (PONG, b"between")
        raw.send(CONT, b"\xa9 two ", fin=False)
        raw.send(CONT, b"three")
        reply = raw.read_message()
        assert (reply.opcode, reply.payload) == (TEXT, "one é two three".encode())


def test_client_ping_gets_a_pong(server: GunicornProcess) -> None:
    async def scenario() -> float:
        async with ws_connect(server, "/echo") as ws:
            pong = await ws.ping(b"are you there")
            return await asyncio.wait_for(pong, 5)

    assert run(scenario()) >= 0


@pytest.mark.parametrize("fragmented", [False, True], ids=["one-frame", "fragmented"])
def test_invalid_utf8_closes_1007(server: GunicornProcess, tmp_path: Path,
                                  fragmented: bool) -> None:
    record = tmp_path / "record"
    raw, resp = open_raw(server, target("/echo", record))
    with raw.sock:
        assert resp.status == 101
        if fragmented:
            raw.send(TEXT, b"ok \xe2", fin=False)  # a valid prefix of a 3-byte sequence...
            raw.send(CONT, b"\x28\xa1")  # ...continued with a byte that is not a continuation
        else:
            raw.send(TEXT, b"bad \xff\xfe")
        code, reason = raw.read_close()
        assert code == 1007, reason
        assert raw.closed_by_server()
    assert wait_event(record, "disconnect")["code"] in (1006, 1007)


@pytest.mark.parametrize(("ending", "code"), [
    pytest.param(frame(TEXT, b"x", rsv=2), 1002, id="protocol-error"),
    pytest.param(frame(CONT, b"x"), 1002, id="continuation-without-start"),
    pytest.param(frame(TEXT, b"bad \xff"), 1007, id="invalid-utf8"),
    pytest.param(frame(CLOSE, close_payload(1000)), 1000, id="close"),
])
def test_messages_before_a_close_or_failure_are_answered_first(
        server: GunicornProcess, tmp_path: Path, ending: bytes, code: int) -> None:
    """Frames that arrive together: two messages, then a close or a frame that fails the
    connection. The app gets the messages and its echoes go out before the server's close
    frame (Autobahn 3.2-4.2.5, 5.15, 7.1.6); what came after the failure is not read."""
    record = tmp_path / "record"
    raw, resp = open_raw(server, target("/echo", record))
    with raw.sock:
        assert resp.status == 101
        raw.sock.sendall(frame(TEXT, b"one") + frame(BINARY, b"two") + ending
                         + frame(TEXT, b"after"))
        replies = [raw.read_message(), raw.read_message()]
        assert [(f.opcode, f.payload) for f in replies] == [(TEXT, b"one"), (BINARY, b"two")]
        close = raw.read_message()
        assert (close.opcode, int.from_bytes(close.payload[:2], "big")) == (CLOSE, code), close
        assert raw.closed_by_server()
    # (After a failure the app's disconnect is 1006, the connection having ended.)
    assert wait_event(record, "disconnect")["code"] == (1000 if code == 1000 else 1006)


def test_a_close_held_for_the_app_goes_out_within_close_timeout(
        server: GunicornProcess, tmp_path: Path) -> None:
    """An app that does not come back for the next message (it sleeps after each one) holds
    the server's answer to the peer's close for CLOSE_TIMEOUT at most."""
    raw, resp = open_raw(server, target("/slow", delay=60, gate=tmp_path / "never"))
    with raw.sock:
        assert resp.status == 101
        raw.sock.sendall(frame(TEXT, b"one") + frame(CLOSE, close_payload(1000)))
        raw.sock.settimeout(CLOSE_TIMEOUT + 5)
        code, reason = raw.read_close()
        assert code == 1000, reason
        assert raw.closed_by_server()


def test_invalid_utf8_in_a_fragment_closes_1007_before_the_message_ends(
        server: GunicornProcess) -> None:
    """Fail fast (Autobahn 6.4): the fragment that makes the text invalid is answered with
    1007 at once, with the message's last fragment still to come."""
    raw, resp = open_raw(server, "/echo")
    with raw.sock:
        assert resp.status == 101
        raw.send(TEXT, "κόσμε".encode(), fin=False)
        raw.send(CONT, b"\xf4\x90\x80\x80", fin=False)  # U+110000: past Unicode's last
        raw.sock.settimeout(5.0)  # the server answers now, or this read times out
        code, reason = raw.read_close()
        assert code == 1007, reason
        assert raw.closed_by_server()


def test_close_between_fragments_closes_1000(server: GunicornProcess, tmp_path: Path) -> None:
    """RFC 6455 lets control frames come between fragments, a close too (Autobahn 7.1.5):
    the unfinished message is dropped and the closing handshake is a clean one."""
    record = tmp_path / "record"
    close_between_fragments(server, target("/echo", record))
    assert wait_event(record, "disconnect")["code"] == 1000


def close_between_fragments(server: GunicornProcess, path: str) -> None:
    """A text message's first fragment, a close, the last fragment: the server answers
    the close with 1000 and closes the connection."""
    raw, resp = open_raw(server, path)
    with raw.sock:
        assert resp.status == 101
        raw.send(TEXT, b"fragment1", fin=False)
        raw.send(CLOSE, close_payload(1000))
        raw.send(CONT, b"fragment2")
        code, reason = raw.read_close()
        assert code == 1000, reason
        assert raw.closed_by_server()


@pytest.mark.parametrize("fragments", [1, 4], ids=["one-frame", "fragmented"])
def test_message_over_ws_max_size_closes_1009(tuned: GunicornProcess, tmp_path: Path,
                                              fragments: int) -> None:
    record = tmp_path / "record"
    raw, resp = open_raw(tuned, target("/echo", record))
    with raw.sock:
        assert resp.status == 101
        # Exactly ws_max_size is fine...
        raw.send(BINARY, b"a" * MAX_SIZE)
        reply = raw.read_message()
        assert (reply.opcode, len(reply.payload)) == (BINARY, MAX_SIZE)
        # ...one byte more is not, whole or in pieces.
        piece = (MAX_SIZE + 1) // fragments + 1
        data = b"b" * (MAX_SIZE + 1)
        parts = [data[i:i + piece] for i in range(0, len(data), piece)]
        for i, part in enumerate(parts):
            raw.send(BINARY if i == 0 else CONT, part, fin=i == len(parts) - 1)
        code, reason = raw.read_close()
        assert code == 1009, reason
        assert raw.closed_by_server()
    assert wait_event(record, "disconnect")["code"] in (1006, 1009)
    wait_event(record, "done")  # the app returns after the disconnect it was given


def test_fragments_count_toward_ws_max_size_with_their_header_bytes(
        tuned: GunicornProcess) -> None:
    """Each fragment counts as its payload plus FRAGMENT_COST bytes: a message of empty
    fragments is not an empty message, and one that fits unfragmented may not in pieces."""
    fits = MAX_SIZE // FRAGMENT_COST  # empty fragments (the first included) within the limit
    for count, payload, expected in [(fits, b"", None), (fits + 1, b"", 1009),
                                     (2, b"a" * (MAX_SIZE // 2), 1009)]:
        raw, resp = open_raw(tuned, "/echo")
        with raw.sock:
            assert resp.status == 101
            raw.sock.sendall(b"".join(frame(BINARY if i == 0 else CONT, payload,
                                            fin=i == count - 1) for i in range(count)))
            if expected is None:
                reply = raw.read_message()
                assert (reply.opcode, reply.payload) == (BINARY, b""), reply
            else:
                code, reason = raw.read_close()
                assert code == expected, reason
                assert "ws_max_size" in reason


def test_compressed_message_over_ws_max_size_closes_1009(server: GunicornProcess) -> None:
    """A small compressed frame that inflates past ws_max_size (16 MiB by default)."""
    async def scenario() -> ConnectionClosed:
        async with ws_connect(server, "/echo", max_size=None) as ws:
            await ws.send("a" * (16 * MIB + 1))
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()
            return info.value

    closed = run(scenario())
    assert closed.rcvd is not None and closed.rcvd.code == 1009, closed


@pytest.mark.parametrize("bad", [
    pytest.param(frame(TEXT, b"x", rsv=2), id="reserved-bit"),
    pytest.param(frame(TEXT, b"x", mask=None), id="unmasked"),
    pytest.param(frame(CONT, b"x"), id="continuation-without-start"),
    pytest.param(frame(0x3, b"x"), id="reserved-opcode"),
    pytest.param(frame(PING, b"p", fin=False), id="fragmented-control-frame"),
    pytest.param(frame(CLOSE, close_payload(999)), id="close-code-999"),
    pytest.param(frame(CLOSE, b"\x03"), id="close-payload-of-one-byte"),
])
def test_protocol_error_closes_1002(server: GunicornProcess, bad: bytes) -> None:
    raw, resp = open_raw(server, "/echo")
    with raw.sock:
        assert resp.status == 101
        raw.sock.sendall(bad)
        code, reason = raw.read_close()
        assert code == 1002, reason
        assert raw.closed_by_server()


def test_permessage_deflate_negotiated_by_default(server: GunicornProcess) -> None:
    big = "compressible " * 10_000

    async def scenario() -> tuple[str | None, Any]:
        async with ws_connect(server, "/echo") as ws:
            await ws.send(big)
            return ws.response.headers.get("Sec-WebSocket-Extensions"), await ws.recv()

    extensions, echoed = run(scenario())
    assert extensions is not None and "permessage-deflate" in extensions
    assert echoed == big


def test_permessage_deflate_off(tuned: GunicornProcess) -> None:
    async def scenario() -> tuple[str | None, Any]:
        async with ws_connect(tuned, "/echo") as ws:
            await ws.send("plain")
            return ws.response.headers.get("Sec-WebSocket-Extensions"), await ws.recv()

    assert run(scenario()) == (None, "plain")


def test_unanswered_server_pings_close_1011(tuned: GunicornProcess, tmp_path: Path) -> None:
    record = tmp_path / "record"
    raw, resp = open_raw(tuned, target("/echo", record))
    with raw.sock:
        assert resp.status == 101
        started = time.monotonic()
        code, reason = raw.read_close(answer_pings=False)
        elapsed = time.monotonic() - started
        assert code == 1011, reason
        assert raw.pings >= 1
        assert elapsed < PING_INTERVAL + PING_TIMEOUT + 2.0, elapsed
        assert raw.closed_by_server()
    wait_event(record, "done")


def test_answered_server_pings_keep_a_raw_client_connected(tuned: GunicornProcess) -> None:
    raw, resp = open_raw(tuned, "/echo")
    with raw.sock:
        assert resp.status == 101
        wanted = int(3 * PING_TIMEOUT / PING_INTERVAL) + 1  # spans several ping timeouts
        for _ in range(wanted):
            ping = raw.read_frame()  # nothing but pings may arrive
            assert ping.opcode == PING, ping
            raw.send(PONG, ping.payload)
        raw.send(TEXT, b"still here")
        reply = raw.read_message()
        assert (reply.opcode, reply.payload) == (TEXT, b"still here")


def test_websockets_client_stays_connected_across_ping_intervals(
        tuned: GunicornProcess) -> None:
    quiet = 3 * PING_TIMEOUT

    async def scenario() -> Any:
        async with ws_connect(tuned, "/echo") as ws:
            # Nothing may arrive for several intervals: a close would end recv() early.
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(ws.recv(), quiet)
            await ws.send("still here")
            return await ws.recv()

    assert run(scenario()) == "still here"


@pytest.mark.parametrize(("options", "env", "name"), [
    pytest.param({"ws_max_queue": 0}, {}, "ws_max_queue", id="configure-ws_max_queue-0"),
    pytest.param({}, {"GAW_WS_PING_INTERVAL": "abc"}, "ws_ping_interval",
                 id="env-ws_ping_interval-abc"),
])
def test_invalid_ws_option_stops_the_arbiter(
        worker_class: str, gunicorn: Callable[..., GunicornProcess],
        options: dict[str, object], env: dict[str, str], name: str) -> None:
    proc = gunicorn(APP, wait=False, env=env,
                    config_text=configured(worker_class, **options) if options else "")
    assert proc.proc is not None
    assert proc.proc.wait(30) == 3, proc.logs()
    logs = proc.logs()
    errors = [line for line in logs.splitlines() if "gunicorn-async-workers:" in line]
    assert errors, logs
    assert all(name in line.lower() for line in errors), errors
    assert "Traceback" not in logs, logs


# == 4. flow control ==========================================================================
def wait_stable(read: Callable[[], int | None], quiet: float, timeout: float,
                ceiling: int) -> int:
    """Poll `read` until its value has not changed for `quiet` seconds; fail as soon as it
    passes `ceiling`."""
    seen: dict[str, Any] = {"value": None, "since": time.monotonic()}

    def settled() -> bool:
        value, now = read(), time.monotonic()
        assert value is None or value < ceiling, f"still growing at {value}"
        if value != seen["value"]:
            seen.update(value=value, since=now)
            return False
        return value is not None and now - seen["since"] >= quiet

    wait_for(settled, timeout, interval=0.05, what=f"a value stable for {quiet} s")
    return seen["value"]  # type: ignore[no-any-return]


def test_app_send_blocks_while_the_client_does_not_read(server: GunicornProcess,
                                                         tmp_path: Path) -> None:
    record, counter = tmp_path / "record", tmp_path / "count"
    size, limit = 64 * 1024, 1000  # `limit` messages (62.5 MiB): the app's own safety stop
    pid = worker_pid(server)
    before = rss(pid)
    sock = socket.socket(socket.AF_INET6 if ":" in server.host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    sock.settimeout(10.0)
    sock.connect((server.host, server.port))
    try:
        _, resp = open_raw(server, target("/flood", record, size=size, count=counter,
                                          limit=limit), sock=sock)
        assert resp.status == 101
        # The client reads nothing more: the app's sends must stop returning.
        sent = wait_stable(lambda: read_int(counter), quiet=0.5, timeout=15, ceiling=limit)
        grown = rss(pid) - before
    finally:
        abort(sock)
    assert sent < 256, f"{sent} messages of 64 KiB went out to a client that reads nothing"
    assert grown < 48 * MIB, f"worker RSS grew by {grown / MIB:.1f} MiB"
    end = wait_event(record, "flood_end")
    assert end["oserror"], end  # the blocked send ended with the connection
    assert end["count"] >= sent


def test_peers_that_stop_after_a_frames_first_bytes_hold_what_they_sent(
        server: GunicornProcess) -> None:
    """Many connections each send a ping and the first bytes of a frame, then nothing: once
    the pong shows the worker has read them, each holds those bytes, not a read buffer
    (200 buffers would be 25 MiB), and every connection still gets its echo."""
    peers, payload = 200, b"p" * 1000
    pid = worker_pid(server)
    before = rss(pid)
    raws: list[RawWebSocket] = []
    try:
        for _ in range(peers):
            raw, resp = open_raw(server, "/echo")
            raws.append(raw)
            assert resp.status == 101
            raw.send(PING, b"read?")
            raw.sock.sendall(frame(BINARY, payload)[:10])
        for raw in raws:
            pong = raw.read_frame()
            assert (pong.opcode, pong.payload) == (PONG, b"read?")
        grown = rss(pid) - before
        assert grown < 12 * MIB, f"worker RSS grew by {grown / MIB:.1f} MiB"
        for raw in raws:
            raw.sock.sendall(frame(BINARY, payload)[10:])
        for raw in raws:
            reply = raw.read_message()
            assert (reply.opcode, reply.payload) == (BINARY, payload)
    finally:
        for raw in raws:
            abort(raw.sock)


def test_slow_app_bounds_what_the_worker_reads(server: GunicornProcess,
                                               tmp_path: Path) -> None:
    record, counter, gate = tmp_path / "record", tmp_path / "count", tmp_path / "gate"
    limit, window = 96 * MIB, 2.0
    pid = worker_pid(server)
    before = rss(pid)
    raw, resp = open_raw(server, target("/slow", record, delay=0.05, gate=gate,
                                        count=counter))
    sock = raw.sock
    assert resp.status == 101
    one = frame(BINARY, b"\x5a" * (64 * 1024), mask=b"\0\0\0\0")
    total = frames = 0
    pending = memoryview(b"")
    sock.settimeout(0.1)
    deadline = time.monotonic() + window
    # The client writes as fast as the server lets it, for `window` seconds.
    while total < limit and time.monotonic() < deadline:
        if not pending:
            pending = memoryview(one)
            frames += 1
        try:
            n = sock.send(pending)
        except TimeoutError:
            continue
        pending = pending[n:]
        total += n
    consumed = (read_int(counter) or 0) * len(one)
    grown = rss(pid) - before
    try:
        assert total < limit, "the worker read everything a slow app had not asked for"
        assert total - consumed < 32 * MIB, f"{(total - consumed) / MIB:.1f} MiB in flight"
        assert grown < 48 * MIB, f"worker RSS grew by {grown / MIB:.1f} MiB"
        # Open the gate: the app now reads at full speed and gets every message.
        gate.touch()
        sock.settimeout(20.0)
        sock.sendall(pending)
        sock.sendall(frame(CLOSE, close_payload(1000)))
        end = wait_event(record, "slow_end", timeout=20)
    finally:
        sock.close()
    assert end["messages"] == frames, end
    assert end["bytes"] == frames * 64 * 1024
    assert end["code"] == 1000


# == 5. lifecycle =============================================================================
def test_sigterm_closes_open_websockets_with_1001(
        gunicorn: Callable[..., GunicornProcess], tmp_path: Path) -> None:
    graceful_timeout = 5
    proc = gunicorn(APP, settings={"graceful_timeout": graceful_timeout})
    assert proc.proc is not None
    record = tmp_path / "record"

    async def scenario() -> tuple[ConnectionClosed, float]:
        async with ws_connect(proc, target("/echo", record)) as ws:
            await ws.send("hi")
            assert await ws.recv() == "hi"
            started = time.monotonic()
            os.kill(proc.proc.pid, signal.SIGTERM)
            with pytest.raises(ConnectionClosed) as info:
                await asyncio.wait_for(ws.recv(), graceful_timeout + 5)
            return info.value, started

    closed, started = run(scenario())
    assert closed.rcvd is not None and closed.rcvd.code == 1001, closed
    assert proc.proc.wait(graceful_timeout + 5) == 0, proc.logs()
    assert time.monotonic() - started <= graceful_timeout, "exit took longer than graceful"
    assert wait_event(record, "disconnect")["code"] == 1001
    assert events(record, "done"), "the app did not finish"


def test_sigterm_with_a_peer_that_never_answers_the_1001(
        gunicorn: Callable[..., GunicornProcess], tmp_path: Path) -> None:
    graceful_timeout = int(CLOSE_TIMEOUT) + 5
    proc = gunicorn(APP, settings={"graceful_timeout": graceful_timeout})
    assert proc.proc is not None
    record = tmp_path / "record"
    raw, resp = open_raw(proc, target("/echo", record))
    with raw.sock:
        assert resp.status == 101
        wait_event(record, "first")
        os.kill(proc.proc.pid, signal.SIGTERM)
        assert raw.read_close() == (1001, "server shutting down")
        # The client never answers the close frame: the server gives up after CLOSE_TIMEOUT.
        assert raw.ends_within(CLOSE_TIMEOUT + 2), "the connection is still open"
    assert proc.proc.wait(graceful_timeout + 5) == 0
    assert "graceful_timeout reached" not in proc.logs()
    assert events(record, "done")


def test_dropped_connection_is_a_disconnect_1006(server: GunicornProcess,
                                                 tmp_path: Path) -> None:
    record = tmp_path / "record"
    raw, resp = open_raw(server, target("/echo", record))
    assert resp.status == 101
    wait_event(record, "first")
    abort(raw.sock)  # no closing handshake
    assert wait_event(record, "disconnect")["code"] == 1006
    wait_event(record, "done")


def test_worker_connections_counts_websockets(limited: GunicornProcess) -> None:
    async def scenario() -> RawResponse:
        clients: list[ClientConnection] = []
        try:
            for i in range(3):
                ws = await ws_connect(limited, "/echo")
                clients.append(ws)
                await ws.send(f"client {i}")
                assert await ws.recv() == f"client {i}"
            fourth = await asyncio.to_thread(limited.connect, 10.0)
            try:
                await asyncio.to_thread(fourth.sendall, upgrade_request("/echo"))
                fourth.settimeout(1.0)
                try:
                    early: bytes | None = await asyncio.to_thread(fourth.recv, 1)
                except TimeoutError:
                    early = None
                assert early is None, f"a 4th connection got {early!r} with 3 WebSockets open"
                await clients.pop().close()
                return await asyncio.to_thread(
                    lambda: ResponseReader(fourth, 10.0).read_response())
            finally:
                fourth.close()
        finally:
            for ws in clients:
                await ws.close()

    assert run(scenario()).status == 101


def test_access_log_has_one_line_per_websocket_session(limited: GunicornProcess) -> None:
    log: Path = limited.access_log  # type: ignore[attr-defined]
    tag = uuid.uuid4().hex

    async def scenario() -> None:
        for name in ("a", "b"):
            async with ws_connect(limited, target("/echo", tag=f"{tag}-{name}")) as ws:
                await ws.send("x")
                await ws.recv()

    run(scenario())
    with limited.connect(10.0) as sock:
        resp, _ = refused_over_http(sock, upgrade_request(target("/deny", status=401,
                                                                 tag=f"{tag}-d")))
    assert resp.status == 401

    def lines(name: str) -> list[str]:
        return [line for line in log.read_text().splitlines() if f"{tag}-{name}" in line]

    wait_for(lambda: log.exists() and all(lines(n) for n in "abd"),
             what="access log lines of the three sessions")
    for name, status in (("a", 101), ("b", 101), ("d", 401)):
        found = lines(name)
        assert len(found) == 1, found
        assert f'HTTP/1.1" {status} ' in found[0], found[0]
