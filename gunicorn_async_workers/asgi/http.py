"""One ASGI HTTP request-response cycle: `receive`, `send`, and running the app.

The cycle knows nothing of sockets or parsers: the ASGI bridge (`asgi/bridge.py`) builds it
with its scope, and the body-in, response-out half it shares with the WSGI bridge lives in
`http/exchange.py`. The response head is held back until the first
body message so that a small response leaves in a single transport write, with a
Content-Length the server computes itself when the app gave none.

`send` also serves the response extensions the scope offers (`asgi/scope.py`): a file as the
body (`pathsend`, `zerocopysend`, through `http/file_body.py`), 103 Early Hints, and
trailers after a chunked body.
"""

from __future__ import annotations

import asyncio
import enum
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Final

from ..http.exchange import (
    COMPLETE,
    FINISHED,
    PENDING,
    REFUSED,
    STARTED,
    TRAILING,
    ClientDisconnected,
    Exchange,
)
from ..http.file_body import (
    file_range,
    loop_sendfile_usable,
    open_file,
    send_file_part,
    set_position,
)
from ..http.h2_exchange import Http2Framing
from ..http.response import (
    CRLF,
    LAST_CHUNK,
    LAST_CHUNK_LINE,
    NOT_IN_TRAILERS,
    ResponseError,
    frame_early_hints,
    frame_trailers,
)
from .scope import TRAILERS

if TYPE_CHECKING:
    from ..accesslog import Record
    from .bridge import AsgiBridge
    from .types import (
        ASGISendEvent,
        HTTPDisconnectEvent,
        HTTPReceiveEvents,
        HTTPRequestEvent,
        HTTPResponseEarlyHintEvent,
        HTTPResponsePathSendEvent,
        HTTPResponseTrailersEvent,
        HTTPResponseZeroCopySendEvent,
        HTTPScope,
    )

_DISCONNECT: HTTPDisconnectEvent = {"type": "http.disconnect"}
_EMPTY_BODY: HTTPRequestEvent = {"type": "http.request", "body": b"", "more_body": False}
_START: Final = "http.response.start"
_BODY: Final = "http.response.body"
_PATHSEND: Final = "http.response.pathsend"
_ZEROCOPYSEND: Final = "http.response.zerocopysend"
_EARLY_HINT: Final = "http.response.early_hint"
_TRAILERS: Final = "http.response.trailers"


class Trailers(enum.Enum):
    """What becomes of a response's trailers, as its `http.response.start` announced them."""

    NONE = "none"  # none announced: the last body message ends the response
    # Announced, and the request's TE takes them: the body is chunked (unless the app gave a
    # Content-Length) and the trailers end it.
    SEND = "send"
    # Announced, but the client did not ask for them: awaited, and dropped.
    DROP = "drop"


_NO_TRAILERS, _SEND_TRAILERS, _DROP_TRAILERS = Trailers


