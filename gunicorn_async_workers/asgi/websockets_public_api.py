"""WebSocket sessions through the `websockets` library's public API only: the fallback.

Used when the fast path's use of the library's internals fails its self-test at import (see
`websockets_internals.py`), or when GAW_TEST_WEBSOCKET_PUBLIC_API=1 asks for it. The library
is driven as its documentation says: the upgrade request, then every read, go in through
`receive_data`; frames come out of `events_received`, bytes to write out of `data_to_send`.

Two things the fast path learns from the library's internals, this learns by following the
frame headers in the bytes it hands over (payloads are the library's to parse and check):

- which frame's payload is still arriving, and the part of it each read brings, so that the
  connection checks the UTF-8 of a text frame as it comes (`pending`, `pending_payload`);
- a close frame between the fragments of a message, where the library would fail the
  connection (1002): the message is first ended by an empty final continuation frame, whose
  event is dropped, so that the close is taken as any other (RFC 6455 5.4).

The costs: each read is copied once more (into the `bytes` that `receive_data` copies into
the library's buffer); the compressor state waits for the cycle collector once the
connection ends; and with permessage-deflate negotiated, the app's frames are serialized by
`send_text`/`send_binary`, which refuse once the peer's close has arrived, so answers to the
messages before a close are lost there (they reach the peer on the fast path).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from websockets.frames import Opcode
from websockets.http11 import Request, Response
from websockets.server import ServerProtocol

from .frame_reader import FrameBuffer

if TYPE_CHECKING:
    from websockets.protocol import Event

    from .websocket_connection import WebSocketConnection

# An empty final continuation frame (FIN, opcode 0), masked with a zero mask.
_END_OF_MESSAGE = b"\x80\x80\x00\x00\x00\x00"
_NO_MASK = b"\x00\x00\x00\x00"
_CLOSE = 0x8
_NOTHING = memoryview(b"")


def _header_size(second: int) -> int:
    """A frame header's length, from its second byte (mask bit, length code)."""
    code = second & 0x7F
    return 2 + (2 if code == 126 else 8 if code == 127 else 0) + (4 if second & 0x80 else 0)


