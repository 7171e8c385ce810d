"""The HTTP/2 connection: frames in through `h2`, each stream an exchange's connection.

`Http2Protocol` is the transport's protocol for a connection that speaks HTTP/2 (chosen by
TLS ALPN, the cleartext preface, or an `Upgrade: h2c` request: `http/protocol.py` hands
the connection over). It feeds the bytes to h2's sans-I/O `H2Connection` and turns its
events into requests: per stream, an `Http2Head` judged by the same `HeadPolicy` as
HTTP/1.1, a request object from the server's `RequestBridge` (the same ASGI and WSGI
classes, with `h2_exchange.Http2Framing` mixed in), and an `Http2Stream`, the stream's
side of `RequestConnection`, which the request writes through.

Flow control both ways: a request body's window is reopened as the app reads it (no more
than the exchange's high-water mark is buffered beyond the window); a response's data waits
for the peer's window, and the app's writes wait with it (`drain`). Everything written in
one pass of the loop leaves in one transport write.

It serves the server as an HTTP/1.1 connection does (`ServedConnection` in
`http/seams.py`): timeouts at each tick, draining (GOAWAY with the last stream taken; the
streams taken finish), eviction at the `worker_connections` cap.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections import deque
from collections.abc import Callable, Mapping
from typing import IO, TYPE_CHECKING, cast

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from h2.errors import ErrorCodes
from hpack.exceptions import HPACKError
from hyperframe.frame import GoAwayFrame

from .errors import ContentTooLarge, RequestError, RequestLineTooLong, error_body
from .exchange import COMPLETE, FINISHED, REFUSED, Exchange
from .h2_guard import FrameGuard, Refusal, body_overdue
from .parsers import HeadFields

if TYPE_CHECKING:
    from .h2_preface import H2cUpgrade
    from .proxy_protocol import ProxyHeader
    from .response import DateHeader
    from .seams import ConnectionHost, RequestBridge, UpgradedStream

_NO_ERROR = ErrorCodes.NO_ERROR
# Request body bytes a stream reads and drops after its response is complete, before it is
# reset instead (nginx keeps reading for its lingering_time, 30 s, in the same case).
DISCARD_LIMIT = 16 * 1024 * 1024
_METHOD, _PATH, _AUTHORITY, _SCHEME = b":method", b":path", b":authority", b":scheme"
_HOST, _TE = b"host", b"te"
# RFC 9113 8.2.1 and 8.2.2: what a field name and value may not hold, and the fields that
# are HTTP/1.1's connection's.
_BAD_NAME = re.compile(rb"[\x00-\x20A-Z:\x7f-\xff]")
_BAD_VALUE = re.compile(rb"[\x00\r\n]")
_BLANKS = (b" ", b"\t")
_CONNECTION_FIELDS = frozenset((b"connection", b"keep-alive", b"proxy-connection",
                                b"transfer-encoding", b"upgrade"))


def _goaway(last_stream_id: int, error_code: ErrorCodes) -> bytes:
    frame = GoAwayFrame(0)
    frame.last_stream_id = last_stream_id
    frame.error_code = error_code
    return frame.serialize()


def _not_available(data: bytes) -> None:
    raise RuntimeError("an HTTP/2 stream has no transport of its own")


class Malformed(Exception):
    """A request header list HTTP/2 itself refuses (RFC 9113 8.1.1): a stream error,
    PROTOCOL_ERROR, that leaves the connection's other streams alone."""


