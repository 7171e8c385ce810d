"""Raw ASGI apps for the worker's contract with the arbiter: signals, heartbeat, limits, lifespan.

Routes of `app` (any other path answers 404):

- ``/``              200 ``ok``
- ``/pid``           the worker's pid
- ``/sleep?ms=N``    notes ``sleep N`` in the marker file, awaits asyncio.sleep, answers the pid
- ``/block?s=N``     blocks the event loop with time.sleep(N), so the heartbeat stops
- ``/state``         JSON: whether lifespan startup had finished when the request arrived, and
                     whether the state startup set is visible in the request scope

`GAW_TEST_MARKERS` names a file the app appends lines to (``lifespan``, ``startup``,
``shutdown``, ``sleep N``, each followed by the pid); `GAW_TEST_STARTUP_MS` makes lifespan
startup take that long. `startup_failing_app` reports lifespan.startup.failed;
`lifespan_raising_app` raises on the lifespan scope and serves HTTP like `app`.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any
from urllib.parse import parse_qs

_startup_done = False


def mark(line: str) -> None:
    path = os.environ.get("GAW_TEST_MARKERS")
    if path:
        with open(path, "a") as f:
            f.write(f"{line} {os.getpid()}\n")


async def respond(send: Any, status: int, body: bytes, content_type: bytes = b"text/plain") -> None:
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode())],
    })
    await send({"type": "http.response.body", "body": body})


async def lifespan(scope: dict[str, Any], receive: Any, send: Any) -> None:
    global _startup_done
    mark("lifespan")
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await asyncio.sleep(int(os.environ.get("GAW_TEST_STARTUP_MS", "0")) / 1000)
            if "state" in scope:
                scope["state"]["started"] = True
            _startup_done = True
            mark("startup")
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            mark("shutdown")
            await send({"type": "lifespan.shutdown.complete"})
            return


async def http(scope: dict[str, Any], receive: Any, send: Any) -> None:
    more_body = True
    while more_body:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        more_body = message.get("more_body", False)
    query = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
    path = scope["path"]
    pid = str(os.getpid()).encode()
    if path == "/":
        await respond(send, 200, b"ok")
    elif path == "/pid":
        await respond(send, 200, pid)
    elif path == "/sleep":
        ms = int(query.get("ms", "0"))
        mark(f"sleep {ms}")
        await asyncio.sleep(ms / 1000)
        await respond(send, 200, pid)
    elif path == "/block":
        time.sleep(float(query.get("s", "10")))
        await respond(send, 200, pid)
    elif path == "/state":
        visible = bool((scope.get("state") or {}).get("started"))
        body = json.dumps({"startup_done": _startup_done, "state_visible": visible})
        await respond(send, 200, body.encode(), b"application/json")
    else:
        await respond(send, 404, b"not found")


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await lifespan(scope, receive, send)
    elif scope["type"] == "http":
        await http(scope, receive, send)


async def startup_failing_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        message = await receive()
        if message["type"] == "lifespan.startup":
            mark("startup-failed")
            await send({"type": "lifespan.startup.failed", "message": "refusing to start"})
        return
    await app(scope, receive, send)


async def lifespan_raising_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        mark("lifespan")
        raise RuntimeError("this app does not speak lifespan")
    await app(scope, receive, send)