class PublicApiInput:
    """The fallback's reading: the transport reads into `buffer`, which is emptied into
    `receive_data` at once; the frame headers in what passes are followed (see the module's
    docstring). The connection is served as by `websockets_internals.ParserInput`."""

    __slots__ = ("buffer", "connection", "fragmented", "frame", "frames", "head", "pending",
                 "piece", "received", "remaining", "stopped", "ws")

    def __init__(self, ws: ServerProtocol, connection: WebSocketConnection) -> None:
        self.ws = ws
        self.connection = connection
        self.stopped = False
        self.buffer = FrameBuffer()  # pooled, and emptied after each read
        self.frames = self  # where the connection reads the frame whose payload is arriving
        self.head = bytearray()  # the header of the next frame, while it arrives
        self.frame: tuple[int, bytes] = (0, _NO_MASK)  # (first byte, mask) of the last header
        self.remaining = 0  # payload bytes of that frame still to come
        self.received = 0  # and those already passed on
        self.fragmented = False  # a fragmented message is in progress
        self.pending: tuple[int, bytes] | None = None  # `frame`, while its payload arrives
        # During a read's handling, the part of the pending frame's payload it brought, and
        # where in the payload that part starts.
        self.piece: tuple[int, memoryview] = (0, _NOTHING)

    def start(self, request: Request) -> bool:
        """Hand the library the upgrade request, as it expects to parse it first (the HTTP
        protocol has parsed it already): True when it takes it, False when its limits
        refuse it (128 header fields, lines of 8 KiB)."""
        lines = [f"GET {request.path} HTTP/1.1\r\n"]
        lines += [f"{name}: {value}\r\n" for name, value in request.headers.raw_items()]
        lines.append("\r\n")
        ws = self.ws
        ws.receive_data("".join(lines).encode("latin-1"))
        events = ws.events_received()
        return not ws.data_to_send() and [type(event) for event in events] == [Request]

    def buffer_updated(self, nbytes: int) -> None:
        """The transport read `nbytes` into the buffer (bound as the transport's callback)."""
        buffer = self.buffer
        buffer.end += nbytes
        assert buffer.buffer is not None
        data = bytes(memoryview(buffer.buffer)[buffer.start:buffer.end])
        buffer.discard()  # back to the pool: the library keeps a copy of what it needs
        if not self.stopped:
            self._deliver(data)

    def feed(self, data: bytes) -> None:
        """Frames that arrived with the upgrade request."""
        if data and not self.stopped:
            self._deliver(data)

    def _deliver(self, data: bytes) -> None:
        ws = self.ws
        events: list[Event] = []
        at = 0
        while (split := self._follow(data, at)) >= 0:
            # A close between the fragments of a message: the message is ended first.
            if split > at:
                ws.receive_data(data[at:split])
                events += ws.events_received()
            ws.receive_data(_END_OF_MESSAGE)
            ws.events_received()  # the message it ends, dropped
            at = split
        ws.receive_data(data[at:] if at else data)
        events += ws.events_received()
        connection = self.connection
        # (Frames only, once the handshake is answered; the library's type has its requests.)
        connection.received(events)  # type: ignore[arg-type]
        self.piece = (0, _NOTHING)  # `data` is not held while the connection waits
        writes = ws.data_to_send()
        if writes:
            connection.answer(writes)

    def _follow(self, data: bytes, at: int) -> int:
        """Follow the frame headers in `data` from `at` on. Returns where a close frame
        starts that comes between the fragments of a message (the message then counts as
        ended), else -1 once `data` is followed to its end, `pending` and `piece` then naming
        the frame left waiting for its payload, if any."""
        end = len(data)
        head = self.head
        piece: tuple[int, int, int] | None = None  # (payload offset, start, stop) in `data`
        while at < end:
            remaining = self.remaining
            if remaining:
                step = min(remaining, end - at)
                piece = (self.received, at, at + step)
                self.remaining = remaining - step
                self.received += step
                at += step
                continue
            if not head:  # a frame's first byte
                first = data[at]
                opcode = first & 0x0F
                if opcode == _CLOSE and self.fragmented:
                    self.fragmented = False
                    return at
                if opcode < 3:  # continuation, text, binary: FIN ends the message
                    self.fragmented = not first & 0x80
            size = _header_size(head[1]) if len(head) >= 2 else 2
            take = min(size - len(head), end - at)
            head += data[at:at + take]
            at += take
            if len(head) < size:
                continue
            if size == 2 and _header_size(head[1]) > 2:
                continue  # the length code and mask bit are known: the rest of the header
            second = head[1]
            length = second & 0x7F
            if length == 126:
                length = int.from_bytes(head[2:4], "big")
            elif length == 127:
                length = int.from_bytes(head[2:10], "big")
            self.frame = (head[0], bytes(head[-4:]) if second & 0x80 else _NO_MASK)
            self.remaining, self.received = length, 0
            piece = None
            head.clear()
        if self.remaining:
            self.pending = self.frame
            if piece is None:
                self.piece = (self.received, _NOTHING)
            else:
                offset, start, stop = piece
                self.piece = (offset, memoryview(data)[start:stop])
        else:
            self.pending = None
        return -1

    def pending_payload(self) -> tuple[int, memoryview]:
        """The part of the pending frame's payload the read being handled brought (masked),
        and where in the payload it starts."""
        return self.piece


def frame_encoder(ws: ServerProtocol, response: Response
                  ) -> Callable[[Opcode, bytes], bytes] | None:
    """How the app's frames are serialized once the handshake is answered: None when no
    extension was negotiated (the connection writes their few header bytes itself), else by
    the library's `send_text`/`send_binary` (InvalidState once the library is closing)."""
    if "Sec-WebSocket-Extensions" not in response.headers:
        return None

    def encode(opcode: Opcode, payload: bytes) -> bytes:
        if opcode is Opcode.TEXT:
            ws.send_text(payload)
        else:
            ws.send_binary(payload)
        [frame] = ws.data_to_send()
        return frame

    return encode