class Http2Head(HeadFields):
    """A request head read from a stream's header list (RFC 9113 8.3): first what HTTP/2
    itself requires (raising `Malformed`: the known pseudo-fields, once each and before the
    others, those the method needs; field names lower-case tokens without a colon, values
    without CR, LF, NUL or surrounding blanks; no connection fields; `te` only `trailers`;
    Host agreeing with :authority), then the policy every request head answers to
    (`HeadPolicy`: field limits, underscores, content-length and `max_body_size`, `Expect`,
    trusted scheme headers; raising its `RequestError`). One pass over the fields: h2's own
    validation, six generators deep per field, is turned off."""

    def __init__(self, connection: Http2Protocol, fields: list[tuple[bytes, bytes]],
                 ended: bool) -> None:
        super().__init__(connection.policy, trusted=connection.trusted,
                         scheme=connection.scheme)
        self.http_version = "2"
        authority: bytes | None = None
        path: bytes | None = None
        scheme: bytes | None = None
        method: bytes | None = None
        regular = False
        names = []
        on_header = self.on_header
        for name, value in fields:
            if value[:1] in _BLANKS or value[-1:] in _BLANKS or _BAD_VALUE.search(value):
                raise Malformed(f"the value of {name[:40]!r} has CR, LF, NUL or blanks "
                                "around it")
            if name[:1] == b":":
                if regular:
                    raise Malformed(f"pseudo-field {name[:40]!r} after a regular field")
                if name == _METHOD and method is None:
                    method = value
                elif name == _PATH and path is None:
                    path = value
                elif name == _AUTHORITY and authority is None:
                    authority = value
                elif name == _SCHEME and scheme is None:
                    scheme = value
                else:
                    raise Malformed(f"unknown or repeated pseudo-field {name[:40]!r}")
                continue  # :scheme is the connection's (or a trusted proxy's header's)
            regular = True
            names.append(name)
            if name in _CONNECTION_FIELDS or (name == _TE and value != b"trailers"):
                raise Malformed(f"connection field {name[:40]!r} in an HTTP/2 request")
            on_header(name, value)
        # Every name at once (one scan instead of one per field).
        if names and (_BAD_NAME.search(b"".join(names)) or not all(names)):
            raise Malformed("a field name that is empty, or not a lower-case token")
        if method is None:
            raise Malformed("no :method")
        self.method = method.decode("latin-1")
        if method == b"CONNECT":
            if path is not None or scheme is not None or authority is None:
                raise Malformed("CONNECT takes :authority and no :scheme or :path")
        elif not path or scheme is None:
            raise Malformed("no :scheme, or no (or an empty) :path")
        self.target = target = path or b""
        limit = self.policy.limit_line
        if len(method) + len(target) + 10 > limit:  # as HTTP/1.1's request line
            raise RequestLineTooLong(f"the request's :method and :path exceed "
                                     f"limit_request_line ({limit} bytes)")
        if authority is not None:
            if self.host is None:
                # Apps read the host from a Host field: HTTP/2 carries it as :authority.
                self.host = authority
                self.headers.append((_HOST, authority))
            elif self.host != authority:
                raise Malformed("Host and :authority differ")
        # A body without a length is delimited by the stream's end (as chunked is in
        # HTTP/1.1); with END_STREAM on the head there is none.
        self.chunked = not ended and self.content_length is None


