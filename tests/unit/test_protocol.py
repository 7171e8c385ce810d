"""Unit tests of HttpProtocol + Server + the ASGI cycle over an in-memory transport, no sockets."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import h11
import pytest
from gunicorn.config import Config
from gunicorn.glogging import Logger

from gunicorn_async_workers.asgi.scope import scope_path
from gunicorn_async_workers.config import ServerConfig
from gunicorn_async_workers.http.errors import BadRequest, ExpectationFailed, error_response
from gunicorn_async_workers.http.parsers import ParserAdapter
from gunicorn_async_workers.http.protocol import HttpProtocol
from gunicorn_async_workers.server import Server

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Message, Receive, Send], Awaitable[None]]

PEER = ("192.0.2.10", 50123)
SOCK = ("127.0.0.1", 8000)


class MemoryTransport(asyncio.Transport):
    """Records what the protocol writes; closing reports connection_lost as a socket would."""

    def __init__(self, protocol: asyncio.Protocol, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__({"peername": PEER, "sockname": SOCK})
        self.protocol = protocol
        self.loop = loop
        self.writes: list[bytes] = []  # one entry per write() or writelines() call
        self.late_writes = 0  # writes after close(): a real transport would drop them
        self.closed = False
        self.aborted = False
        self.reading = True
        self.buffered = 0  # bytes a test says are still waiting to leave (a slow client)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self.closed:
            self.late_writes += 1
            return
        self.writes.append(bytes(data))

    def writelines(self, list_of_data: Any) -> None:
        self.write(b"".join(list_of_data))

    def is_closing(self) -> bool:
        return self.closed

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.protocol = protocol  # type: ignore[assignment]

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self.protocol

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.loop.call_soon(self.protocol.connection_lost, None)

    def abort(self) -> None:
        self.aborted = True
        self.close()

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def is_reading(self) -> bool:
        return self.reading

    @property
    def output(self) -> bytes:
        return b"".join(self.writes)


class Connection:
    """One HttpProtocol on a MemoryTransport, served by a real Server with a real config.

    `parser` is the adapter behind the protocol: the tests that build one take it from the
    `parser_class` fixture, and so run once per adapter."""

    def __init__(self, parser: type[ParserAdapter], app: App,
                 options: dict[str, object] | None = None, **settings: object) -> None:
        cfg = Config()
        for name, value in settings.items():
            cfg.set(name, value)
        log = Logger(cfg)
        config = ServerConfig.from_gunicorn(cfg, log, options or {}, max_requests=sys.maxsize)
        self.loop = asyncio.get_running_loop()
        self.server = Server(config, app, self.loop, log, None, parser_class=parser)
        self.protocol = HttpProtocol(self.server)
        self.transport = MemoryTransport(self.protocol, self.loop)
        self.protocol.connection_made(self.transport)

    def feed(self, data: bytes) -> None:
        self.protocol.data_received(data)

    async def close(self) -> None:
        self.transport.close()
        await settle()


# Turns of the loop `settle` may take: far more than any test here needs (4 at most); a
# test whose tasks never stop making each other ready fails instead of hanging.
SETTLE_TURNS = 10_000


async def settle() -> None:
    """Run the loop until nothing is ready to run: every task is done or waits for something
    that has not happened (a timer, a Future). Yields to the loop only, never waits on time.

    After each `sleep(0)` this task is resumed behind whatever was ready before it; when the
    loop's ready queue (`_ready`, the stdlib loop's) is then empty, nothing ran that
    scheduled more work.
    """
    ready = asyncio.get_running_loop()._ready  # type: ignore[attr-defined]
    for _ in range(SETTLE_TURNS):
        await asyncio.sleep(0)
        if not ready:
            return
    raise AssertionError(f"the loop still had callbacks ready after {SETTLE_TURNS} turns")


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(test())


def read_responses(data: bytes, methods: list[bytes], *, eof: bool = False
                   ) -> list[tuple[int, dict[bytes, bytes], bytes]]:
    """The responses in `data`, parsed by h11 as a client that sent `methods` in turn."""
    conn = h11.Connection(h11.CLIENT)
    conn.receive_data(data)
    if eof:
        conn.receive_data(b"")
    responses = []
    for method in methods:
        if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
            conn.start_next_cycle()
        conn.send(h11.Request(method=method, target="/", headers=[(b"host", b"t")]))
        conn.send(h11.EndOfMessage())
        status, headers, body = 0, {}, b""
        while True:
            event = conn.next_event()
            assert event is not h11.NEED_DATA, "response incomplete"
            if isinstance(event, h11.Response):
                status, headers = event.status_code, dict(event.headers)
            elif isinstance(event, h11.Data):
                body += bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                break
        responses.append((status, headers, body))
    return responses


def echo_app(calls: list[Message]) -> App:
    """Answers with the method, path and whole request body; records each scope."""

    async def app(scope: Message, receive: Receive, send: Send) -> None:
        calls.append(scope)
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        reply = f"{scope['method']} {scope['path']} ".encode() + body
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": reply})

    return app


GET = b"GET /hello?x=1 HTTP/1.1\r\nHost: example.test\r\n\r\n"
WS_HEADERS = (b"Connection: Upgrade\r\nUpgrade: websocket\r\n"
              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n")
WS_UPGRADE = b"GET /ws HTTP/1.1\r\nHost: a\r\n" + WS_HEADERS + b"\r\n"


def test_get_is_one_write_of_head_and_body(parser_class: type[ParserAdapter]) -> None:
    async def test() -> None:
        calls: list[Message] = []
        conn = Connection(parser_class, echo_app(calls))
        conn.feed(GET)
        await settle()
        assert len(conn.transport.writes) == 1
        [write] = conn.transport.writes
        head, _, body = write.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK\r\ndate: ")
        assert b"\r\nserver: gunicorn\r\ncontent-type: text/plain\r\ncontent-length: 11" in head
        assert body == b"GET /hello "
        [(status, headers, parsed)] = read_responses(write, [b"GET"])
        assert status == 200 and parsed == b"GET /hello " and headers[b"content-length"] == b"11"
        assert not conn.transport.closed  # keep-alive
        scope = calls[0]
        assert scope["query_string"] == b"x=1" and scope["client"] == PEER
        assert scope["server"] == SOCK and scope["http_version"] == "1.1"
        assert (b"host", b"example.test") in scope["headers"]
        await conn.close()
        assert conn.protocol.lost and conn.protocol not in conn.server.connections

    run(test)


def test_pipelined_requests_answered_in_order(parser_class: type[ParserAdapter]) -> None:
    async def test() -> None:
        gate = asyncio.Event()
        started: list[str] = []

        async def app(scope: Message, receive: Receive, send: Send) -> None:
            started.append(scope["path"])
            if scope["path"] == "/slow":
                await gate.wait()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": scope["path"].encode()})

        conn = Connection(parser_class, app)
        conn.feed(b"GET /slow HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n"
                  b"GET /3 HTTP/1.1\r\nHost: a\r\n\r\n")
        await settle()
        assert started == ["/slow"] and conn.transport.writes == []
        gate.set()
        await settle()
        assert started == ["/slow", "/2", "/3"]
        responses = read_responses(conn.transport.output, [b"GET"] * 3)
        assert [body for _, _, body in responses] == [b"/slow", b"/2", b"/3"]
        await conn.close()

    run(test)


def test_bad_request_gets_400_and_close_without_the_app(parser_class: type[ParserAdapter]) -> None:
    async def test() -> None:
        calls: list[Message] = []
        conn = Connection(parser_class, echo_app(calls))
        conn.feed(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
        await settle()
        assert conn.transport.writes == [error_response(BadRequest("repeated host"))]
        assert conn.transport.output.startswith(b"HTTP/1.1 400 Bad Request\r\n")
        assert b"connection: close" in conn.transport.output
        assert conn.transport.closed and calls == []
        assert conn.protocol.lost and conn.protocol not in conn.server.connections

    run(test)


def test_bad_request_after_a_good_one_is_answered_after_it(
        parser_class: type[ParserAdapter]) -> None:
    async def test() -> None:
        calls: list[Message] = []
        conn = Connection(parser_class, echo_app(calls))
        conn.feed(GET + b"GET / HTTP/1.1\r\nExpect: later\r\n\r\n")
        await settle()
        assert [scope["path"] for scope in calls] == ["/hello"]
        first, second = conn.transport.writes
        assert read_responses(first, [b"GET"])[0][2] == b"GET /hello "
        assert second == error_response(ExpectationFailed("later"))
        assert conn.transport.closed and conn.transport.late_writes == 0

    run(test)


def test_post_body_in_several_feeds_reaches_the_app(parser_class: type[ParserAdapter]) -> None:
    async def test() -> None:
        calls: list[Message] = []
        conn = Connection(parser_class, echo_app(calls))
        conn.feed(b"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhel")
        await settle()
        assert conn.transport.writes == []
        conn.feed(b"lo ")
        await settle()
        conn.feed(b"world")
        await settle()
        [(status, _, body)] = read_responses(conn.transport.output, [b"POST"])
        assert (status, body) == (200, b"POST /up hello world")
        await conn.close()

    run(test)


def test_chunked_post_reaches_the_app(parser_class: type[ParserAdapter]) -> None:
    async def test() -> None:
        conn = Connection(parser_class, echo_app([]))
        data = (b"POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n")
        for i in range(0, len(data), 7):
            conn.feed(data[i:i + 7])
            await settle()
        [(_, _, body)] = read_responses(conn.transport.output, [b"POST"])
        assert body == b"POST /c abcdefg"
        await conn.close()

    run(test)


def test_expect_100_continue_only_when_the_app_reads(parser_class: type[ParserAdapter]) -> None:
    async def test() -> None:
        gate = asyncio.Event()
        calls: list[Message] = []
        echo = echo_app(calls)

        async def app(scope: Message, receive: Receive, send: Send) -> None:
            await gate.wait()
            await echo(scope, receive, send)

        conn = Connection(parser_class, app)
        conn.feed(b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n"
                  b"Content-Length: 5\r\n\r\n")
        await settle()
        assert conn.transport.writes == []
        gate.set()
        await settle()
        assert conn.transport.writes == [b"HTTP/1.1 100 Continue\r\n\r\n"]
        conn.feed(b"hello")
        await settle()
        assert len(conn.transport.writes) == 2
        conn_h11 = h11.Connection(h11.CLIENT)
        conn_h11.send(h11.Request(method="POST", target="/", headers=[
            (b"host", b"a"), (b"expect", b"100-continue"), (b"content-length", b"5")]))
        conn_h11.receive_data(conn.transport.output)
        assert conn_h11.next_event().status_code == 100
        assert conn_h11.next_event().status_code == 200
        assert bytes(conn_h11.next_event().data) == b"POST / hello"
        await conn.close()

    run(test)


def test_expect_100_continue_not_sent_when_the_app_does_not_read(
        parser_class: type[ParserAdapter]) -> None:
    async def test() -> None:
        async def app(scope: Message, receive: Receive, send: Send) -> None:
            await send({"type": "http.response.start", "status": 413, "headers": []})
            await send({"type": "http.response.body", "body": b"no"})

        conn = Connection(parser_class, app)
        conn.feed(b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n"
                  b"Content-Length: 5\r\n\r\n")
        await settle()
        assert b"100 Continue" not in conn.transport.output
        [(status, _, body)] = read_responses(conn.transport.output, [b"POST"])
        assert (status, body) == (413, b"no")
        assert conn.transport.closed  # the client may still send the body: close

    run(test)


@pytest.mark.parametrize("fault", ["raise", "return"])
def test_app_failing_before_start_gets_500(parser_class: type[ParserAdapter], fault: str) -> None:
    async def test() -> None:
        async def app(scope: Message, receive: Receive, send: Send) -> None:
            if fault == "raise":
                raise RuntimeError("boom")

        conn = Connection(parser_class, app)
        conn.feed(GET)
        await settle()
        [(status, headers, body)] = read_responses(conn.transport.output, [b"GET"])
        assert status == 500 and body == b"Internal Server Error\n"
        assert headers[b"connection"] == b"close"
        assert conn.transport.closed

    run(test)


def test_app_failing_mid_response_aborts(parser_class: type[ParserAdapter]) -> None:
    async def test() -> None:
        async def app(scope: Message, receive: Receive, send: Send) -> None:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"part", "more_body": True})
            raise RuntimeError("boom")

        conn = Connection(parser_class, app)
        conn.feed(GET)
        await settle()
        assert conn.transport.output.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"transfer-encoding: chunked" in conn.transport.output
        assert not conn.transport.output.endswith(b"0\r\n\r\n")
        assert conn.transport.aborted

    run(test)


def test_head_response_has_no_body(parser_class: type[ParserAdapter]) -> None:
    async def test() -> None:
        conn = Connection(parser_class, echo_app([]))
        conn.feed(b"HEAD /x HTTP/1.1\r\nHost: a\r\n\r\n")
        await settle()
        [write] = conn.transport.writes
        assert write.endswith(b"\r\n\r\n") and b"content-length: 8" in write
        [(status, headers, body)] = read_responses(write, [b"HEAD"])
        assert (status, body) == (200, b"") and headers[b"content-length"] == b"8"
        conn.feed(GET)  # the connection is still usable
        await settle()
        assert read_responses(conn.transport.writes[1], [b"GET"])[0][2] == b"GET /hello "
        await conn.close()

    run(test)


def test_streaming_response_is_chunked(parser_class: type[ParserAdapter]) -> None:
    async def test() -> None:
        async def app(scope: Message, receive: Receive, send: Send) -> None:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            for piece in (b"a", b"bc", b""):
                await send({"type": "http.response.body", "body": piece,
                            "more_body": bool(piece)})

        conn = Connection(parser_class, app)
        conn.feed(GET)
        await settle()
        [(status, headers, body)] = read_responses(conn.transport.output, [b"GET"])
        assert headers[b"transfer-encoding"] == b"chunked" and body == b"abc"
        assert conn.transport.output.endswith(b"0\r\n\r\n")
        await conn.close()

    run(test)


def test_http10_request_closes_after_response(parser_class: type[ParserAdapter]) -> None:
    async def test() -> None:
        conn = Connection(parser_class, echo_app([]))
        conn.feed(b"GET /old HTTP/1.0\r\n\r\n")
        await settle()
        assert b"connection: close" in conn.transport.output
        assert conn.transport.closed

    run(test)


def test_keep_alive_connection_closed_by_check_timeouts(parser_class: type[ParserAdapter]) -> None:
    async def test() -> None:
        conn = Connection(parser_class, echo_app([]), keepalive=5)
        conn.feed(GET)
        await settle()
        protocol, server = conn.protocol, conn.server
        assert protocol.is_idle() and not conn.transport.closed
        protocol.idle_since = 1000.0
        protocol.check_timeouts(1004.99)
        assert not conn.transport.closed
        protocol.check_timeouts(1005.0)
        assert conn.transport.closed and not conn.transport.aborted
        await settle()
        assert protocol not in server.connections

    run(test)


def test_idle_clock_restarts_when_a_response_completes(parser_class: type[ParserAdapter]) -> None:
    """A request that ran longer than keepalive is followed by a whole keepalive."""
    async def test() -> None:
        conn = Connection(parser_class, echo_app([]), keepalive=2)
        protocol = conn.protocol
        protocol.idle_since -= 100  # the connection was made long ago
        conn.feed(GET)
        await settle()
        done = conn.loop.time()
        assert read_responses(conn.transport.output, [b"GET"])[0][0] == 200
        assert done - 0.5 <= protocol.idle_since <= done
        protocol.check_timeouts(protocol.idle_since + 1.99)
        assert not conn.transport.closed
        protocol.check_timeouts(protocol.idle_since + 2)
        assert conn.transport.closed
        await settle()

    run(test)


def test_idle_clock_starts_when_the_response_has_left_the_write_buffer(
        parser_class: type[ParserAdapter]) -> None:
    """While a slow client still reads the response the connection is not idle; the clock
    starts at the first check that finds the write buffer empty."""
    async def test() -> None:
        conn = Connection(parser_class, echo_app([]), keepalive=1)
        protocol, transport = conn.protocol, conn.transport
        transport.buffered = 1 << 20  # the response is still leaving
        conn.feed(GET)
        await settle()
        start = conn.loop.time()
        for later in (5, 50, 500):
            transport.buffered -= 1000  # the client reads a little between ticks
            protocol.check_timeouts(start + later)
            assert not transport.closed
        transport.buffered = 0
        protocol.check_timeouts(start + 600)  # the buffer is found empty: the clock starts
        protocol.check_timeouts(start + 600.99)
        assert not transport.closed
        protocol.check_timeouts(start + 601)
        assert transport.closed
        await settle()

    run(test)


def test_client_that_stops_reading_is_idle(parser_class: type[ParserAdapter]) -> None:
    """Bytes left unread for keepalive seconds do not keep a connection open forever."""
    async def test() -> None:
        conn = Connection(parser_class, echo_app([]), keepalive=1)
        protocol, transport = conn.protocol, conn.transport
        transport.buffered = 1 << 20
        conn.feed(GET)
        await settle()
        start = conn.loop.time()
        protocol.check_timeouts(start + 5)  # the first look: the clock restarts here
        protocol.check_timeouts(start + 5.99)
        assert not transport.closed
        protocol.check_timeouts(start + 6)  # nothing read for a whole keepalive
        assert transport.closed
        await settle()

    run(test)


@pytest.mark.parametrize("keepalive", [0, 1])
def test_first_request_waits_header_timeout_not_keepalive(
        parser_class: type[ParserAdapter], keepalive: int) -> None:
    async def test() -> None:
        conn = Connection(parser_class, echo_app([]), keepalive=keepalive)
        protocol = conn.protocol
        timeout = conn.server.config.header_timeout
        assert timeout > 2
        protocol.check_timeouts(protocol.idle_since + timeout - 0.01)
        assert not conn.transport.closed  # keepalive counts between requests only
        conn.feed(GET)
        await settle()
        assert read_responses(conn.transport.output, [b"GET"])[0][0] == 200
        await conn.close()

        idle = Connection(parser_class, echo_app([]), keepalive=keepalive)
        idle.protocol.check_timeouts(idle.protocol.idle_since + timeout)
        assert idle.transport.closed and not idle.transport.aborted  # nothing was lost
        await settle()

    run(test)


def test_proxy_header_waits_header_timeout_not_keepalive(parser_class: type[ParserAdapter]) -> None:
    async def test() -> None:
        conn = Connection(parser_class, echo_app([]), keepalive=1, proxy_protocol=True,
                          proxy_allow_ips="*")
        protocol = conn.protocol
        timeout = conn.server.config.header_timeout
        conn.feed(b"PROXY TCP4 198.51.100.7 ")
        protocol.check_timeouts(protocol.idle_since + timeout - 0.01)
        assert not conn.transport.closed
        conn.feed(b"192.0.2.1 5555 80\r\n" + GET)
        await settle()
        assert read_responses(conn.transport.output, [b"GET"])[0][0] == 200
        await conn.close()

    run(test)


def test_request_in_flight_is_not_timed_out(parser_class: type[ParserAdapter]) -> None:
    async def test() -> None:
        gate = asyncio.Event()

        async def app(scope: Message, receive: Receive, send: Send) -> None:
            await gate.wait()
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body"})

        conn = Connection(parser_class, app, keepalive=1)
        conn.feed(GET)
        await settle()
        conn.protocol.check_timeouts(conn.protocol.idle_since + 3600)
        assert not conn.transport.closed
        gate.set()
        await settle()
        assert read_responses(conn.transport.output, [b"GET"])[0][0] == 204
        await conn.close()

    run(test)


def test_partial_head_times_out_after_header_timeout(
        parser_class: type[ParserAdapter], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GAW_HEADER_MIN_RATE", "0")  # header_timeout alone

    async def test() -> None:
        conn = Connection(parser_class, echo_app([]), keepalive=1)
        conn.feed(b"GET /slow HTTP/1.1\r\nHo")
        protocol = conn.protocol
        timeout = conn.server.config.header_timeout
        protocol.check_timeouts(protocol.idle_since + timeout - 0.01)
        assert not conn.transport.closed  # keepalive does not apply to a partial head
        protocol.check_timeouts(protocol.idle_since + timeout)
        assert conn.transport.aborted
        await settle()

    run(test)


def test_responses_use_the_date_block_and_tick_refreshes_it(
        parser_class: type[ParserAdapter]) -> None:
    async def test() -> None:
        conn = Connection(parser_class, echo_app([]))
        date = conn.server.date
        date.value = b"date: Mon, 01 Jan 2001 00:00:00 GMT\r\nserver: gunicorn\r\n"
        conn.feed(GET)
        await settle()
        assert b"\r\ndate: Mon, 01 Jan 2001 00:00:00 GMT\r\n" in conn.transport.writes[0]
        conn.server.tick()
        assert date.value != b"date: Mon, 01 Jan 2001 00:00:00 GMT\r\nserver: gunicorn\r\n"
        assert date.value.startswith(b"date: ") and date.value.endswith(b"server: gunicorn\r\n")
        conn.feed(GET)
        await settle()
        assert b"2001" not in conn.transport.writes[1]
        await conn.close()

    run(test)


def test_client_half_close_after_response_closes(parser_class: type[ParserAdapter]) -> None:
    async def test() -> None:
        conn = Connection(parser_class, echo_app([]))
        conn.feed(GET)
        await settle()
        assert conn.protocol.eof_received() is True
        assert conn.transport.closed
        await settle()

    run(test)


# (request target, root_path) -> the scope's (path, raw_path, query_string)
SCOPE_PATHS = [
    ((b"/a/b?x=1", ""), ("/a/b", b"/a/b", b"x=1")),
    ((b"/caf%C3%A9%20x?q=%20", ""), ("/caf\u00e9 x", b"/caf%C3%A9%20x", b"q=%20")),
    ((b"http://example.test/p?q", ""), ("/p", b"/p", b"q")),
    ((b"/p?q#frag", ""), ("/p", b"/p", b"q")),
    ((b"/x?y", "/api"), ("/api/x", b"/x", b"y")),
    ((b"/api/x", "/api"), ("/api/x", b"/api/x", b"")),
    ((b"/api", "/api"), ("/api", b"/api", b"")),
    ((b"/apix", "/api"), ("/api/apix", b"/apix", b"")),
    ((b"/api%2Fx", "/api"), ("/api/x", b"/api%2Fx", b"")),
]


@pytest.mark.parametrize(("request_target", "expected"), SCOPE_PATHS,
                         ids=[f"{t.decode()}-{r or 'no-root'}" for (t, r), _ in SCOPE_PATHS])
def test_http_and_websocket_scopes_build_their_paths_alike(parser_class: type[ParserAdapter],
        request_target: tuple[bytes, str], expected: tuple[str, bytes, bytes]) -> None:
    """The HTTP cycle (its usual case inline, the rest in `scope_path`) and the WebSocket
    session give a target the same path, raw_path and query_string, root_path included."""
    target, root_path = request_target

    async def test() -> None:
        scopes: list[Message] = []

        async def app(scope: Message, receive: Receive, send: Send) -> None:
            scopes.append(scope)
            if scope["type"] == "websocket":
                await receive()
                await send({"type": "websocket.close"})
                return
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})

        for upgrade in (b"", WS_HEADERS):
            conn = Connection(parser_class, app, {"root_path": root_path})
            conn.feed(b"GET " + target + b" HTTP/1.1\r\nHost: a\r\n" + upgrade + b"\r\n")
            await settle()
            await conn.close()
        assert [scope["type"] for scope in scopes] == ["http", "websocket"]
        for scope in scopes:
            assert (scope["path"], scope["raw_path"], scope["query_string"]) == expected
            assert scope["root_path"] == root_path
        assert scope_path(target, "GET", root_path) == expected

    run(test)


def test_bad_websocket_handshake_is_refused_without_the_app(
        parser_class: type[ParserAdapter]) -> None:
    """RFC 6455 4.2.1: no Sec-WebSocket-Key: 400 (with the version we speak), app not called."""
    async def test() -> None:
        calls: list[Message] = []
        conn = Connection(parser_class, echo_app(calls))
        conn.feed(b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                  b"\r\n")
        await settle()
        [(status, headers, _body)] = read_responses(conn.transport.output, [b"GET"])
        assert status == 400 and headers[b"sec-websocket-version"] == b"13"
        assert conn.transport.closed and calls == []

    run(test)


def test_upgrade_request_is_answered_as_http_then_closed(parser_class: type[ParserAdapter]) -> None:
    async def test() -> None:
        calls: list[Message] = []
        conn = Connection(parser_class, echo_app(calls))
        conn.feed(b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n"
                  b"\r\n\x81\x05hello")
        assert not conn.transport.reading  # what follows is not HTTP/1.1
        await settle()
        [(status, headers, body)] = read_responses(conn.transport.output, [b"GET"])
        assert (status, body) == (200, b"GET /ws ")
        assert headers[b"connection"] == b"close" and conn.transport.closed
        assert [scope["path"] for scope in calls] == ["/ws"]

    run(test)


def test_send_after_the_library_failed_the_websocket_raises_an_oserror(
        parser_class: type[ParserAdapter]) -> None:
    """Invalid UTF-8 makes the protocol fail the connection (close 1007, then the server
    ends the TCP connection): a send by the app that has not yet seen the disconnect raises
    an OSError subclass, as after any close, and writes nothing after the close frame."""
    from websockets.frames import Frame, Opcode

    async def test() -> None:
        go = asyncio.Event()
        raised: list[BaseException] = []

        async def app(scope: Message, receive: Receive, send: Send) -> None:
            await receive()  # websocket.connect
            await send({"type": "websocket.accept"})
            await go.wait()
            try:
                await send({"type": "websocket.send", "bytes": b"late"})
            except Exception as exc:  # noqa: BLE001 - recorded for the assertion
                raised.append(exc)

        conn = Connection(parser_class, app)
        conn.feed(WS_UPGRADE)
        await settle()
        assert conn.transport.output.startswith(b"HTTP/1.1 101 ")
        written = len(conn.transport.writes)
        reader = conn.transport.protocol
        frame = Frame(Opcode.TEXT, b"bad \xff").serialize(mask=True)
        reader.get_buffer(-1)[:len(frame)] = frame
        reader.buffer_updated(len(frame))
        await settle()
        [close] = conn.transport.writes[written:]
        assert close[0] == 0x88 and close[2:4] == b"\x03\xef"  # a close frame, code 1007
        go.set()
        await settle()
        assert [type(exc).__name__ for exc in raised] == ["ClientDisconnected"]
        assert isinstance(raised[0], OSError)
        assert len(conn.transport.writes) == written + 1  # nothing after the close frame
        await conn.close()

    run(test)


def test_server_tick_shrinks_a_websocket_buffer_left_with_part_of_a_frame(
        parser_class: type[ParserAdapter]) -> None:
    """The once-a-second tick: a WebSocket whose peer sent part of a frame and then nothing
    for a whole tick holds those bytes only, not a read buffer."""
    from websockets.frames import Frame, Opcode

    async def test() -> None:
        async def app(scope: Message, receive: Receive, send: Send) -> None:
            await receive()
            await send({"type": "websocket.accept"})
            await receive()

        conn = Connection(parser_class, app)
        conn.feed(WS_UPGRADE)
        await settle()
        frame = Frame(Opcode.BINARY, b"z" * 50_000).serialize(mask=True)
        reader = conn.transport.protocol
        reader.get_buffer(-1)[:12_000] = frame[:12_000]
        reader.buffer_updated(12_000)
        buffer = conn.protocol.websocket.reader
        assert buffer.buffer is not None and len(buffer.buffer) >= 32 * 1024
        conn.server.tick()
        conn.server.tick()
        assert len(buffer.buffer) == 12_000  # the frame's bytes (its header is parsed)
        await conn.close()

    run(test)


def test_a_burst_of_websocket_sends_is_one_write(parser_class: type[ParserAdapter]) -> None:
    """Frames the app sends without yielding to the loop go out in one transport write, in
    order, once it yields; the next burst is the next write."""
    from websockets.frames import Frame, Opcode

    async def test() -> None:
        go = asyncio.Event()

        async def app(scope: Message, receive: Receive, send: Send) -> None:
            await receive()
            await send({"type": "websocket.accept"})
            for burst in (b"a", b"b"):
                await go.wait()
                go.clear()
                for i in range(5):
                    await send({"type": "websocket.send", "bytes": burst * (i + 1)})
            await receive()

        conn = Connection(parser_class, app)
        conn.feed(WS_UPGRADE)
        await settle()
        for burst in (b"a", b"b"):
            written = len(conn.transport.writes)
            go.set()
            await settle()
            assert conn.transport.writes[written:] == [b"".join(
                Frame(Opcode.BINARY, burst * (i + 1)).serialize(mask=False) for i in range(5))]
        await conn.close()

    run(test)


# -- a text frame arriving in pieces: UTF-8 checked as it comes (Autobahn 6.4.3-6.4.4) --------
INVALID = "κόσμε".encode() + b"\xf4\x90\x80\x80" + b"edited"  # past U+10FFFF
VALID = "κόσμε-€-𝄞 edited".encode()


def fed_in_pieces(
        parser_class: type[ParserAdapter],
        pieces: list[bytes]) -> list[tuple[list[bytes], list[Message]]]:
    """A WebSocket session fed `pieces` one read each: after each, (the frames written since
    the 101, the messages the app has received)."""
    seen: list[tuple[list[bytes], list[Message]]] = []

    async def test() -> None:
        received: list[Message] = []

        async def app(scope: Message, receive: Receive, send: Send) -> None:
            await receive()
            await send({"type": "websocket.accept"})
            while (message := await receive())["type"] == "websocket.receive":
                received.append(message)

        conn = Connection(parser_class, app)
        conn.feed(WS_UPGRADE)
        await settle()
        assert conn.transport.output.startswith(b"HTTP/1.1 101 ")
        written = len(conn.transport.writes)
        reader = conn.transport.protocol
        for piece in pieces:
            if not conn.transport.closed:
                reader.get_buffer(-1)[:len(piece)] = piece
                reader.buffer_updated(len(piece))
            await settle()
            seen.append((list(conn.transport.writes[written:]), list(received)))
        await conn.close()

    run(test)
    return seen


def closed_1007(writes: list[bytes]) -> bool:
    return any(w[:1] == b"\x88" and w[2:4] == (1007).to_bytes(2, "big") for w in writes)


def chops(data: bytes, *cuts: int) -> list[bytes]:
    ends = [*cuts, len(data)]
    return [data[a:b] for a, b in zip([0, *cuts], ends, strict=True)]


def non_minimal(first: int, payload: bytes, mask: bytes = b"\x37\xfa\x21\x3d") -> bytes:
    """A client frame whose length takes the 8-byte form, though it would fit in 7 bits."""
    from ws_frames import masked
    return (bytes([first, 0x80 | 127]) + len(payload).to_bytes(8, "big") + mask
            + masked(payload, mask))


@pytest.mark.parametrize("size", [len(INVALID), 300, 70_000], ids=["7-bit", "16-bit", "64-bit"])
def test_invalid_utf8_in_a_text_frame_fails_as_soon_as_its_piece_arrives(
        parser_class: type[ParserAdapter], size: int) -> None:
    """One text frame in pieces, the invalid bytes in the third: the close (1007) goes out
    after that piece, before the rest of the frame; the app gets nothing."""
    from ws_frames import TEXT, frame

    payload = b"a" * (size - len(INVALID)) + INVALID
    data = frame(TEXT, payload)
    bad_end = len(data) - len(b"edited")
    # The header itself in two reads; then the valid text; then the invalid bytes; the rest.
    seen = fed_in_pieces(parser_class, chops(data, 4, bad_end - 4, bad_end))
    assert [closed_1007(writes) for writes, _ in seen] == [False, False, True, True]
    assert all(got == [] for _, got in seen)


@pytest.mark.parametrize("piece", [1, 3, 5, 7])
def test_valid_text_in_pieces_of_any_size_is_delivered_whole(
        parser_class: type[ParserAdapter], piece: int) -> None:
    """Valid text cut anywhere (inside a character, at any offset of the mask) is never
    failed, and reaches the app as one message."""
    from ws_frames import TEXT, frame

    data = frame(TEXT, VALID * 3)
    seen = fed_in_pieces(parser_class, chops(data, *range(piece, len(data), piece)))
    writes, received = seen[-1]
    assert writes == [] and received == [{"type": "websocket.receive",
                                          "text": VALID.decode() * 3}]


def test_binary_frame_in_pieces_is_not_checked_as_text(parser_class: type[ParserAdapter]) -> None:
    from ws_frames import BINARY, frame

    data = frame(BINARY, INVALID * 10)
    writes, received = fed_in_pieces(parser_class, chops(data, 10, 40, 90))[-1]
    assert writes == [] and received == [{"type": "websocket.receive", "bytes": INVALID * 10}]


def test_invalid_utf8_in_a_continuation_arriving_in_pieces_fails_at_its_piece(
        parser_class: type[ParserAdapter]) -> None:
    """A fragmented text message: the first fragment ends inside a character, whose
    continuation frame brings an invalid byte in its second piece."""
    from ws_frames import CONT, TEXT, frame

    first = frame(TEXT, "κό".encode() + b"\xcf", fin=False)  # σ's first byte
    cont = frame(CONT, b"\x83" + b"x" * 30 + b"\xff" + b"y" * 30)
    pieces = [first + cont[:12], cont[12:40], cont[40:]]
    (w1, _), (w2, _), (_, got) = fed_in_pieces(parser_class, pieces)
    assert not closed_1007(w1) and closed_1007(w2), w2
    assert got == []


def test_a_length_in_its_long_form_is_checked_or_delivered_alike(
        parser_class: type[ParserAdapter]) -> None:
    """A length written in 8 bytes though it is small (RFC 6455 asks for the shortest form,
    the library takes either): valid text in pieces is delivered, invalid is failed."""
    from ws_frames import TEXT

    good = non_minimal(0x80 | TEXT, VALID)
    writes, received = fed_in_pieces(parser_class, chops(good, 16, 20))[-1]
    assert writes == [] and received == [{"type": "websocket.receive", "text": VALID.decode()}]
    bad = non_minimal(0x80 | TEXT, INVALID)
    (_, _), (w2, _), (_, got) = fed_in_pieces(parser_class, chops(bad, 16, len(bad) - 6))
    assert closed_1007(w2) and got == []


# -- permessage-deflate negotiation (RFC 7692) ------------------------------------------------
DEFLATE_ENV = {"server": "GAW_WS_DEFLATE_SERVER_MAX_WINDOW_BITS",
               "client": "GAW_WS_DEFLATE_CLIENT_MAX_WINDOW_BITS",
               "level": "GAW_WS_DEFLATE_COMPRESSION_LEVEL", "on": "GAW_WS_PER_MESSAGE_DEFLATE"}


def server_frame(data: bytes) -> tuple[int, bytes]:
    """The first byte and the payload of one unmasked server frame."""
    n, at = data[1] & 0x7F, 2
    if n == 126:
        n, at = int.from_bytes(data[2:4], "big"), 4
    elif n == 127:
        n, at = int.from_bytes(data[2:10], "big"), 10
    assert not data[1] & 0x80 and len(data) == at + n, "not one unmasked frame"
    return data[0], data[at:]


@pytest.mark.parametrize(("offer", "options", "answer"), [
    pytest.param("permessage-deflate; client_max_window_bits", {},
                 "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12",
                 id="defaults"),
    pytest.param("permessage-deflate", {}, "permessage-deflate; server_max_window_bits=12",
                 id="client-bits-not-offered-not-asked"),
    pytest.param("permessage-deflate; server_max_window_bits=10; client_max_window_bits", {},
                 "permessage-deflate; server_max_window_bits=10; client_max_window_bits=12",
                 id="smaller-server-bits-honoured"),
    pytest.param("permessage-deflate; server_max_window_bits=15; client_max_window_bits=9", {},
                 "permessage-deflate; server_max_window_bits=12; client_max_window_bits=9",
                 id="larger-server-bits-lowered-client-bits-kept"),
    pytest.param("permessage-deflate; client_max_window_bits", {"server": 15, "client": 15},
                 "permessage-deflate; server_max_window_bits=15; client_max_window_bits=15",
                 id="options-15"),
    pytest.param("permessage-deflate; server_max_window_bits=8, permessage-deflate", {},
                 "permessage-deflate; server_max_window_bits=12",
                 id="unsupported-8-declined-next-offer-taken"),
    pytest.param("permessage-deflate; client_max_window_bits", {"level": 0},
                 "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12",
                 id="level-0-stores"),
    pytest.param("permessage-deflate; client_max_window_bits", {"on": "false"}, None,
                 id="off"),
])
def test_permessage_deflate_negotiation_and_windows(parser_class: type[ParserAdapter],
        offer: str, options: dict[str, object], answer: str | None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The 101 answers the offer per RFC 7692, and both sides keep to the negotiated windows:
    a message repeating 6000 random bytes, compressed by the client with its window, comes
    back compressed within the server's: an inflater with the negotiated window takes it
    (one that reached 6000 bytes back would be refused by a 2^12-byte one), and only a
    window larger than the repeat makes the message small."""
    import random
    import re
    import zlib

    for name, value in options.items():
        monkeypatch.setenv(DEFLATE_ENV[name], str(value))

    async def test() -> None:
        async def app(scope: Message, receive: Receive, send: Send) -> None:
            await receive()
            await send({"type": "websocket.accept"})
            message = await receive()
            await send({"type": "websocket.send", "bytes": message["bytes"]})
            await receive()

        conn = Connection(parser_class, app)
        conn.feed(WS_UPGRADE[:-2] + f"Sec-WebSocket-Extensions: {offer}\r\n\r\n".encode())
        await settle()
        head = conn.transport.output.split(b"\r\n\r\n", 1)[0].decode()
        assert head.startswith("HTTP/1.1 101 ")
        found = re.search(r"(?im)^sec-websocket-extensions: *(.*)$", head)
        assert (found.group(1).strip() if found else None) == answer
        if answer is None:
            await conn.close()
            return
        bits = dict(re.findall(r"(\w+_max_window_bits)=(\d+)", answer))
        client_bits = int(bits.get("client_max_window_bits", 15))
        server_bits = int(bits["server_max_window_bits"])
        data = random.Random(7).randbytes(6000) * 2
        compressor = zlib.compressobj(wbits=-client_bits)
        payload = (compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]
        # FIN, RSV1 (compressed), binary; masked with a zero mask (length < 65536).
        frame = b"\xc2\xfe" + len(payload).to_bytes(2, "big") + b"\0\0\0\0" + payload
        written = len(conn.transport.writes)
        reader = conn.transport.protocol
        reader.get_buffer(len(frame))[:len(frame)] = frame
        reader.buffer_updated(len(frame))
        await settle()
        first, echoed = server_frame(b"".join(conn.transport.writes[written:]))
        assert first == 0xC2  # FIN, RSV1 (compressed), binary
        inflater = zlib.decompressobj(wbits=-server_bits)
        assert inflater.decompress(echoed + b"\x00\x00\xff\xff") == data
        # Only a window over 6000 bytes (and a level above 0) compresses the repeat away.
        reaches_back = server_bits > 12 and options.get("level") != 0
        assert (len(echoed) < 7000) == reaches_back, len(echoed)
        await conn.close()

    run(test)


