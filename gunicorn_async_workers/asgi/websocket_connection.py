"""One WebSocket connection as RFC 6455 has it, from the upgrade on: frames in and out through
the `websockets` library's sans-I/O `ServerProtocol`, messages reassembled and bounded, pings,
the closing handshake, flushing. It knows nothing of ASGI: `websocket.py` turns the messages
it queues (`take`) into ASGI messages, and the app's into frames (`send_frame`) and closes.

The library parses and checks every frame (sizes, order, close codes, compression). On the
fast path its parser reads the buffer the socket is read into (`websockets_internals`);
where that path's use of the library's internals fails its self-test, the library's public
API is used instead (`websockets_public_api`). Here, whichever way the frames came:
fragmented messages are gathered, text is checked as UTF-8 as it arrives (invalid text fails
the connection with 1007 at the fragment, or the piece of a frame, that carries it), and the
peer's close waits until the app has taken the messages sent before it.

What a peer can make a connection hold is bounded whatever it sends: a fragmented message is
gathered in one buffer and each fragment counts toward `ws_max_size` with its header bytes
(so a million empty fragments are not an empty message); the socket stops being read while
`ws_max_queue` messages, or QUEUE_BYTES of them, wait for the app; and it stops being read
while the answers its frames call for (pongs, a close) wait above the transport's high-water
mark, until the peer reads them. The app's own `send` waits on the transport.

The session's life is a `SessionState`, its steps in `_TRANSITIONS`.
"""

from __future__ import annotations

import asyncio
import codecs
import enum
import struct
import sys
from collections import deque
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, NamedTuple

from websockets.exceptions import InvalidState
from websockets.frames import CloseCode, Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.server import ServerProtocol

from ..http.exchange import ClientDisconnected
from . import websockets_internals, websockets_public_api
from .websocket_deflate import deflate_extensions
from .websockets_internals import FastServerProtocol, ParserInput, unmask
from .websockets_public_api import PublicApiInput

if TYPE_CHECKING:
    from ..config import OptionValue
    from ..http.seams import RequestConnection

# Bytes of frames the app may send before they are written without waiting for the loop.
FLUSH_AT = 256 * 1024
# How long a closing handshake may take before the connection is simply closed.
CLOSE_TIMEOUT = 5.0
# Bytes of received messages waiting for the app before the socket stops being read (the
# message that passes it is kept whole): with `ws_max_size`, a connection holds at most
# QUEUE_BYTES + one message, however the app reads. A few MiB keeps a fast app fed.
QUEUE_BYTES = 4 * 1024 * 1024
# Each fragment of a fragmented message counts toward `ws_max_size` as its payload plus this
# much: the least a client frame takes on the wire (2 bytes of header and 4 of mask). A
# message's size is then what it took on the wire, and fragments cannot be free.
FRAGMENT_COST = 6

_BINARY, _TEXT, _CONT, _CLOSE_FRAME = Opcode.BINARY, Opcode.TEXT, Opcode.CONT, Opcode.CLOSE
_utf8_decoder = codecs.getincrementaldecoder("utf-8")
# The header of an unmasked, final, uncompressed server frame: for payloads under 126 bytes,
# precomputed and indexed by opcode (text 1, binary 2), then length; else the 16- or 64-bit
# length follows the second byte.
_SHORT_HEADS = tuple([bytes([0x80 | op, n]) for n in range(126)] for op in range(3))
_MEDIUM_HEAD = struct.Struct("!BBH").pack
_LONG_HEAD = struct.Struct("!BBQ").pack
# Payloads below this are joined to their header in one bytes; larger ones are written as
# they are, beside it.
_JOIN_BELOW = 64 * 1024


class SessionState(enum.Enum):
    """Where a WebSocket session is in its life."""

    CONNECTING = "connecting"  # the handshake is not answered (or is refused over HTTP)
    OPEN = "open"  # accepted: messages both ways (the peer may have closed: see `held`)
    CLOSING = "closing"  # our close frame is sent: the peer has CLOSE_TIMEOUT to answer
    CLOSED = "closed"  # the TCP connection is closed or closing: nothing more in or out


