"""Gunicorn-shaped request records for the access log and the request hooks.

Gunicorn's logger (`self.log.access`, so a user's `logger_class` and `access_log_format`
keep working) and the `pre_request` / `post_request` hooks expect a request, a response and
a WSGI-style environ. These are built only when the access log or a hook is configured.
With Prometheus metrics on, each finished request is also counted in the worker's
`RequestTally` (its method, status, duration and body bytes, nothing more). With none of
these configured the protocol never calls in here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta
from http import HTTPStatus
from typing import TYPE_CHECKING, Protocol, TypedDict, cast

from .config import ServerConfig

if TYPE_CHECKING:
    from gunicorn.glogging import Logger
    from gunicorn.workers.base import Worker

    from .asgi.types import Address, Headers, HTTPScope, WebSocketScope
    from .http.response import Framing
    from .prometheus.tally import RequestTally


class WsgiRecordScope(TypedDict):
    """What a WSGI exchange records of its request for the access log and the hooks (the
    keys of an ASGI HTTP scope that they read)."""

    method: str
    path: str
    query_string: bytes
    raw_path: bytes
    http_version: str
    scheme: str
    headers: Headers
    client: Address | None


class RequestInfo:
    """What Gunicorn's hooks and log atoms read from a request."""

    def __init__(self, scope: HTTPScope | WebSocketScope | WsgiRecordScope) -> None:
        # A WebSocket scope has no method: its handshake is a GET (any other is refused).
        # (`in`, not `get`: the type checker tells the scopes apart by it.)
        self.method: str = scope["method"] if "method" in scope else "GET"  # noqa: SIM401
        self.path: str = scope["path"]
        self.query: str = scope["query_string"].decode("latin-1")
        raw = scope.get("raw_path", b"").decode("latin-1")
        self.uri = raw + ("?" + self.query if self.query else "")
        major, _, minor = scope["http_version"].partition(".")
        self.version = (int(major), int(minor or 0))
        self.scheme: str = scope["scheme"]
        self.headers = [(k.decode("latin-1").upper(), v.decode("latin-1"))
                        for k, v in scope["headers"]]
        self.peer_addr = scope.get("client")
        self.remote_addr = self.peer_addr


# "200 OK": the status as Gunicorn's own response objects give it to hooks and the logger.
_STATUS_LINES = {status.value: f"{status.value} {status.phrase}" for status in HTTPStatus}


class ResponseInfo:
    """What Gunicorn's log atoms and `post_request` read from a response."""

    def __init__(self, status: int, headers: Iterable[tuple[bytes, bytes]] | None,
                 sent: int) -> None:
        self.status = _STATUS_LINES.get(status) or str(status)
        self.status_code = status
        self.headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers or ()]
        self.sent = sent
        self.response_length = sent


# The hooks as we call them (Gunicorn's own workers pass their Request and Response objects;
# ours pass these, which have what Gunicorn's hooks and log atoms read).
PreRequestHook = Callable[["Worker", RequestInfo], object]
PostRequestHook = Callable[["Worker", RequestInfo, Mapping[str, object], ResponseInfo], object]
# The request's own record: what it was (None when only metrics count it), and when it
# began (`time.perf_counter()`).
Record = tuple[RequestInfo | None, float]


class Recorded(Protocol):
    """What the recorder reads of an exchange: the ASGI cycle, the WSGI cycle or the
    WebSocket session (a WSGI cycle's scope is None unless requests are recorded)."""

    record: Record | None
    is_websocket: bool

    @property
    def scope(self) -> HTTPScope | WebSocketScope | WsgiRecordScope | None: ...
    @property
    def status(self) -> int: ...
    @property
    def headers(self) -> Iterable[tuple[bytes, bytes]]: ...
    @property
    def framing(self) -> Framing | None: ...
    @property
    def bytes_sent(self) -> int: ...


