"""The HTTP/1.1 connection: feeds the parser, orders pipelined requests, moves bytes.

One `HttpProtocol` per connection. It owns keep-alive, pipelining, flow control in both
directions, timeouts and error answers, for any parser behind the `ParserAdapter`
interface. It is given a `ConnectionHost` (`http/seams.py`): per request, the host's
`RequestBridge` turns the parsed head into a request object (an `Exchange`) or the error
that refuses it, which the connection answers from one place (`reject`); the request is
started once the bytes at hand are parsed. The request writes through the connection (its
`RequestConnection` side) and reports back with `on_response_complete`; a WebSocket session
takes over the connection's reading (`start_websocket`).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import math
import struct
import termios
from collections import deque
from collections.abc import Callable, Mapping
from typing import IO, TYPE_CHECKING, cast

from .errors import BadRequest, Forbidden, RequestError, error_response
from .exchange import COMPLETE, REFUSED, Exchange
from .h2_preface import PREFACE, SWITCHING, H2cUpgrade, h2c_upgrade
from .proxy_protocol import NO_HEADER, ProxyHeader, proxy_signature, read_proxy_header
from .stdlib_transport import high_water_check

if TYPE_CHECKING:
    from .parsers import ParserAdapter
    from .seams import ConnectionHost, RequestBridge, UpgradedStream

# Requests parsed ahead of the one being answered before the protocol stops reading.
MAX_PIPELINE = 16
# `idle_since` while a response is still leaving the write buffer: the idle clock starts at
# the first check that finds the buffer empty (never earlier than the last byte left).
FLUSHING = math.inf
# The ioctl that tells how many bytes of a TCP socket's send queue its peer has not yet
# acknowledged (Linux's SIOCOUTQ); None where the platform has none.
_OUTQ: int | None = getattr(termios, "TIOCOUTQ", None)
_INT = struct.Struct("i")


def _not_connected(data: bytes) -> None:
    raise RuntimeError("write before the connection was made")


def unread(transport: asyncio.BaseTransport) -> int:
    """Bytes that have arrived for a transport and wait in the kernel to be read."""
    sock = transport.get_extra_info("socket")
    if sock is None:
        return 0
    with contextlib.suppress(OSError, ValueError):
        return int(_INT.unpack(fcntl.ioctl(sock.fileno(), termios.FIONREAD, bytes(4)))[0])
    return 0


def unacknowledged(transport: asyncio.BaseTransport) -> int:
    """Bytes the kernel still holds for a transport's peer (0 where it cannot tell).

    A response that left the transport's buffer may still sit in the kernel's, megabytes of
    it on loopback, while a slow client reads it: that connection is not idle yet.
    """
    sock = transport.get_extra_info("socket")
    if _OUTQ is None or sock is None:
        return 0
    with contextlib.suppress(OSError, ValueError):
        return int(_INT.unpack(fcntl.ioctl(sock.fileno(), _OUTQ, bytes(4)))[0])
    return 0


class HttpProtocol(asyncio.Protocol):
    """Bytes in, requests out, responses back in order."""

    __slots__ = (
        "body_watch",
        "bridge",
        "bridge_state",
        "client",
        "closing",
        "counts_requests",
        "cycle",
        "date",
        "delivered",
        "draining",
        "undelivered",
        "drain_waiter",
        "eof",
        "extensions",
        "head_mark",
        "idle_since",
        "kept_alive",
        "loop",
        "lost",
        "may_keep_alive",
        "parser",
        "parsing",
        "pending_error",
        "pipeline",
        "proxy",
        "proxy_buffer",
        "proxy_pending",
        "h2_preface",
        "h2c_allowed",
        "h2c",
        "read_paused",
        "received",
        "server",
        "sockname",
        "starting",
        "transport",
        "transport_write",
        "websocket",
        "write_paused",
        "writelines_check",
    )

    def __init__(self, server: ConnectionHost) -> None:
        self.server = server
        self.loop = server.loop
        self.bridge: RequestBridge = server.bridge
        self.date = server.date
        self.counts_requests = server.counts_requests
        self.draining = server.draining
        self.may_keep_alive = server.config.keepalive > 0 and not server.draining
        # The connection's stream transport, from connection_made on (nothing reads it before).
        self.transport = cast("asyncio.Transport", None)
        self.transport_write: Callable[[bytes], object] = _not_connected
        self.parser: ParserAdapter | None = None
        self.cycle: Exchange | None = None  # the request whose response is being sent
        self.parsing: Exchange | None = None  # the request whose body is being received
        self.starting: Exchange | None = None  # to start after the bytes at hand
        self.pipeline: deque[Exchange] = deque()
        self.pending_error: RequestError | None = None
        self.lost = False
        self.eof = False
        self.closing = False
        self.read_paused = False
        self.write_paused = False
        self.drain_waiter: asyncio.Future[None] | None = None
        # When the connection last became idle (made, or its last response left the write
        # buffer), in the loop's clock; FLUSHING while a response is still leaving.
        self.idle_since = 0.0
        # Whether a response has been answered with the connection kept open: before that
        # the wait for a request is `header_timeout`'s, after it `keepalive`'s.
        self.kept_alive = False
        # Whether a tick has found the last response wholly delivered (nothing in the write
        # buffer nor unacknowledged in the kernel's); until then each tick asks again, and
        # `undelivered` holds what it found, to tell a client that reads from one that stalls.
        self.delivered = True
        self.undelivered = 0
        self.client: tuple[str, int] | None = None
        self.sockname: tuple[str, int | None] | None = None
        # Bytes held while a PROXY protocol header (`proxy_pending`) or the HTTP/2 preface
        # (`h2_preface`) may still be arriving; None when neither is awaited.
        self.proxy_buffer: bytes | None = None
        self.proxy_pending = False
        self.h2_preface = False
        # Cleartext HTTP/2 by `Upgrade: h2c` (for a trusted peer), and the upgrade taken.
        self.h2c_allowed = False
        self.h2c: H2cUpgrade | None = None
        # The PROXY header that named this connection's client, if one did.
        self.proxy: ProxyHeader | None = None
        self.websocket: UpgradedStream | None = None  # the session this connection became
        # (request, since, received): the request body being timed by check_timeouts, from
        # when, and `received` then (what arrives after it counts toward body_min_rate).
        self.body_watch: tuple[Exchange, float, int] | None = None
        # Bytes received on this connection, and their count when the wait for the current
        # request head began (what arrives after it counts toward header_min_rate).
        self.received = 0
        self.head_mark = 0
        # The scope's `extensions` on a TLS connection ({"tls": ...}); None on plaintext.
        self.extensions: dict[str, Mapping[str, object]] | None = None
        # What the bridge keeps for this connection across its requests (RequestConnection).
        self.bridge_state: object = None
        # Called after each transport.writelines where the transport skips its own check.
        self.writelines_check: Callable[[], None] | None = None

    # -- asyncio callbacks ---------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        server = self.server
        # A stream transport (the loop's TCP or Unix one, or its TLS one): it has write().
        self.transport = cast("asyncio.Transport", transport)
        self.transport_write = self.transport.write
        self.writelines_check = high_water_check(transport)
        self.idle_since = self.loop.time()
        server.connection_made(self)
        peer = transport.get_extra_info("peername")
        sock = transport.get_extra_info("sockname")
        if isinstance(peer, tuple) and len(peer) >= 2:
            self.client = (peer[0], peer[1])
        if isinstance(sock, tuple):
            self.sockname = (sock[0], sock[1])
        elif sock:
            self.sockname = (sock if isinstance(sock, str) else sock.decode(), None)
        self.extensions = server.tls_extensions(transport)
        config = server.config
        self.parser = server.parser_class(
            self, server.policy, trusted=config.trusted_peers.allows(peer),
            scheme="https" if config.is_ssl else "http")
        self.proxy_pending = config.proxy_protocol != "off"
        # Cleartext HTTP/2 by prior knowledge, for a trusted peer: the preface is looked for
        # before the first request (`_read_prelude`).
        self.h2_preface = server.h2_prior_knowledge and self.parser.trusted
        self.h2c_allowed = server.h2c_upgrade and self.parser.trusted
        if self.proxy_pending or self.h2_preface:
            self.proxy_buffer = b""

    def data_received(self, data: bytes) -> None:
        self.received += len(data)
        if self.proxy_buffer is not None:
            data = self._read_prelude(data)
            if not data:
                return
        parser = self.parser
        assert parser is not None
        try:
            parser.feed(data)
        except RequestError as exc:
            self.reject(exc)
        else:
            cycle = self.cycle
            if parser.upgraded and (cycle is None or not cycle.is_websocket):
                if self.h2c is not None:  # an `Upgrade: h2c` request, taken
                    self._switch_to_h2c(self.h2c)
                    return
                # An upgrade nobody serves: the request is answered as plain HTTP with
                # `connection: close`; what follows the upgrade request is not HTTP/1.1.
                self.pause_reading()
        cycle = self.starting
        if cycle is not None:
            # The app starts once the bytes at hand are parsed, so that a body they show to
            # be bad is refused before it runs. A body still coming waits for one more poll
            # of the socket: a half-close already received (the stdlib loop reports it in a
            # later callback) then refuses a body it cuts short before the app runs.
            self.starting = None
            if self.parsing is cycle:
                self.loop.call_soon(self.loop.call_soon, self.start, cycle)
            elif cycle.body_state is not REFUSED:  # start() inlined: one call fewer
                cycle.start()

    def _read_prelude(self, data: bytes) -> bytes:
        """What may come before the first HTTP/1.1 request: a PROXY header
        (`proxy_protocol`), then, where cleartext HTTP/2 is served by prior knowledge, the
        HTTP/2 preface (the connection then becomes HTTP/2). Returns the bytes that are
        HTTP/1.1's; b"" while more must arrive first, or once the connection is handed on."""
        if self.proxy_pending:
            data = self._read_proxy_header(data)
            if self.proxy_pending or not data:
                if not self.proxy_pending and self.h2_preface:
                    self.proxy_buffer = b""  # the preface is still to come
                return b""
        if not self.h2_preface:
            self.proxy_buffer = None
            return data
        buffer = self.proxy_buffer + data if self.proxy_buffer else data
        if len(buffer) < len(PREFACE) and PREFACE.startswith(buffer):
            self.proxy_buffer = buffer
            return b""
        self.proxy_buffer = None
        self.h2_preface = False
        if buffer.startswith(PREFACE):
            self.become_http2(buffer)
            return b""
        if self.server.config.http2_cleartext == "prior-knowledge":
            # As Gunicorn: a trusted peer on a prior-knowledge port is expected to speak
            # HTTP/2; answering it in HTTP/1.1 would hide a misconfiguration.
            self.reject(BadRequest("expected the HTTP/2 connection preface "
                                   "(http2_cleartext is prior-knowledge)"))
            return b""
        return buffer

    def _switch_to_h2c(self, upgrade: H2cUpgrade) -> None:
        """101 for an `Upgrade: h2c` request; the request becomes stream 1 of HTTP/2."""
        parser = self.parser
        assert parser is not None
        data = parser.upgrade_data
        parser.upgrade_data = b""
        self.transport.write(SWITCHING)
        self.become_http2(data, upgrade)

    def become_http2(self, data: bytes, upgrade: H2cUpgrade | None = None) -> None:
        """Hand the connection to an HTTP/2 protocol (ALPN chose h2, the preface came, or
        an upgrade was taken), with the bytes already read."""
        from .h2_connection import Http2Protocol

        parser = self.parser
        assert parser is not None
        connection = Http2Protocol(
            self.server, client=self.client, sockname=self.sockname, proxy=self.proxy,
            extensions=self.extensions, trusted=parser.trusted, scheme=parser.base_scheme,
            received=self.received - len(data), upgrade=upgrade)
        self.closing = True  # nothing more of this protocol's
        self.server.connection_closed(self)
        transport = self.transport
        transport.set_protocol(connection)
        connection.connection_made(transport)
        if data:
            connection.data_received(data)

    def _read_proxy_header(self, data: bytes) -> bytes:
        """Consume a PROXY header, if any, and return the bytes that follow it."""
        buffer = self.proxy_buffer + data if self.proxy_buffer else data
        config = self.server.config
        mode = config.proxy_protocol
        try:
            if config.proxy_peers.allows(self.transport.get_extra_info("peername")):
                header = read_proxy_header(buffer, mode)
            else:  # as Gunicorn: refused once a header starts, before it is parsed
                found = proxy_signature(buffer, mode)
                if found:
                    raise Forbidden("PROXY header from a peer not in proxy_allow_ips")
                header = None if found is None else NO_HEADER
        except RequestError as exc:
            self.proxy_buffer = None
            self.proxy_pending = self.h2_preface = False
            self.reject(exc)
            return b""
        if header is None:
            self.proxy_buffer = buffer
            return b""
        self.proxy_buffer = None
        self.proxy_pending = False
        if header.client is not None:
            # As in Gunicorn's workers: the client is the header's; the server stays the
            # address this worker listens on (WSGI's PROXY_ADDR/PROXY_PORT name the proxy's).
            self.client = header.client
            self.proxy = header
        return buffer[header.length:]

    def start_websocket(self, session: UpgradedStream) -> None:
        """From now on the bytes on this connection are WebSocket frames, which the transport
        reads straight into the session's buffer (its protocol becomes the session's
        reader; this protocol keeps the connection's state, writes and flow control)."""
        self.websocket = session
        parser = self.parser
        data = parser.upgrade_data if parser is not None else b""
        if parser is not None:
            parser.upgrade_data = b""
        if not self.closing:
            # uvloop chooses how it reads when reading starts: switch while it is paused.
            self.pause_reading()
            self.transport.set_protocol(session.transport_protocol())
        if self.read_paused:
            self.resume_reading()
        if data:
            session.feed(data)

    def eof_received(self) -> bool:
        """The client half-closed: answer what it sent, then close (keep the write side).

        A body cut short by the half-close can never complete: the app sees what arrived and
        then a disconnect (a chunked one gets 400, its framing being broken).
        """
        self.eof = True
        if self.websocket is not None:
            self.websocket.eof()
            return True
        if self.parsing is not None:
            if self.parser is not None and self.parser.chunked:
                self.reject(BadRequest("request ended inside a chunked body"))
            else:
                # Never hand an app a cut-short body as whole: it is a disconnect.
                self.close()
            return True
        if self.cycle is None and self.pending_error is None and not self.pipeline:
            self.close()
        elif ((cycle := self.cycle) is not None and cycle.waiter is not None
              and cycle.body_state is COMPLETE):
            cycle.wake()  # an app waiting for a disconnect gets one
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.closing = True
        self.server.connection_closed(self)
        if self.websocket is not None:
            self.websocket.connection_lost()
        for cycle in (self.cycle, self.parsing):
            if cycle is not None:
                cycle.wake()
        self.pipeline.clear()
        waiter = self.drain_waiter
        if waiter is not None and not waiter.done():
            self.drain_waiter = None
            waiter.set_result(None)

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        waiter = self.drain_waiter
        if waiter is not None:
            self.drain_waiter = None
            if not waiter.done():
                waiter.set_result(None)
        elif self.cycle is None and not self.closing and self.websocket is None:
            self._next()  # a response finished while the client was not reading

    # -- called by the parser adapter ----------------------------------------------------
    def on_request_head(self, head: ParserAdapter) -> RequestError | None:
        if (head.upgrade is not None and self.h2c_allowed and self.cycle is None
                and (upgrade := h2c_upgrade(head)) is not None):
            self.h2c = upgrade  # switched once the bytes at hand are parsed
            return None
        cycle = self.bridge.open_request(self, head, self.cycle is None)
        if not isinstance(cycle, Exchange):
            return cycle  # refused before any request object exists: `reject` answers it
        if head.upgrade is not None or head.method == "CONNECT":
            cycle.keep_alive = False  # no tunnel or other protocol follows on this connection
        self.parsing = cycle
        if self.counts_requests:
            self.server.request_received()
        if self.cycle is None:
            self.cycle = self.starting = cycle  # started by data_received, after the feed
        else:
            self.pipeline.append(cycle)
            if len(self.pipeline) >= MAX_PIPELINE:
                self.pause_reading()
        return None

    def on_body(self, data: bytes) -> None:
        parsing = self.parsing
        assert parsing is not None  # a body follows a head
        parsing.feed_body(data)

    def on_request_end(self) -> None:
        cycle = self.parsing
        if cycle is None:
            return  # an `Upgrade: h2c` request: stream 1 of the HTTP/2 connection
        self.parsing = None
        cycle.body_state = COMPLETE
        if cycle.waiter is not None:
            cycle.wake()

    # -- request cycles ------------------------------------------------------------------
    def start(self, cycle: Exchange) -> None:
        if cycle.body_state is REFUSED:  # refused before its app ran: never called
            return
        self.cycle = cycle
        cycle.start()

    def on_response_complete(self, cycle: Exchange) -> None:
        """The cycle's response is fully written: close, or move on to the next request."""
        if cycle is not self.cycle:
            return
        if not cycle.keep_alive or self.lost:
            self.cycle = None
            self.close()
            return
        if cycle.body_state is not COMPLETE:
            if cycle.expect_continue:
                # 100 Continue was never sent: the client may be waiting, or sending.
                self.cycle = None
                self.close()
                return
            cycle.discard_body()
        self.cycle = None
        # Keep-alive time is counted from when the response's last byte has left the write
        # buffer: now, or (FLUSHING) at the first tick that finds the buffer empty.
        self.idle_since = (FLUSHING if self.transport.get_write_buffer_size()
                           else self.loop.time())
        self.kept_alive = True
        self.delivered = False
        self.head_mark = self.received
        if self.write_paused:
            return  # the client is not reading: what comes next waits for resume_writing
        if self.pending_error is not None or self.pipeline or self.eof:
            self._next()
        elif self.read_paused:
            self.resume_reading()

    def _next(self) -> None:
        """Between requests: answer a pending error, start the next pipelined request, or
        close after the client's half-close; then read on."""
        if self.pending_error is not None:
            self._send_error(self.pending_error)
            return
        if self.pipeline:
            self.start(self.pipeline.popleft())
        elif self.eof:
            self.close()
            return
        if self.read_paused:
            self.resume_reading()

    # -- errors and closing --------------------------------------------------------------
    def reject(self, exc: RequestError) -> None:
        """Refuse a bad request: its app never answers it; earlier responses go out first."""
        self.server.log.debug("Invalid request from %s: %s", self.client, exc.detail)
        self.pause_reading()
        self.pipeline.clear()
        parsing = self.parsing
        self.parsing = None
        cycle = self.cycle
        if cycle is not None and parsing is cycle:
            # The body turned out bad while its app runs (or before it ran: then the app is
            # never called, as the task starts only after this data was parsed).
            cycle.body_state = REFUSED
            if cycle.framing is None:
                self._send_error(exc)
            else:
                self.abort()
            cycle.wake()
        elif cycle is not None:
            self.pending_error = exc
        else:
            self._send_error(exc)

    def _send_error(self, exc: RequestError) -> None:
        if not self.lost:
            self.transport.write(error_response(exc))
        self.close()

    def close(self) -> None:
        if not self.closing:
            self.closing = True
            if not self.lost:
                self.transport.close()
            for cycle in (self.cycle, self.parsing):
                if cycle is not None:
                    cycle.wake()

    def abort(self) -> None:
        self.closing = True
        if not self.lost:
            self.transport.abort()

    # -- flow control --------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        if not self.closing:
            self.transport.write(data)

    def writelines(self, pieces: list[bytes]) -> None:
        if not self.closing:
            self.transport.writelines(pieces)
            if self.writelines_check is not None:  # the stdlib loop's missing pause check
                self.writelines_check()

    async def sendfile(self, file: IO[bytes], offset: int, count: int) -> int:
        """Send `count` bytes of a file from `offset` with the loop's sendfile."""
        return await self.loop.sendfile(self.transport, file, offset, count)

    async def drain(self) -> None:
        if self.lost or not self.write_paused:
            return
        waiter = self.drain_waiter = self.loop.create_future()
        await waiter

    def pause_reading(self) -> None:
        if not self.read_paused and not self.lost:
            self.read_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if not self.read_paused or self.closing or self.eof:
            return
        if len(self.pipeline) >= MAX_PIPELINE or self.pending_error is not None:
            return
        parser = self.parser
        if parser is not None and parser.upgraded and self.websocket is None:
            return
        parsing = self.parsing
        if parsing is not None and parsing.body_read > parsing.HIGH_WATER:
            return
        self.read_paused = False
        self.transport.resume_reading()

    # -- timeouts, checked by the server's once-a-second tick ----------------------------
    def is_idle(self) -> bool:
        """No request in progress: nothing parsed, nothing running, nothing half-read."""
        parser = self.parser
        return (self.cycle is None and self.parsing is None and not self.pipeline
                and (parser is None or not parser.partial()))

    def idle_time(self, now: float) -> float:
        """Seconds this connection has waited for a request with nothing left to send, or
        with its client no longer reading what is left.

        The clock starts no earlier than the last response's last byte left the write
        buffer. While bytes remain, in the transport's buffer or unacknowledged in the
        kernel's, the clock restarts at every check (a tick) that finds the client has read
        some of them, and once more at the first that finds none left: a slow reader is
        not idle, one that stopped reading is.
        """
        if not self.delivered:
            pending = self.transport.get_write_buffer_size() + unacknowledged(self.transport)
            if pending:
                if pending != self.undelivered:  # the client read some (or a first look)
                    self.undelivered = pending
                    self.idle_since = now
            else:
                self.delivered = True
                if self.undelivered or self.idle_since == FLUSHING:
                    self.idle_since = now
                self.undelivered = 0
        return now - self.idle_since

    def check_timeouts(self, now: float) -> None:
        """Close what has waited its configured time: a request head (`header_timeout`,
        also for a connection's first request and a PROXY header), the next request on a
        kept-alive connection (`keepalive`), a request body (`body_timeout`).

        Each limit is a minimum: the tick closes a connection in [limit, limit + tick].
        """
        if self.websocket is not None:
            self.websocket.tick()
        parsing = self.parsing
        if parsing is not None and not self.closing and self.websocket is None:
            self._check_body_time(parsing, now)
            return
        if (self.cycle is not None or self.closing or self.pipeline
                or self.pending_error is not None):
            return
        waited = self.idle_time(now)
        parser = self.parser
        config = self.server.config
        if parser is not None and parser.partial():
            if waited >= self.head_limit():
                self.server.log.debug("request head from %s timed out", self.client)
                self.abort()
        elif waited >= (config.keepalive if self.kept_alive else config.header_timeout):
            self.close()

    def head_limit(self) -> float:
        """Seconds a request head, once begun, may take: `header_timeout`, or less for a
        client below `header_min_rate` after `min_rate_grace` (each byte received buys
        1/rate seconds more). A connection that has sent nothing waits `header_timeout`
        (or is closed first to admit a new client at the cap)."""
        config = self.server.config
        rate = config.header_min_rate
        if rate <= 0:
            return config.header_timeout
        return min(config.header_timeout,
                   config.min_rate_grace + (self.received - self.head_mark) / rate)

    def _check_body_time(self, parsing: Exchange, now: float) -> None:
        """A request body must arrive within `body_timeout` seconds, counted from its head,
        or from the last time it was not the client's turn: while reading is held back for
        the app, and before the client has had its `100 Continue`."""
        config = self.server.config
        limit = config.body_timeout
        rate = config.body_min_rate
        if limit <= 0 and rate <= 0:
            return
        watch = self.body_watch
        if (watch is None or watch[0] is not parsing or self.read_paused
                or parsing.expect_continue):
            self.body_watch = (parsing, now, self.received)
            return
        elapsed = now - watch[1]
        if limit > 0 and elapsed > limit:
            self.server.log.debug("request body from %s timed out (body_timeout)",
                                  self.client)
            self.abort()
        elif rate > 0 and elapsed > config.min_rate_grace + (self.received - watch[2]) / rate:
            self.server.log.debug("request body from %s below body_min_rate", self.client)
            self.abort()

    # -- eviction at the worker_connections cap ------------------------------------------
    def eviction_rank(self, now: float, grace: float) -> tuple[int, float] | None:
        """How little progress this connection makes, for the server to pick one to close
        when it is full and a new client waits: (class, since), the lowest first, or None
        when it must not be closed (an app answering, a response leaving, a WebSocket).

        Classes: 1, no complete request head yet (a connection's first wait, or a partial
        head); 2, an idle keep-alive connection whose response was delivered; 3, a request
        body below `body_min_rate`. Each only after waiting `grace` seconds (a keep-alive
        connection `shutdown_idle_grace`), so a client whose bytes are on their way is
        not taken for a stalled one. Class 0 is the server's: a pending TLS handshake.
        """
        if self.closing or self.websocket is not None or self.pending_error is not None:
            return None
        parsing = self.parsing
        if parsing is not None:
            return self._body_rank(parsing, now, grace)
        if self.cycle is not None or self.pipeline:
            return None
        since = self.idle_since
        parser = self.parser
        if not self.kept_alive or (parser is not None and parser.partial()):
            if now - since < grace or unread(self.transport):
                return None  # its bytes may be on their way, or here and about to be read
            return (1, since)
        if self.idle_time(now) >= self.server.config.shutdown_idle_grace and self.delivered:
            return (2, self.idle_since)
        return None

    def _body_rank(self, parsing: Exchange, now: float,
                   grace: float) -> tuple[int, float] | None:
        rate = self.server.config.body_min_rate
        watch = self.body_watch
        if (rate <= 0 or self.read_paused or parsing.expect_continue
                or (self.cycle is not None and self.cycle is not parsing)):
            return None
        if watch is None or watch[0] is not parsing:
            self.body_watch = (parsing, now, self.received)  # as the next tick would
            return None
        elapsed = now - watch[1]
        if elapsed >= grace and self.received - watch[2] < rate * elapsed:
            return (3, watch[1])
        return None

    def begin_drain(self, *, going_away: bool) -> None:
        """The server drains: responses from now on close the connection; with
        `going_away`, a WebSocket session says so (1001; the app finishes as the peer
        answers)."""
        self.draining = True
        self.may_keep_alive = False
        if going_away and self.websocket is not None:
            self.websocket.going_away()

    def evict(self) -> None:
        """Closed to admit a new client: an idle keep-alive connection as a keep-alive
        timeout closes it, any other with a reset (as its timeout would)."""
        self.server.log.debug("closing the connection from %s to admit a new one "
                              "(worker_connections reached)", self.client)
        if self.is_idle() and self.kept_alive:
            self.close()
        else:
            self.abort()


class TlsHttpProtocol(HttpProtocol):
    """`HttpProtocol` on a TLS transport. TLS has no half-open state: the transport closes
    after the client's close_notify whatever `eof_received` answers (and asyncio warns when
    it answers True). A client that chose `h2` by ALPN is handed to HTTP/2 at once."""

    __slots__ = ()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None and ssl_object.selected_alpn_protocol() == "h2":
            self.become_http2(b"")

    def eof_received(self) -> bool:
        super().eof_received()
        return False