_CONNECTING, _OPEN, _CLOSING, _CLOSED = SessionState
# The steps a session may take; any other is a bug, and raises naming both states.
_TRANSITIONS: dict[SessionState, tuple[SessionState, ...]] = {
    _CONNECTING: (_OPEN, _CLOSED),  # accepted; refused over HTTP, or the peer left
    _OPEN: (_CLOSING, _CLOSED),  # our close frame sent; closed (the peer's close, a failure)
    _CLOSING: (_CLOSED,),
    _CLOSED: (),
}


class Closed(NamedTuple):
    """The end of the session, as the app is told it."""

    code: int
    reason: str


def _close_frame_reason(data: bytes | bytearray | memoryview) -> Closed:
    """The code and reason of a close frame's payload (the library has checked it)."""
    if len(data) < 2:
        return Closed(CloseCode.NO_STATUS_RCVD, "")
    return Closed(int.from_bytes(data[:2], "big"), bytes(data[2:]).decode())


# What the inbox holds for the app: a message (binary: bytes, or a bytearray or memoryview of
# a fragmented or a compressed one; text: str), the `Closed` last; and what the session puts
# in it itself (its ASGI connect event).
InboxItem = bytes | bytearray | memoryview | str | Closed | Mapping[str, object]


class WebSocketConnection:
    """A WebSocket's frames, messages and closing handshake over one HTTP connection.

    `protocol` is the HTTP connection it came on, used as the transport of this one exchange:
    `write`, `writelines`, `close`, `pause_reading`, `resume_reading`, the flags
    `write_paused` and `read_paused`, and its `loop` (and, through `WebSocketReader`, the
    transport's other events). `wake` wakes the app waiting in `take`'s caller."""

    __slots__ = ("buffer", "close_code", "decoder", "encode", "fast", "flush_scheduled",
                 "fragments", "fragments_size", "frames", "held", "held_timer", "inbox",
                 "input", "loop", "max_queue", "max_size", "outgoing", "partial",
                 "partial_checked", "partial_decoder", "peer_close", "ping_handle",
                 "ping_interval", "ping_timeout", "pong_waiter", "protocol", "queued", "state",
                 "unflushed", "wake", "write_held", "ws")

    def __init__(self, protocol: RequestConnection, options: Mapping[str, OptionValue],
                 wake: Callable[[], None]) -> None:
        self.protocol = protocol
        self.loop: asyncio.AbstractEventLoop = protocol.loop
        self.wake = wake
        self.max_queue = int(options["ws_max_queue"])
        self.max_size = int(options["ws_max_size"])
        self.ping_interval = float(options["ws_ping_interval"])
        self.ping_timeout = float(options["ws_ping_timeout"])
        extensions = deflate_extensions(options)
        max_size = self.max_size or None
        self.fast = websockets_internals.FAST_PATH
        ws: ServerProtocol
        reader: ParserInput | PublicApiInput
        if self.fast:
            ws = FastServerProtocol(extensions=extensions, max_size=max_size)
            reader = ParserInput(ws, self)
        else:
            ws = ServerProtocol(extensions=extensions, max_size=max_size)
            reader = PublicApiInput(ws, self)
        self.ws = ws
        self.input = reader
        self.buffer = reader.buffer  # the transport reads into it
        self.frames = reader.frames  # names the frame whose payload is arriving (`pending`)
        self.state = _CONNECTING
        self.encode: Callable[[Opcode, bytes], bytes] | None = None  # see `open`
        self.close_code: int | None = None  # set once the app is told the session ended
        self.peer_close: Closed | None = None  # the peer's close frame, once received
        self.inbox: deque[InboxItem] = deque()  # messages for the app, then a Closed
        self.queued = 0  # bytes of the messages in `inbox` (see `take`)
        self.write_held = False  # reading stopped until our answers to the peer are written
        self.fragments = bytearray()  # the fragmented message being received
        self.fragments_size = 0  # its size as `ws_max_size` counts it
        # While that message is text, its UTF-8 is checked fragment by fragment.
        self.decoder: codecs.IncrementalDecoder | None = None
        # The library's answer to the peer's close or to a failure (its close frame, then the
        # end of the connection), held while the app answers the messages before it.
        self.held: list[bytes] | None = None
        self.held_timer: asyncio.TimerHandle | None = None
        # A text frame arriving in pieces (`frames.pending`), its bytes checked so far and
        # the decoder that checked them (see `_check_partial_text`).
        self.partial: tuple[int, bytes] | None = None
        self.partial_checked = 0
        self.partial_decoder: codecs.BufferedIncrementalDecoder | None = None
        self.ping_handle: asyncio.TimerHandle | None = None
        self.pong_waiter: asyncio.TimerHandle | None = None
        self.outgoing: list[bytes] = []  # frames the app sent, not written yet
        self.unflushed = 0  # their payload bytes
        self.flush_scheduled = False

    def _move(self, to: SessionState) -> None:
        if to not in _TRANSITIONS[self.state]:
            raise RuntimeError(f"a WebSocket session {self.state.value} cannot become "
                               f"{to.value}")
        self.state = to
        if to is _CLOSED:
            self.input.stopped = True

    # -- the handshake -----------------------------------------------------------------
    def judge(self, request: Request) -> Response | None:
        """The library's answer to the upgrade request (101 when it accepts it), or None
        when the library cannot take the request at all."""
        if not self.input.start(request):
            return None
        return self.ws.accept(request)

    def open(self, response: Response) -> None:
        """Send the 101 (`response`, as `judge` gave it and the app completed it)."""
        ws = self.ws
        ws.send_response(response)
        self._move(_OPEN)
        encoder = (websockets_internals if self.fast else websockets_public_api).frame_encoder
        self.encode = encoder(ws, response)
        self.flush()

    # -- bytes from the client ---------------------------------------------------------
    def received(self, events: list[Frame]) -> None:
        """Frames the library parsed from a read: their messages go to the inbox and the app
        is woken; a text frame still arriving has what came of it checked. (The reader then
        hands over what the library answers, `answer`.)"""
        inbox = self.inbox
        for frame in events:
            if frame.opcode is _BINARY and frame.fin:  # a whole binary message, the most common
                data = frame.data
                inbox.append(data)
                self.queued += len(data)
            elif self._event(frame):
                # The connection failed: what the peer sent after it is not read, but its
                # close, if it came, is what the app is told.
                last = events[-1]
                if last.opcode is _CLOSE_FRAME and last is not frame:
                    self.peer_close = _close_frame_reason(last.data)
                break
        else:
            pending = self.frames.pending
            if pending is not None and self.ws.state is State.OPEN:
                self._check_partial_text(pending)
        if inbox:
            self.wake()
        if len(inbox) >= self.max_queue or self.queued >= QUEUE_BYTES:
            self.protocol.pause_reading()  # a slow app: stop reading the socket

    def answer(self, writes: list[bytes]) -> None:
        """What the library sends in answer to a read: pongs, a close, the end of the
        connection (an empty bytes last)."""
        if not writes[-1]:
            # The library ends the connection: the peer closed, or failed it. Strict peers
            # answer the messages that came before first (Autobahn 3, 4, 5.15, 7.1.6): while
            # the app has some to take, its answer waits until the app has taken them and
            # asks for more (or returns, or CLOSE_TIMEOUT passes); the app's own answers go
            # out before it.
            self.held = writes
            if self.inbox and self.state is not _CLOSING:
                self.held_timer = self.loop.call_later(CLOSE_TIMEOUT, self.end_input)
            else:
                self.end_input()
            return
        self._write(writes)
        if self.protocol.write_paused and self.state is not _CLOSED:
            # The peer's frames call for answers it does not read: read no more of them
            # until those are written (`writes_drained`).
            self.write_held = True
            self.protocol.pause_reading()

    def writes_drained(self) -> None:
        """The transport is below its low-water mark: read again if the app allows it."""
        if self.write_held:
            self.write_held = False
            if len(self.inbox) < self.max_queue and self.queued < QUEUE_BYTES:
                self.protocol.resume_reading()

    def eof(self) -> None:
        """The peer half-closed the TCP connection."""
        if self.state is not _CLOSED:
            self.ws.receive_eof()
            self.flush()
            self._gone(CloseCode.ABNORMAL_CLOSURE)

    def connection_lost(self) -> None:
        if self.state is not _CLOSED:
            self._move(_CLOSED)
        self.end_input()
        self._gone(CloseCode.ABNORMAL_CLOSURE)
        self.encode = None  # it may hold the compressor too
        if self.fast:
            websockets_internals.free_extensions(self.ws)
        self.buffer.discard()

    def _event(self, frame: Frame) -> bool:
        """Every frame but a whole binary message (`received` queues those itself); the
        caller wakes the app. True when the frame failed the connection (invalid UTF-8)."""
        opcode = frame.opcode
        if frame.fin and opcode is _TEXT:
            # A whole message in one frame (the library has checked its size).
            return self._message(frame.data, True)
        elif opcode is _TEXT or opcode is _BINARY or opcode is _CONT:
            # A fragmented message (the library has checked the order of its frames).
            data = frame.data
            if opcode is not _CONT:
                self.fragments = bytearray(data)
                self.fragments_size = len(data) + FRAGMENT_COST
                # A fragmented text message is checked fragment by fragment: invalid UTF-8
                # fails the connection at the fragment that carries it (as strict peers do,
                # Autobahn 6.4), not once the message is whole.
                self.decoder = _utf8_decoder() if opcode is _TEXT else None
            else:
                self.fragments += data
                self.fragments_size += len(data) + FRAGMENT_COST
            max_size = self.max_size
            if max_size and self.fragments_size > max_size:
                self.fragments = bytearray()
                self.ws.fail(CloseCode.MESSAGE_TOO_BIG,
                             f"fragmented message over {max_size} bytes (ws_max_size, "
                             f"counting {FRAGMENT_COST} bytes a fragment)")
                return True
            decoder = self.decoder
            if decoder is not None:
                try:
                    decoder.decode(data, frame.fin)
                except UnicodeDecodeError:
                    self.fragments = bytearray()
                    return self._invalid_utf8()
            if frame.fin:
                message, self.fragments = self.fragments, bytearray()
                if decoder is None:
                    return self._message(bytes(message), False)
                self.decoder = None
                return self._message(message, True)  # checked above: decoding cannot fail
        elif opcode is _CLOSE_FRAME:
            self.peer_close = _close_frame_reason(frame.data)
        elif opcode is Opcode.PONG and self.pong_waiter is not None:
            self.pong_waiter.cancel()
            self.pong_waiter = None
        return False

    def _check_partial_text(self, pending: tuple[int, bytes]) -> None:
        """A frame is arriving in pieces: when it is uncompressed text (a text frame, or the
        continuation of a text message), the UTF-8 of each piece is checked as it comes, so
        that invalid text fails the connection at once (Autobahn 6.4.3-6.4.4), not once the
        rest of the frame is in. The whole frame is decoded again when it is complete."""
        if pending is not self.partial:
            self.partial, self.partial_checked = pending, 0
            first, decoder = pending[0], None
            opcode = first & 0x0F
            if first & 0x40:  # RSV1: compressed; checked once inflated
                pass
            elif opcode == _TEXT:
                decoder = _utf8_decoder()
            elif opcode == _CONT and self.decoder is not None:
                decoder = _utf8_decoder()
                decoder.setstate(self.decoder.getstate())
            self.partial_decoder = decoder
        decoder = self.partial_decoder
        if decoder is None:
            return
        offset, received = self.frames.pending_payload()
        checked = self.partial_checked
        end = offset + len(received)
        if end <= checked:
            return
        self.partial_checked = end
        if offset > checked:  # bytes that were never seen here: this frame goes unchecked
            self.partial_decoder = None
            return
        try:
            decoder.decode(unmask(received[checked - offset:], pending[1], checked))
        except UnicodeDecodeError:
            self.partial_decoder = None
            self.ws.fail(CloseCode.INVALID_DATA, "invalid UTF-8 in a text message")

    def _message(self, data: bytes | bytearray | memoryview, is_text: bool) -> bool:
        """A whole message for the app; a text one must be UTF-8 (else close 1007, and True)."""
        if is_text:
            try:
                text = str(data, "utf-8")
            except UnicodeDecodeError:
                return self._invalid_utf8()
            self.inbox.append(text)
            self.queued += sys.getsizeof(text)  # up to 4 bytes a character, whatever UTF-8 took
        else:
            self.inbox.append(data)
            self.queued += len(data)
        return False

    def _invalid_utf8(self) -> bool:
        self.ws.fail(CloseCode.INVALID_DATA, "invalid UTF-8 in a text message")
        return True

    def end_input(self) -> None:
        """The peer's close, or a failure, takes effect (see `answer`): the app's disconnect
        comes after the messages it was given, and our close frame and the end of the
        connection after the app's answers to them."""
        held = self.held
        if held is None:
            return
        self.held = None
        if self.held_timer is not None:
            self.held_timer.cancel()
            self.held_timer = None
        if self.peer_close is not None:
            self._gone(*self.peer_close)
        if self.state is not _CLOSED:
            self._write(held)

    def _gone(self, code: int, reason: str = "") -> None:
        """The session ended (closing handshake, failure or lost connection)."""
        if self.close_code is None:
            self.close_code = code
            self.inbox.append(Closed(code, reason))
            self.wake()
        self.stop_pinging()

    # -- messages to and from the app --------------------------------------------------
    def take(self) -> InboxItem | None:
        """The next message for the app: bytes (binary), str (text), a `Closed` last, or
        what the caller put in the inbox itself; None when there is none yet (the caller
        waits to be woken)."""
        inbox = self.inbox
        while not inbox:
            if self.held is not None:  # every message before the peer's close is taken
                self.end_input()
                continue
            if self.state is _CLOSED and self.close_code is None:
                self._gone(CloseCode.ABNORMAL_CLOSURE)
                continue
            return None
        message = inbox.popleft()
        kind = type(message)
        if kind is bytes:
            self.queued -= len(message)
        elif kind is str:
            self.queued -= sys.getsizeof(message)
        elif kind is bytearray:
            self.queued -= len(message)
        protocol = self.protocol
        if (protocol.read_paused and len(inbox) < self.max_queue
                and self.queued < QUEUE_BYTES and not self.write_held):
            protocol.resume_reading()
        return message

    def send_frame(self, opcode: Opcode, payload: bytes) -> None:
        """A message from the app, in one frame: written once the app yields to the loop
        (one write for a burst of sends), or at once when FLUSH_AT bytes are waiting.
        (The session is OPEN: every way out of it is checked before.)"""
        n = len(payload)
        encode = self.encode
        if encode is not None:
            try:
                self.outgoing.append(encode(opcode, payload))
            except InvalidState:  # the library's send_*, once the peer's close is in
                raise ClientDisconnected("websocket.send after the peer closed") from None
        elif n < 126:
            self.outgoing.append(_SHORT_HEADS[opcode][n] + payload)
        else:
            head = _MEDIUM_HEAD(0x80 | opcode, 126, n) if n < 65536 else _LONG_HEAD(
                0x80 | opcode, 127, n)
            if n < _JOIN_BELOW:
                self.outgoing.append(head + payload)
            else:
                self.outgoing += (head, payload)
        self.unflushed += n
        if self.unflushed >= FLUSH_AT:
            self._write_outgoing()
        elif not self.flush_scheduled:
            self.flush_scheduled = True
            self.loop.call_soon(self._scheduled_flush)

    def close(self, code: int, reason: str) -> None:
        """The app closes the session (a peer's close waiting for the app: it goes out)."""
        if self.held is not None:  # the peer closed first: our answer is ready
            self.end_input()
            return
        try:
            self.ws.send_close(code, reason)
        except InvalidState:
            raise ClientDisconnected("websocket.close after the WebSocket closed") from None
        self._closing()

    def going_away(self) -> None:
        """Graceful shutdown: close with 1001 and let the app finish."""
        if self.state is _OPEN and self.ws.state is State.OPEN:
            self.ws.send_close(CloseCode.GOING_AWAY, "server shutting down")
            self._closing()

    def end_after_app(self, code: int) -> None:
        """The app returned after accepting: finish the closing handshake."""
        if self.state is _CLOSED:
            return
        self.end_input()  # the peer's close, held for the app's answers, goes out now
        if self.ws.state is State.OPEN:
            self.ws.send_close(code)
            self._closing()
        elif self.state is _OPEN:
            self.loop.call_later(CLOSE_TIMEOUT, self._close_now)

    def _closing(self) -> None:
        """Our close frame is sent: the peer has CLOSE_TIMEOUT seconds to answer it."""
        self._move(_CLOSING)
        self.flush()
        self.stop_pinging()
        if self.state is not _CLOSED:
            self.loop.call_later(CLOSE_TIMEOUT, self._close_now)

    def _close_now(self) -> None:
        if self.state is not _CLOSED:
            self.close_transport()
            self._gone(CloseCode.ABNORMAL_CLOSURE)

    def close_transport(self) -> None:
        """Close the TCP connection (once)."""
        if self.state is not _CLOSED:
            self._move(_CLOSED)
            self.protocol.close()

    # -- bytes to the client -----------------------------------------------------------
    def flush(self) -> None:
        """Write the app's frames, then what the library has to send."""
        self._write(self.ws.data_to_send())

    def _write(self, writes: list[bytes]) -> None:
        """Write the app's frames not written yet, then `writes` (the library's); the
        library's empty bytes, or its CLOSED state, end the connection."""
        out = self.outgoing
        if out:
            self.outgoing = []
            self.unflushed = 0
            out += writes
        else:
            out = writes
        protocol = self.protocol
        if out and out[-1]:
            protocol.writelines(out)
        else:
            for data in out:
                if data:
                    protocol.write(data)
                else:  # the library's signal that the TCP connection should end
                    self.close_transport()
        if self.ws.state is State.CLOSED:
            self.close_transport()
            if self.close_code is None:
                self._gone(CloseCode.ABNORMAL_CLOSURE)

    def _write_outgoing(self) -> None:
        out = self.outgoing
        if out:
            self.outgoing = []
            self.unflushed = 0
            self.protocol.writelines(out)

    def _scheduled_flush(self) -> None:
        self.flush_scheduled = False
        if self.state is not _CLOSED:
            self._write_outgoing()

    # -- keep-alive pings ----------------------------------------------------------------
    def start_pinging(self) -> None:
        if self.ping_interval > 0:
            self.ping_handle = self.loop.call_later(self.ping_interval, self._ping)

    def _ping(self) -> None:
        if self.state is _CLOSED or self.ws.state is not State.OPEN:
            return
        self.ws.send_ping(b"gaw")
        self.flush()
        if self.ping_timeout > 0 and self.pong_waiter is None:
            self.pong_waiter = self.loop.call_later(self.ping_timeout, self._ping_timed_out)
        self.start_pinging()

    def _ping_timed_out(self) -> None:
        self.pong_waiter = None
        if self.state is not _CLOSED:
            self.ws.fail(CloseCode.INTERNAL_ERROR, "keepalive ping timeout")
            self.flush()
            self._gone(CloseCode.ABNORMAL_CLOSURE)

    def stop_pinging(self) -> None:
        for handle in (self.ping_handle, self.pong_waiter):
            if handle is not None:
                handle.cancel()
        self.ping_handle = self.pong_waiter = None


class WebSocketReader(asyncio.BufferedProtocol):
    """The transport's protocol once its connection is a WebSocket: reads go straight into
    the connection's buffer; the rest of the transport's events go to the HTTP connection
    (`connection.protocol`)."""

    __slots__ = ("buffer_updated", "connection", "get_buffer", "protocol")

    def __init__(self, connection: WebSocketConnection) -> None:
        self.connection = connection
        self.protocol = connection.protocol
        # The transport calls these for every read: bound straight to where they are served.
        # (Methods of the base class replaced by callables: the type checker allows neither.)
        self.get_buffer, self.buffer_updated = (  # type: ignore[method-assign]
            connection.buffer.get_buffer, connection.input.buffer_updated)

    def eof_received(self) -> bool:
        return bool(self.protocol.eof_received())

    def connection_lost(self, exc: Exception | None) -> None:
        self.protocol.connection_lost(exc)

    def pause_writing(self) -> None:
        self.protocol.pause_writing()

    def resume_writing(self) -> None:
        self.protocol.resume_writing()
        self.connection.writes_drained()
