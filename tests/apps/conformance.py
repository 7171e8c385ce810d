"""ASGI app for the request corpus: read the whole body, answer 200 with what the server parsed.

The JSON body holds method, path, raw_path, query, http_version, body_length, header_count,
calls and pid. `calls` counts, per worker process, the requests this app received complete
(body read to its end) and answered, this one included; a test compares it before and after
sending bytes to prove that an invalid request never reached the app, even when the server
closed the connection without sending anything. Every response carries `x-reached-app: 1`.
"""

from __future__ import annotations

import json
import os
from typing import Any

_calls = 0


async def _lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    global _calls
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    body_length = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        body_length += len(message.get("body", b""))
        if not message.get("more_body", False):
            break
    _calls += 1
    raw_path = scope.get("raw_path")
    payload = {
        "method": scope["method"],
        "path": scope["path"],
        "raw_path": None if raw_path is None else raw_path.decode("latin-1"),
        "query": scope["query_string"].decode("latin-1"),
        "http_version": scope["http_version"],
        "body_length": body_length,
        "header_count": len(scope["headers"]),
        "calls": _calls,
        "pid": os.getpid(),
    }
    body = json.dumps(payload).encode()
    await send({
        "type": "http.response.start",
        "status": 200,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"x-reached-app", b"1"),
        ],
    })
    await send({"type": "http.response.body", "body": body})
