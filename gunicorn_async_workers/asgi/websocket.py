"""ASGI WebSocket sessions over the `websockets` library's sans-I/O `ServerProtocol`.

The HTTP protocol hands a connection here once an `Upgrade: websocket` request has been
parsed. The handshake is judged by `ServerProtocol.accept` (a bad one is answered 400/426 and
never reaches the app); frames, pings, close codes, UTF-8 and size checks are the library's;
this module reassembles fragmented messages, speaks the ASGI WebSocket messages (including
the `websocket.http.response` denial extension), bounds both directions and pings idle
peers.

What a peer can make a connection hold is bounded whatever it sends: a fragmented message is
gathered in one buffer and each fragment counts toward `ws_max_size` with its header bytes
(so a million empty fragments are not an empty message); the socket stops being read while
`ws_max_queue` messages, or QUEUE_BYTES of them, wait for the app; and it stops being read
while the answers its frames call for (pongs, a close) wait above the transport's high-water
mark, until the peer reads them. The app's own `send` waits on the transport.
"""

from __future__ import annotations

import asyncio
import codecs
import sys
from collections import deque
from typing import TYPE_CHECKING, Any

from websockets.datastructures import Headers
from websockets.exceptions import InvalidState, NegotiationError
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from websockets.frames import CloseCode, Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol

from ..http.exchange import ClientDisconnected, Exchange
from ..http.response import Framing, frame_head
from .frame_reader import FrameBuffer, parse_frames_from_buffer, unmask
from .scope import ASGI_VERSION, scope_path

if TYPE_CHECKING:
    from ..http.parsers import ParserAdapter
    from ..http.seams import RequestConnection
    from .app import Message
    from .bridge import AsgiBridge

_EXTENSIONS = {"websocket.http.response": {}}
_CONNECT = {"type": "websocket.connect"}
_BINARY, _TEXT = Opcode.BINARY, Opcode.TEXT
_utf8_decoder = codecs.getincrementaldecoder("utf-8")
# Bytes of frames the app may send before they are written without waiting for the loop.
_FLUSH_AT = 256 * 1024
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


class DeflateFactory(ServerPerMessageDeflateFactory):
    """The library's permessage-deflate negotiation, declining an offer of
    `server_max_window_bits=8` (zlib cannot compress raw deflate with an 8-bit window), so that
    the client's next offer is taken. websockets 17 declines it itself; 13-16 accept it and
    fail building the compressor, which would answer the upgrade 500."""

    def process_request_params(self, params: Any, accepted_extensions: Any) -> Any:
        if any(name == "server_max_window_bits" and value == "8" for name, value in params):
            raise NegotiationError("unsupported server_max_window_bits = 8, use 9")
        return super().process_request_params(params, accepted_extensions)


_deflate: tuple[dict[str, object], list[ServerPerMessageDeflateFactory] | None] | None = None


def deflate_extensions(options: dict[str, object]) -> list[ServerPerMessageDeflateFactory] | None:
    """The extensions a session offers, built once per worker from its options: the library
    negotiates permessage-deflate with them as RFC 7692 says (a client's smaller
    `server_max_window_bits` is honoured; `client_max_window_bits` is asked only of a client
    that offers it)."""
    global _deflate
    if _deflate is not None and _deflate[0] is options:
        return _deflate[1]
    factories = None
    if options["ws_per_message_deflate"]:
        server_bits, client_bits, memory, level = (
            int(options[f"ws_deflate_{name}"])  # type: ignore[call-overload]
            for name in ("server_max_window_bits", "client_max_window_bits", "memory_level",
                         "compression_level"))
        factories = [DeflateFactory(
            server_max_window_bits=server_bits, client_max_window_bits=client_bits,
            compress_settings={"memLevel": memory, "level": level})]
    _deflate = (options, factories)
    return factories


