"""Request bodies refused by the protocol, bytes in and bytes out over a memory transport.

A chunked body that is over `max_body_size` or whose framing is broken is answered 413/400
and the connection closed. When the bytes that show it are at hand when the head is parsed
(one read, or one read and a half-close the loop reports next), the app is never called.
When they come while the app runs and no response has started, the client still gets its
413/400 (never aborted away), the app's body read fails (ASGI: `http.disconnect`; WSGI:
`wsgi.input` raises an OSError), and whether the app then returns or raises, nothing is
logged at ERROR: the mistake is the client's. For ASGI and WSGI apps, behind each parser.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from gunicorn.config import Config
from gunicorn.glogging import Logger
from test_protocol import MemoryTransport, Message, Receive, Send, settle

from gunicorn_async_workers.config import ServerConfig
from gunicorn_async_workers.http.parsers import ParserAdapter
from gunicorn_async_workers.http.protocol import HttpProtocol
from gunicorn_async_workers.server import Server
from gunicorn_async_workers.wsgi.bridge import base_environ

HEAD = b"POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
MAX_BODY_SIZE = 100


class RecordingLogger(Logger):
    """Gunicorn's logger, keeping what is logged at ERROR level or above."""

    def __init__(self, cfg: Config) -> None:
        super().__init__(cfg)
        self.errors: list[str] = []

    def error(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self.errors.append(msg % args if args else msg)

    def exception(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self.errors.append(msg % args if args else msg)

    def critical(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self.errors.append(msg % args if args else msg)


class Gone(Exception):
    """An app's own error for a body it could not read (as Starlette's ClientDisconnect)."""


class Apps:
    """An ASGI and a WSGI app that read the whole body, noting what they saw."""

    def __init__(self, gone: str) -> None:
        self.gone = gone  # "return" or "raise" when the body read fails
        self.seen: list[str] = []  # "called", "body:N", "disconnect", "read failed", "done"

    async def asgi(self, scope: Message, receive: Receive, send: Send) -> None:
        self.seen.append("called")
        try:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    self.seen.append("disconnect")
                    if self.gone == "raise":
                        raise Gone()
                    return
                self.seen.append(f"body:{len(message['body'])}")
                if not message.get("more_body"):
                    break
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"read"})
        finally:
            self.seen.append("done")

    def wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]
             ) -> Iterable[bytes]:
        self.seen.append("called")
        try:
            stream = environ["wsgi.input"]
            try:
                while data := stream.read(5):
                    self.seen.append(f"body:{len(data)}")
            except OSError:
                self.seen.append("read failed")
                if self.gone == "raise":
                    raise Gone() from None
            start_response("200 OK", [])
            return [b"read"]
        finally:
            self.seen.append("done")


class FlushingTransport(MemoryTransport):
    """A transport whose close completes some loop turns later, as a socket's does while
    the refusal is still in its write buffer: the app may run on before connection_lost."""

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.loop.call_soon(self._lose, 10)

    def _lose(self, turns: int) -> None:
        if turns:
            self.loop.call_soon(self._lose, turns - 1)
        else:
            self.protocol.connection_lost(None)


class Connection:
    """One HttpProtocol on a FlushingTransport, served by a real Server (ASGI or WSGI)."""

    def __init__(self, parser: type[ParserAdapter], interface: str, apps: Apps) -> None:
        cfg = Config()
        cfg.set("threads", 2)
        self.log = RecordingLogger(cfg)
        config = ServerConfig.from_gunicorn(cfg, self.log, {"max_body_size": MAX_BODY_SIZE},
                                            max_requests=sys.maxsize)
        self.loop = asyncio.get_running_loop()
        app = apps.asgi if interface == "asgi" else apps.wsgi
        self.server = Server(config, app, self.loop, self.log, None, parser_class=parser)
        if interface == "wsgi":
            self.server.serve_wsgi(base_environ(cfg, 2), "")
        self.protocol = HttpProtocol(self.server)
        self.transport = FlushingTransport(self.protocol, self.loop)
        self.protocol.connection_made(self.transport)

    async def until(self, condition: Callable[[], object], what: str) -> None:
        """Run the loop until `condition` holds (a WSGI app runs in a pool thread)."""
        for _ in range(500):
            if condition():
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"{what}: not within 5 s")

    def shutdown(self) -> None:
        self.server.close_all()


