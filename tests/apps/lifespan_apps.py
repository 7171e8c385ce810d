"""Apps whose ASGI lifespan fails or is refused, for the startup-failure tests.

- `startup_raising_app` receives ``lifespan.startup`` and raises: a failed startup.
- `scope_refusing_app` raises on the lifespan scope before it receives anything, as an app
  written for HTTP only does (``assert scope["type"] == "http"``): lifespan not supported.
- `starlette_failing_app` is a Starlette app whose lifespan raises at startup (Starlette
  sends ``lifespan.startup.failed`` with the traceback as its message, then re-raises).

Each serves ``ok`` over HTTP. The exceptions carry the words ``STARTUP-BOOM`` or
``REFUSED-BOOM`` so a test can count how often they were printed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route


async def _ok(send: Any) -> None:
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


async def startup_raising_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        message = await receive()
        assert message["type"] == "lifespan.startup"
        raise RuntimeError("STARTUP-BOOM: the database is unreachable")
    await _ok(send)


async def scope_refusing_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        raise RuntimeError(f"REFUSED-BOOM: this app serves http only, not {scope['type']}")
    await _ok(send)


@asynccontextmanager
async def _failing_lifespan(app: Starlette) -> AsyncIterator[None]:
    raise RuntimeError("STARTUP-BOOM: the cache is unreachable")
    yield  # pragma: no cover - an async generator that fails before it yields


async def _root(request: Request) -> Response:
    return PlainTextResponse("ok")


starlette_failing_app = Starlette(routes=[Route("/", _root)], lifespan=_failing_lifespan)