# -- minimum rates and eviction at the cap ---------------------------------------------------
def test_partial_head_below_min_rate_is_cut_after_grace_plus_credit(
        parser_class: type[ParserAdapter]) -> None:
    async def test() -> None:
        conn = Connection(parser_class, echo_app([]), keepalive=1)
        head = b"GET /slow HTTP/1.1\r\nHo"
        conn.feed(head)
        protocol = conn.protocol
        config = conn.server.config
        assert config.header_timeout > config.min_rate_grace + 1
        limit = config.min_rate_grace + len(head) / config.header_min_rate
        protocol.check_timeouts(protocol.idle_since + limit - 0.01)
        assert not conn.transport.closed
        protocol.check_timeouts(protocol.idle_since + limit + 0.01)
        assert conn.transport.aborted
        await settle()

    run(test)


def test_body_below_min_rate_is_cut_after_grace_plus_credit(
        parser_class: type[ParserAdapter]) -> None:
    async def test() -> None:
        conn = Connection(parser_class, echo_app([]))
        conn.feed(b"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000000\r\n\r\n")
        await settle()
        protocol = conn.protocol
        config = conn.server.config
        start = conn.loop.time()
        protocol.check_timeouts(start)  # the first look starts the body's clock
        conn.feed(b"x" * 100)
        await settle()
        limit = config.min_rate_grace + 100 / config.body_min_rate
        protocol.check_timeouts(start + limit - 0.01)
        assert not conn.transport.closed
        protocol.check_timeouts(start + limit + 0.01)
        assert conn.transport.aborted
        await settle()

    run(test)


