"""An exchange's response written as HTTP/2 frames instead of HTTP/1.1 bytes.

`Http2Framing` is mixed in before an interface's request class (the ASGI cycle, the WSGI
cycle) to make the HTTP/2 variant of it: the app-facing half stays the same, and the
response goes out as a HEADERS frame and DATA frames on the request's stream
(`Http2Stream`, the exchange's `RequestConnection`), which does the flow control. It adds
no state: a class with it has the same layout as the class it extends.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from .exchange import FINISHED, Exchange
from .response import Framing, ResponseError, frame_h2_head

if TYPE_CHECKING:
    from .h2_connection import Http2Stream


class Http2Framing(Exchange):
    """The response of an HTTP/2 stream: headers, data, the end of the stream."""

    __slots__ = ()

    # An HTTP/2 response body is framed by the stream, never by the loop's sendfile.
    sendfile_allowed = False

    def stream(self) -> Http2Stream:
        """The stream this exchange's bridge was given as its connection."""
        return cast("Http2Stream", self.protocol)

    def write_head(self, body: bytes, more: bool) -> None:
        framing = Framing()
        fields = frame_h2_head(self.status, self.headers, self.protocol.date, framing,
                               head_request=self.head_request,
                               body_length=None if more else len(body))
        self.framing = framing
        stream = self.stream()
        if framing.no_body:
            stream.send_headers(fields, end_stream=not more)
            return
        if framing.content_length is not None:
            self.remaining = framing.content_length - len(body)
            if self.remaining < 0:
                raise ResponseError("response body is longer than its content-length")
        self.bytes_sent = len(body)
        stream.send_headers(fields, end_stream=False)
        if body or not more:
            stream.send_data(body, end_stream=not more)

    def write_body(self, body: bytes) -> None:
        framing = self.framing
        assert framing is not None
        if framing.no_body:
            return
        self.count_body(len(body))
        self.stream().send_data(body, end_stream=False)

    def finish(self, last_chunk: bytes = b"") -> None:
        """The response is complete: the stream ends (after any data still waiting for the
        peer's window). A body shorter than its content-length resets the stream."""
        stream = self.stream()
        if self.remaining:
            stream.abort()
        else:
            stream.end_response()
        self.response_state = FINISHED
        if self.waiter is not None:
            self.wake()
        self.protocol.on_response_complete(self)

    def send_continue(self) -> None:
        self.stream().send_headers([(b":status", b"100")], end_stream=False)

    def send_trailer_fields(self, fields: list[tuple[bytes, bytes]]) -> None:
        """The trailers end the stream (the response is complete after them)."""
        self.stream().send_trailers(fields)
        self.response_state = FINISHED
        if self.waiter is not None:
            self.wake()
        self.protocol.on_response_complete(self)
