"""The ASGI 3 interface as types: the scopes, every event of the HTTP, WebSocket and lifespan
protocols, and the app's callables (spec version 2.4).

Our own definitions, for the type checker; they follow the spec's key names and defaults.
An event the server gives the app has every key the server always sets as required; an event
the app gives the server has as optional every key the spec gives a default. A `TypedDict`
is a plain dict at run time: nothing here costs a request anything.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Literal, TypedDict, final

# -- scopes ----------------------------------------------------------------------------------
# A TCP peer: (host, port). The server's own address on a Unix socket is (path, None).
Address = tuple[str, int]
ServerAddress = tuple[str, int | None]
# Header names lower-cased, as the server gives them; an app may send any case.
Headers = list[tuple[bytes, bytes]]
# Extension name -> its dict (`tls`, `websocket.http.response`).
Extensions = dict[str, Mapping[str, object]]


class ASGIVersions(TypedDict):
    """The scope's `asgi` key."""

    version: str
    spec_version: str


class _ConnectionScopeKeys(TypedDict):
    """The keys an HTTP and a WebSocket scope share."""

    asgi: ASGIVersions
    http_version: str
    scheme: str
    path: str
    raw_path: bytes
    query_string: bytes
    root_path: str
    headers: Headers
    client: Address | None
    server: ServerAddress | None
    state: dict[str, object]


@final  # no other keys: `"method" in scope` tells an HTTP scope from a WebSocket one
class HTTPScope(_ConnectionScopeKeys):
    """An HTTP request's scope. `extensions`: the response extensions the connection can
    honour, and `tls` on a TLS connection (asgi/scope.py)."""

    type: Literal["http"]
    method: str
    extensions: Extensions


@final
class WebSocketScope(_ConnectionScopeKeys):
    """A WebSocket connection's scope (`extensions` always has `websocket.http.response`)."""

    type: Literal["websocket"]
    subprotocols: list[str]
    extensions: Extensions


@final
class LifespanScope(TypedDict):
    """The lifespan scope: `state` is copied (shallowly) into every request's scope."""

    type: Literal["lifespan"]
    asgi: ASGIVersions
    state: dict[str, object]


Scope = HTTPScope | WebSocketScope | LifespanScope


class TLSExtension(TypedDict):
    """The `tls` extension of a TLS connection's scopes (asgiref's specs/tls.rst, 0.2)."""

    server_cert: str | None
    client_cert_chain: list[str]
    client_cert_name: str | None
    client_cert_error: str | None
    tls_version: int | None
    cipher_suite: int | None


# -- HTTP events -------------------------------------------------------------------------------
class HTTPRequestEvent(TypedDict):
    type: Literal["http.request"]
    body: bytes
    more_body: bool


class HTTPDisconnectEvent(TypedDict):
    type: Literal["http.disconnect"]


class _HTTPResponseStartKeys(TypedDict):
    type: Literal["http.response.start"]
    status: int


class HTTPResponseStartEvent(_HTTPResponseStartKeys, total=False):
    headers: Iterable[tuple[bytes, bytes]]
    trailers: bool


class _HTTPResponseBodyKeys(TypedDict):
    type: Literal["http.response.body"]


class HTTPResponseBodyEvent(_HTTPResponseBodyKeys, total=False):
    body: bytes
    more_body: bool


# -- HTTP extensions (asgiref's extensions.rst) --------------------------------------------------
class HTTPResponsePathSendEvent(TypedDict):
    """`http.response.pathsend`: the server sends the file at `path` as the whole body."""

    type: Literal["http.response.pathsend"]
    path: str


class _HTTPResponseZeroCopySendKeys(TypedDict):
    type: Literal["http.response.zerocopysend"]
    file: object  # an open file descriptor (int), or an object with fileno()


class HTTPResponseZeroCopySendEvent(_HTTPResponseZeroCopySendKeys, total=False):
    """`http.response.zerocopysend`: `count` bytes of `file` from `offset` as a body part."""

    offset: int
    count: int
    more_body: bool


class HTTPResponseEarlyHintEvent(TypedDict):
    """`http.response.early_hint`: a 103 interim response, one `link` field per value."""

    type: Literal["http.response.early_hint"]
    links: Iterable[bytes]


class _HTTPResponseTrailersKeys(TypedDict):
    type: Literal["http.response.trailers"]


class HTTPResponseTrailersEvent(_HTTPResponseTrailersKeys, total=False):
    """`http.response.trailers`: trailer fields, after a start with `trailers: True`."""

    headers: Iterable[tuple[bytes, bytes]]
    more_trailers: bool


