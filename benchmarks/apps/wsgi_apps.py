"""Raw WSGI app (no framework) for the WSGI plaintext workload."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

PLAINTEXT_BODY = b"Hello, world!"
NOT_FOUND_BODY = b"Not Found"

StartResponse = Callable[..., Any]


def plaintext(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """GET: 13-byte text/plain body."""
    start_response(
        "200 OK",
        [("Content-Type", "text/plain"), ("Content-Length", str(len(PLAINTEXT_BODY)))],
    )
    return [PLAINTEXT_BODY]


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """The WSGI app every server runs: /plaintext, anything else is 404."""
    if environ.get("PATH_INFO") == "/plaintext":
        return plaintext(environ, start_response)
    start_response(
        "404 Not Found",
        [("Content-Type", "text/plain"), ("Content-Length", str(len(NOT_FOUND_BODY)))],
    )
    return [NOT_FOUND_BODY]