class RequestCycle(Exchange):
    """One ASGI HTTP cycle: the scope, `receive` and `send`, and the app's task."""

    __slots__ = ("bridge", "scope", "trailers")

    bridge: AsgiBridge
    scope: HTTPScope
    record: Record | None
    trailers: Trailers  # set by http.response.start

    def start(self) -> None:
        recorder = self.bridge.recorder
        if recorder is not None:
            recorder.start(self)
        self.protocol.loop.create_task(self.run())

    # -- the ASGI callables ------------------------------------------------------------
    async def receive(self) -> HTTPReceiveEvents:
        protocol = self.protocol
        while not self.body:
            if self.response_state is FINISHED or protocol.closing:
                return _DISCONNECT.copy()
            if self.body_state is COMPLETE:
                if self.body_read >= 0:
                    self.body_read = -1  # the final (empty) body message was handed out
                    return _EMPTY_BODY.copy()
                if protocol.eof:
                    # The client half-closed and the app listens for a disconnect: it is one.
                    protocol.close()
                    return _DISCONNECT.copy()
            elif self.expect_continue:
                self.expect_continue = False
                self.send_continue()
            protocol.resume_reading()
            waiter = self.waiter = protocol.loop.create_future()
            await waiter
        chunks = self.body
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self.body = []
        if self.body_state is not COMPLETE:
            self.body_read = 0
            protocol.resume_reading()
            return {"type": "http.request", "body": body, "more_body": True}
        self.body_read = -1
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(self, message: ASGISendEvent) -> None:
        protocol = self.protocol
        # (The message's type is compared in place: the type checker tells the events apart
        # by it.)
        if message["type"] == _BODY:
            if self.response_state is not STARTED:
                self.refuse_body_part(_BODY)
            if protocol.closing:
                raise ClientDisconnected("client disconnected")
            body = message.get("body", b"")
            more = message.get("more_body", False)
            # The send-body step, the same as WsgiCycle._write_on_loop: inline here, as a
            # shared method would cost every request one more call. Change both together.
            # (Trailers to send need a chunked body, even when the whole of it is at hand.)
            if self.framing is None:
                self.write_head(body, more or self.trailers is _SEND_TRAILERS)
            elif body:
                self.write_body(body)
            if not more:
                if self.trailers is _NO_TRAILERS:
                    self.finish()
                else:
                    self.await_trailers()
            elif protocol.write_paused:
                await protocol.drain()
        elif message["type"] == _START:
            if protocol.closing:
                raise ClientDisconnected("client disconnected")
            if self.response_state is not PENDING:
                raise RuntimeError(f"{_START} sent twice")
            self.response_state = STARTED
            self.status = message["status"]
            self.headers = message.get("headers", ())
            self.trailers = (_NO_TRAILERS if not message.get("trailers") else
                             _SEND_TRAILERS if TRAILERS in self.scope["extensions"]
                             else _DROP_TRAILERS)
        else:
            await self.send_extension(message)

    def refuse_body_part(self, kind: str) -> None:
        """A body message or file outside the body: ClientDisconnected before the response
        started on a connection that closed, else the RuntimeError that says why."""
        state = self.response_state
        if state is PENDING and self.protocol.closing:
            raise ClientDisconnected("client disconnected")
        raise RuntimeError(f"{kind} sent " + (
            "after the response completed" if state is FINISHED
            else f"after the last body message (trailers are due, {_TRAILERS})"
            if state is TRAILING else f"before {_START}"))

    # -- the response extensions ---------------------------------------------------------
    async def send_extension(self, message: ASGISendEvent) -> None:
        """A message of an extension the scope offers (asgi/scope.py)."""
        if message["type"] == _PATHSEND:
            await self.send_path(message)
        elif message["type"] == _ZEROCOPYSEND:
            await self.send_zero_copy(message)
        elif message["type"] == _TRAILERS:
            self.send_trailers(message)
        elif message["type"] == _EARLY_HINT:
            self.send_early_hint(message)
        else:
            raise RuntimeError(f"unexpected ASGI message type {message['type']!r} in an HTTP "
                               "cycle")

    async def send_path(self, message: HTTPResponsePathSendEvent) -> None:
        """The file at `path` is the whole body: opened in a thread, sized for the head, sent
        by `http/file_body.py`. A file that cannot be opened answers 500 (and raises its
        OSError to the app); the app's Content-Length must be the file's size."""
        if self.response_state is not STARTED:
            self.refuse_body_part(_PATHSEND)
        if self.framing is not None:
            raise RuntimeError(f"{_PATHSEND} sent after {_BODY} (it is the whole body)")
        if self.protocol.closing:
            raise ClientDisconnected("client disconnected")
        try:
            fd, size = await open_file(self.protocol.loop, os.fspath(message["path"]))
        except BaseException:
            self.fail()
            raise
        try:
            await self.send_file(fd, 0, size, more=False, exact=True)
        finally:
            os.close(fd)

    async def send_zero_copy(self, message: HTTPResponseZeroCopySendEvent) -> None:
        """`count` bytes of an open file from `offset` (the spec's defaults: its position, to
        its end) as a part of the body, as `http.response.body` would send them; the file
        is left positioned after them, open (the app closes it)."""
        if self.response_state is not STARTED:
            self.refuse_body_part(_ZEROCOPYSEND)
        if self.protocol.closing:
            raise ClientDisconnected("client disconnected")
        file = message.get("file")
        try:
            fd, offset, count = file_range(file, message.get("offset"), message.get("count"))
        except ResponseError:
            self.fail()
            raise
        await self.send_file(fd, offset, count, more=message.get("more_body", False))
        set_position(file, fd, offset + count)

    async def send_file(self, fd: int, offset: int, count: int, *, more: bool,
                        exact: bool = False) -> None:
        """A file part of the body, then the body's end unless `more` follows. Whatever goes
        wrong answers 500 if the head is not out yet, and cuts the connection if it is."""
        protocol = self.protocol
        try:
            await send_file_part(self, fd, offset, count,
                                 more=more or self.trailers is _SEND_TRAILERS,
                                 native=loop_sendfile_usable(protocol.loop, self.bridge.config),
                                 exact=exact)
        except BaseException:
            self.fail()
            raise
        if not more:
            if self.trailers is _NO_TRAILERS:
                self.finish()
            else:
                self.await_trailers()
        elif protocol.write_paused:
            await protocol.drain()

    def await_trailers(self) -> None:
        """The body is complete and the app announced trailers: they are awaited. When they
        are to be sent, the last chunk goes now; the trailer fields follow it."""
        self.response_state = TRAILING
        framing = self.framing
        if self.trailers is _SEND_TRAILERS and framing is not None and framing.chunked:
            self.protocol.write(LAST_CHUNK_LINE)

    def write_trailers(self, fields: Iterable[tuple[bytes, bytes]], more: bool) -> None:
        """Trailer fields (a part of them, `more` following): the chunked body's trailer
        section when the request's TE took them, else dropped; the last ends the response."""
        framing = self.framing
        sending = (self.trailers is _SEND_TRAILERS and framing is not None
                   and framing.chunked)
        if sending:
            section = frame_trailers(fields)
            if section:
                self.protocol.write(section)
        if not more:
            self.finish(CRLF if sending else LAST_CHUNK)

    def send_trailers(self, message: HTTPResponseTrailersEvent) -> None:
        """Trailer fields after the body: written as the chunked body's trailer section when
        the request's TE took them, else dropped; the last message ends the response."""
        if self.response_state is not TRAILING:
            state = self.response_state
            raise RuntimeError(f"{_TRAILERS} sent " + (
                "after the response completed" if state is FINISHED
                else f"before {_START}" if state is PENDING
                else f"without 'trailers': True in {_START}" if self.trailers is _NO_TRAILERS
                else "before the last body message"))
        protocol = self.protocol
        if protocol.closing:
            raise ClientDisconnected("client disconnected")
        self.write_trailers(message.get("headers", ()), message.get("more_trailers", False))

    def send_early_hint(self, message: HTTPResponseEarlyHintEvent) -> None:
        """A 103 Early Hints interim response with the message's links, while no final head
        is on the wire; ignored after it, and for an HTTP/1.0 client (which knows no 1xx)."""
        protocol = self.protocol
        if protocol.closing:
            raise ClientDisconnected("client disconnected")
        if self.framing is not None or self.response_state is FINISHED or self.http10:
            return
        self.write_early_hints(message.get("links", ()))

    def write_early_hints(self, links: Iterable[bytes]) -> None:
        """The 103 head with one `link` field per value (none without a link)."""
        head = frame_early_hints(links)
        if head:
            self.protocol.write(head)

    # -- running the app ---------------------------------------------------------------
    async def run(self) -> None:
        protocol = self.protocol
        bridge = self.bridge
        if self.body_state is REFUSED:
            return
        try:
            await bridge.app(self.scope, self.receive, self.send)
        except BaseException as exc:
            if isinstance(exc, ClientDisconnected) or (protocol.lost and isinstance(exc, OSError)):
                bridge.log.debug("client went away during the response")
            elif isinstance(exc, asyncio.CancelledError):
                protocol.abort()
                raise
            elif self.body_state is REFUSED:
                # Its request was refused while it ran (its body read failed): the client's
                # mistake, already answered.
                bridge.log.debug("ASGI application raised %r after its request "
                                          "was refused", exc)
            else:
                bridge.log.exception(  # as Gunicorn: statsd counts log.exception
                    "Exception in ASGI application serving %s %s",
                    self.scope["method"], self.scope["path"], exc_info=exc)
            if self.body_state is not REFUSED:  # else the refusal is on its way: keep it
                self.fail()
            if not isinstance(exc, Exception):
                raise
        else:
            finished = self.response_state is FINISHED
            if not finished and (protocol.lost or self.body_state is REFUSED):
                # The client went away, or its body was refused (the app saw
                # http.disconnect): no one to answer.
                bridge.log.debug("client went away or was refused before the response")
            elif not finished:
                bridge.log.error(
                    "ASGI application returned without %s response to %s %s",
                    "sending a" if self.response_state is PENDING else "completing its",
                    self.scope["method"], self.scope["path"])
                self.fail()
        finally:
            if bridge.recorder is not None:
                bridge.recorder.end(self)



