"""Open many idle connections of one kind at a bounded rate, hold them, and close them.

The client side of `python -m benchmarks.conn_memory`. Three kinds of idle connection:

- `http`: a keep-alive connection after one `GET /plaintext` and its whole response;
- `ws`: a WebSocket on `/ws` after a plain handshake (no extension offered);
- `ws-deflate`: the same, offering `permessage-deflate; client_max_window_bits` as browsers do,
  and counted as open only when the server negotiated it.

It costs the client little per connection: one small asyncio `Protocol` with no buffer once
the connection is open (a WebSocket keeps only the bytes of an unfinished server frame). Held
connections stay silent but answer the server's pings, so a server's keep-alive pings never
close them. Connections are opened at most `rate` a second with at most `concurrency`
handshakes in flight, so the server's listen backlog never overflows.
"""

from __future__ import annotations

import asyncio

from benchmarks.wsload import OP_CLOSE, OP_PING, OP_PONG, accept_for, client_frame, close_payload

KINDS = ("http", "ws", "ws-deflate")
DEFLATE_OFFER = "permessage-deflate; client_max_window_bits"
# One handshake key for every connection: servers only check its form and echo its hash.
WS_KEY = "dGhlIHNhbXBsZSBub25jZQ=="
WS_ACCEPT = accept_for(WS_KEY).encode("ascii")
HEAD_LIMIT = 16 * 1024  # a response head longer than this is an error


class HoldError(RuntimeError):
    """A connection could not be opened, or its request or handshake failed."""


def request_for(kind: str, host: str, port: int) -> bytes:
    """The one request each connection of `kind` sends."""
    if kind == "http":
        return f"GET /plaintext HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode("ascii")
    offer = f"Sec-WebSocket-Extensions: {DEFLATE_OFFER}\r\n" if kind == "ws-deflate" else ""
    return (
        f"GET /ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {WS_KEY}\r\n"
        f"Sec-WebSocket-Version: 13\r\n{offer}\r\n"
    ).encode("ascii")


def _headers(head: bytes) -> tuple[bytes, dict[bytes, bytes]]:
    """The status code and the lower-cased header fields of a response head."""
    lines = head.split(b"\r\n")
    status = lines[0].split(b" ", 2)
    fields = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        fields[name.strip().lower()] = value.strip()
    return (status[1] if len(status) > 1 else b""), fields


class _IdleConnection(asyncio.Protocol):
    """One connection: its request, the response checked, then silence (pings answered)."""

    __slots__ = ("frames", "hold", "pending", "transport", "waiter")

    def __init__(self, hold: IdleHold) -> None:
        self.hold = hold
        self.transport: asyncio.Transport | None = None
        self.pending = bytearray()  # the response so far, then an unfinished server frame
        self.frames = False  # True once a WebSocket is open: bytes are frames
        self.waiter: asyncio.Future[None] = hold.loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(self.hold.request)  # type: ignore[union-attr]

    def data_received(self, data: bytes) -> None:
        if self.frames:
            self.pending += data
            self._frames()
        elif self.waiter.done():  # an idle HTTP connection: the server has nothing to say
            self.hold.unexpected += 1
        else:
            self.pending += data
            try:
                self._response()
            except HoldError as error:
                self._fail(error)

    def _response(self) -> None:
        head, found, rest = bytes(self.pending).partition(b"\r\n\r\n")
        if not found:
            if len(self.pending) > HEAD_LIMIT:
                raise HoldError(f"response head over {HEAD_LIMIT} bytes")
            return
        status, fields = _headers(head)
        kind = self.hold.kind
        if kind == "http":
            if status != b"200":
                raise HoldError(f"GET /plaintext answered {head[:80]!r}")
            if len(rest) < int(fields.get(b"content-length", b"0")):
                return
            self.pending = bytearray()
        else:
            if status != b"101" or fields.get(b"sec-websocket-accept") != WS_ACCEPT:
                raise HoldError(f"WebSocket handshake answered {head[:80]!r}")
            extensions = fields.get(b"sec-websocket-extensions", b"").decode("latin-1")
            if kind == "ws-deflate" and not extensions.startswith("permessage-deflate"):
                raise HoldError(f"permessage-deflate offered, not negotiated: {extensions!r}")
            if kind == "ws" and extensions:
                raise HoldError(f"no extension offered, {extensions!r} negotiated")
            self.hold.negotiated = extensions
            self.frames = True
            self.pending = bytearray(rest)
            self._frames()
        self.waiter.set_result(None)

    def _frames(self) -> None:
        """Answer the server's pings; a close or any data frame ends the connection."""
        pending = self.pending
        while len(pending) >= 2:
            opcode, length, start = pending[0] & 0x0F, pending[1] & 0x7F, 2
            if length == 126:
                length, start = int.from_bytes(pending[2:4], "big"), 4
            elif length == 127:
                length, start = int.from_bytes(pending[2:10], "big"), 10
            if len(pending) < start + length:
                return
            payload = bytes(pending[start:start + length])
            del pending[:start + length]
            if opcode == OP_PING:
                self.hold.pings += 1
                self.transport.write(client_frame(payload, OP_PONG))  # type: ignore[union-attr]
            elif opcode != OP_PONG:
                self.hold.unexpected += opcode != OP_CLOSE
                self.transport.close()  # type: ignore[union-attr]
                return
        if not pending:
            self.pending = bytearray()  # an idle connection keeps no buffer

    def _fail(self, error: Exception) -> None:
        if not self.waiter.done():
            self.waiter.set_exception(error)
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.hold.closing:
            self.hold.lost += 1
        self._fail(HoldError(f"closed by the server ({exc or 'EOF'})"))
        self.hold.gone += 1
        if self.hold.gone == len(self.hold.connections) and self.hold.all_gone is not None:
            self.hold.all_gone.set_result(None)