def test_honest_upload_at_64_kib_per_second_is_never_cut(parser_class: type[ParserAdapter]) -> None:
    """Issue 19's honest client: 10 MiB at 64 KiB/s (160 s, on the protocol's clock as the
    once-a-second tick reads it) is never cut by `body_min_rate` or `body_timeout`."""
    async def test() -> None:
        conn = Connection(parser_class, echo_app([]))
        size = 160 * 65536
        conn.feed(b"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % size)
        await settle()
        start = conn.loop.time()
        for second in range(160):  # 64 KiB a second, the tick once a second
            conn.protocol.check_timeouts(start + second)
            assert not conn.transport.closed, f"cut after {second} s"
            conn.feed(b"x" * 65536)
            await settle()
        [(status, _, body)] = read_responses(conn.transport.output, [b"POST"])
        assert status == 200 and len(body) == len(b"POST /up ") + size
        await conn.close()

    run(test)


def test_eviction_rank_spares_running_apps_and_fresh_clients(
        parser_class: type[ParserAdapter]) -> None:
    async def test() -> None:
        blocked = asyncio.Event()

        async def app(scope: Message, receive: Receive, send: Send) -> None:
            if scope["path"] == "/hold":
                await blocked.wait()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})

        fresh = Connection(parser_class, app, keepalive=5)
        now = fresh.protocol.idle_since
        assert fresh.protocol.eviction_rank(now + 0.5, 1.0) is None  # bytes may be coming
        assert fresh.protocol.eviction_rank(now + 1.0, 1.0) == (1, now)
        fresh.feed(b"GET /hold HTTP/1.1\r\nHost: a\r\n\r\n")
        await settle()
        assert fresh.protocol.eviction_rank(now + 100, 1.0) is None  # the app is running
        blocked.set()
        await settle()
        done = fresh.protocol.idle_since
        assert fresh.protocol.eviction_rank(done + 0.1, 1.0) is None  # just answered
        assert fresh.protocol.eviction_rank(done + 1.0, 1.0) == (2, done)  # idle keep-alive
        fresh.protocol.evict()
        assert fresh.transport.closed and not fresh.transport.aborted  # as keepalive closes
        await settle()

    run(test)
