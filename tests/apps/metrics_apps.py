"""Apps for the Prometheus metrics tests (tests/integration/test_prometheus.py).

HTTP routes, ASGI (`app`) and WSGI (`wsgi_app`) alike:

- `/pid`: the worker's pid as the body (and one more `app_pid_requests_total`, the app's
  own prometheus_client counter, to show the app's metrics are summed and folded too);
- `/status/<n>`: status n with the body `<n>\\n` (none for 204 and 304);
- `/hold?until=<path>`: answers once the file exists (bounded: 10 s), `held\\n`;
- `/body`: reads the body, answers its length;
- anything else: 404 `not found\\n`.

WebSocket (ASGI): `/echo` accepts and sends each message back until the client closes.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

from prometheus_client import Counter

Scope = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[dict[str, Any]], Any]

# Created at import, in the worker (PROMETHEUS_MULTIPROC_DIR is set by then): a label-less
# counter writes its file at once, as most apps' metrics do.
PID_REQUESTS = Counter("app_pid_requests", "Requests for /pid (the test app's own metric)")
HOLD_LIMIT = 10.0


def _status_body(path: str) -> tuple[int, bytes]:
    status = int(path.rsplit("/", 1)[1])
    return status, b"" if status in (204, 304) else f"{status}\n".encode()


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "websocket":
        await echo(receive, send)
        return
    path = scope["path"]
    status, body = 404, b"not found\n"
    if path == "/pid":
        PID_REQUESTS.inc()
        status, body = 200, str(os.getpid()).encode()
    elif path.startswith("/status/"):
        status, body = _status_body(path)
    elif path == "/hold":
        until = parse_qs(scope["query_string"].decode())["until"][0]
        deadline = time.monotonic() + HOLD_LIMIT
        while not os.path.exists(until) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        status, body = 200, b"held\n"
    elif path == "/body":
        received = b""
        more = True
        while more:
            message = await receive()
            received += message.get("body", b"")
            more = message.get("more_body", False)
        status, body = 200, str(len(received)).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})


async def echo(receive: Receive, send: Send) -> None:
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})


def wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = environ["PATH_INFO"]
    status, body = 404, b"not found\n"
    if path == "/pid":
        PID_REQUESTS.inc()
        status, body = 200, str(os.getpid()).encode()
    elif path.startswith("/status/"):
        status, body = _status_body(path)
    elif path == "/hold":
        until = parse_qs(environ["QUERY_STRING"])["until"][0]
        deadline = time.monotonic() + HOLD_LIMIT
        while not os.path.exists(until) and time.monotonic() < deadline:
            time.sleep(0.02)
        status, body = 200, b"held\n"
    start_response(f"{status} X", [("Content-Type", "text/plain")])
    return [body]
