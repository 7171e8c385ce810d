"""The ASGI bridge: turns parsed request heads into the ASGI request objects of one app.

A `RequestBridge` (`http/seams.py`) for ASGI apps: per request it judges what only ASGI
refuses (a path that does not decode), builds the HTTP scope, and returns a `RequestCycle`,
or a `WebSocketSession` for a WebSocket upgrade; each runs the app as a task when the
connection starts it. It holds what those objects share: the app, the lifespan state,
the access-log recorder (and, with Prometheus metrics on, its tally, which WebSocket
sessions count their messages in).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..http.errors import BadRequest, RequestError
from .http import Http2RequestCycle, RequestCycle
from .scope import ASGI_VERSION, HTTP_EXTENSIONS, request_extensions, scope_path
from .websocket import MeteredWebSocketSession, WebSocketSession

if TYPE_CHECKING:
    from ..accesslog import RequestRecorder
    from ..config import ServerConfig
    from ..http.exchange import Exchange
    from ..http.parsers import HeadFields
    from ..http.seams import Log, RequestConnection
    from .app import ASGIApp
    from .types import HTTPScope


class AsgiBridge:
    """Builds the request objects of one ASGI app (a `RequestBridge`)."""

    __slots__ = ("app", "config", "log", "recorder", "root_path", "state", "tally")

    def __init__(self, app: ASGIApp, config: ServerConfig, log: Log,
                 recorder: RequestRecorder | None, state: dict[str, object]) -> None:
        self.app = app
        self.config = config
        self.log = log
        # The access log and the request hooks' recorder; None when nothing wants records.
        self.recorder = recorder
        # Where WebSocket sessions count their messages; None with metrics off.
        self.tally = recorder.tally if recorder is not None else None
        self.state = state  # the lifespan state, copied into every scope
        self.root_path = config.root_path

    def open_request(self, connection: RequestConnection, head: HeadFields,
                     upgrade_allowed: bool) -> Exchange | RequestError:
        upgrade = head.upgrade
        if upgrade is not None and upgrade_allowed and upgrade.lower() == b"websocket":
            try:
                if self.tally is None:
                    return WebSocketSession(self, connection, head)
                session = MeteredWebSocketSession(self, connection, head)
                session.tally = self.tally
                return session
            except RequestError as exc:  # its path: judged as an HTTP request's below
                return exc
        method = head.method
        target = head.target
        raw_path, _, query = target.partition(b"?")
        root_path = self.root_path
        if root_path or raw_path[:1] != b"/" or b"%" in raw_path or b"#" in target:
            try:
                path, raw_path, query = scope_path(target, method, root_path)
            except RequestError as exc:
                return exc
        else:  # the usual case inline (one call fewer per request): the path as it is
            try:
                path = raw_path.decode("ascii")
            except UnicodeDecodeError:
                return BadRequest(f"non-ASCII byte in request target {raw_path[:100]!r}")
        http_version = head.http_version
        cycle = (RequestCycle if http_version != "2" else Http2RequestCycle)(connection, head)
        cycle.bridge = self
        scope: HTTPScope = {
            "type": "http",
            "asgi": ASGI_VERSION,
            "http_version": http_version,
            "server": connection.sockname,
            "client": connection.client,
            "scheme": head.scheme,
            "method": method,
            "root_path": root_path,
            "path": path,
            "raw_path": raw_path,
            "query_string": query,
            "headers": head.headers,
            "state": self.state.copy(),
            "extensions": HTTP_EXTENSIONS,
        }
        tls = connection.extensions  # TLS: the connection's ASGI `tls` extension
        if tls is not None or head.te_trailers or http_version != "1.1":
            scope["extensions"] = request_extensions(tls, http_version, head.te_trailers)
        cycle.scope = scope
        return cycle

    def tick(self) -> None:
        """Nothing to watch: a blocked ASGI app blocks the loop, which Gunicorn's timeout
        handles (the worker's heartbeat stops)."""

    def close(self) -> None:
        """Nothing to release: the app's tasks end with their connections."""
