"""The workloads: endpoint, method, body, connection counts and the response each must get.

Most are HTTP/1.1 requests driven by wrk. The ws-echo-* workloads are WebSocket echoes driven
by `benchmarks/wsload.py` (wrk cannot speak WebSocket); for them a "request" is one echoed
message. The h2-* workloads are the same requests over cleartext HTTP/2 (prior knowledge),
driven by h2load with several streams in flight per connection (`benchmarks/h2load.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from benchmarks.apps import asgi_apps

if TYPE_CHECKING:
    from benchmarks.servers import ServerConfig

ECHO_SIZE = 16 * 1024
ECHO_FILL = b"a"
ASGI_BASELINE = "uvicorn-worker"
WSGI_BASELINE = "gthread"  # uvicorn-worker serves no WSGI
WS_PATH = "/ws"
WS_WINDOW = 8  # messages in flight per WebSocket connection
# the servers whose WebSockets the issue compares: ours, uvicorn-worker's and Gunicorn 27's asgi
WS_CONFIGS = ("gaw", "gaw-asyncio", "gaw-h11", "uvicorn-worker", "gunicorn-asgi")
# uvicorn-worker serves no HTTP/2: the h2 workloads compare with Gunicorn 27's own asgi worker
H2_BASELINE = "gunicorn-asgi"
H2_STREAMS = 10  # concurrent streams per HTTP/2 connection (h2load -m)


@dataclass(frozen=True)
class Expected:
    """What a correct response looks like (checked once per server before measuring)."""

    content_type: str
    body: bytes | None = None
    length: int | None = None
    chunked: bool = False


@dataclass(frozen=True)
class Workload:
    """One workload: wrk drives `connections` keep-alive connections at `path`.

    With protocol "ws", wsload instead opens `connections` WebSocket connections at `path` and
    keeps `ws_window` binary messages of `ws_message_size` bytes in flight on each. With
    protocol "h2", h2load opens `connections` cleartext HTTP/2 connections (prior knowledge)
    and keeps `h2_streams` requests in flight on each; only the configurations that have an
    HTTP/2 command (`ServerConfig.h2_build`) run it.
    """

    name: str
    description: str
    kind: str
    path: str
    expected: Expected | None  # None for WebSocket workloads (the probe checks the echo)
    method: str = "GET"
    request_body: bytes = b""
    connections: int = 64
    idle_connections: int = 0
    baseline: str = ASGI_BASELINE
    protocol: str = "http"  # "http" (wrk), "ws" (wsload) or "h2" (h2load)
    ws_message_size: int = 0
    ws_window: int = WS_WINDOW
    h2_streams: int = H2_STREAMS
    configs: tuple[str, ...] = ()  # the configurations that run it; empty means all of its kind

    @property
    def unit(self) -> str:
        """What one counted operation is: "req" (HTTP request) or "msg" (echoed message)."""
        return "msg" if self.protocol == "ws" else "req"

    def serves(self, config: ServerConfig) -> bool:
        """True when the configuration runs this workload: of one of its kinds, among the
        workload's configurations (if it names them) and its workloads (if it names them);
        an h2 workload only on a configuration that can serve HTTP/2."""
        name = config.variant_of or config.name
        return (
            self.kind in config.kinds
            and (self.protocol != "h2" or config.h2_build is not None)
            and (not self.configs or name in self.configs)
            and (not config.only_workloads or self.name in config.only_workloads)
        )

    def wrk_script(self) -> str | None:
        """Lua for wrk when the request is not a plain GET."""
        if self.method == "GET":
            return None
        fill = self.request_body[:1].decode("ascii")
        return (
            f'wrk.method = "{self.method}"\n'
            f'wrk.body = string.rep("{fill}", {len(self.request_body)})\n'
            'wrk.headers["Content-Type"] = "application/octet-stream"\n'
        )


WORKLOADS: tuple[Workload, ...] = (
    Workload(
        name="plaintext",
        description='GET, 13-byte text/plain body "Hello, world!"',
        kind="asgi",
        path="/plaintext",
        expected=Expected("text/plain", body=asgi_apps.PLAINTEXT_BODY),
    ),
    Workload(
        name="json",
        description='GET, small JSON {"message":"Hello, world!"} serialised per request',
        kind="asgi",
        path="/json",
        expected=Expected("application/json", body=b'{"message":"Hello, world!"}'),
    ),
    Workload(
        name="echo-16k",
        description="POST a 16 KiB body, echoed back",
        kind="asgi",
        path="/echo",
        method="POST",
        request_body=ECHO_FILL * ECHO_SIZE,
        expected=Expected("application/octet-stream", body=ECHO_FILL * ECHO_SIZE),
    ),
    Workload(
        name="large-1m",
        description="GET, 1 MiB response with content-length",
        kind="asgi",
        path="/large",
        expected=Expected("application/octet-stream", length=asgi_apps.LARGE_SIZE),
    ),
    Workload(
        name="stream-16",
        description="GET, streamed response: 16 pieces of 1 KiB, chunked, no content-length",
        kind="asgi",
        path="/stream",
        expected=Expected(
            "application/octet-stream",
            length=asgi_apps.STREAM_PIECES * len(asgi_apps.STREAM_PIECE),
            chunked=True,
        ),
    ),
    Workload(
        name="idle-1000",
        description="1,000 idle keep-alive connections (one request each), "
        "then 64-connection plaintext alongside",
        kind="asgi",
        path="/plaintext",
        expected=Expected("text/plain", body=asgi_apps.PLAINTEXT_BODY),
        idle_connections=1000,
    ),
    # WebSocket echo through the same ASGI app (path /ws), driven by benchmarks/wsload.py
    Workload(
        name="ws-echo-64",
        description="WebSocket echo of 64-byte binary messages, "
        f"{WS_WINDOW} in flight per connection",
        kind="asgi",
        path=WS_PATH,
        expected=None,
        protocol="ws",
        ws_message_size=64,
        configs=WS_CONFIGS,
    ),
    Workload(
        name="ws-echo-16k",
        description="WebSocket echo of 16 KiB binary messages, "
        f"{WS_WINDOW} in flight per connection",
        kind="asgi",
        path=WS_PATH,
        expected=None,
        protocol="ws",
        ws_message_size=16 * 1024,
        configs=WS_CONFIGS,
    ),
    # HTTP/2: the plaintext and json requests over h2c with prior knowledge, driven by h2load
    Workload(
        name="h2-plaintext",
        description='HTTP/2 (h2c, prior knowledge): GET, 13-byte text/plain body "Hello, world!", '
        f"{H2_STREAMS} streams in flight per connection",
        kind="asgi",
        path="/plaintext",
        expected=Expected("text/plain", body=asgi_apps.PLAINTEXT_BODY),
        baseline=H2_BASELINE,
        protocol="h2",
    ),
    Workload(
        name="h2-json",
        description='HTTP/2 (h2c, prior knowledge): GET, small JSON {"message":"Hello, world!"} '
        f"serialised per request, {H2_STREAMS} streams in flight per connection",
        kind="asgi",
        path="/json",
        expected=Expected("application/json", body=b'{"message":"Hello, world!"}'),
        baseline=H2_BASELINE,
        protocol="h2",
    ),
    # WSGI: the same requests against the WSGI app (apps/wsgi_apps.py); gthread is the baseline
    Workload(
        name="wsgi-plaintext",
        description='WSGI app: GET, 13-byte text/plain body "Hello, world!"',
        kind="wsgi",
        path="/plaintext",
        expected=Expected("text/plain", body=asgi_apps.PLAINTEXT_BODY),
        baseline=WSGI_BASELINE,
    ),
    Workload(
        name="wsgi-json",
        description='WSGI app: GET, small JSON {"message":"Hello, world!"} serialised per request',
        kind="wsgi",
        path="/json",
        expected=Expected("application/json", body=b'{"message":"Hello, world!"}'),
        baseline=WSGI_BASELINE,
    ),
    Workload(
        name="wsgi-echo-16k",
        description="WSGI app: POST a 16 KiB body, read from wsgi.input and echoed back",
        kind="wsgi",
        path="/echo",
        method="POST",
        request_body=ECHO_FILL * ECHO_SIZE,
        expected=Expected("application/octet-stream", body=ECHO_FILL * ECHO_SIZE),
        baseline=WSGI_BASELINE,
    ),
    Workload(
        name="wsgi-large-1m",
        description="WSGI app: GET, 1 MiB response with content-length (a one-item list)",
        kind="wsgi",
        path="/large",
        expected=Expected("application/octet-stream", length=asgi_apps.LARGE_SIZE),
        baseline=WSGI_BASELINE,
    ),
)

WORKLOADS_BY_NAME = {workload.name: workload for workload in WORKLOADS}
