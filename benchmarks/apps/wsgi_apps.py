"""Raw WSGI apps (no framework) for the WSGI workloads, plus `app`, which routes on the path.

They mirror the ASGI apps in asgi_apps.py and send the same bodies: every server runs this module.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from benchmarks.apps.asgi_apps import JSON_PAYLOAD, LARGE_BODY, PLAINTEXT_BODY

NOT_FOUND_BODY = b"Not Found"

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def _respond(start_response: StartResponse, content_type: str, body: bytes) -> list[bytes]:
    """200 with a content-length and the body as a one-item list (one write on every server)."""
    start_response("200 OK", [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]


def plaintext(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """GET: 13-byte text/plain body."""
    return _respond(start_response, "text/plain", PLAINTEXT_BODY)


def json_app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """GET: a small JSON object, serialised on every request."""
    body = json.dumps(JSON_PAYLOAD, separators=(",", ":")).encode("utf-8")
    return _respond(start_response, "application/json", body)


def echo(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """POST: read the whole request body from wsgi.input and send it back."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length > 0 else b""
    return _respond(start_response, "application/octet-stream", body)


def large(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """GET: a 1 MiB body with a content-length, as one item."""
    return _respond(start_response, "application/octet-stream", LARGE_BODY)


ROUTES: dict[str, WSGIApp] = {
    "/plaintext": plaintext,
    "/json": json_app,
    "/echo": echo,
    "/large": large,
}


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """The WSGI app every server runs: dispatch on the path, anything else is 404."""
    route = ROUTES.get(environ.get("PATH_INFO", ""))
    if route is not None:
        return route(environ, start_response)
    start_response(
        "404 Not Found",
        [("Content-Type", "text/plain"), ("Content-Length", str(len(NOT_FOUND_BODY)))],
    )
    return [NOT_FOUND_BODY]