def status_of(output: bytes) -> int:
    assert output.startswith(b"HTTP/1.1 "), output[:80]
    return int(output[9:12])


def run(test: Callable[[], Any]) -> None:
    asyncio.run(test())


INTERFACES = ["asgi", "wsgi"]
OVER = b"%x\r\n%s\r\n" % (MAX_BODY_SIZE, b"b" * MAX_BODY_SIZE)  # 100 more: over with any start
FIRST = b"5\r\nhello"  # a first chunk, its CRLF still to come
BROKEN = {  # what follows FIRST, and its status
    "over_max_body_size": (b"\r\n" + OVER + b"0\r\n\r\n", 413),
    "bad_size": (b"\r\nzz\r\n0\r\n\r\n", 400),
    "data_without_crlf": (b"XY0\r\n\r\n", 400),
    "bad_trailer": (b"\r\n0\r\nno colon\r\n\r\n", 400),
    "long_extension": (b"\r\n5;x=" + b"e" * 9000 + b"\r\nhello\r\n0\r\n\r\n", 400),
}


@pytest.mark.parametrize("interface", INTERFACES)
@pytest.mark.parametrize("case", BROKEN)
def test_bad_body_in_the_first_read_never_reaches_the_app(
        parser_class: type[ParserAdapter], interface: str, case: str) -> None:
    rest, status = BROKEN[case]

    async def test() -> None:
        apps = Apps("return")
        conn = Connection(parser_class, interface, apps)
        conn.protocol.data_received(HEAD + FIRST + rest)
        await conn.until(lambda: conn.protocol.lost, "the connection closed")
        await settle()
        conn.shutdown()
        assert status_of(conn.transport.output) == status
        assert apps.seen == [] and conn.log.errors == []

    run(test)


@pytest.mark.parametrize("interface", INTERFACES)
def test_half_close_reported_after_the_read_refuses_the_body_before_the_app(
        parser_class: type[ParserAdapter], interface: str) -> None:
    """The stdlib loop reports a FIN that came with the data in its next callback: the
    body it cuts short (no final CRLF) is refused before the app runs."""

    async def test() -> None:
        apps = Apps("return")
        conn = Connection(parser_class, interface, apps)
        conn.protocol.data_received(HEAD + b"5\r\nhello\r\n0\r\n")
        conn.loop.call_soon(conn.protocol.eof_received)
        await conn.until(lambda: conn.protocol.lost, "the connection closed")
        await settle()
        conn.shutdown()
        assert status_of(conn.transport.output) == 400
        assert apps.seen == [] and conn.log.errors == []

    run(test)


@pytest.mark.parametrize("gone", ["return", "raise"])
@pytest.mark.parametrize("interface", INTERFACES)
@pytest.mark.parametrize("case", BROKEN)
def test_bad_body_while_the_app_reads_is_answered_quietly(
        parser_class: type[ParserAdapter], interface: str, case: str, gone: str) -> None:
    rest, status = BROKEN[case]

    async def test() -> None:
        apps = Apps(gone)
        conn = Connection(parser_class, interface, apps)
        conn.protocol.data_received(HEAD + FIRST)
        await conn.until(lambda: "body:5" in apps.seen, "the app reading the first chunk")
        conn.protocol.data_received(rest)
        await conn.until(lambda: "done" in apps.seen and conn.protocol.lost, "the app done")
        await settle()
        conn.shutdown()
        assert status_of(conn.transport.output) == status
        assert not conn.transport.aborted, "the refusal was aborted away"
        failed = "disconnect" if interface == "asgi" else "read failed"
        assert apps.seen == ["called", "body:5", failed, "done"]
        assert conn.log.errors == []

    run(test)
