"""Every use of the `websockets` library's private internals, and the check, at import, that
they still exist and behave.

The WebSocket fast path drives the library's sans-I/O `ServerProtocol` below its documented
API (`receive_data`, `events_received`, `data_to_send`, `send_*`, `fail`, `state`, ...):

- its frame parser (the `Protocol.parse` generator, kept in `parser`) reads from our
  `FrameBuffer` (set as its `reader`), which the socket is read into: no copy per read, where
  `receive_data` would take a `bytes` and copy it into the library's own buffer;
- after each read, its outgoing list (`writes`) is looked at before `data_to_send()` is called
  (which makes a new list each time): a read of data frames calls for no answer;
- the frames the app sends are serialized by `Frame.serialize` with the negotiated extensions
  (`extensions`), which are dropped once the connection is lost (their zlib streams are a
  session's largest state, and the protocol object sits in a reference cycle);
- a close frame between the fragments of a message resets the size of the message being
  received (`recv_frame`; `current_size`, `cur_size` up to websockets 15), so that the close
  is taken cleanly where the library fails the connection with 1002;
- payloads are unmasked by the library's `apply_mask` (its C speedup).

None of this is promised by the library. pyproject.toml pins the releases it is tested with
(`websockets>=13,<18`), and at import `_self_test` runs each use once on a protocol object of
its own (a masked frame parsed from a FrameBuffer, the frame a read leaves waiting for its
payload, a ping answered, a frame serialized, a close between fragments). Where one fails,
`FAST_PATH` is False and every session drives the library through its public API only
(`websockets_public_api.py`); `fast_path_problem()` says why in one line, for the worker to
log once at boot.

GAW_TEST_WEBSOCKET_PUBLIC_API=1 in the environment turns the fast path off as if its
self-test had failed: a test and diagnostic switch (the test suite serves WebSockets both
ways with it; GAW_TEST_* names are left alone by the options' environment check).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from websockets.datastructures import Headers
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import Protocol, State
from websockets.server import ServerProtocol

from .frame_reader import FrameBuffer

if TYPE_CHECKING:
    from .websocket_connection import WebSocketConnection

try:  # what the library itself unmasks with: its C speedup, else its pure Python
    from websockets.speedups import apply_mask as _library_apply_mask
except ImportError:  # pragma: no cover - a build without the extension
    from websockets.utils import apply_mask as _library_apply_mask

# Both take any buffer (the self-test below checks a memoryview); websockets 13 types the
# payload as bytes only, later releases as any buffer.
apply_mask = cast("Callable[[bytes | bytearray | memoryview, bytes], bytes]",
                  _library_apply_mask)

PUBLIC_API_ENV = "GAW_TEST_WEBSOCKET_PUBLIC_API"
TESTED = "websockets>=13,<18"


class FastServerProtocol(ServerProtocol):
    """The library's protocol, but a close frame between the fragments of a message closes
    the connection cleanly (the unfinished message dropped): RFC 6455 5.4 lets control frames
    come between fragments, and a close is one. The library fails the connection there with
    1002 "incomplete fragmented message"."""

    def recv_frame(self, frame: Frame) -> None:
        if frame.opcode is Opcode.CLOSE:
            # The size of the message being received, None between messages (`cur_size` in
            # websockets 15 and older).
            for name in ("current_size", "cur_size"):
                if getattr(self, name, None) is not None:
                    setattr(self, name, None)
        super().recv_frame(frame)


def parse_frames_from_buffer(ws: Protocol) -> FrameBuffer:
    """Start `ws`'s frame parser over a new `FrameBuffer`, before any byte is received.

    A server protocol's parser would first read the upgrade request; the HTTP protocol has
    parsed it already (and `ServerProtocol.accept` judges it), so frames are parsed at once.
    """
    # (The library's type for its reader is its own StreamReader, which FrameBuffer stands in
    # for: the same generator methods, over our buffer.)
    reader = ws.reader = FrameBuffer()  # type: ignore[assignment]
    ws.parser = Protocol.parse(ws)
    next(ws.parser)
    return reader


class ParserInput:
    """The fast path's reading: the transport reads into `buffer`, and the library's frame
    parser is run over it in place (what `receive_data` does once it has copied its bytes).

    `connection` (a `WebSocketConnection`) gets the events of each read (`received`), then,
    when the read calls for an answer, what the library has to send (`answer`); once it is
    closed it sets `stopped`, and what is read after that is dropped."""

    __slots__ = ("buffer", "connection", "frames", "stopped", "ws")

    def __init__(self, ws: ServerProtocol, connection: WebSocketConnection) -> None:
        self.ws = ws
        self.connection = connection
        self.stopped = False
        # Where the connection reads the frame whose payload is arriving (`pending`).
        self.buffer = self.frames = parse_frames_from_buffer(ws)

    def start(self, request: Request) -> bool:
        """The handshake is being accepted: the parser reads frames already. True: ready."""
        return True

    def buffer_updated(self, nbytes: int) -> None:
        """The transport read `nbytes` into the buffer (bound as the transport's callback)."""
        buffer = self.buffer
        buffer.end += nbytes  # what `FrameBuffer.buffer_updated` does, without the call
        if self.stopped:
            buffer.discard()
            return
        ws = self.ws
        next(ws.parser)  # what the library's `receive_data` does once fed
        buffer.release()
        connection = self.connection
        # (Frames only, once the handshake is answered; the library's type has its requests.)
        connection.received(ws.events_received())  # type: ignore[arg-type]
        if ws.writes:  # a pong, a close or a failure to send (data frames leave nothing)
            connection.answer(ws.data_to_send())

    def feed(self, data: bytes) -> None:
        """Frames that arrived with the upgrade request: copied into the buffer, then parsed
        as if the transport had read them there."""
        self.buffer.feed_data(data)
        self.buffer_updated(0)


def frame_encoder(ws: ServerProtocol, response: Response
                  ) -> Callable[[Opcode, bytes], bytes] | None:
    """How the app's frames are serialized once the handshake is answered: None when no
    extension was negotiated (the connection writes their few header bytes itself), else the
    library's serialization with its extensions (permessage-deflate)."""
    extensions = ws.extensions
    if not extensions:
        return None

    def encode(opcode: Opcode, payload: bytes) -> bytes:
        return Frame(opcode, payload).serialize(mask=False, extensions=extensions)

    return encode


def free_extensions(ws: ServerProtocol) -> None:
    """The connection is gone: its permessage-deflate state (zlib streams) is freed now, not
    whenever the cycle collector reaches the protocol object."""
    ws.extensions = []


def unmask(data: memoryview, mask: bytes, offset: int) -> bytes:
    """`data`, the bytes of a masked payload from `offset` on, unmasked."""
    turn = offset % 4
    return apply_mask(data, mask[turn:] + mask[:turn])


# -- the self-test -----------------------------------------------------------------------------
_MASK = b"\x0f\xa5\x5a\xf0"


def _client_frame(first: int, payload: bytes) -> bytes:
    """A masked client frame (payload under 126 bytes)."""
    masked = bytes(b ^ _MASK[i % 4] for i, b in enumerate(payload))
    return bytes([first, 0x80 | len(payload)]) + _MASK + masked


def _receive(buffer: FrameBuffer, ws: Protocol, data: bytes) -> list[Frame]:
    """As the transport and `ParserInput.buffer_updated` do it: the events of one read."""
    buffer.get_buffer(len(data))[:len(data)] = data
    buffer.end += len(data)
    next(ws.parser)
    buffer.release()
    return cast("list[Frame]", ws.events_received())  # frames: the handshake is done


def _self_test() -> str | None:
    """Each private use above once, on a protocol of its own: None when all behave, else
    what did not (one line)."""
    step = "building a server protocol"
    try:
        ws = FastServerProtocol(max_size=1 << 20)
        buffer = parse_frames_from_buffer(ws)
        headers = Headers()
        for name, value in (("Host", "gaw"), ("Upgrade", "websocket"),
                            ("Connection", "Upgrade"), ("Sec-WebSocket-Version", "13"),
                            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")):
            headers[name] = value
        response = ws.accept(Request("/", headers))
        ws.send_response(response)
        if response.status_code != 101 or ws.state is not State.OPEN:
            return "the handshake was not accepted"
        ws.data_to_send()

        step = "parsing a masked frame from a FrameBuffer"
        long = bytes(range(200))
        masked = bytes(b ^ _MASK[i % 4] for i, b in enumerate(long))
        partial = b"\x82\xfe\x00\xc8" + _MASK + masked[:50]  # a 200-byte binary frame, begun
        events = _receive(buffer, ws, _client_frame(0x81, b"gaw") + partial)
        if [(e.opcode, e.data, e.fin) for e in events] != [(Opcode.TEXT, b"gaw", True)]:
            return f"{step}: events {events!r}"
        step = "naming the frame whose payload is awaited"
        if buffer.pending != (0x82, _MASK) or bytes(buffer.pending_payload()[1]) != masked[:50]:
            return f"{step}: {buffer.pending!r}"
        if unmask(buffer.pending_payload()[1][10:], _MASK, 10) != long[10:50]:
            return "unmasking part of a payload with apply_mask"
        events = _receive(buffer, ws, masked[50:])
        if [(e.opcode, e.data) for e in events] != [(Opcode.BINARY, long)]:
            return f"{step}: the rest of the frame gave {events!r}"

        step = "answering a ping in the outgoing list"
        _receive(buffer, ws, _client_frame(0x89, b"p"))
        if ws.writes != [b"\x8a\x01p"] or ws.data_to_send() != [b"\x8a\x01p"]:
            return step

        step = "serializing a frame with the negotiated extensions"
        encode = frame_encoder(ws, response)
        if ws.extensions != [] or encode is not None:
            return step
        if Frame(Opcode.BINARY, b"x").serialize(mask=False, extensions=ws.extensions) != (
                b"\x82\x01x"):
            return step

        step = "taking a close between the fragments of a message cleanly"
        close = b"\x03\xe8"  # 1000
        events = _receive(buffer, ws, _client_frame(0x01, b"a") + _client_frame(0x88, close))
        if ([e.opcode for e in events] != [Opcode.TEXT, Opcode.CLOSE]
                or ws.data_to_send() != [b"\x88\x02" + close, b""]):
            return step
        free_extensions(ws)
    except Exception as exc:  # noqa: BLE001 - any failure is the answer
        return f"{step}: {type(exc).__name__}: {exc}"
    return None


def _problem() -> str | None:
    if os.environ.get(PUBLIC_API_ENV, "") not in ("", "0"):
        return (f"{PUBLIC_API_ENV} is set: WebSockets are served through the websockets "
                f"library's public API (slower reads; a test and diagnostic switch)")
    failed = _self_test()
    if failed is None:
        return None
    from importlib.metadata import version

    return (f"websockets {version('websockets')} fails the WebSocket fast path's self-test "
            f"({failed}); tested with {TESTED}. WebSockets are served through the library's "
            f"public API (slower reads)")


_PROBLEM = _problem()
# Whether sessions use the internals above (read as each session starts).
FAST_PATH = _PROBLEM is None


def fast_path_problem() -> str | None:
    """Why WebSockets are not served on the fast path, in one line for the worker to log once
    at boot; None when they are."""
    return _PROBLEM
