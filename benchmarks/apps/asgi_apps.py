"""Raw ASGI apps (no framework) for each workload, plus `app`, which routes on the path.

HTTP requests and WebSocket connections are routed separately: `/ws` is the WebSocket echo.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PLAINTEXT_BODY = b"Hello, world!"
JSON_PAYLOAD = {"message": "Hello, world!"}
LARGE_SIZE = 1 << 20
LARGE_BODY = b"x" * LARGE_SIZE
STREAM_PIECES = 16
STREAM_PIECE = b"y" * 1024


def _headers(content_type: bytes, length: int | None) -> list[tuple[bytes, bytes]]:
    headers = [(b"content-type", content_type)]
    if length is not None:
        headers.append((b"content-length", str(length).encode("ascii")))
    return headers


async def _respond(send: Send, status: int, content_type: bytes, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": _headers(content_type, len(body)),
        }
    )
    await send({"type": "http.response.body", "body": body})


async def plaintext(scope: Scope, receive: Receive, send: Send) -> None:
    """GET: 13-byte text/plain body."""
    await _respond(send, 200, b"text/plain", PLAINTEXT_BODY)


async def json_app(scope: Scope, receive: Receive, send: Send) -> None:
    """GET: a small JSON object, serialised on every request."""
    body = json.dumps(JSON_PAYLOAD, separators=(",", ":")).encode("utf-8")
    await _respond(send, 200, b"application/json", body)


async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    """POST: read the whole request body and send it back."""
    parts: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    await _respond(send, 200, b"application/octet-stream", b"".join(parts))


async def large(scope: Scope, receive: Receive, send: Send) -> None:
    """GET: a 1 MiB body with a content-length, sent in one message."""
    await _respond(send, 200, b"application/octet-stream", LARGE_BODY)


async def stream(scope: Scope, receive: Receive, send: Send) -> None:
    """GET: 16 pieces of 1 KiB without a content-length (chunked on HTTP/1.1)."""
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": _headers(b"application/octet-stream", None),
        }
    )
    for _ in range(STREAM_PIECES - 1):
        await send({"type": "http.response.body", "body": STREAM_PIECE, "more_body": True})
    await send({"type": "http.response.body", "body": STREAM_PIECE})


async def ws_echo(scope: Scope, receive: Receive, send: Send) -> None:
    """WebSocket: accept, then send every message back as it came (text or bytes) until the
    client disconnects."""
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.receive":
            text = message.get("text")
            if text is not None:
                await send({"type": "websocket.send", "text": text})
            else:
                await send({"type": "websocket.send", "bytes": message.get("bytes") or b""})
        elif message["type"] == "websocket.disconnect":
            return


async def ws_not_found(scope: Scope, receive: Receive, send: Send) -> None:
    """Any other WebSocket path: refuse the handshake (403)."""
    await receive()  # websocket.connect
    await send({"type": "websocket.close"})


async def not_found(scope: Scope, receive: Receive, send: Send) -> None:
    """Any other path: 404."""
    await _respond(send, 404, b"text/plain", b"Not Found")


ROUTES: dict[str, ASGIApp] = {
    "/plaintext": plaintext,
    "/json": json_app,
    "/echo": echo,
    "/large": large,
    "/stream": stream,
}
WS_ROUTES: dict[str, ASGIApp] = {
    "/ws": ws_echo,
}


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """The one app every server runs: dispatch on the scope type and path to the apps above."""
    if scope["type"] == "http":
        await ROUTES.get(scope["path"], not_found)(scope, receive, send)
    elif scope["type"] == "websocket":
        await WS_ROUTES.get(scope["path"], ws_not_found)(scope, receive, send)
    elif scope["type"] == "lifespan":
        await _lifespan(receive, send)
