"""One ASGI HTTP request-response cycle: `receive`, `send`, and running the app.

The cycle knows nothing of sockets or parsers: it is fed body pieces by the protocol, and
writes through the protocol's `write`/`writelines`. The response head is held back until
the first body message so that a small response leaves in a single transport write, with a
Content-Length the server computes itself when the app gave none.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from ..http.errors import BadRequest
from ..http.response import (
    LAST_CHUNK,
    Framing,
    ResponseError,
    chunk,
    frame_head,
)

if TYPE_CHECKING:
    from ..http.parsers import ParserAdapter
    from ..http.protocol import HttpProtocol
    from .app import Message, Scope

# Request body bytes buffered for an app that has not read them yet, before the protocol
# stops reading the socket (flow control towards the client).
BODY_HIGH_WATER = 256 * 1024
# Below this a body is copied into the head's write; above it the pieces go to writelines.
_JOIN_LIMIT = 16 * 1024

_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_DISCONNECT: dict[str, str] = {"type": "http.disconnect"}
_EMPTY_BODY: dict[str, Any] = {"type": "http.request", "body": b"", "more_body": False}
_START = "http.response.start"
_BODY = "http.response.body"


class ClientDisconnected(OSError):
    """The client went away; raised by `send` after that (ASGI spec: an OSError subclass)."""


class RequestCycle:
    """State of one request: its body as it arrives and its response as the app sends it."""

    HIGH_WATER = BODY_HIGH_WATER

    __slots__ = (
        "body",
        "body_read",
        "bytes_sent",
        "cancelled",
        "complete",
        "discard",
        "expect_continue",
        "framing",
        "head_request",
        "headers",
        "http10",
        "keep_alive",
        "more_body",
        "protocol",
        "record",
        "remaining",
        "scope",
        "started",
        "status",
        "waiter",
    )

    def __init__(self, protocol: HttpProtocol, head: ParserAdapter) -> None:
        """Build the HTTP scope for a parsed head; the app runs later, in `run`."""
        server = protocol.server
        target = head.target
        method = head.method
        if target[:1] != b"/" and target != b"*" and method != "CONNECT":
            # absolute-form (RFC 9112 section 3.2.2): the path starts after the authority;
            # CONNECT's authority-form target is its own path
            start = target.find(b"/", target.find(b"://") + 3)
            target = target[start:] if start >= 0 else b"/"
        if b"#" in target:
            target = target.partition(b"#")[0]
        raw_path, _, query = target.partition(b"?")
        try:
            path = raw_path.decode("ascii")
        except UnicodeDecodeError:
            raise BadRequest(f"non-ASCII byte in request target {raw_path[:100]!r}") from None
        if "%" in path:
            path = unquote(path)
        root_path = server.config.root_path
        if root_path and not (path == root_path or path.startswith(root_path + "/")):
            path = root_path + path  # the proxy stripped the mount point; ASGI paths include it
        http_version = head.http_version
        self.scope: Scope = {
            "type": "http",
            "asgi": _ASGI_VERSION,
            "http_version": http_version,
            "server": protocol.sockname,
            "client": protocol.client,
            "scheme": head.scheme,
            "method": method,
            "root_path": root_path,
            "path": path,
            "raw_path": raw_path,
            "query_string": query,
            "headers": head.headers,
            "state": server.state.copy(),
        }
        self.protocol = protocol
        self.keep_alive = head.keep_alive and server.keep_alive_allowed
        self.expect_continue = head.expect_continue
        self.more_body = head.chunked or bool(head.content_length)
        self.http10 = http_version == "1.0"
        self.head_request = method == "HEAD"
        self.body: list[bytes] = []
        self.body_read = 0  # bytes buffered and not yet handed to the app
        self.discard = False
        self.cancelled = False  # refused before its app ran: the app is never called
        self.waiter: asyncio.Future[None] | None = None
        self.started = False
        self.complete = False
        self.status = 0
        self.headers: Any = ()
        self.framing: Framing | None = None
        self.remaining: int | None = None
        self.bytes_sent = 0
        self.record: Any = None  # access-log record, when the access log or hooks want one

    # -- fed by the protocol -----------------------------------------------------------
    def feed_body(self, data: bytes) -> None:
        if self.discard:
            return
        self.body.append(data)
        self.body_read += len(data)
        if self.body_read > BODY_HIGH_WATER:
            self.protocol.pause_reading()
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    # -- the ASGI callables ------------------------------------------------------------
    async def receive(self) -> Message:
        protocol = self.protocol
        while not self.body:
            if self.complete or protocol.closing:
                return dict(_DISCONNECT)
            if not self.more_body:
                if self.body_read >= 0:
                    self.body_read = -1  # the final (empty) body message was handed out
                    return dict(_EMPTY_BODY)
                if protocol.eof:
                    # The client half-closed and the app listens for a disconnect: it is one.
                    protocol.close()
                    return dict(_DISCONNECT)
            elif self.expect_continue:
                self.expect_continue = False
                protocol.write(_CONTINUE)
            protocol.resume_reading()
            waiter = self.waiter = protocol.loop.create_future()
            await waiter
        chunks = self.body
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self.body = []
        if self.more_body:
            self.body_read = 0
            protocol.resume_reading()
            return {"type": "http.request", "body": body, "more_body": True}
        self.body_read = -1
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(self, message: Message) -> None:
        protocol = self.protocol
        kind = message["type"]
        if kind == _BODY:
            if protocol.closing and not self.complete:
                raise ClientDisconnected("client disconnected")
            if not self.started or self.complete:
                raise RuntimeError(
                    f"{_BODY} sent " + ("after the response completed" if self.complete
                                        else f"before {_START}"))
            body = message.get("body", b"")
            more = message.get("more_body", False)
            if self.framing is None:
                self._write_head(body, more)
            elif body:
                self._write_body(body)
            if not more:
                self._finish()
            elif protocol.write_paused:
                await protocol.drain()
        elif kind == _START:
            if protocol.closing:
                raise ClientDisconnected("client disconnected")
            if self.started:
                raise RuntimeError(f"{_START} sent twice")
            self.started = True
            self.status = message["status"]
            self.headers = message.get("headers", ())
        else:
            raise RuntimeError(f"unexpected ASGI message type {kind!r} in an HTTP cycle")

    # -- response writing --------------------------------------------------------------
    def _write_head(self, body: bytes, more: bool) -> None:
        protocol = self.protocol
        framing = Framing()
        server = protocol.server
        head = frame_head(
            self.status, self.headers, server.date, self.head_request, self.http10,
            self.keep_alive and not server.draining, None if more else len(body), framing)
        self.framing = framing
        self.keep_alive = framing.keep_alive
        if framing.no_body:
            protocol.write(head)
            return
        if framing.content_length is not None:
            self.remaining = framing.content_length - len(body)
            if self.remaining < 0:
                raise ResponseError("response body is longer than its content-length")
        self.bytes_sent = len(body)
        if framing.chunked:
            if body:
                pieces = [head, *chunk(body)]
                if not more:
                    pieces.append(LAST_CHUNK)
                protocol.writelines(pieces)
            elif not more:
                protocol.write(head + LAST_CHUNK)
            else:
                protocol.write(head)
        elif len(body) < _JOIN_LIMIT:
            if not protocol.closing:
                protocol.transport.write(head + body)
        else:
            protocol.writelines([head, body])

    def _write_body(self, body: bytes) -> None:
        framing = self.framing
        assert framing is not None
        if framing.no_body:
            return
        self.bytes_sent += len(body)
        if self.remaining is not None:
            self.remaining -= len(body)
            if self.remaining < 0:
                raise ResponseError("response body is longer than its content-length")
            self.protocol.write(body)
        elif framing.chunked:
            self.protocol.writelines(chunk(body))
        else:
            self.protocol.write(body)

    def _finish(self) -> None:
        framing = self.framing
        assert framing is not None
        if framing.chunked and self.bytes_sent and not framing.no_body:
            self.protocol.write(LAST_CHUNK)
        if self.remaining:
            # Shorter than announced: the client can only tell by the connection closing.
            self.keep_alive = False
        self.complete = True
        if self.waiter is not None:
            self.wake()
        self.protocol.on_response_complete(self)

    # -- running the app ---------------------------------------------------------------
    async def run(self, app: Any) -> None:
        protocol = self.protocol
        if self.cancelled:
            return
        try:
            await app(self.scope, self.receive, self.send)
        except BaseException as exc:
            if isinstance(exc, ClientDisconnected) or (protocol.lost and isinstance(exc, OSError)):
                protocol.server.log.debug("client went away during the response")
            elif isinstance(exc, asyncio.CancelledError):
                protocol.abort()
                raise
            else:
                protocol.server.log.error(
                    "Exception in ASGI application serving %s %s",
                    self.scope["method"], self.scope["path"], exc_info=exc)
            self._fail()
            if not isinstance(exc, Exception):
                raise
        else:
            if not self.complete:
                protocol.server.log.error(
                    "ASGI application returned without %s response to %s %s",
                    "completing its" if self.started else "sending a",
                    self.scope["method"], self.scope["path"])
                self._fail()
        finally:
            if protocol.server.records_requests:
                protocol.server.record_end(protocol, self)

    def _fail(self) -> None:
        """Answer 500 if nothing was sent yet; otherwise the response is cut: close."""
        if self.complete:
            return
        protocol = self.protocol
        if self.framing is None and not protocol.closing:
            self.status = 500
            self.headers = [(b"content-type", b"text/plain; charset=utf-8")]
            self.keep_alive = False
            self.started = True
            self._write_head(b"Internal Server Error\n", False)
            self._finish()
        else:
            self.complete = True
            self.keep_alive = False
            protocol.abort()


_ASGI_VERSION = {"version": "3.0", "spec_version": "2.4"}
