"""ASGI app whose routes make an HTTP/1.x server's behaviour observable to the integration tests.

Routes (a configured `root_path` prefix is stripped before routing):

- ``/count``                 how many requests reached the app (``/count`` itself excluded)
- ``/echo``                  reads the body; JSON: its length, sha256, message shape, scope fields
- ``/scope...``              reads the body; JSON of the whole scope (bytes decoded latin-1),
                             plus ``_types``: the Python type name of each scope value
- ``/stream?parts=N&delay=S`` response without content-length, sent in N body messages
                             (each after S seconds)
- ``/head``                  a fixed body with content-length, sent whatever the method
- ``/status/<n>``            status n; 1xx/204/304 without body or content-length
- ``/noread``                answers without ever calling receive()
- ``/slowbody``              reads the body slowly (pauses every MiB); JSON of length and sha256
- ``/duplex``                answers each http.request message with a line while still receiving
- ``/expect?entered=&go=``   writes `entered`, waits for file `go`, only then reads the body
- ``/raise_before``          raises before http.response.start
- ``/raise_after?mode=``     starts a response (length 100 or chunked), sends 10 bytes, raises
- ``/noresponse``            returns without responding
- ``/disconnect?record=``    waits for http.disconnect, then tries to send; notes steps in `record`
- ``/bigresponse?size=N``    N bytes of `pattern(N)` with content-length, in 256 KiB messages
- ``/close_header``          a response carrying ``connection: close``
- ``/headers``               a response with repeated set-cookie among other headers, in set order

`LegacyApp` is the same kind of echo as an ASGI 2 (double callable) application.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

CALLS = 0  # http requests that reached the app in this worker, /count excluded
_SKIP = object()


class ClientGone(Exception):
    """The client disconnected while the app was reading the request body."""


def pattern(size: int) -> bytes:
    """The deterministic body of /bigresponse (tests build the same bytes to compare)."""
    block = bytes(range(256))
    return (block * (size // 256 + 1))[:size]


def query(scope: Scope) -> dict[str, str]:
    parsed = parse_qs(scope["query_string"].decode("latin-1"), keep_blank_values=True)
    return {k: v[-1] for k, v in parsed.items()}


def jsonable(value: Any) -> Any:
    """`value` made JSON-serialisable; bytes decoded latin-1, unknown objects -> _SKIP."""
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (list, tuple)):
        return [v for v in (jsonable(x) for x in value) if v is not _SKIP]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            converted = jsonable(v)
            if converted is not _SKIP:
                out[str(k)] = converted
        return out
    return _SKIP


async def respond(send: Send, status: int, body: bytes = b"",
                  content_type: bytes = b"text/plain; charset=utf-8",
                  extra: list[tuple[bytes, bytes]] | None = None) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    headers += extra or []
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def respond_json(send: Send, doc: object, status: int = 200) -> None:
    await respond(send, status, json.dumps(doc).encode(), b"application/json")


async def read_body(receive: Receive) -> tuple[bytes, list[list[int]]]:
    """The whole request body and the shape of its messages: [[len(body), more_body], ...]."""
    parts: list[bytes] = []
    shape: list[list[int]] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone()
        body = message.get("body", b"")
        more = bool(message.get("more_body", False))
        parts.append(body)
        shape.append([len(body), int(more)])
        if not more:
            return b"".join(parts), shape


def note(path: str, line: str) -> None:
    with open(path, "a") as f:
        f.write(line + "\n")
        f.flush()


# -- routes ---------------------------------------------------------------------------------
async def count(scope: Scope, receive: Receive, send: Send) -> None:
    await respond(send, 200, str(CALLS).encode())


async def ready(scope: Scope, receive: Receive, send: Send) -> None:
    await respond(send, 200, b"ready")


async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    body, shape = await read_body(receive)
    doc = {
        "length": len(body),
        "sha256": hashlib.sha256(body).hexdigest(),
        "messages": shape if len(shape) <= 64 else len(shape),
        "method": scope["method"],
        "http_version": scope["http_version"],
        "path": scope["path"],
        "query_string": scope["query_string"].decode("latin-1"),
        "headers": jsonable(scope["headers"]),
    }
    if len(body) <= 65536:
        doc["body"] = body.decode("latin-1")
    await respond_json(send, doc)


async def dump_scope(scope: Scope, receive: Receive, send: Send) -> None:
    await read_body(receive)
    doc = jsonable(scope)
    # JSON cannot tell bytes from str: the Python type of each value rides along.
    doc["_types"] = {k: type(v).__name__ for k, v in scope.items()}
    doc["_header_types"] = sorted({f"{type(n).__name__},{type(v).__name__}"
                                   for n, v in scope.get("headers", [])})
    await respond_json(send, doc)


async def stream(scope: Scope, receive: Receive, send: Send) -> None:
    parts = int(query(scope).get("parts", "3"))
    delay = float(query(scope).get("delay", "0"))
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    for i in range(parts):
        if delay:
            await asyncio.sleep(delay)
        await send({"type": "http.response.body", "body": b"part%d;" % i, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def head(scope: Scope, receive: Receive, send: Send) -> None:
    await respond(send, 200, b"hello from /head\n", extra=[(b"x-route", b"head")])


async def status(scope: Scope, receive: Receive, send: Send) -> None:
    code = int(scope["path"].rsplit("/", 1)[1])
    if code < 200 or code in (204, 304):
        await send({"type": "http.response.start", "status": code,
                    "headers": [(b"x-status", str(code).encode())]})
        await send({"type": "http.response.body", "body": b""})
    else:
        await respond(send, code, b"status %d" % code)


async def empty_chunks(scope: Scope, receive: Receive, send: Send) -> None:
    """A streamed response whose every body message is empty: chunked, and ended."""
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"", "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def noread(scope: Scope, receive: Receive, send: Send) -> None:
    await respond(send, 200, b"answered without reading the body")


async def slowbody(scope: Scope, receive: Receive, send: Send) -> None:
    digest = hashlib.sha256()
    total = messages = 0
    next_pause = 1 << 20
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        body = message.get("body", b"")
        digest.update(body)
        total += len(body)
        messages += 1
        if total >= next_pause:
            next_pause += 1 << 20
            await asyncio.sleep(0.05)  # a slow consumer: lets the client's writes back up
        if not message.get("more_body", False):
            break
    await respond_json(send, {"length": total, "sha256": digest.hexdigest(),
                              "messages": messages})


async def duplex(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        body = message.get("body", b"")
        more = bool(message.get("more_body", False))
        line = b"%d %d %s\n" % (len(body), int(more), body[:32])
        if not more:
            await send({"type": "http.response.body", "body": line + b"end\n"})
            return
        await send({"type": "http.response.body", "body": line, "more_body": True})


async def expect(scope: Scope, receive: Receive, send: Send) -> None:
    q = query(scope)
    note(q["entered"], "entered")
    go = Path(q["go"])
    deadline = asyncio.get_running_loop().time() + 10
    while not go.exists() and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.01)
    note(q["entered"], "receive")
    body, _ = await read_body(receive)
    await respond(send, 200, b"got:" + body)


async def raise_before(scope: Scope, receive: Receive, send: Send) -> None:
    raise RuntimeError("raise-before-start marker")


async def raise_after(scope: Scope, receive: Receive, send: Send) -> None:
    headers = [(b"content-type", b"text/plain")]
    if query(scope).get("mode", "length") == "length":
        headers.append((b"content-length", b"100"))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"0123456789", "more_body": True})
    raise RuntimeError("raise-after-start marker")


async def noresponse(scope: Scope, receive: Receive, send: Send) -> None:
    return None


async def disconnect(scope: Scope, receive: Receive, send: Send) -> None:
    record = query(scope)["record"]
    await read_body(receive)
    note(record, "waiting")
    message = await receive()
    note(record, message["type"])
    try:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"too late"})
    except asyncio.CancelledError:
        note(record, "cancelled")
        raise
    except Exception as exc:
        kind = f"{type(exc).__module__}.{type(exc).__qualname__}"
        note(record, f"send-raised {kind} oserror={isinstance(exc, OSError)}")
        return
    note(record, "send-ok")


async def bigresponse(scope: Scope, receive: Receive, send: Send) -> None:
    size = int(query(scope)["size"])
    body = pattern(size)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/octet-stream"),
                            (b"content-length", str(size).encode())]})
    step = 256 * 1024
    for start in range(0, size, step):
        await send({"type": "http.response.body", "body": body[start:start + step],
                    "more_body": start + step < size})
    if size == 0:
        await send({"type": "http.response.body", "body": b""})


async def headers(scope: Scope, receive: Receive, send: Send) -> None:
    body = b"headers"
    await send({"type": "http.response.start", "status": 200, "headers": [
        (b"set-cookie", b"a=1; Path=/"),
        (b"x-one", b"1"),
        (b"content-type", b"text/plain"),
        (b"set-cookie", b"b=2; Path=/"),
        (b"content-length", str(len(body)).encode()),
        (b"x-two", b"2"),
    ]})
    await send({"type": "http.response.body", "body": body})


async def close_header(scope: Scope, receive: Receive, send: Send) -> None:
    await respond(send, 200, b"closing", extra=[(b"connection", b"close")])


ROUTES: dict[str, Callable[[Scope, Receive, Send], Awaitable[None]]] = {
    "/count": count,
    "/__ready": ready,
    "/echo": echo,
    "/stream": stream,
    "/head": head,
    "/noread": noread,
    "/slowbody": slowbody,
    "/duplex": duplex,
    "/expect": expect,
    "/raise_before": raise_before,
    "/raise_after": raise_after,
    "/noresponse": noresponse,
    "/disconnect": disconnect,
    "/bigresponse": bigresponse,
    "/close_header": close_header,
    "/headers": headers,
    "/empty_chunks": empty_chunks,
}


def route_of(path: str) -> Callable[[Scope, Receive, Send], Awaitable[None]] | None:
    if path in ROUTES:
        return ROUTES[path]
    if path.startswith("/status/"):
        return status
    if path.startswith("/scope"):
        return dump_scope
    return None


async def lifespan(scope: Scope, receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            state = scope.get("state")
            if state is not None:
                state["lifespan"] = "started"
                state["startup_pid"] = os.getpid()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    global CALLS
    if scope["type"] == "lifespan":
        await lifespan(scope, receive, send)
        return
    if scope["type"] != "http":
        return
    path = scope["path"]
    root = scope.get("root_path") or ""
    if root and path.startswith(root + "/"):
        path = path[len(root):]
    if path != "/count":
        CALLS += 1
    handler = route_of(path)
    if handler is None:
        await respond(send, 404, b"no such route: " + path.encode())
        return
    try:
        await handler(scope, receive, send)
    except ClientGone:
        return


class LegacyApp:
    """An ASGI 2 application: built with the scope, then awaited with receive and send."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope

    async def __call__(self, receive: Receive, send: Send) -> None:
        if self.scope["type"] == "lifespan":
            await lifespan(self.scope, receive, send)
            return
        if self.scope["type"] != "http":
            return
        body, _ = await read_body(receive)
        await respond_json(send, {
            "asgi2": True,
            "path": self.scope["path"],
            "method": self.scope["method"],
            "body": body.decode("latin-1"),
        })