HTTPReceiveEvents = HTTPRequestEvent | HTTPDisconnectEvent
HTTPExtensionSendEvents = (HTTPResponsePathSendEvent | HTTPResponseZeroCopySendEvent
                           | HTTPResponseEarlyHintEvent | HTTPResponseTrailersEvent)
HTTPSendEvents = HTTPResponseStartEvent | HTTPResponseBodyEvent | HTTPExtensionSendEvents


# -- WebSocket events --------------------------------------------------------------------------
class WebSocketConnectEvent(TypedDict):
    type: Literal["websocket.connect"]


class _WebSocketReceiveKeys(TypedDict):
    type: Literal["websocket.receive"]


class WebSocketReceiveEvent(_WebSocketReceiveKeys, total=False):
    """A message: `bytes` for a binary one, `text` for a text one (the server sets one)."""

    bytes: bytes
    text: str


class WebSocketDisconnectEvent(TypedDict):
    type: Literal["websocket.disconnect"]
    code: int
    reason: str


class _WebSocketAcceptKeys(TypedDict):
    type: Literal["websocket.accept"]


class WebSocketAcceptEvent(_WebSocketAcceptKeys, total=False):
    subprotocol: str | None
    headers: Iterable[tuple[bytes, bytes]]


class _WebSocketSendKeys(TypedDict):
    type: Literal["websocket.send"]


class WebSocketSendEvent(_WebSocketSendKeys, total=False):
    bytes: bytes | None
    text: str | None


class _WebSocketCloseKeys(TypedDict):
    type: Literal["websocket.close"]


class WebSocketCloseEvent(_WebSocketCloseKeys, total=False):
    code: int
    reason: str | None


class _WebSocketResponseStartKeys(TypedDict):
    type: Literal["websocket.http.response.start"]
    status: int


class WebSocketResponseStartEvent(_WebSocketResponseStartKeys, total=False):
    """The denial response's start (the `websocket.http.response` extension)."""

    headers: Iterable[tuple[bytes, bytes]]


class _WebSocketResponseBodyKeys(TypedDict):
    type: Literal["websocket.http.response.body"]


class WebSocketResponseBodyEvent(_WebSocketResponseBodyKeys, total=False):
    body: bytes
    more_body: bool


WebSocketReceiveEvents = WebSocketConnectEvent | WebSocketReceiveEvent | WebSocketDisconnectEvent
WebSocketSendEvents = (WebSocketAcceptEvent | WebSocketSendEvent | WebSocketCloseEvent
                       | WebSocketResponseStartEvent | WebSocketResponseBodyEvent)


# -- lifespan events ---------------------------------------------------------------------------
class LifespanStartupEvent(TypedDict):
    type: Literal["lifespan.startup"]


class LifespanShutdownEvent(TypedDict):
    type: Literal["lifespan.shutdown"]


class LifespanStartupCompleteEvent(TypedDict):
    type: Literal["lifespan.startup.complete"]


class _LifespanStartupFailedKeys(TypedDict):
    type: Literal["lifespan.startup.failed"]


class LifespanStartupFailedEvent(_LifespanStartupFailedKeys, total=False):
    message: str


class LifespanShutdownCompleteEvent(TypedDict):
    type: Literal["lifespan.shutdown.complete"]


class _LifespanShutdownFailedKeys(TypedDict):
    type: Literal["lifespan.shutdown.failed"]


class LifespanShutdownFailedEvent(_LifespanShutdownFailedKeys, total=False):
    message: str


LifespanReceiveEvents = LifespanStartupEvent | LifespanShutdownEvent
LifespanSendEvents = (LifespanStartupCompleteEvent | LifespanStartupFailedEvent
                     | LifespanShutdownCompleteEvent | LifespanShutdownFailedEvent)

# -- the app and its callables -----------------------------------------------------------------
# What `receive()` returns, and what `send()` takes, whatever the scope. A server's `send`
# accepts any event (the app may send any dict) and refuses those its protocol does not have.
ASGIReceiveEvent = HTTPReceiveEvents | WebSocketReceiveEvents | LifespanReceiveEvents
ASGISendEvent = HTTPSendEvents | WebSocketSendEvents | LifespanSendEvents
Message = ASGIReceiveEvent | ASGISendEvent

Receive = Callable[[], Awaitable[ASGIReceiveEvent]]
Send = Callable[[ASGISendEvent], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
