"""The connection's two typed seams, and nothing else.

`ConnectionHost` is what a connection (`http/protocol.py`) is given by the server that
accepted it: the settings it needs, the hooks it calls, and the `RequestBridge` that turns a
parsed request head into a request object of the app's interface (ASGI or WSGI).
`RequestConnection` is all a request object sees of its connection: writing, flow control,
closing, and telling that its response is complete. The layers above (server, asgi, wsgi)
talk to http/ through these two and the `Exchange` base class; http/ imports nothing above it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import IO, TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import asyncio
    from types import TracebackType

    from ..config import ServerConfig
    from .errors import RequestError
    from .exchange import Exchange
    from .parsers import HeadFields, HeadPolicy, ParserAdapter
    from .proxy_protocol import ProxyHeader
    from .response import DateHeader

    # What `exc_info` may be, as `logging` takes it (Gunicorn's logger passes it on).
    ExcInfo = (bool | BaseException | None
               | tuple[type[BaseException], BaseException, TracebackType | None]
               | tuple[None, None, None])


class Log(Protocol):
    """The logger a worker is given (Gunicorn's `glogging.Logger` or a stand-in): the
    `logging` methods, with the `exc_info` keyword (the only one used)."""

    def debug(self, msg: object, *args: object, exc_info: ExcInfo = None) -> None: ...
    def info(self, msg: object, *args: object, exc_info: ExcInfo = None) -> None: ...
    def warning(self, msg: object, *args: object, exc_info: ExcInfo = None) -> None: ...
    def error(self, msg: object, *args: object, exc_info: ExcInfo = None) -> None: ...
    def exception(self, msg: object, *args: object, exc_info: ExcInfo = True) -> None: ...


class UpgradedStream(Protocol):
    """A protocol a connection became after an upgrade (a WebSocket session): it reads the
    connection's bytes from then on, and hears of its end."""

    def transport_protocol(self) -> asyncio.BaseProtocol: ...
    def feed(self, data: bytes) -> None: ...
    def eof(self) -> None: ...
    def connection_lost(self) -> None: ...
    def going_away(self) -> None: ...
    def tick(self) -> None: ...


class RequestConnection(Protocol):
    """What a request object sees of the connection it arrived on."""

    loop: asyncio.AbstractEventLoop
    # Who and where: the client (the PROXY header's, when one named it), the address this
    # worker listens on, the PROXY header, the scope's `extensions` on a TLS connection.
    client: tuple[str, int] | None
    sockname: tuple[str, int | None] | None
    proxy: ProxyHeader | None
    extensions: dict[str, Mapping[str, object]] | None
    # The bridge's own, kept across the connection's requests (the WSGI bridge: the environ
    # keys that are the connection's); None until the bridge sets it.
    bridge_state: object
    date: DateHeader
    # Whether the server drains (graceful shutdown), and whether responses may keep the
    # connection open (not while draining, nor when `keepalive` is 0).
    draining: bool
    may_keep_alive: bool
    closing: bool
    lost: bool
    eof: bool
    read_paused: bool
    # The transport's buffer (or an HTTP/2 stream's window) is full: `drain` before more.
    @property
    def write_paused(self) -> bool: ...
    # The transport's own write, for a request that checked `closing` itself (one Python
    # call fewer than `write` on the path every response takes).
    transport_write: Callable[[bytes], object]

    def write(self, data: bytes) -> None: ...
    def writelines(self, pieces: list[bytes]) -> None: ...
    async def drain(self) -> None: ...
    async def sendfile(self, file: IO[bytes], offset: int, count: int) -> int: ...
    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...
    def close(self) -> None: ...
    def abort(self) -> None: ...
    def on_response_complete(self, exchange: Exchange) -> None: ...
    def start_websocket(self, session: UpgradedStream) -> None: ...
    # The transport's events, which an upgraded stream's reader (the transport's protocol
    # from the upgrade on) hands back to the connection.
    def eof_received(self) -> bool | None: ...
    def connection_lost(self, exc: Exception | None) -> None: ...
    def pause_writing(self) -> None: ...
    def resume_writing(self) -> None: ...


class RequestBridge(Protocol):
    """One app interface (ASGI or WSGI): builds the request objects of its app."""

    def open_request(self, connection: RequestConnection, head: HeadFields,
                     upgrade_allowed: bool) -> Exchange | RequestError:
        """The request object for a parsed head, not started yet; or the error that
        refuses the request (the connection answers it). Never raises for a client's
        mistake. `upgrade_allowed`: no earlier request on the connection is unanswered, so
        an upgrade may take the connection over."""
        ...

    def tick(self) -> None:
        """Once a second, with the server's tick (the WSGI bridge looks for stuck calls)."""
        ...

    def close(self) -> None:
        """The worker is stopping: release what the bridge holds (a thread pool)."""
        ...


class ServedConnection(Protocol):
    """What the server holds of each connection, HTTP/1.1 (`HttpProtocol`) or HTTP/2
    (`Http2Protocol`): its timeouts, draining and closing, and what the metrics read."""

    received: int
    websocket: UpgradedStream | None
    cycle: Exchange | None

    @property
    def pipeline(self) -> Collection[Exchange]: ...
    def check_timeouts(self, now: float) -> None: ...
    def eviction_rank(self, now: float, grace: float) -> tuple[int, float] | None: ...
    def evict(self) -> None: ...
    def begin_drain(self, *, going_away: bool) -> None: ...
    def is_idle(self) -> bool: ...
    def idle_time(self, now: float) -> float: ...
    def close(self) -> None: ...
    def abort(self) -> None: ...


class ConnectionHost(Protocol):
    """What a connection is given by the server that accepted it."""

    config: ServerConfig
    loop: asyncio.AbstractEventLoop
    parser_class: type[ParserAdapter]
    policy: HeadPolicy
    date: DateHeader
    draining: bool
    bridge: RequestBridge
    # Whether `request_received` must be called for each request (`max_requests` is set).
    counts_requests: bool
    # Whether a cleartext connection from a trusted peer may open with the HTTP/2 preface,
    # and whether it may ask for HTTP/2 with `Upgrade: h2c`.
    h2_prior_knowledge: bool
    h2c_upgrade: bool

    @property
    def log(self) -> Log: ...

    def request_received(self) -> None: ...
    def tls_extensions(self, transport: asyncio.BaseTransport
                       ) -> dict[str, Mapping[str, object]] | None: ...
    def connection_made(self, connection: ServedConnection) -> None: ...
    def connection_closed(self, connection: ServedConnection) -> None: ...
