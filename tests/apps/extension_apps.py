"""An ASGI app that uses the response extensions (pathsend, zerocopysend, early hints,
trailers) on files in the directory named by `GAW_TEST_FILES`, for test_asgi_extensions.

Routes (query parameters in brackets):

- ``/extensions``  the names in the scope's `extensions`, as JSON
- ``/pathsend``    [file, length: the app's own Content-Length, status] the file by pathsend
- ``/zerocopy``    [file, mode] the file by zerocopysend:
                   ``range`` (an int descriptor, [offset, count]),
                   ``position`` (a file object read up to [seek]; no offset nor count; a last
                   body message says where the file was left),
                   ``parts`` (``<``, bytes 0-9, bytes 20-29, ``>``: body and file parts mixed),
                   ``bytesio`` (no descriptor), ``past-end`` (a count beyond the end)
- ``/early``       [at: ``before`` start (default), ``after-start``, ``after-body``;
                   http10] an early hint with two links, then ``ok``
- ``/trailers``    [parts: body messages, length: the app's Content-Length] a body announced
                   with trailers, then two trailers messages
- ``/starlette``   [file] Starlette's FileResponse, its messages' types recorded;
                   ``/starlette-sent`` answers the types of the last one's, as JSON
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from starlette.responses import FileResponse

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

FILES = Path(os.environ.get("GAW_TEST_FILES", "/nonexistent"))
LINKS = [b"</style.css>; rel=preload; as=style", b"</app.js>; rel=preload; as=script"]
STARLETTE_SENT: list[str] = []


def start(status: int = 200, headers: list[tuple[bytes, bytes]] | None = None,
          **more: object) -> Message:
    return {"type": "http.response.start", "status": status, "headers": headers or [],
            **more}


def body(data: bytes, more: bool = False) -> Message:
    return {"type": "http.response.body", "body": data, "more_body": more}


async def answer(send: Send, data: bytes) -> None:
    await send(start(headers=[(b"content-type", b"application/json")]))
    await send(body(data))


async def zerocopy(send: Send, file: Path, mode: str, query: dict[str, str]) -> None:
    if mode == "range":
        fd = os.open(file, os.O_RDONLY)
        try:
            await send(start())
            await send({"type": "http.response.zerocopysend", "file": fd,
                        "offset": int(query["offset"]), "count": int(query["count"])})
        finally:
            os.close(fd)
    elif mode == "position":
        with open(file, "rb") as f:
            f.read(int(query["seek"]))  # buffered: the descriptor is further on than tell()
            await send(start())
            await send({"type": "http.response.zerocopysend", "file": f, "more_body": True})
            await send(body(b"|%d" % f.tell()))
    elif mode == "parts":
        with open(file, "rb") as f:
            await send(start())
            await send(body(b"<", True))
            await send({"type": "http.response.zerocopysend", "file": f, "offset": 0,
                        "count": 10, "more_body": True})
            await send({"type": "http.response.zerocopysend", "file": f, "offset": 20,
                        "count": 10, "more_body": True})
            await send(body(b">"))
    elif mode == "bytesio":
        await send(start())
        await send({"type": "http.response.zerocopysend", "file": io.BytesIO(b"abc")})
    elif mode == "past-end":
        with open(file, "rb") as f:
            await send(start())
            await send({"type": "http.response.zerocopysend", "file": f, "offset": 1,
                        "count": os.fstat(f.fileno()).st_size})


async def early(send: Send, at: str) -> None:
    hint = {"type": "http.response.early_hint", "links": LINKS}
    if at == "before":
        await send(hint)
    await send(start(headers=[(b"content-type", b"text/plain")]))
    if at == "after-start":
        await send(hint)
    await send(body(b"o", True))
    if at == "after-body":
        await send(hint)
    await send(body(b"k"))


async def trailers(send: Send, parts: int, length: str | None) -> None:
    headers = [(b"trailer", b"x-checksum, x-count")]
    if length is not None:
        headers.append((b"content-length", length.encode()))
    await send(start(headers=headers, trailers=True))
    for index in range(parts):
        await send(body(b"part%d;" % index, index < parts - 1))
    # An iterator, not a list: the spec asks for an iterable, read once.
    await send({"type": "http.response.trailers", "more_trailers": True,
                "headers": iter([(b"x-checksum", b"abc"), (b"content-length", b"99")])})
    await send({"type": "http.response.trailers", "headers": [(b"x-count", b"%d" % parts)]})


async def starlette_file(scope: Message, receive: Receive, send: Send, file: Path) -> None:
    STARLETTE_SENT.clear()

    async def recording_send(message: Message) -> None:
        STARLETTE_SENT.append(message["type"])
        await send(message)

    await FileResponse(file)(scope, receive, recording_send)


async def app(scope: Message, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    path = scope["path"]
    query = {k: v[-1] for k, v in parse_qs(scope["query_string"].decode()).items()}
    file = FILES / query.get("file", "small.bin")
    if path == "/pathsend":
        length = query.get("length")
        headers = [(b"content-length", length.encode())] if length is not None else []
        await send(start(int(query.get("status", "200")), headers))
        await send({"type": "http.response.pathsend", "path": str(file)})
    elif path == "/zerocopy":
        await zerocopy(send, file, query["mode"], query)
    elif path == "/early":
        await early(send, query.get("at", "before"))
    elif path == "/trailers":
        await trailers(send, int(query.get("parts", "2")), query.get("length"))
    elif path == "/starlette":
        await starlette_file(scope, receive, send, file)
    elif path == "/starlette-sent":
        await answer(send, json.dumps(STARLETTE_SENT).encode())
    else:  # /extensions, /__ready
        await answer(send, json.dumps(sorted(scope["extensions"])).encode())