class Http2Stream:
    """One request's stream: the `RequestConnection` (`http/seams.py`) its exchange sees."""

    __slots__ = (
        "body_done",
        "body_mark",
        "body_since",
        "body_size",
        "client",
        "closing",
        "connection",
        "date",
        "discarding",
        "drain_waiter",
        "draining",
        "ended",
        "eof",
        "exchange",
        "extensions",
        "id",
        "lost",
        "loop",
        "may_keep_alive",
        "pending",
        "pending_end",
        "proxy",
        "read_paused",
        "sockname",
        "transport_write",
        "unacknowledged",
    )

    def __init__(self, connection: Http2Protocol, stream_id: int) -> None:
        self.connection = connection
        self.id = stream_id
        self.loop = connection.loop
        self.client = connection.client
        self.sockname = connection.sockname
        self.proxy = connection.proxy
        self.extensions = connection.extensions
        self.date = connection.date
        self.draining = connection.draining
        self.may_keep_alive = True
        self.transport_write: Callable[[bytes], object] = _not_available
        self.exchange: Exchange | None = None
        self.closing = False  # the stream is closed or reset: nothing more is written
        self.lost = False  # the peer reset it, or the connection was lost
        self.eof = False
        self.read_paused = False  # the app's unread body is above its high-water mark
        self.unacknowledged = 0  # body bytes received while paused, their window held
        self.body_done = False  # the request's END_STREAM has arrived
        self.body_size = 0
        # When the body's clock last started (None: at the next tick), and its size then.
        self.body_since: float | None = None
        self.body_mark = 0
        # The response is complete: the rest of the request's body is read and dropped.
        self.discarding = False
        # Response data waiting for the peer's window, and whether the stream ends after it.
        self.pending: deque[bytes] = deque()
        self.pending_end = False
        self.ended = False  # END_STREAM is sent (or queued in h2)
        self.drain_waiter: asyncio.Future[None] | None = None

    # -- RequestConnection: what the exchange reads ----------------------------------------
    @property
    def bridge_state(self) -> object:
        return self.connection.bridge_state

    @bridge_state.setter
    def bridge_state(self, value: object) -> None:
        self.connection.bridge_state = value

    @property
    def write_paused(self) -> bool:
        return bool(self.pending) or self.connection.write_paused

    # -- writing -------------------------------------------------------------------------
    def send_headers(self, fields: list[tuple[bytes, bytes]], *, end_stream: bool) -> None:
        if self.closing:
            return
        self.connection.h2.send_headers(self.id, fields, end_stream=end_stream)
        if end_stream:
            self.ended = True
            self.connection.stream_ended(self)
        self.connection.flush_soon()

    def send_trailers(self, fields: list[tuple[bytes, bytes]]) -> None:
        """Trailer fields end the stream, after any data still waiting for the window."""
        if self.closing:
            return
        if self.pending:
            self.pending.append(b"")
            self.pending_end = True
            self.connection.trailers[self.id] = fields
            return
        self.send_headers(fields, end_stream=True)

    def send_data(self, data: bytes, end_stream: bool) -> None:
        """Body bytes: sent as far as the peer's window allows, the rest kept in order."""
        if self.closing:
            return
        if self.pending:
            if data:
                self.pending.append(data)
            self.pending_end = self.pending_end or end_stream
            return
        connection = self.connection
        h2conn = connection.h2
        size = len(data)
        if size <= connection.max_frame and size <= h2conn.local_flow_control_window(self.id):
            h2conn.send_data(self.id, data, end_stream=end_stream)
            if end_stream:
                self.ended = True
                connection.stream_ended(self)
            connection.flush_soon()
            return
        self.pending.append(data)
        self.pending_end = end_stream
        self.send_pending()

    def send_pending(self) -> None:
        """As much of the waiting data as the windows allow (then the stream's end)."""
        connection = self.connection
        h2conn = connection.h2
        pending = self.pending
        sent = False
        while pending:
            window = h2conn.local_flow_control_window(self.id)
            if window <= 0:
                break
            piece = pending[0]
            take = min(window, connection.max_frame, len(piece))
            last = take == len(piece) and len(pending) == 1
            fields = connection.trailers.pop(self.id, None) if last and not piece else None
            if fields is not None:
                pending.popleft()
                h2conn.send_headers(self.id, fields, end_stream=True)
                self.ended = True
                sent = True
                break
            h2conn.send_data(self.id, piece[:take], end_stream=last and self.pending_end)
            sent = True
            if take == len(piece):
                pending.popleft()
            else:
                pending[0] = piece[take:]
        if not pending:
            connection.blocked.discard(self)
            if self.pending_end and not self.ended:
                self.ended = True
            waiter = self.drain_waiter
            if waiter is not None and not connection.write_paused:
                self.drain_waiter = None
                if not waiter.done():
                    waiter.set_result(None)
        else:
            connection.blocked.add(self)
        if sent:
            if self.ended:
                connection.stream_ended(self)
            connection.flush_soon()

    def end_response(self) -> None:
        """The response is complete: END_STREAM, now or after the waiting data."""
        if self.closing or self.ended:
            return
        if self.pending:
            self.pending_end = True
            return
        self.connection.h2.end_stream(self.id)
        self.ended = True
        self.connection.stream_ended(self)
        self.connection.flush_soon()

    def write(self, data: bytes) -> None:
        self.send_data(data, False)

    def writelines(self, pieces: list[bytes]) -> None:
        for piece in pieces:
            self.send_data(piece, False)

    async def drain(self) -> None:
        while (self.pending or self.connection.write_paused) and not self.closing:
            waiter = self.drain_waiter = self.loop.create_future()
            await waiter

    async def sendfile(self, file: IO[bytes], offset: int, count: int) -> int:
        raise RuntimeError("an HTTP/2 stream sends files as DATA frames, not by sendfile")

    # -- reading -------------------------------------------------------------------------
    def pause_reading(self) -> None:
        self.read_paused = True

    def resume_reading(self) -> None:
        """The app read its body: the window held for it reopens."""
        if not self.read_paused:
            return
        self.read_paused = False
        held = self.unacknowledged
        if held and not self.closing:
            self.unacknowledged = 0
            self.connection.h2.acknowledge_received_data(held, self.id)
            self.connection.flush_soon()

    # -- ending --------------------------------------------------------------------------
    def close(self) -> None:
        """Nothing more on this stream: reset it unless its response already ended."""
        self.reset(_NO_ERROR if self.ended else ErrorCodes.CANCEL)

    def abort(self) -> None:
        """The response is cut short: reset the stream (INTERNAL_ERROR)."""
        self.reset(ErrorCodes.INTERNAL_ERROR)

    def reset(self, code: ErrorCodes) -> None:
        if self.closing:
            return
        self.closing = True
        connection = self.connection
        self.pending.clear()
        connection.blocked.discard(self)
        if not self.lost and not connection.closing:
            with contextlib.suppress(h2.exceptions.StreamClosedError):
                connection.h2.reset_stream(self.id, code)
            connection.flush_soon()
        self.wake()
        connection.stream_closed(self)

    def wake(self) -> None:
        """The stream went away: an app waiting for body, or to write, hears of it."""
        exchange = self.exchange
        if exchange is not None:
            exchange.wake()
        waiter = self.drain_waiter
        if waiter is not None:
            self.drain_waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def on_response_complete(self, exchange: Exchange) -> None:
        """The exchange's response is written (END_STREAM may still wait for the window)."""
        self.connection.response_complete(self)

    def start_websocket(self, session: UpgradedStream) -> None:
        raise RuntimeError("WebSocket over HTTP/2 (RFC 8441) is not served")

    # The transport's events belong to the connection, not to a stream.
    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        pass

    def pause_writing(self) -> None:
        pass

    def resume_writing(self) -> None:
        pass


