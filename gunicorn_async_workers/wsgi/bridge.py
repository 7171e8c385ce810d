"""The WSGI bridge: PEP 3333 apps on a thread pool, their I/O on the event loop.

Per request the loop builds the environ and hands the call to the pool once. The common
response, a list of byte strings, comes back once and leaves in one transport write. Any
other iterable, `write()` calls and `wsgi.file_wrapper` stream piece by piece: the app's
thread waits while the transport's buffer is above its high-water mark, so a slow reader
never makes the worker buffer more than a bounded amount. The iterable's `close()` is always
called, also when the client went away or the app raised.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, cast
from urllib.parse import unquote_to_bytes

from gunicorn.http.wsgi import FileWrapper, WSGIErrorsWrapper

from ..http.errors import RequestError
from ..http.exchange import (
    DISCARDING,
    FINISHED,
    PENDING,
    REFUSED,
    STARTED,
    ClientDisconnected,
    Exchange,
    split_target,
)
from ..http.file_body import loop_sendfile_usable
from ..http.h2_exchange import Http2Framing
from ..http.response import ResponseError
from .input import NO_BODY, WsgiInput
from .pool import ThreadPool

if TYPE_CHECKING:
    from _typeshed import OptExcInfo
    from _typeshed.wsgi import WSGIApplication, WSGIEnvironment
    from gunicorn.config import Config

    from ..accesslog import Record, RequestRecorder, WsgiRecordScope
    from ..config import ServerConfig
    from ..http.parsers import HeadFields
    from ..http.seams import Log, RequestConnection

# RFC 9110 5.6.2 token, and the hop-by-hop fields a WSGI app must not set (PEP 3333).
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_HOP_BY_HOP = frozenset(("connection", "keep-alive", "proxy-authenticate",
                         "proxy-authorization", "te", "trailer", "trailers",
                         "transfer-encoding", "upgrade"))
# Bytes read per piece of a `wsgi.file_wrapper` body streamed without sendfile.
_FILE_BLOCK = 256 * 1024
_STATUS = re.compile(r"([1-9][0-9][0-9]) [^\r\n\0]*")
# Validated response header names -> (name as bytes, lower-cased), and request header names
# -> their environ key; both bounded so that hostile input cannot grow them without end.
_RESPONSE_NAMES: dict[str, tuple[bytes, str]] = {}
_ENVIRON_KEYS: dict[bytes, str] = {b"content-type": "CONTENT_TYPE",
                                   b"content-length": "CONTENT_LENGTH"}
_STATUS_CODES: dict[str, int] = {}
# A finished cycle's environ (what the app had is the app's).
_FINISHED: WSGIEnvironment = {"REQUEST_METHOD": "", "RAW_URI": ""}
_CACHE_MAX = 4096
# Keys every environ shares, set once per worker (PEP 3333 section "environ Variables").
ENVIRON_BASE_KEYS = ("wsgi.version", "wsgi.errors", "wsgi.multithread", "wsgi.multiprocess",
                     "wsgi.run_once", "wsgi.input_terminated", "wsgi.file_wrapper",
                     "SERVER_SOFTWARE")


def base_environ(cfg: Config, threads: int) -> WSGIEnvironment:
    """The environ keys that are the same for every request of this worker."""
    return {
        "wsgi.version": (1, 0),
        "wsgi.errors": WSGIErrorsWrapper(cfg),
        "wsgi.multithread": threads > 1,
        "wsgi.multiprocess": cfg.workers > 1,
        "wsgi.run_once": False,
        "wsgi.input_terminated": True,
        "wsgi.file_wrapper": FileWrapper,
        "SERVER_SOFTWARE": "gunicorn-async-workers",
    }


class ForwardedScriptNameMismatch(RequestError):
    """A trusted proxy's SCRIPT_NAME that the request path does not start with: Gunicorn's
    workers answer 500 (its ConfigurationProblem)."""

    status = 500
    reason = "Internal Server Error"


class WsgiBridge:
    """Builds the request objects of one WSGI app (a `RequestBridge`, `http/seams.py`) and
    holds what they share: the app, the thread pool, the environ's fixed keys."""

    __slots__ = ("app", "config", "environ_base", "executor", "log", "recorder", "warned",
                 "script_name", "sendfile_allowed")

    def __init__(self, app: WSGIApplication, config: ServerConfig, log: Log,
                 recorder: RequestRecorder | None, loop: asyncio.AbstractEventLoop,
                 environ_base: WSGIEnvironment, script_name: str) -> None:
        self.app = app
        self.config = config
        self.log = log
        self.recorder = recorder  # None when no access log or request hook wants records
        self.executor: ThreadPool[bytes | None] = ThreadPool(config.threads, loop)
        # (thread ident, start) of the calls already warned about as stuck.
        self.warned: set[tuple[int, float]] = set()
        self.environ_base = environ_base
        self.script_name = script_name.rstrip("/")
        # uvloop has no loop.sendfile (the stdlib loop has): file bodies are then read in
        # the app's thread and streamed with backpressure like any other iterable.
        self.sendfile_allowed = loop_sendfile_usable(loop, config)

    def open_request(self, connection: RequestConnection, head: HeadFields,
                     upgrade_allowed: bool) -> Exchange | RequestError:
        """A WSGI app sees an upgrade request as plain HTTP (`upgrade_allowed` is moot)."""
        method = head.method
        http_version = head.http_version
        raw_path, query = split_target(head.target, method)
        if b"%" in raw_path:
            path = unquote_to_bytes(raw_path).decode("latin-1")
        else:
            path = raw_path.decode("latin-1")
        full_path = path
        script_name = self.script_name
        if script_name and (path == script_name or path.startswith(script_name + "/")):
            path = path[len(script_name):]
        cycle = (WsgiCycle if http_version != "2" else Http2WsgiCycle)(connection, head)
        cycle.bridge = self
        base = connection.bridge_state
        if base is None:
            base = connection.bridge_state = self.connection_environ(connection)
        environ = cast("WSGIEnvironment", base).copy()
        environ["REQUEST_METHOD"] = method
        environ["PATH_INFO"] = path
        environ["QUERY_STRING"] = query.decode("latin-1")
        environ["RAW_URI"] = head.target.decode("latin-1")
        environ["SERVER_PROTOCOL"] = "HTTP/" + http_version
        environ["wsgi.url_scheme"] = head.scheme
        has_body = head.chunked or head.content_length
        environ["wsgi.input"] = WsgiInput(cycle) if has_body else NO_BODY
        for name, value in head.headers:
            key = _ENVIRON_KEYS.get(name)
            if key is None:
                key = "HTTP_" + name.decode("latin-1").upper().replace("-", "_")
                if len(_ENVIRON_KEYS) < _CACHE_MAX:
                    _ENVIRON_KEYS[name] = key
            text = value.decode("latin-1")
            if key in environ:  # a repeated field joined with ",", as Gunicorn joins it
                text = environ[key] + "," + text
            environ[key] = text
        forwarded = environ.get("HTTP_SCRIPT_NAME")
        if forwarded is not None and (head.trusted or self.config.header_map == "dangerous"):
            # A trusted proxy's SCRIPT_NAME (forwarder_headers), applied as Gunicorn does.
            if not full_path.startswith(forwarded):
                return ForwardedScriptNameMismatch(
                    f"request path {full_path[:100]!r} does not start with the forwarded "
                    f"SCRIPT_NAME {forwarded[:100]!r}")
            environ["SCRIPT_NAME"] = forwarded
            environ["PATH_INFO"] = path = full_path[len(forwarded):]
        if "SERVER_PORT" not in environ:
            # A unix socket: the Host header names the server, as in Gunicorn.
            host = head.host.decode("latin-1") if head.host else ""
            server_name, _, port = host.partition(":")
            environ["SERVER_NAME"] = server_name
            environ["SERVER_PORT"] = port or ("443" if head.scheme == "https" else "80")
        cycle.environ = environ
        # Only a request with a body has a loop feeding a reading thread.
        cycle.cond = threading.Condition() if has_body else None
        if self.recorder is not None:
            cycle.scope = {"method": method, "path": path, "query_string": query,
                           "raw_path": raw_path, "http_version": http_version,
                           "scheme": head.scheme, "headers": head.headers,
                           "client": connection.client}
        return cycle

    def connection_environ(self, connection: RequestConnection) -> WSGIEnvironment:
        """The environ keys that are the same for every request of one connection (built at
        its first request, kept in its `bridge_state`)."""
        environ = dict(self.environ_base)
        environ["SCRIPT_NAME"] = self.script_name
        client = connection.client
        if client is not None:
            environ["REMOTE_ADDR"] = client[0]
            environ["REMOTE_PORT"] = str(client[1])
        else:  # a unix socket: empty, as Gunicorn's own workers set it
            environ["REMOTE_ADDR"] = ""
        proxy = connection.proxy
        if proxy is not None and proxy.server is not None:  # as Gunicorn's proxy_environ
            environ["PROXY_PROTOCOL"] = proxy.family
            environ["PROXY_ADDR"] = proxy.server[0]
            environ["PROXY_PORT"] = str(proxy.server[1])
        sockname = connection.sockname
        if sockname is not None and sockname[1] is not None:
            environ["SERVER_NAME"], environ["SERVER_PORT"] = sockname[0], str(sockname[1])
        return environ

    def tick(self) -> None:
        """Warn once about each request that has run longer than `timeout` in its thread:
        Gunicorn's timeout cannot catch it (the loop keeps the heartbeat going), and with
        every thread held, other requests wait. The warning names the request, its time and
        the thread's stack; a statsd logger counts it as `gunicorn.wsgi.stuck_requests`."""
        limit = self.config.timeout
        running = self.executor.running
        if limit <= 0 or not (running or self.warned):
            return
        now = time.monotonic()
        current = set()
        for ident, (since, job) in list(running.items()):
            current.add((ident, since))
            if now - since < limit or (ident, since) in self.warned:
                continue
            self.warned.add((ident, since))
            if isinstance(job, WsgiCycle):
                request = f"{job.environ['REQUEST_METHOD']} {job.environ['RAW_URI']}"
            else:
                request = "a request"
            frame = sys._current_frames().get(ident)
            stack = "".join(traceback.format_stack(frame)) if frame is not None else ""
            self.log.warning("WSGI app still running %s after %.0f s (timeout is %g s): "
                             "its thread is held, and with every thread held other requests "
                             "wait. Its stack:\n%s", request, now - since, limit, stack)
            increment = getattr(self.log, "increment", None)
            if increment is not None:  # Gunicorn's statsd logger
                increment("gunicorn.wsgi.stuck_requests", 1)
        self.warned &= current

    def close(self) -> None:
        """Stop the thread pool (threads still running an app finish their call)."""
        self.executor.shutdown()


