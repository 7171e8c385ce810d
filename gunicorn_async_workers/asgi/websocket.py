"""ASGI WebSocket sessions: the `websocket` scope, the ASGI messages both ways, and the answer
to the handshake.

The HTTP protocol hands a connection here once an `Upgrade: websocket` request has been
parsed. The handshake is judged here and by the `websockets` library's
`ServerProtocol.accept` (a bad one is answered 400/426 and never reaches the app). The app
answers it with a 101 (`websocket.accept`) or over HTTP (`websocket.close` before accepting
is a 403; the `websocket.http.response` denial extension sends its own response), written by
the same response writer as any HTTP response (`Exchange.write_head`, `write_body`,
`finish`). From the 101 on, frames, pings, the closing handshake and the buffers in both
directions are the connection's (`websocket_connection.py`); this module only turns its
messages into ASGI messages and the app's into frames.

Which message the app may send depends on the session's state (`SessionState`): `_SENDS`
lists them for each.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from websockets.datastructures import Headers
from websockets.frames import CloseCode, Opcode
from websockets.http11 import Request, Response

from ..http.exchange import FINISHED, PENDING, REFUSED, STARTED, ClientDisconnected, Exchange
from .scope import ASGI_VERSION, scope_path
from .websocket_connection import (
    CLOSE_TIMEOUT,
    FRAGMENT_COST,
    Closed,
    SessionState,
    WebSocketConnection,
    WebSocketReader,
)

if TYPE_CHECKING:
    from ..accesslog import Record
    from ..http.parsers import HeadFields
    from ..http.seams import RequestConnection
    from ..prometheus.tally import RequestTally
    from .bridge import AsgiBridge
    from .types import (
        ASGISendEvent,
        Extensions,
        WebSocketAcceptEvent,
        WebSocketCloseEvent,
        WebSocketConnectEvent,
        WebSocketReceiveEvents,
        WebSocketResponseBodyEvent,
        WebSocketResponseStartEvent,
        WebSocketScope,
        WebSocketSendEvent,
    )

__all__ = ["CLOSE_TIMEOUT", "FRAGMENT_COST", "MeteredWebSocketSession", "SessionState",
           "WebSocketSession"]

_EXTENSIONS: Extensions = {"websocket.http.response": {}}
_CONNECT: WebSocketConnectEvent = {"type": "websocket.connect"}
_CONNECTING, _OPEN = SessionState.CONNECTING, SessionState.OPEN
_BINARY, _TEXT = Opcode.BINARY, Opcode.TEXT
_PLAIN_TEXT = [(b"content-type", b"text/plain")]


class WebSocketSession(Exchange):
    """One WebSocket connection's ASGI side, from the upgrade request to the app's return."""

    __slots__ = ("bridge", "connection", "handshake", "reader", "request", "request_method",
                 "scope")

    is_websocket = True
    record: Record | None

    def __init__(self, bridge: AsgiBridge, protocol: RequestConnection,
                 head: HeadFields) -> None:
        # Built by the ASGI bridge (the app, its log, the lifespan state, the request
        # recorder); the connection gives the scope's addresses and TLS extension.
        self.bridge = bridge
        config = bridge.config
        target = head.target
        root_path = config.root_path
        path, raw_path, query = scope_path(target, head.method, root_path)
        subprotocols = [p.strip() for value in (v for n, v in head.headers
                                                if n == b"sec-websocket-protocol")
                        for p in value.decode("latin-1").split(",") if p.strip()]
        self.scope: WebSocketScope = {
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
        headers = Headers()
        for name, value in head.headers:
            headers[name.decode("latin-1")] = value.decode("latin-1")
        self.request = Request(target.decode("latin-1"), headers)
        self.handshake: Response | None = None  # the 101 response, once judged valid
        connection = self.connection = WebSocketConnection(protocol, config.options, self.wake)
        connection.inbox.append(_CONNECT)
        self.reader = connection.buffer  # the buffer the server's tick shrinks when idle

    # -- what the HTTP protocol and the server call ------------------------------------
    def transport_protocol(self) -> WebSocketReader:
        """The transport's protocol from the upgrade on: it reads into the connection's
        buffer."""
        return WebSocketReader(self.connection)

    def feed(self, data: bytes) -> None:
        """Frames that arrived with the upgrade request."""
        self.connection.input.feed(data)

    def eof(self) -> None:
        self.connection.eof()

    def connection_lost(self) -> None:
        self.connection.connection_lost()

    def going_away(self) -> None:
        """Graceful shutdown: close with 1001 and let the app finish."""
        self.connection.going_away()

    def tick(self) -> None:
        """Once a second: a stalled peer's partial frame keeps only what it sent."""
        self.reader.shrink_idle()

    # -- the ASGI callables ------------------------------------------------------------
    async def receive(self) -> WebSocketReceiveEvents:
        connection = self.connection
        message = connection.take()
        while message is None:
            waiter = self.waiter = connection.loop.create_future()
            await waiter
            message = connection.take()
        # (`type(message) is` each time: the type checker narrows the message by it.)
        if type(message) is bytes:
            return {"type": "websocket.receive", "bytes": message}
        if type(message) is str:
            return {"type": "websocket.receive", "text": message}
        if type(message) is Closed:
            return {"type": "websocket.disconnect", "code": message.code,
                    "reason": message.reason}
        if type(message) is dict:
            # The connect event, which the session put in the inbox itself (once).
            return cast("WebSocketConnectEvent", message)
        assert isinstance(message, (bytearray, memoryview))  # a binary message, not bytes
        return {"type": "websocket.receive", "bytes": bytes(message)}

    async def send(self, message: ASGISendEvent) -> None:
        kind = message["type"]
        state = self.connection.state
        protocol = self.protocol
        if protocol.closing or (state is not _OPEN and state is not _CONNECTING):
            raise ClientDisconnected(f"{kind} after the WebSocket closed")
        # (The tables are picked by identity: an Enum member hashes in Python.)
        handler = (_OPEN_SENDS if state is _OPEN else _CONNECTING_SENDS).get(kind)
        if handler is None:
            raise RuntimeError(f"{kind} while the WebSocket is {state.value}: the app may "
                               f"send {', '.join(_SENDS[state])}")
        handler(self, message)
        if protocol.write_paused and kind == "websocket.send":
            await protocol.drain()

    def _send_message(self, message: WebSocketSendEvent) -> None:
        text = message.get("text")
        if text is not None:
            self.connection.send_frame(_TEXT, text.encode())
        else:
            self.connection.send_frame(_BINARY, message.get("bytes") or b"")

    def _close(self, message: WebSocketCloseEvent) -> None:
        self.connection.close(message.get("code") or CloseCode.NORMAL_CLOSURE,
                              message.get("reason") or "")

    def _accept(self, message: WebSocketAcceptEvent) -> None:
        if self.response_state is not PENDING:
            raise RuntimeError("websocket.accept after websocket.http.response.start")
        response = self.handshake
        assert response is not None  # judged before the app runs
        subprotocol = message.get("subprotocol")
        if subprotocol is not None:
            if subprotocol not in self.scope["subprotocols"]:
                raise RuntimeError(f"subprotocol {subprotocol!r} was not offered by the client")
            response.headers["Sec-WebSocket-Protocol"] = subprotocol
        for name, value in message.get("headers") or ():
            response.headers[name.decode("latin-1")] = value.decode("latin-1")
        self.status = 101
        connection = self.connection
        connection.open(response)
        if self.protocol.draining:
            connection.going_away()  # accepted after graceful shutdown began: 1001 at once
        else:
            connection.start_pinging()

    def _refuse(self, message: WebSocketCloseEvent) -> None:
        """websocket.close before accepting: 403, or the end of a denial begun."""
        if self.response_state is not PENDING:
            self._deny_body(b"", False)
        else:
            self._deny(403, [], b"")

    def _start_denial(self, message: WebSocketResponseStartEvent) -> None:
        if self.response_state is not PENDING:
            raise RuntimeError("websocket.http.response.start sent twice")
        self.response_state = STARTED
        self.status = message["status"]
        self.headers = list(message.get("headers") or [])

    def _denial_body(self, message: WebSocketResponseBodyEvent) -> None:
        if self.response_state is PENDING:
            raise RuntimeError("websocket.http.response.body before "
                               "websocket.http.response.start")
        self._deny_body(message.get("body", b""), message.get("more_body", False))

    def _deny(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.response_state = STARTED
        self.status = status
        self.headers = headers
        self._deny_body(body, False)

    def _deny_body(self, body: bytes, more: bool) -> None:
        """An HTTP answer to the handshake (the app's denial, or ours), written as any HTTP
        response is; the connection closes after it."""
        if self.framing is None:
            self.write_head(body, more)
        else:
            self.write_body(body)
        if not more:
            self.finish()
            self.connection.close_transport()

    # -- running the app ---------------------------------------------------------------
    def judge_handshake(self) -> bool:
        """Answer a bad handshake (RFC 6455 4.2.2) without the app; True when it is good."""
        request = self.request
        version = request.headers.get("Sec-WebSocket-Version")
        if self.scope["http_version"] != "1.1":
            self._deny(400, _PLAIN_TEXT, b"WebSocket handshake needs HTTP/1.1\n")
            return False
        if self.request_method != "GET":
            self._deny(400, _PLAIN_TEXT, b"WebSocket handshake must be a GET\n")
            return False
        if version is not None and version.strip() != "13":
            self._deny(426, [(b"sec-websocket-version", b"13"), *_PLAIN_TEXT],
                       b"Unsupported WebSocket version\n")
            return False
        response = self.connection.judge(request)
        if response is None:
            self._deny(400, _PLAIN_TEXT, b"WebSocket handshake beyond the limits of the "
                       b"websockets library\n")
            return False
        if response.status_code != 101:
            headers = [(k.lower().encode("latin-1"), v.encode("latin-1"))
                       for k, v in response.headers.raw_items()
                       if k.lower() not in ("content-length", "connection", "date", "server")]
            if version is None:
                headers.append((b"sec-websocket-version", b"13"))
            self._deny(400 if response.status_code == 426 else response.status_code,
                       headers, bytes(response.body or b""))
            return False
        self.handshake = response
        return True

    def start(self) -> None:
        recorder = self.bridge.recorder
        if recorder is not None:
            recorder.start(self)
        self.protocol.loop.create_task(self.run())

    async def run(self) -> None:
        protocol = self.protocol
        bridge = self.bridge
        try:
            if self.body_state is REFUSED or not self.judge_handshake():
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
            self.connection.stop_pinging()
            if bridge.recorder is not None:
                bridge.recorder.end(self)

    def _end_after_app(self, code: int) -> None:
        """The app returned: finish the closing handshake, or answer a handshake it left
        unanswered (403, or 500 when it failed), or cut a denial it left unfinished."""
        if self.connection.state is not _CONNECTING:
            self.connection.end_after_app(code)
        elif self.framing is None:
            if not self.protocol.closing:
                self._deny(403 if code == CloseCode.NORMAL_CLOSURE else 500, [], b"")
        elif self.response_state is not FINISHED:
            self.fail()


class MeteredWebSocketSession(WebSocketSession):
    """A session that counts the messages its app receives and sends, for Prometheus. The
    bridge makes these only when metrics are on: a plain session counts nothing."""

    __slots__ = ("tally",)

    tally: RequestTally

    async def receive(self) -> WebSocketReceiveEvents:
        event = await WebSocketSession.receive(self)
        if event["type"] == "websocket.receive":
            self.tally.messages_in += 1
        return event

    async def send(self, message: ASGISendEvent) -> None:
        await WebSocketSession.send(self, message)
        if message["type"] == "websocket.send":
            self.tally.messages_out += 1


# A handler takes the event of its message's type: each table picks it by that type (the
# casts tell the type checker so, once, at import).
_Handler = Callable[[WebSocketSession, "ASGISendEvent"], None]
# What the app may send in each state (CLOSING and CLOSED: nothing, ClientDisconnected).
_CONNECTING_SENDS: dict[str, _Handler] = {
    "websocket.accept": cast(_Handler, WebSocketSession._accept),
    "websocket.close": cast(_Handler, WebSocketSession._refuse),
    "websocket.http.response.start": cast(_Handler, WebSocketSession._start_denial),
    "websocket.http.response.body": cast(_Handler, WebSocketSession._denial_body),
}
_OPEN_SENDS: dict[str, _Handler] = {
    "websocket.send": cast(_Handler, WebSocketSession._send_message),
    "websocket.close": cast(_Handler, WebSocketSession._close),
}
_SENDS = {_CONNECTING: _CONNECTING_SENDS, _OPEN: _OPEN_SENDS}