class IdleHold:
    """`count` idle connections of `kind` to host:port; `await open()`, then `await close()`."""

    def __init__(self, loop: asyncio.AbstractEventLoop, kind: str, host: str, port: int,
                 count: int, rate: float, concurrency: int, timeout: float = 30.0) -> None:
        if kind not in KINDS:
            raise ValueError(f"kind {kind!r} is not one of {', '.join(KINDS)}")
        self.loop = loop
        self.kind = kind
        self.host = host
        self.port = port
        self.count = count
        self.interval = 1.0 / rate
        self.concurrency = concurrency
        self.timeout = timeout
        self.request = request_for(kind, host, port)
        self.connections: list[_IdleConnection] = []
        self.negotiated = ""  # the server's Sec-WebSocket-Extensions answer
        self.pings = 0  # pings the server sent and we answered
        self.unexpected = 0  # bytes or frames an idle connection should never get
        self.opened = 0  # connections whose request or handshake succeeded
        self.lost = 0  # connections the server closed while held
        self.gone = 0  # connections closed, by either side
        self.closing = False
        self.all_gone: asyncio.Future[None] | None = None
        self._started = 0
        self._next_at = 0.0
        self._error: BaseException | None = None

    @property
    def held(self) -> int:
        """Connections open now."""
        return len(self.connections) - self.gone

    async def open(self) -> float:
        """Open all connections; return the seconds it took. HoldError if any one fails."""
        started = self._next_at = self.loop.time()
        workers = [self._opener() for _ in range(min(self.concurrency, self.count))]
        await asyncio.gather(*workers)
        if self._error is not None:
            raise HoldError(f"after {self.opened} connections: {self._error}") from self._error
        return self.loop.time() - started

    async def _opener(self) -> None:
        loop = self.loop
        while self._started < self.count and self._error is None:
            self._started += 1
            now = loop.time()
            slot = max(self._next_at, now)
            self._next_at = slot + self.interval
            if slot > now:
                await asyncio.sleep(slot - now)
            connection = _IdleConnection(self)
            try:
                await asyncio.wait_for(
                    loop.create_connection(lambda c=connection: c, self.host, self.port),
                    self.timeout)
                self.connections.append(connection)
                await asyncio.wait_for(asyncio.shield(connection.waiter), self.timeout)
                self.opened += 1
            except (OSError, HoldError, TimeoutError) as error:
                if self._error is None:
                    self._error = error if str(error) else HoldError(type(error).__name__)
                if connection.transport is not None:
                    connection.transport.abort()

    async def close(self, timeout: float = 30.0) -> None:
        """Close every connection (a WebSocket with a close frame first), waiting until all
        are closed; any left after `timeout` are aborted."""
        self.closing = True
        self.all_gone = self.loop.create_future()
        goodbye = client_frame(close_payload(), OP_CLOSE) if self.kind != "http" else b""
        for connection in self.connections:
            transport = connection.transport
            if transport is not None and not transport.is_closing():
                if goodbye:
                    transport.write(goodbye)
                transport.close()
        if self.gone < len(self.connections):
            try:
                await asyncio.wait_for(self.all_gone, timeout)
            except TimeoutError:
                for connection in self.connections:
                    if connection.transport is not None:
                        connection.transport.abort()
        self.connections = []


def new_loop() -> asyncio.AbstractEventLoop:
    """uvloop's loop when installed (the cheaper client), else the stdlib's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()