class Http2RequestCycle(Http2Framing, RequestCycle):
    """The ASGI cycle of an HTTP/2 stream: the response as frames (`Http2Framing`), 103
    Early Hints as an interim HEADERS frame, trailers as the stream's last HEADERS frame."""

    __slots__ = ("trailer_fields",)

    def await_trailers(self) -> None:
        self.response_state = TRAILING
        self.trailer_fields: list[tuple[bytes, bytes]] = []

    def write_trailers(self, fields: Iterable[tuple[bytes, bytes]], more: bool) -> None:
        if self.trailers is _SEND_TRAILERS:
            fields = list(fields)  # read twice: an app may give any iterable
            frame_trailers(fields)  # raises for a field that must not be sent
            lowered = [(name.lower(), value) for name, value in fields]
            self.trailer_fields += [field for field in lowered
                                    if field[0] not in NOT_IN_TRAILERS]
        if more:
            return
        if self.trailer_fields:
            self.send_trailer_fields(self.trailer_fields)
        else:
            self.finish()

    def write_early_hints(self, links: Iterable[bytes]) -> None:
        links = list(links)
        if frame_early_hints(links):  # raises for a link that must not be sent
            self.stream().send_headers([(b":status", b"103")]
                                       + [(b"link", link) for link in links],
                                       end_stream=False)
