"""Apps that write to stdout, stderr, `wsgi.errors` and raise, for the logging-settings tests.

Both answer every request with ``ok``; the query string is a marker written as
``stdout <marker>`` and ``stderr <marker>`` (and, for WSGI, ``wsgi.errors <marker>``); a
query starting with ``raise`` makes the app raise instead.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Iterable
from typing import Any


def _write(marker: str) -> None:
    print(f"stdout {marker}", flush=True)
    print(f"stderr {marker}", file=sys.stderr, flush=True)


def wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    marker = environ.get("QUERY_STRING", "")
    if marker.startswith("raise"):
        raise RuntimeError(f"raised on purpose: {marker}")
    _write(marker)
    environ["wsgi.errors"].write(f"wsgi.errors {marker}\n")
    environ["wsgi.errors"].flush()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]


async def asgi_app(scope: dict[str, Any], receive: Callable[[], Awaitable[dict[str, Any]]],
                   send: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
    if scope["type"] != "http":
        return
    marker = scope["query_string"].decode("latin-1")
    if marker.startswith("raise"):
        raise RuntimeError(f"raised on purpose: {marker}")
    _write(marker)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})
