"""One request/response exchange on a connection, as the protocol drives it.

`Exchange` holds what the protocol needs of a request in flight, whatever the app interface:
the request body as it arrives (with flow control), and the response as it is written
(framing decided by `frame_response_head`, head and first body piece in one write, the body counted
against its Content-Length). The ASGI cycle, the WSGI bridge and the WebSocket session are
subclasses, built by their interface's `RequestBridge` (`http/seams.py`); an exchange sees its
connection only through `RequestConnection`. The two HTTP cycles only differ in how the app
is called and how it reads the body. The WebSocket session keeps the state the protocol and
the access log read (waiter, status, framing, bytes sent, completion) but reads frames
instead of a body.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING

from .response import LAST_CHUNK, Framing, ResponseError, chunk, frame_response_head

if TYPE_CHECKING:
    import asyncio

    from .parsers import HeadFields
    from .seams import RequestConnection

    # What an app waiting for request body (or a disconnect) waits on: the Future an ASGI
    # app awaits on the loop, or the Condition a WSGI app's pool thread waits on (the WSGI
    # cycle's `feed_body` and `wake` notify it; Exchange's own resolve the Future).
    Waiter = asyncio.Future[None] | threading.Condition

# Request body bytes buffered for an app that has not read them yet, before the protocol
# stops reading the socket (flow control towards the client).
BODY_HIGH_WATER = 256 * 1024
# Below this a body is copied into the head's write; above it the pieces go to writelines.
_JOIN_LIMIT = 16 * 1024
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_ERROR_HEADERS = [(b"content-type", b"text/plain; charset=utf-8")]


def split_target(target: bytes, method: str) -> tuple[bytes, bytes]:
    """(raw path, query) of a request target: origin-form as is, absolute-form after its
    authority (RFC 9112 3.2.2), CONNECT's authority-form whole; any fragment dropped."""
    if target[:1] != b"/" and target != b"*" and method != "CONNECT":
        start = target.find(b"/", target.find(b"://") + 3)
        target = target[start:] if start >= 0 else b"/"
    if b"#" in target:
        target = target.partition(b"#")[0]
    raw_path, _, query = target.partition(b"?")
    return raw_path, query


class BodyState(enum.Enum):
    """The request body of an exchange, as its connection delivers it."""

    STREAMING = "streaming"  # more of it is to come
    COMPLETE = "complete"  # all of it has arrived (or the request had none)
    # The response went out before the body was read: the rest is read and dropped.
    DISCARDING = "discarding"
    # Found bad while it arrived: the client is answered (or cut off) by the connection, and
    # the app is never called, or hears only a disconnect.
    REFUSED = "refused"


class ResponseState(enum.Enum):
    """The response of an exchange."""

    PENDING = "pending"  # the head was received; the app has not started a response
    STARTED = "started"  # status and headers given (the head may not be written yet)
    # The body is written; the trailers the app announced are awaited (ASGI's
    # `http.response.trailers` extension).
    TRAILING = "trailing"
    FINISHED = "finished"  # all of it written, or cut off (the connection closes)


STREAMING, COMPLETE, DISCARDING, REFUSED = BodyState
PENDING, STARTED, TRAILING, FINISHED = ResponseState


class ClientDisconnected(OSError):
    """The client went away (the ASGI spec asks `send` to raise an OSError subclass)."""


