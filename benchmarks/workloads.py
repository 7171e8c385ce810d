"""The workloads: endpoint, method, body, connection counts and the response each must get."""

from __future__ import annotations

from dataclasses import dataclass

from benchmarks.apps import asgi_apps

ECHO_SIZE = 16 * 1024
ECHO_FILL = b"a"
ASGI_BASELINE = "uvicorn-worker"
WSGI_BASELINE = "gthread"  # uvicorn-worker serves no WSGI


@dataclass(frozen=True)
class Expected:
    """What a correct response looks like (checked once per server before measuring)."""

    content_type: str
    body: bytes | None = None
    length: int | None = None
    chunked: bool = False


@dataclass(frozen=True)
class Workload:
    """One workload: wrk drives `connections` keep-alive connections at `path`."""

    name: str
    description: str
    kind: str
    path: str
    expected: Expected
    method: str = "GET"
    request_body: bytes = b""
    connections: int = 64
    idle_connections: int = 0
    baseline: str = ASGI_BASELINE

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
