"""An ASGI app for the hostile HTTP/2 peer tests (tests/integration/test_h2_hostile.py).

`GAW_TEST_MARKERS` names a file the app appends notes to (``<note> <id>``), so a test can
see that a request started and that the app heard of its stream going away.

Routes:

- ``/``                      ``ok``
- ``/stream?size=N&chunk=C`` N bytes (``b"x"``) in C-byte pieces, no content-length
- ``/hold?id=ID``            notes ``holding ID``, answers nothing, waits for
                             ``http.disconnect`` and notes ``disconnected ID``
- ``/body?id=ID``            notes ``reading ID``, reads the whole body and answers its
                             length; a disconnect while reading notes ``disconnected ID``
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def mark(note: str) -> None:
    path = os.environ.get("GAW_TEST_MARKERS")
    if path:
        with open(path, "a") as f:  # one short O_APPEND write: lines never interleave
            f.write(note + "\n")


async def answer(send: Send, body: bytes) -> None:
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})


async def app(scope: Message, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            kind = (await receive())["type"]
            await send({"type": kind + ".complete"})
            if kind == "lifespan.shutdown":
                return
        return
    path = scope["path"]
    query = {k: v[-1] for k, v in parse_qs(scope["query_string"].decode()).items()}
    request_id = query.get("id", "")
    if path == "/stream":
        size, piece = int(query["size"]), int(query["chunk"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        chunk = b"x" * piece
        for _ in range(size // piece):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/hold":
        mark(f"holding {request_id}")
        while (await receive())["type"] != "http.disconnect":
            pass
        mark(f"disconnected {request_id}")
    elif path == "/body":
        mark(f"reading {request_id}")
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                mark(f"disconnected {request_id}")
                return
            size += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        await answer(send, b"%d" % size)
    else:
        await answer(send, b"ok")