class Exchange:
    """A request in flight: body in, response out."""

    HIGH_WATER = BODY_HIGH_WATER
    # A WebSocket session takes its connection over once accepted.
    is_websocket = False
    # Whether a file body may go out through the loop's sendfile (not on HTTP/2).
    sendfile_allowed = True

    __slots__ = (
        "body",
        "body_read",
        "body_state",
        "bytes_sent",
        "expect_continue",
        "framing",
        "head_request",
        "headers",
        "http10",
        "keep_alive",
        "protocol",
        "record",
        "remaining",
        "response_state",
        "status",
        "waiter",
    )

    def __init__(self, protocol: RequestConnection, head: HeadFields) -> None:
        """The connection-facing state of a request just parsed (its bridge adds the rest)."""
        self.protocol = protocol
        self.keep_alive = head.keep_alive and protocol.may_keep_alive
        self.expect_continue = head.expect_continue
        self.body_state = STREAMING if head.chunked or head.content_length else COMPLETE
        self.http10 = head.http_version == "1.0"
        self.head_request = head.method == "HEAD"
        self.body: list[bytes] = []
        self.body_read = 0  # bytes buffered and not yet handed to the app
        self.waiter: Waiter | None = None  # set while the app waits for body or a disconnect
        self.response_state = PENDING
        self.status = 0
        self.headers: Iterable[tuple[bytes, bytes]] = ()
        self.framing: Framing | None = None
        self.remaining: int | None = None
        self.bytes_sent = 0
        # The access-log record (`accesslog.Record`, which the subclasses name: http/ does
        # not import the access log), when the access log or hooks want one.
        self.record: object = None

    def start(self) -> None:
        """Run the app on this request (its interface's way: a task, or a pool thread)."""
        raise NotImplementedError

    # -- fed by the protocol -----------------------------------------------------------
    def feed_body(self, data: bytes) -> None:
        if self.body_state is DISCARDING:
            return
        self.body.append(data)
        self.body_read += len(data)
        if self.body_read > BODY_HIGH_WATER:
            self.protocol.pause_reading()
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            # A Future: the WSGI cycle, whose waiter is a Condition, has its own.
            assert not isinstance(waiter, threading.Condition)
            if not waiter.done():
                waiter.set_result(None)

    def discard_body(self) -> None:
        """The response is complete before the body was read: read and drop the rest."""
        self.body_state = DISCARDING
        self.body = []
        self.body_read = 0

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            # A Future: the WSGI cycle, whose waiter is a Condition, has its own.
            assert not isinstance(waiter, threading.Condition)
            if not waiter.done():
                waiter.set_result(None)

    # -- response writing --------------------------------------------------------------
    def send_continue(self) -> None:
        """Tell a client waiting with `Expect: 100-continue` to send its body."""
        self.protocol.write(CONTINUE)

    def write_head(self, body: bytes, more: bool) -> None:
        protocol = self.protocol
        framing = Framing()
        head = frame_response_head(
            self.status, self.headers, protocol.date, framing, head_request=self.head_request,
            http10=self.http10, keep_alive=self.keep_alive and protocol.may_keep_alive,
            body_length=None if more else len(body))
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
        if framing.chunked:  # only when more body follows: `finish` writes the last chunk
            if not body:
                protocol.write(head)
            elif len(body) < _JOIN_LIMIT:  # one buffer is cheaper for uvloop than several
                protocol.write(b"".join([head, *chunk(body)]))
            else:
                protocol.writelines([head, *chunk(body)])
        elif len(body) < _JOIN_LIMIT:
            if not protocol.closing:
                protocol.transport_write(head + body)
        else:
            protocol.writelines([head, body])

    def write_body(self, body: bytes) -> None:
        framing = self.framing
        assert framing is not None
        if framing.no_body:
            return
        self.count_body(len(body))
        if self.remaining is not None:
            self.protocol.write(body)
        elif framing.chunked:
            if len(body) < _JOIN_LIMIT:  # one buffer is cheaper for uvloop than several
                self.protocol.write(b"".join(chunk(body)))
            else:
                self.protocol.writelines(chunk(body))
        else:
            self.protocol.write(body)

    def count_body(self, size: int) -> None:
        """`size` more body bytes go out: counted, and held to the response's length."""
        self.bytes_sent += size
        if self.remaining is not None:
            self.remaining -= size
            if self.remaining < 0:
                raise ResponseError("response body is longer than its content-length")

    def finish(self, last_chunk: bytes = LAST_CHUNK) -> None:
        """The response is complete. A chunked body ends with `last_chunk`: the last chunk
        and the empty line, or, after trailers went out, the empty line that ends them."""
        framing = self.framing
        assert framing is not None
        if framing.chunked:  # never with no_body (frame_response_head decides)
            self.protocol.write(last_chunk)
        if self.remaining:
            # Shorter than announced: the client can only tell by the connection closing.
            self.keep_alive = False
        self.response_state = FINISHED
        if self.waiter is not None:
            self.wake()
        self.protocol.on_response_complete(self)

    def fail(self) -> None:
        """Answer 500 if nothing was sent yet; otherwise the response is cut: close."""
        if self.response_state is FINISHED:
            return
        protocol = self.protocol
        if self.framing is None and not protocol.closing:
            self.status = 500
            self.headers = _ERROR_HEADERS
            self.keep_alive = False
            self.response_state = STARTED
            self.write_head(b"Internal Server Error\n", False)
            self.finish()
        else:
            self.response_state = FINISHED
            self.keep_alive = False
            protocol.abort()