class Http2Protocol(asyncio.Protocol):
    """One HTTP/2 connection: h2's events in, streams' frames out."""

    def __init__(self, server: ConnectionHost, *, client: tuple[str, int] | None,
                 sockname: tuple[str, int | None] | None, proxy: ProxyHeader | None,
                 extensions: dict[str, Mapping[str, object]] | None, trusted: bool,
                 scheme: str, received: int = 0, upgrade: H2cUpgrade | None = None) -> None:
        self.server = server
        self.loop = server.loop
        config = server.config
        self.config = config
        self.bridge: RequestBridge = server.bridge
        self.policy = server.policy
        self.date: DateHeader = server.date
        self.counts_requests = server.counts_requests
        self.client = client
        self.sockname = sockname
        self.proxy = proxy
        self.extensions = extensions
        self.trusted = trusted
        self.scheme = scheme
        self.bridge_state: object = None
        self.upgrade = upgrade
        self.transport = cast("asyncio.Transport", None)
        self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=False, header_encoding=None, validate_outbound_headers=False,
            normalize_outbound_headers=False, split_outbound_cookies=False,
            validate_inbound_headers=False))  # Http2Head validates, in one pass
        self.h2.local_settings = h2.settings.Settings(client=False, initial_values={
            h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS:
                config.http2_max_concurrent_streams,
            h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: config.http2_initial_window_size,
            h2.settings.SettingCodes.MAX_FRAME_SIZE: config.http2_max_frame_size,
            h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE:
                config.http2_max_header_list_size or 2**31 - 1,
            h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL: 0,
        })
        self.h2.max_inbound_frame_size = config.http2_max_frame_size
        self.h2.decoder.max_header_list_size = config.http2_max_header_list_size or 2**31 - 1
        self.max_frame = self.h2.max_outbound_frame_size
        # Limits on hostile peers, read from frame headers before h2 reads the frames.
        self.guard = FrameGuard(
            max_header_list_size=config.http2_max_header_list_size,
            max_concurrent_streams=config.http2_max_concurrent_streams)
        self.streams: dict[int, Http2Stream] = {}
        self.starting: list[Http2Stream] = []
        # Streams whose response waits for the peer's window, and trailers waiting behind
        # their data.
        self.blocked: set[Http2Stream] = set()
        self.trailers: dict[int, list[tuple[bytes, bytes]]] = {}
        self.flush_handle: asyncio.Handle | None = None
        self.draining = server.draining
        # The last stream a GOAWAY promised to serve (None until one is sent).
        self.goaway_last: int | None = None
        self.peer_gone = False  # the peer sent GOAWAY
        self.closing = False
        self.lost = False
        self.write_paused = False
        self.received = received
        self.idle_since = self.loop.time()
        self.served = False  # whether a stream has been answered (keepalive, not
        # header_timeout, is then the wait for the next one)
        # What the server's metrics read of every connection.
        self.websocket: UpgradedStream | None = None
        self.cycle: Exchange | None = None

    @property
    def pipeline(self) -> list[Exchange]:
        """The requests in flight (the metrics' gauge)."""
        return [s.exchange for s in self.streams.values() if s.exchange is not None]

    # -- set-up --------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast("asyncio.Transport", transport)
        self.server.connection_made(self)
        upgrade = self.upgrade
        if upgrade is None:
            self.h2.initiate_connection()
            self.flush()
            return
        # After `101 Switching Protocols` for an `Upgrade: h2c` request: the request is
        # stream 1, already complete (RFC 7540 3.2).
        self.upgrade = None
        self.h2.initiate_upgrade_connection(upgrade.settings)
        self.flush()
        stream = Http2Stream(self, 1)
        self.streams[1] = stream
        stream.body_done = True
        self.open_exchange(stream, upgrade.head)
        self.start_streams()

    # -- asyncio callbacks ---------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        self.received += len(data)
        guard = self.guard
        refusal = guard.scan(data, self.loop.time())
        if refusal is not None:
            self.refuse_connection(refusal)
            return
        try:
            events = self.h2.receive_data(guard.feed)
        except h2.exceptions.ProtocolError as exc:
            self.server.log.debug("HTTP/2 protocol error from %s: %s", self.client, exc)
            # h2 has queued its GOAWAY: close() adds no GOAWAY (NO_ERROR) after it.
            self.goaway_last = self.h2.highest_inbound_stream_id
            if isinstance(exc.__cause__, HPACKError):
                self.fail_decoding()
            self.flush()
            self.close()
            return
        for event in events:
            kind = type(event)
            if kind is h2.events.RequestReceived:
                self.request_received(cast("h2.events.RequestReceived", event))
            elif kind is h2.events.DataReceived:
                self.body_received(cast("h2.events.DataReceived", event))
            elif kind is h2.events.StreamEnded:
                self.body_ended(cast("h2.events.StreamEnded", event).stream_id)
            elif kind is h2.events.StreamReset:
                self.stream_reset(cast("h2.events.StreamReset", event).stream_id)
            elif kind is h2.events.WindowUpdated or kind is h2.events.RemoteSettingsChanged:
                self.max_frame = self.h2.max_outbound_frame_size
                self.window_opened()
            elif kind is h2.events.TrailersReceived:
                # Not passed on (ASGI has no request trailers); StreamEnded follows.
                self.trailers_received(cast("h2.events.TrailersReceived", event))
        self.start_streams()
        self.flush()
        if guard.peer_goaway:
            # The peer opens no more streams (its GOAWAY reaches h2 as an unknown frame,
            # h2_guard.PEER_GOAWAY): the connection closes once those open are done.
            self.peer_gone = True
        if self.peer_gone and not self.streams:
            self.close()

    def fail_decoding(self) -> None:
        """h2 answers a field block it cannot decode with GOAWAY (PROTOCOL_ERROR); RFC 9113
        section 4.3 wants COMPRESSION_ERROR. The GOAWAY h2 queued last is swapped for one
        with that code (left as it is if h2 queued something else)."""
        last = self.h2.highest_inbound_stream_id
        data = self.h2.data_to_send()
        theirs = _goaway(last, ErrorCodes.PROTOCOL_ERROR)
        if data.endswith(theirs):
            data = data[:-len(theirs)] + _goaway(last, ErrorCodes.COMPRESSION_ERROR)
        if data and not self.lost:
            self.transport.write(data)

    def request_received(self, event: h2.events.RequestReceived) -> None:
        stream_id = event.stream_id
        assert stream_id is not None
        if self.goaway_last is not None and stream_id > self.goaway_last:
            self.h2.reset_stream(stream_id, ErrorCodes.REFUSED_STREAM)
            return
        stream = Http2Stream(self, stream_id)
        self.streams[stream_id] = stream
        ended = event.stream_ended is not None
        try:
            head = Http2Head(self, event.headers, ended)
        except Malformed as exc:
            self.server.log.debug("Malformed HTTP/2 request from %s: %s", self.client, exc)
            stream.reset(ErrorCodes.PROTOCOL_ERROR)
            return
        except RequestError as exc:
            self.refuse(stream, exc)
            return
        stream.body_done = ended
        self.open_exchange(stream, head)

    def open_exchange(self, stream: Http2Stream, head: HeadFields) -> None:
        exchange = self.bridge.open_request(stream, head, False)
        if not isinstance(exchange, Exchange):
            self.refuse(stream, exchange)
            return
        if stream.body_done:
            exchange.body_state = COMPLETE
        stream.exchange = exchange
        if self.counts_requests:
            self.server.request_received()
        self.starting.append(stream)

    def start_streams(self) -> None:
        """Start the requests whose heads arrived, once the bytes at hand are read (a body
        they show to be bad is refused before the app runs)."""
        starting = self.starting
        if not starting:
            return
        self.starting = []
        for stream in starting:
            exchange = stream.exchange
            if exchange is not None and exchange.body_state is not REFUSED and not stream.closing:
                exchange.start()

    def body_received(self, event: h2.events.DataReceived) -> None:
        stream_id = event.stream_id
        assert stream_id is not None
        size = event.flow_controlled_length or 0
        stream = self.streams.get(stream_id)
        if stream is None or stream.discarding or stream.closing:
            self.h2.acknowledge_received_data(size, stream_id)
            if stream is not None and stream.discarding:
                stream.body_size += len(event.data)
                if stream.body_size > DISCARD_LIMIT:
                    self.drop(stream)
            return
        exchange = stream.exchange
        assert exchange is not None  # a stream without one is refused, or discarding
        data = event.data
        stream.body_size += len(data)
        limit = self.policy.max_body_size
        if limit and stream.body_size > limit:
            exchange.body_state = REFUSED
            self.refuse(stream, ContentTooLarge(
                f"request body over max_body_size {limit}"), exchange)
            self.h2.acknowledge_received_data(size, stream_id)
            return
        exchange.feed_body(data)
        if stream.read_paused:
            stream.unacknowledged += size
        else:
            self.h2.acknowledge_received_data(size, stream_id)

    def trailers_received(self, event: h2.events.TrailersReceived) -> None:
        """A request's trailer section may hold no pseudo-field (RFC 9113 8.1)."""
        stream = self.streams.get(event.stream_id or 0)
        if stream is not None and any(name[:1] == b":" for name, _ in event.headers):
            self.server.log.debug("Malformed HTTP/2 trailers from %s", self.client)
            stream.reset(ErrorCodes.PROTOCOL_ERROR)

    def body_ended(self, stream_id: int) -> None:
        stream = self.streams.get(stream_id)
        if stream is None:
            return
        stream.body_done = True
        exchange = stream.exchange
        if stream.discarding:
            stream.closing = True
            self.stream_closed(stream)
        elif exchange is not None and exchange.body_state is not REFUSED:
            exchange.body_state = COMPLETE
            if exchange.waiter is not None:
                exchange.wake()

    def stream_reset(self, stream_id: int) -> None:
        stream = self.streams.pop(stream_id, None)
        if stream is None:
            return
        stream.lost = stream.closing = True
        self.blocked.discard(stream)
        stream.pending.clear()
        stream.wake()
        self.stream_closed(stream)

    def window_opened(self) -> None:
        for stream in list(self.blocked):
            stream.send_pending()

    # -- streams ending ------------------------------------------------------------------
    def refuse(self, stream: Http2Stream, exc: RequestError,
               exchange: Exchange | None = None) -> None:
        """Answer a refused request on its stream (the app never sees it), then end it."""
        self.server.log.debug("Invalid request from %s: %s", self.client, exc.detail)
        if exchange is not None and exchange.framing is not None:
            stream.abort()
            return
        body = error_body(exc)
        stream.send_headers([(b":status", b"%d" % exc.status),
                             (b"content-type", b"text/plain; charset=utf-8"),
                             (b"content-length", b"%d" % len(body)), *self.date.h2_fields],
                            end_stream=False)
        stream.send_data(body, True)
        stream.closing = True  # the app, if it runs, writes no more
        if exchange is not None:
            exchange.response_state = FINISHED
            exchange.wake()
        if stream.body_done:
            self.stream_closed(stream)
        else:
            self.discard(stream)

    def discard(self, stream: Http2Stream) -> None:
        """The response is complete and the request's body is still coming: it is read
        and dropped, as HTTP/1.1 does (a client may be waiting to send all of it before it
        reads the response; RFC 9113 8.1 allows RST_STREAM NO_ERROR instead, which some
        clients take for a failure). Past DISCARD_LIMIT bytes the stream is reset."""
        stream.discarding = True
        exchange = stream.exchange
        if exchange is not None:
            exchange.discard_body()
        held = stream.unacknowledged
        if held:
            stream.unacknowledged = 0
            self.h2.acknowledge_received_data(held, stream.id)
            self.flush_soon()

    def drop(self, stream: Http2Stream) -> None:
        """End a stream whose response is complete, refusing the rest of its body."""
        with contextlib.suppress(h2.exceptions.StreamClosedError):
            self.h2.reset_stream(stream.id, _NO_ERROR)
        stream.closing = True
        self.flush_soon()
        self.stream_closed(stream)

    def response_complete(self, stream: Http2Stream) -> None:
        """A response is written: once its END_STREAM is out the stream is done, or reads
        and drops the rest of its body (`discard`)."""
        if stream.ended and not stream.pending:
            self.stream_ended(stream)

    def stream_ended(self, stream: Http2Stream) -> None:
        """END_STREAM is sent for a stream's response."""
        exchange = stream.exchange
        if exchange is None or exchange.response_state is not FINISHED:
            return  # the exchange reports completion itself, then this runs again
        if not stream.body_done:
            self.discard(stream)
            return
        stream.closing = True
        self.stream_closed(stream)

    def stream_closed(self, stream: Http2Stream) -> None:
        if self.streams.pop(stream.id, None) is None:
            return
        self.blocked.discard(stream)
        self.trailers.pop(stream.id, None)
        self.served = True
        if not self.streams:
            self.idle_since = self.loop.time()
            if (self.goaway_last is not None or self.peer_gone) and not self.closing:
                self.flush_soon()
                self.loop.call_soon(self.close)

    # -- writing -------------------------------------------------------------------------
    def flush_soon(self) -> None:
        """Write what h2 holds once this pass of the loop is over (one write for all the
        responses of the pass)."""
        if self.flush_handle is None:
            self.flush_handle = self.loop.call_soon(self.flush)

    def flush(self) -> None:
        handle = self.flush_handle
        if handle is not None:
            handle.cancel()
            self.flush_handle = None
        data = self.h2.data_to_send()
        if data and not self.lost:
            self.transport.write(data)

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        for stream in list(self.streams.values()):
            if not stream.pending:
                waiter = stream.drain_waiter
                if waiter is not None:
                    stream.drain_waiter = None
                    if not waiter.done():
                        waiter.set_result(None)

    # -- the server's side (ServedConnection) ----------------------------------------------
    def send_goaway(self) -> None:
        """GOAWAY (NO_ERROR) naming the last stream taken: the peer opens no new ones, and
        those taken finish."""
        if self.goaway_last is not None or self.closing or self.lost:
            return
        self.goaway_last = last = self.h2.highest_inbound_stream_id
        self.flush()
        self.transport.write(_goaway(last, _NO_ERROR))
        if not self.streams:
            self.loop.call_soon(self.close)

    def refuse_connection(self, refusal: Refusal) -> None:
        """A limit of `h2_guard` is passed: GOAWAY with its code, and close (the bytes
        that passed it are never read; a peer that is not reading is cut off at once)."""
        if self.closing:
            return
        self.server.log.debug("HTTP/2 connection from %s refused: %s", self.client,
                              refusal.reason)
        if self.goaway_last is None:
            self.goaway_last = self.h2.highest_inbound_stream_id
        self.flush()
        self.transport.write(_goaway(self.goaway_last, refusal.code))
        self.close()
        if self.write_paused:
            self.abort()

    def begin_drain(self, *, going_away: bool) -> None:
        self.draining = True
        for stream in self.streams.values():
            stream.draining = True
        self.send_goaway()

    def is_idle(self) -> bool:
        return not self.streams

    def idle_time(self, now: float) -> float:
        return now - self.idle_since if not self.streams else 0.0

    def check_timeouts(self, now: float) -> None:
        """An idle connection (no stream open) is closed after `keepalive` seconds (before
        its first request, `header_timeout`); a stream whose request body is too slow is
        reset (`check_bodies`)."""
        if self.closing:
            return
        if self.streams:
            self.check_bodies(now)
            return
        config = self.config
        limit = config.keepalive if self.served else config.header_timeout
        if now - self.idle_since >= limit:
            self.close()

    def check_bodies(self, now: float) -> None:
        """Reset (CANCEL) each stream whose request body comes slower than `body_timeout`
        and `body_min_rate` allow (`h2_guard.body_overdue`); its clock is stopped while the
        app leaves the body unread or the client waits for `100 Continue`."""
        config = self.config
        timeout, min_rate = config.body_timeout, config.body_min_rate
        if timeout <= 0 and min_rate <= 0:
            return
        for stream in list(self.streams.values()):
            exchange = stream.exchange
            if stream.body_done or stream.closing or exchange is None:
                continue
            if stream.body_since is None or stream.read_paused or exchange.expect_continue:
                stream.body_since = now
                stream.body_mark = stream.body_size
                continue
            reason = body_overdue(now - stream.body_since, stream.body_size - stream.body_mark,
                                  timeout=timeout, min_rate=min_rate,
                                  grace=config.min_rate_grace)
            if reason is not None:
                self.server.log.debug("HTTP/2 stream %d from %s reset: %s", stream.id,
                                      self.client, reason)
                stream.reset(ErrorCodes.CANCEL)
                stream.lost = True  # for the app, as if the peer had reset it

    def eviction_rank(self, now: float, grace: float) -> tuple[int, float] | None:
        if self.closing or self.streams or now - self.idle_since < grace:
            return None
        return (2 if self.served else 1, self.idle_since)

    def evict(self) -> None:
        self.server.log.debug("closing the HTTP/2 connection from %s to admit a new one "
                              "(worker_connections reached)", self.client)
        self.close()

    def close(self) -> None:
        if self.closing:
            return
        if not self.lost and self.goaway_last is None and not self.peer_gone:
            self.send_goaway()
        self.closing = True
        self.flush()
        if not self.lost:
            self.transport.close()
        for stream in list(self.streams.values()):
            stream.lost = stream.closing = True
            stream.wake()

    def abort(self) -> None:
        self.closing = True
        if not self.lost:
            self.transport.abort()

    def eof_received(self) -> bool:
        self.close()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.closing = True
        handle = self.flush_handle
        if handle is not None:
            handle.cancel()
            self.flush_handle = None
        self.server.connection_closed(self)
        for stream in list(self.streams.values()):
            stream.lost = stream.closing = True
            stream.wake()
        self.streams.clear()
        self.blocked.clear()