class AccessLogger(Protocol):
    """What the recorder calls of Gunicorn's logger. Its `access` reads our records as its
    atoms read its own Request and Response (which its stubs name instead)."""

    def access(self, resp: ResponseInfo, req: RequestInfo, environ: Mapping[str, object],
               request_time: timedelta) -> None: ...
    def exception(self, msg: object, *args: object) -> None: ...


def make_environ(req: RequestInfo) -> dict[str, str]:
    """The environ keys Gunicorn's access-log atoms use."""
    environ: dict[str, str] = {
        "REQUEST_METHOD": req.method,
        "RAW_URI": req.uri,
        "PATH_INFO": req.path,
        "QUERY_STRING": req.query,
        # HTTP/2 has no minor version (RFC 9113): `HTTP/2`, as the WSGI environ says it.
        "SERVER_PROTOCOL": (f"HTTP/{req.version[0]}.{req.version[1]}" if req.version[0] < 2
                            else f"HTTP/{req.version[0]}"),
        "wsgi.url_scheme": req.scheme,
    }
    if req.peer_addr:
        environ["REMOTE_ADDR"] = req.peer_addr[0]
        environ["REMOTE_PORT"] = str(req.peer_addr[1])
    for name, value in req.headers:
        if name == "CONTENT-TYPE":
            environ["CONTENT_TYPE"] = value
        elif name == "CONTENT-LENGTH":
            environ["CONTENT_LENGTH"] = value
        else:
            key = "HTTP_" + name.replace("-", "_")
            environ[key] = environ[key] + "," + value if key in environ else value
    return environ


class RequestRecorder:
    """Calls the request hooks, writes the access log line and counts the request for
    Prometheus, as far as each is configured."""

    def __init__(self, config: ServerConfig, log: Logger, worker: Worker,
                 tally: RequestTally | None = None) -> None:
        self.log = cast("AccessLogger", log)  # (see AccessLogger)
        self.worker = worker
        self.access_log = config.access_log
        self.pre_request = config.pre_request
        self.post_request = config.post_request
        # Whether the log or a hook wants Gunicorn-shaped records (else only metrics count).
        self.describes = bool(self.access_log or self.pre_request or self.post_request)
        self.tally = tally
        self.enabled = self.describes or tally is not None

    def start(self, cycle: Recorded) -> None:
        if not self.describes:
            cycle.record = (None, time.perf_counter())
            return
        scope = cycle.scope
        assert scope is not None  # a WSGI cycle has its scope whenever requests are recorded
        req = RequestInfo(scope)
        cycle.record = (req, time.perf_counter())
        if self.pre_request is not None:
            try:
                self.pre_request(self.worker, req)
            except Exception:
                self.log.exception("pre_request hook failed")

    def end(self, cycle: Recorded) -> None:
        record = cycle.record
        if record is None:
            return
        req, started = record
        elapsed = time.perf_counter() - started
        tally = self.tally
        if tally is not None:
            if cycle.is_websocket:
                tally.session_finished(cycle.status, cycle.bytes_sent)
            else:
                scope = cycle.scope
                assert scope is not None and "method" in scope  # an HTTP request's scope
                tally.request_finished(scope["method"], cycle.status, elapsed,
                                       cycle.bytes_sent)
        if req is None:
            return
        headers = cycle.headers
        # A WSGI request's own environ, as Gunicorn's workers log it; for ASGI, one made
        # of the scope.
        environ: Mapping[str, object] | None = getattr(cycle, "environ", None)
        if environ is None:
            environ = make_environ(req)
            framing = cycle.framing
            if framing is not None and framing.chunked:
                # Gunicorn's ASGI worker logs the transfer-encoding it added (its WSGI
                # workers do not).
                headers = [*headers, (b"transfer-encoding", b"chunked")]
        resp = ResponseInfo(cycle.status, headers, cycle.bytes_sent)
        if self.post_request is not None:
            try:
                self.post_request(self.worker, req, environ, resp)
            except Exception:
                self.log.exception("post_request hook failed")
        if self.access_log:
            self.log.access(resp, req, environ, timedelta(seconds=elapsed))