class WebSocketSession(Exchange):
    """One WebSocket connection, from the upgrade request to the closing handshake."""

    __slots__ = ("accepted", "bridge", "close_code", "close_sent", "closed", "flush_scheduled",
                 "decoder", "fragments", "fragments_size", "handshake", "held", "held_timer",
                 "inbox", "max_queue", "max_size", "options", "partial", "partial_checked",
                 "partial_decoder", "ping_handle", "pong_waiter", "queued", "reader",
                 "request", "request_method", "scope", "unflushed", "write_held", "ws")

    is_websocket = True

    def __init__(self, bridge: AsgiBridge, protocol: RequestConnection,
                 head: ParserAdapter) -> None:
        self.bridge = bridge
        config = bridge.config
        target = head.target
        root_path = config.root_path
        path, raw_path, query = scope_path(target, head.method, root_path)
        subprotocols = [p.strip() for value in (v for n, v in head.headers
                                                if n == b"sec-websocket-protocol")
                        for p in value.decode("latin-1").split(",") if p.strip()]
        self.scope: dict[str, Any] = {
            "type": "websocket",
            "asgi": ASGI_VERSION,
            "http_version": head.http_version,
            "scheme": "wss" if head.scheme == "https" else "ws",
            "server": protocol.sockname,
            "client": protocol.client,
            "root_path": root_path,
            "path": path,
            "raw_path": raw_path,
            "query_string": query,
            "headers": head.headers,
            "subprotocols": subprotocols,
            "state": bridge.state.copy(),
            "extensions": (_EXTENSIONS if protocol.extensions is None
                           else {**_EXTENSIONS, **protocol.extensions}),
        }
        self.request_method = head.method
        Exchange.__init__(self, protocol, head)
        self.keep_alive = False
        self.options = config.options
        self.max_queue = int(self.options["ws_max_queue"])  # type: ignore[call-overload]
        self.max_size = int(self.options["ws_max_size"])  # type: ignore[call-overload]
        headers = Headers()
        for name, value in head.headers:
            headers[name.decode("latin-1")] = value.decode("latin-1")
        self.request = Request(target.decode("latin-1"), headers)
        extensions = deflate_extensions(self.options)
        ws = self.ws = _ServerProtocol(extensions=extensions, max_size=self.max_size or None)
        self.reader: FrameBuffer = parse_frames_from_buffer(ws)
        self.handshake: Any = None  # the 101 response, once judged valid
        self.accepted = False
        self.closed = False
        self.close_sent = False  # our close frame is out: the app may send nothing more
        self.close_code: int | None = None
        self.inbox: deque[Message] = deque([_CONNECT])
        self.queued = 0  # bytes of the messages in `inbox` (see `_size`)
        self.write_held = False  # reading stopped until our answers to the peer are written
        self.fragments = bytearray()  # the fragmented message being received
        self.fragments_size = 0  # its size as `ws_max_size` counts it
        # While that message is text, its UTF-8 is checked fragment by fragment.
        self.decoder: codecs.IncrementalDecoder | None = None
        # The library's answer to the peer's close or to a failure (its close frame, then the
        # end of the connection), held while the app answers the messages before it.
        self.held: list[bytes] | None = None
        self.held_timer: asyncio.TimerHandle | None = None
        # A text frame arriving in pieces (the reader's `pending`), its bytes checked so far
        # and the decoder that checked them (see `_check_partial_text`).
        self.partial: tuple[int, bytes] | None = None
        self.partial_checked = 0
        self.partial_decoder: codecs.IncrementalDecoder | None = None
        self.ping_handle: asyncio.TimerHandle | None = None
        self.pong_waiter: asyncio.TimerHandle | None = None
        self.unflushed = 0  # bytes of frames the app sent that are not written yet
        self.flush_scheduled = False

    # -- bytes from the client ---------------------------------------------------------
    def transport_protocol(self) -> WebSocketReader:
        """The transport's protocol from the upgrade on: it reads into this session's buffer."""
        return WebSocketReader(self)

    def feed(self, data: bytes) -> None:
        """Frames that arrived with the upgrade request: copied into the buffer, then parsed
        as if the transport had read them there."""
        self.reader.feed_data(data)
        self.buffer_updated(0)

    def buffer_updated(self, nbytes: int) -> None:
        """Frames the transport read into the buffer: the library parses them there."""
        reader = self.reader
        reader.end += nbytes  # what `FrameBuffer.buffer_updated` does, without the call
        if self.closed:
            reader.discard()
            return
        next(self.ws.parser)  # what the library's `receive_data` does once fed
        reader.release()
        self._received()

    def _received(self) -> None:
        """Hand the parsed messages to the app; send what the protocol answers."""
        ws = self.ws
        inbox = self.inbox
        for frame in ws.events_received():
            if frame.opcode is _BINARY and frame.fin:  # a whole binary message, the most common
                data = frame.data
                inbox.append({"type": "websocket.receive", "bytes": data})
                self.queued += len(data)
            elif self._event(frame):
                break  # the connection failed: what the peer sent after it is not read
        else:
            pending = self.reader.pending
            if pending is not None and ws.state is State.OPEN:
                self._check_partial_text(pending)
        if inbox:
            self.wake()
        # Data frames alone leave nothing to send: a pong, a close or a failure does.
        # (`writes` is the library's outgoing list, which `data_to_send` hands over.)
        writes = ws.writes
        if writes and not writes[-1]:
            # The library ends the connection: the peer closed, or failed it. Strict peers
            # answer the messages that came before first (Autobahn 3, 4, 5.15, 7.1.6): while
            # the app has some to take, its answer waits until the app has taken them and
            # asks for more (or returns, or CLOSE_TIMEOUT passes); the app's own answers go
            # out before it.
            self.held = ws.data_to_send()
            if inbox and not self.close_sent:
                self.held_timer = self.protocol.loop.call_later(CLOSE_TIMEOUT, self._end_input)
            else:
                self._end_input()
        elif writes or ws.state is not State.OPEN:
            self._flush()
            if self.protocol.write_paused and not self.closed:
                # The peer's frames call for answers it does not read: read no more of them
                # until those are written (`writes_drained`).
                self.write_held = True
                self.protocol.pause_reading()
        if len(inbox) >= self.max_queue or self.queued >= QUEUE_BYTES:
            self.protocol.pause_reading()  # a slow app: stop reading the socket

    def writes_drained(self) -> None:
        """The transport is below its low-water mark: read again if the app allows it."""
        if self.write_held:
            self.write_held = False
            if len(self.inbox) < self.max_queue and self.queued < QUEUE_BYTES:
                self.protocol.resume_reading()

    def connection_lost(self) -> None:
        self.closed = True
        self._end_input()
        self._gone(CloseCode.ABNORMAL_CLOSURE)
        # permessage-deflate's zlib streams are the session's largest state; the library's
        # protocol object sits in reference cycles (its suspended parser), so free them now
        # rather than whenever the cycle collector runs.
        self.ws.extensions = []
        self.reader.discard()

    def eof(self) -> None:
        if not self.closed:
            self.ws.receive_eof()
            self._flush()
            self._gone(CloseCode.ABNORMAL_CLOSURE)

    def _event(self, frame: Frame) -> bool:
        """Every frame but a whole binary message (`_received` queues those itself); the
        caller wakes the app. True when the frame failed the connection (invalid UTF-8)."""
        opcode = frame.opcode
        if frame.fin and opcode is _TEXT:
            # A whole message in one frame (the library has checked its size).
            return self._message(frame.data, True)
        elif opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
            # A fragmented message (the library has checked the order of its frames).
            data = frame.data
            if opcode != Opcode.CONT:
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
        elif opcode == Opcode.PONG and self.pong_waiter is not None:
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
            elif opcode == Opcode.CONT and self.decoder is not None:
                decoder = _utf8_decoder()
                decoder.setstate(self.decoder.getstate())
            self.partial_decoder = decoder
        decoder = self.partial_decoder
        if decoder is None:
            return
        received = self.reader.pending_payload()
        checked = self.partial_checked
        if len(received) > checked:
            self.partial_checked = len(received)
            try:
                decoder.decode(unmask(received[checked:], pending[1], checked))
            except UnicodeDecodeError:
                self.partial_decoder = None
                self.ws.fail(CloseCode.INVALID_DATA, "invalid UTF-8 in a text message")

    def _message(self, data: bytes | bytearray, is_text: bool) -> bool:
        """A whole message for the app; a text one must be UTF-8 (else close 1007, and True)."""
        if is_text:
            try:
                text = data.decode()
            except UnicodeDecodeError:
                return self._invalid_utf8()
            self.inbox.append({"type": "websocket.receive", "text": text})
            self.queued += sys.getsizeof(text)  # up to 4 bytes a character, whatever UTF-8 took
        else:
            self.inbox.append({"type": "websocket.receive", "bytes": data})
            self.queued += len(data)
        return False

    def _invalid_utf8(self) -> bool:
        self.ws.fail(CloseCode.INVALID_DATA, "invalid UTF-8 in a text message")
        return True

    def _end_input(self) -> None:
        """The peer's close, or a failure, takes effect (see `_received`): the app's
        disconnect comes after the messages it was given, and our close frame and the end of
        the connection after the app's answers to them."""
        held = self.held
        if held is None:
            return
        self.held = None
        if self.held_timer is not None:
            self.held_timer.cancel()
            self.held_timer = None
        rcvd = self.ws.close_rcvd
        if rcvd is not None:
            self._gone(rcvd.code, rcvd.reason)
        if not self.closed:
            self.ws.writes.extend(held)
            self._flush()

    def _gone(self, code: int, reason: str = "") -> None:
        """The session ended (closing handshake, failure or lost connection)."""
        if self.close_code is None:
            self.close_code = code
            self.inbox.append({"type": "websocket.disconnect", "code": code, "reason": reason})
            self.wake()
        self._stop_pinging()

    def _flush(self) -> None:
        """Write what the protocol has to send; close the socket when it is done."""
        protocol = self.protocol
        ws = self.ws
        self.unflushed = 0
        writes = ws.data_to_send()
        if writes and writes[-1]:
            protocol.writelines(writes)  # every frame the app sent since the last flush
        else:
            for data in writes:
                if data:
                    protocol.write(data)
                else:  # the library's signal that the TCP connection should end
                    self.closed = True
                    protocol.close()
        if ws.state is State.CLOSED:
            if not self.closed:
                self.closed = True
                protocol.close()
            if self.close_code is None:
                self._gone(CloseCode.ABNORMAL_CLOSURE)

    def _scheduled_flush(self) -> None:
        self.flush_scheduled = False
        if not self.closed:
            self._flush()

    # -- keep-alive pings ----------------------------------------------------------------
    def _start_pinging(self) -> None:
        interval = float(self.options["ws_ping_interval"])  # type: ignore[arg-type]
        if interval > 0:
            self.ping_handle = self.protocol.loop.call_later(interval, self._ping)

    def _ping(self) -> None:
        if self.closed or self.ws.state is not State.OPEN:
            return
        self.ws.send_ping(b"gaw")
        self._flush()
        loop = self.protocol.loop
        timeout = float(self.options["ws_ping_timeout"])  # type: ignore[arg-type]
        if timeout > 0 and self.pong_waiter is None:
            self.pong_waiter = loop.call_later(timeout, self._ping_timed_out)
        self._start_pinging()

    def _ping_timed_out(self) -> None:
        self.pong_waiter = None
        if not self.closed:
            self.ws.fail(CloseCode.INTERNAL_ERROR, "keepalive ping timeout")
            self._flush()
            self._gone(CloseCode.ABNORMAL_CLOSURE)

    def _stop_pinging(self) -> None:
        for handle in (self.ping_handle, self.pong_waiter):
            if handle is not None:
                handle.cancel()
        self.ping_handle = self.pong_waiter = None

    def going_away(self) -> None:
        """Graceful shutdown: close with 1001 and let the app finish."""
        if self.accepted and self.ws.state is State.OPEN:
            self.ws.send_close(CloseCode.GOING_AWAY, "server shutting down")
            self._closing()

    def _closing(self) -> None:
        """Our close frame is sent: the peer has CLOSE_TIMEOUT seconds to answer it."""
        self.close_sent = True
        self._flush()
        self._stop_pinging()
        if not self.closed:
            self.protocol.loop.call_later(CLOSE_TIMEOUT, self._close_now)

    # -- the ASGI callables ------------------------------------------------------------
    async def receive(self) -> Message:
        while not self.inbox:
            if self.held is not None:  # every message before the peer's close is taken
                self._end_input()
                continue
            if self.closed and self.close_code is None:
                self._gone(CloseCode.ABNORMAL_CLOSURE)
                continue
            waiter = self.waiter = self.protocol.loop.create_future()
            await waiter
        message = self.inbox.popleft()
        data = message.get("bytes")
        if data is not None:
            self.queued -= len(data)
        else:
            text = message.get("text")
            if text is not None:
                self.queued -= sys.getsizeof(text)
        protocol = self.protocol
        if (protocol.read_paused and len(self.inbox) < self.max_queue
                and self.queued < QUEUE_BYTES and not self.write_held):
            protocol.resume_reading()
        return message

    async def send(self, message: Message) -> None:
        kind = message["type"]
        protocol = self.protocol
        if self.close_code is not None or self.closed or protocol.closing or self.close_sent:
            raise ClientDisconnected(f"{kind} after the WebSocket closed")
        if kind == "websocket.send":
            if not self.accepted:
                raise RuntimeError("websocket.send before websocket.accept")
            # (The library's state is OPEN here: every way out of it, a close we send, a
            # close we receive, a failure, sets one of the flags checked above.)
            ws = self.ws
            text = message.get("text")
            if text is not None:
                payload = text.encode()
                frame = Frame(_TEXT, payload)
            else:
                payload = message.get("bytes") or b""
                frame = Frame(_BINARY, payload)
            # What the library's send_text/send_binary do once their checks (the ones above:
            # open, no fragmented message of ours in progress) pass: its own serialization.
            ws.writes.append(frame.serialize(mask=False, extensions=ws.extensions))
            # Frames go out together once the app yields to the loop (one write for a burst
            # of sends), or at once when _FLUSH_AT bytes are waiting.
            self.unflushed += len(payload)
            if self.unflushed >= _FLUSH_AT:
                self._flush()
            elif not self.flush_scheduled:
                self.flush_scheduled = True
                protocol.loop.call_soon(self._scheduled_flush)
            if protocol.write_paused:
                await protocol.drain()
        elif kind == "websocket.accept":
            if self.accepted or self.started:
                raise RuntimeError("websocket.accept sent twice or after a denial")
            self._accept(message)
        elif kind == "websocket.close":
            if not self.accepted:
                self._deny(403, [], b"")
                return
            if self.held is not None:  # the peer closed first: our answer is ready
                self._end_input()
                return
            code = message.get("code") or CloseCode.NORMAL_CLOSURE
            try:
                self.ws.send_close(code, message.get("reason") or "")
            except InvalidState:
                raise ClientDisconnected("websocket.close after the WebSocket closed") from None
            self._closing()
        elif kind == "websocket.http.response.start":
            if self.accepted or self.started:
                raise RuntimeError(f"{kind} after the handshake was answered")
            self.started = True
            self.status = message["status"]
            self.headers = list(message.get("headers") or [])
        elif kind == "websocket.http.response.body":
            if not self.started or self.accepted:
                raise RuntimeError(f"{kind} before websocket.http.response.start")
            self._deny_body(message.get("body", b""), message.get("more_body", False))
        else:
            raise RuntimeError(f"unexpected ASGI message type {kind!r} in a WebSocket")

    def _accept(self, message: Message) -> None:
        response = self.handshake
        subprotocol = message.get("subprotocol")
        if subprotocol is not None:
            if subprotocol not in self.scope["subprotocols"]:
                raise RuntimeError(f"subprotocol {subprotocol!r} was not offered by the client")
            response.headers["Sec-WebSocket-Protocol"] = subprotocol
        for name, value in message.get("headers") or ():
            response.headers[name.decode("latin-1")] = value.decode("latin-1")
        self.ws.send_response(response)
        self.accepted = True
        self.status = 101
        self._flush()
        if self.protocol.draining:
            self.going_away()  # accepted after graceful shutdown began: 1001 at once
            return
        self._start_pinging()

    def _deny(self, status: int, headers: list[Any], body: bytes) -> None:
        self.started = True
        self.status = status
        self.headers = headers
        self._deny_body(body, False)

    def _deny_body(self, body: bytes, more: bool) -> None:
        """The app's own HTTP answer to a handshake it refuses (or 403 on an early close)."""
        protocol = self.protocol
        if self.framing is None:
            framing = self.framing = Framing()
            head = frame_head(self.status, self.headers, protocol.date, False,
                              False, False, None if more else len(body), framing)
            protocol.write(head + body if not framing.chunked else head)
            if framing.chunked and body:
                protocol.writelines([b"%x\r\n" % len(body), body, b"\r\n"])
        elif body:
            if self.framing.chunked:
                protocol.writelines([b"%x\r\n" % len(body), body, b"\r\n"])
            else:
                protocol.write(body)
        self.bytes_sent += len(body)
        if not more:
            if self.framing.chunked:
                protocol.write(b"0\r\n\r\n")
            self.complete = True
            self.closed = True
            protocol.close()

    # -- running the app ---------------------------------------------------------------
    def judge_handshake(self) -> bool:
        """Answer a bad handshake (RFC 6455 4.2.2) without the app; True when it is good."""
        request = self.request
        version = request.headers.get("Sec-WebSocket-Version")
        if self.scope["http_version"] != "1.1":
            self._deny(400, [(b"content-type", b"text/plain")], b"WebSocket handshake "
                       b"needs HTTP/1.1\n")
            return False
        if self.request_method != "GET":
            self._deny(400, [(b"content-type", b"text/plain")], b"WebSocket handshake "
                       b"must be a GET\n")
            return False
        if version is not None and version.strip() != "13":
            self._deny(426, [(b"sec-websocket-version", b"13"),
                             (b"content-type", b"text/plain")],
                       b"Unsupported WebSocket version\n")
            return False
        response = self.ws.accept(request)
        if response.status_code != 101:
            headers = [(k.lower().encode("latin-1"), v.encode("latin-1"))
                       for k, v in response.headers.raw_items()
                       if k.lower() not in ("content-length", "connection", "date", "server")]
            if version is None:
                headers.append((b"sec-websocket-version", b"13"))
            self._deny(400 if response.status_code == 426 else response.status_code,
                       headers, response.body or b"")
            return False
        self.handshake = response
        return True

    def start(self) -> None:
        recorder = self.bridge.recorder
        if recorder is not None:
            recorder.start(self)
        self.protocol.loop.create_task(self.run())

    def tick(self) -> None:
        """Once a second: a stalled peer's partial frame keeps only what it sent."""
        self.reader.shrink_idle()

    async def run(self) -> None:
        protocol = self.protocol
        bridge = self.bridge
        try:
            if self.cancelled or not self.judge_handshake():
                return
            protocol.start_websocket(self)
            await bridge.app(self.scope, self.receive, self.send)
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError):
                protocol.abort()
                raise
            if not isinstance(exc, ClientDisconnected):
                bridge.log.error("Exception in ASGI application serving WebSocket %s",
                                 self.scope["path"], exc_info=exc)
            self._end_after_app(CloseCode.INTERNAL_ERROR)
            if not isinstance(exc, Exception):
                raise
        else:
            self._end_after_app(CloseCode.NORMAL_CLOSURE)
        finally:
            self._stop_pinging()
            if bridge.recorder is not None:
                bridge.recorder.end(self)

    def _end_after_app(self, code: int) -> None:
        """The app returned: finish the closing handshake, or refuse a handshake it ignored."""
        protocol = self.protocol
        if not self.accepted:
            if self.framing is None and not protocol.closing:
                self._deny(403 if code == CloseCode.NORMAL_CLOSURE else 500, [], b"")
            return
        self._end_input()  # the peer's close, held for the app's answers, goes out now
        if self.ws.state is State.OPEN:
            self.ws.send_close(code)
            self._closing()
        elif not self.closed and not self.close_sent:
            protocol.loop.call_later(CLOSE_TIMEOUT, self._close_now)

    def _close_now(self) -> None:
        if not self.closed:
            self.closed = True
            self.protocol.close()
            self._gone(CloseCode.ABNORMAL_CLOSURE)


class _ServerProtocol(ServerProtocol):
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


class WebSocketReader(asyncio.BufferedProtocol):
    """The transport's protocol once its connection is a WebSocket: reads go straight into
    the session's `FrameBuffer`; the rest of the connection's events go to its HttpProtocol."""

    __slots__ = ("buffer_updated", "connection", "get_buffer", "session")

    def __init__(self, session: WebSocketSession) -> None:
        self.session = session
        self.connection = session.protocol
        # The transport calls these for every read: bound straight to where they are served.
        self.get_buffer = session.reader.get_buffer  # type: ignore[method-assign]
        self.buffer_updated = session.buffer_updated  # type: ignore[method-assign]

    def eof_received(self) -> bool:
        return self.connection.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self.connection.connection_lost(exc)

    def pause_writing(self) -> None:
        self.connection.pause_writing()

    def resume_writing(self) -> None:
        self.connection.resume_writing()
        self.session.writes_drained()