class WsgiCycle(Exchange):
    """One WSGI request: its environ, its streaming input, and its response."""

    __slots__ = ("bridge", "cond", "environ", "scope", "wrote")

    bridge: WsgiBridge
    environ: WSGIEnvironment
    cond: threading.Condition | None
    record: Record | None

    def __init__(self, protocol: RequestConnection, head: HeadFields) -> None:
        super().__init__(protocol, head)
        self.wrote = False
        self.scope: WsgiRecordScope | None = None

    # -- fed by the protocol (loop thread) ---------------------------------------------
    def feed_body(self, data: bytes) -> None:
        if self.body_state is DISCARDING or self.cond is None:
            return
        with self.cond:
            self.body.append(data)
            self.body_read += len(data)
            self.cond.notify()
        if self.body_read > self.HIGH_WATER:
            self.protocol.pause_reading()

    def wake(self) -> None:
        cond = self.cond
        if cond is not None:
            with cond:
                cond.notify_all()

    # -- the app's side (pool thread) ----------------------------------------------------
    def start_response(self, status: str, headers: list[tuple[str, str]],
                       exc_info: OptExcInfo | None = None) -> Callable[[bytes], None]:
        if exc_info:
            try:
                if self.framing is not None:
                    # (An app's `(None, None, None)` fails here, on None, as it always has.)
                    raise cast(BaseException, exc_info[1]).with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.response_state is not PENDING:
            raise AssertionError("start_response called a second time without exc_info")
        code = _STATUS_CODES.get(status) if isinstance(status, str) else None
        if code is None:
            if not isinstance(status, str) or not _STATUS.fullmatch(status):
                raise ResponseError(f"invalid WSGI status {status!r}: want '200 OK'")
            code = int(status[:3])
            if len(_STATUS_CODES) < _CACHE_MAX:
                _STATUS_CODES[status] = code
        if not isinstance(headers, list):
            raise ResponseError(f"WSGI response headers must be a list, got {type(headers)}")
        encoded = []
        for item in headers:
            try:
                name, value = item
            except (TypeError, ValueError):
                raise ResponseError(
                    f"WSGI response header {item!r} is not a (name, value)") from None
            known = _RESPONSE_NAMES.get(name) if type(name) is str else None
            if known is None:
                if not isinstance(name, str) or not _TOKEN.fullmatch(name):
                    raise ResponseError(f"invalid WSGI response header name {name!r}")
                known = (name.encode("latin-1"), name.lower())
                if len(_RESPONSE_NAMES) < _CACHE_MAX:
                    _RESPONSE_NAMES[name] = known
            if type(value) is not str or "\r" in value or "\n" in value or "\0" in value:
                raise ResponseError(f"invalid WSGI response header value for {name}")
            if known[1] in _HOP_BY_HOP:
                if known[1] == "connection" and "close" in value.lower():
                    self.keep_alive = False
                continue  # the server owns the connection and the framing
            encoded.append((known[0], value.encode("latin-1")))
        self.status = code
        self.headers = encoded
        self.response_state = STARTED
        return self.write

    def write(self, data: bytes) -> None:
        """PEP 3333's `write()` callable: sent before the call returns."""
        if self.response_state is PENDING:
            raise AssertionError("write() called before start_response()")
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError(f"write() takes bytes, got {type(data).__name__}")
        self.wrote = True
        if data:
            self._send(bytes(data), True)

    def _send(self, data: bytes, more: bool) -> None:
        """Hand one piece to the loop and wait until the transport can take more."""
        loop = self.protocol.loop
        asyncio.run_coroutine_threadsafe(self._write_on_loop(data, more), loop).result()

    async def _write_on_loop(self, data: bytes, more: bool) -> None:
        """The send-body step, the same as in RequestCycle.send (which has it inline, one
        call fewer per request): change both together."""
        protocol = self.protocol
        if protocol.closing:
            raise ClientDisconnected("client disconnected")
        if self.framing is None:
            self.write_head(data, more)
        elif data:
            self.write_body(data)
        if not more:
            self.finish()
        elif protocol.write_paused:
            await protocol.drain()

    async def _sendfile_on_loop(self, wrapper: FileWrapper) -> bool:
        """Send a `wsgi.file_wrapper` body with the loop's sendfile; False if it cannot."""
        protocol = self.protocol
        filelike = wrapper.filelike
        try:
            fileno = filelike.fileno()
            offset = filelike.tell()
            size = os.fstat(fileno).st_size - offset
        except (AttributeError, OSError, ValueError):
            return False
        if protocol.closing:
            raise ClientDisconnected("client disconnected")
        if self.framing is None:
            if not any(n.lower() == b"content-length" for n, _ in self.headers):
                self.headers = [*self.headers, (b"content-length", str(size).encode())]
            self.write_head(b"", True)
        await protocol.drain()
        if self.framing is not None and not self.framing.no_body:
            if self.remaining is not None:
                size = min(size, self.remaining)  # never past the app's Content-Length
            # A binary file (its fileno() above), as the loop's sendfile takes it.
            await protocol.sendfile(cast("IO[bytes]", filelike), offset, size)
            self.bytes_sent += size
            if self.remaining is not None:
                self.remaining -= size
        self.finish()
        return True

    def run(self) -> bytes | None:
        """Run the app in a pool thread (the pool's `Job`). A list body comes back whole;
        anything else is streamed from here. The iterable's close() is always called."""
        result = self.bridge.app(self.environ, self.start_response)
        try:
            if type(result) is list and not self.wrote:
                if self.response_state is PENDING:
                    raise AssertionError("the app returned before calling start_response()")
                return b"".join(result)
            if (isinstance(result, FileWrapper) and not self.wrote
                    and self.bridge.sendfile_allowed and self.sendfile_allowed):
                sent = asyncio.run_coroutine_threadsafe(
                    self._sendfile_on_loop(result), self.protocol.loop).result()
                if sent:
                    return None
            if isinstance(result, FileWrapper) and result.blksize < _FILE_BLOCK:
                result.blksize = _FILE_BLOCK  # fewer hand-offs to the loop per file
            for data in result:
                if self.response_state is PENDING:
                    raise AssertionError("the app yielded data before start_response()")
                if data:
                    self._send(data, True)
            if self.response_state is PENDING:
                raise AssertionError("the app returned before calling start_response()")
            self._send(b"", False)
            return None
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()

    # -- the loop's side ---------------------------------------------------------------
    def start(self) -> None:
        """Queue the app's call on the pool; `complete` finishes the response on the loop."""
        bridge = self.bridge
        if bridge.recorder is not None:
            bridge.recorder.start(self)
        bridge.executor.submit(self)

    def complete(self, body: bytes | None, exc: BaseException | None) -> None:
        """On the loop, once `run` returned (the pool's `Job`): the response or the error."""
        protocol = self.protocol
        bridge = self.bridge
        if exc is not None:
            if isinstance(exc, ClientDisconnected) or (protocol.closing
                                                       and isinstance(exc, OSError)):
                bridge.log.debug("client went away during the response")
            elif self.body_state is REFUSED:
                # Its request was refused while it ran (its body read failed): the client's
                # mistake, already answered.
                bridge.log.debug("WSGI application raised %r after its request was refused",
                                 exc)
            else:
                # exception(), as Gunicorn's workers: its statsd logger counts log.exception
                bridge.log.exception("Error handling request %s %s",
                                     self.environ["REQUEST_METHOD"], self.environ["RAW_URI"],
                                     exc_info=exc)
            if self.body_state is not REFUSED:  # else the refusal is on its way: keep it
                self.fail()
        elif body is not None and self.response_state is not FINISHED:
            if protocol.closing:
                self.response_state = FINISHED
            else:
                try:
                    self.write_head(body, False)
                    self.finish()
                except ResponseError as error:
                    bridge.log.error("Error handling request %s %s: %s",
                                     self.environ["REQUEST_METHOD"], self.environ["RAW_URI"],
                                     error)
                    self.fail()
        if bridge.recorder is not None:
            bridge.recorder.end(self)
        # The environ holds wsgi.input, which holds this cycle: without that circle the
        # request is freed now by reference counting, not later by the cyclic GC (whose
        # collections every ~140 requests cost CPU and latency; the app may keep the
        # environ, not this cycle).
        self.environ = _FINISHED


class Http2WsgiCycle(Http2Framing, WsgiCycle):
    """A WSGI request on an HTTP/2 stream: its response as frames (`Http2Framing`)."""

    __slots__ = ()
