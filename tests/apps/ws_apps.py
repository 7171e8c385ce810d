"""ASGI and WSGI apps that make a server's WebSocket behaviour observable to the tests.

`app` is an ASGI app (with lifespan: it puts ``booted`` in the lifespan state). Its WebSocket
routes (a configured `root_path` prefix is stripped before routing) take these query
parameters:

- ``record=<file>``  JSON lines of what the app saw: every route first notes
  ``{"event": "first", "type": <type of the first message>}``, so the file also counts the
  handshakes that reached the app
- ``tag=<text>``     ignored by the app; makes a request line unique in the access log

Routes:

- ``/echo?subprotocol=&header=name:value``  accepts (with that subprotocol and extra header),
  echoes every message with its kind (text or bytes); notes ``disconnect`` (code, reason) and
  ``done`` when the app returns
- ``/scope...``              accepts, sends the scope as JSON text (bytes decoded latin-1,
                             ``_types`` gives each value's Python type), then sets
                             ``state["mutated"]`` and waits for the disconnect
- ``/close_before_accept``   sends websocket.close without accepting (the server answers 403)
- ``/close?code=&reason=``   accepts, then closes with that code and reason
- ``/deny?status=``          the denial extension: a response with that status, an
                             ``x-denied`` header and the body ``denied: go away`` in two parts
- ``/raise``                 raises before accepting (an app that does not serve WebSockets)
- ``/ignore``                returns without accepting
- ``/accept_and_return``     accepts, then returns (the server closes with 1000)
- ``/raise_after_accept``    accepts, then raises (the server closes with 1011)
- ``/after_disconnect``      accepts, waits for websocket.disconnect, notes it, then sends
                             once more and notes the exception (``send_error``)
- ``/after_close``           accepts, sends websocket.close, sends once more and notes the
                             exception (``send_error``), then waits for the disconnect
- ``/flood?size=&limit=&count=<file>``  accepts and sends `size`-byte binary messages
                             (at most `limit`, a safety stop), writing how many `send` calls
                             returned to the `count` file; notes ``flood_end`` (count,
                             exception) when `send` raises or the limit is reached
- ``/slow?delay=&gate=<file>&count=<file>``  accepts and receives, sleeping `delay` seconds
                             after each message until the `gate` file exists; writes how
                             many messages it received to `count`; notes ``slow_end``
                             (messages, bytes, code) at the disconnect
- ``/deaf?gate=<file>``      accepts and calls `receive` only once the `gate` file exists
                             (or after 60 s), then until the disconnect: an app that leaves
                             every message it is sent waiting

Any HTTP request gets ``200 ok``. `wsgi_app` is a WSGI app that answers every request,
upgrade requests included, with ``200 wsgi``.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def query(scope: Scope) -> dict[str, str]:
    parsed = parse_qs(scope["query_string"].decode("latin-1"), keep_blank_values=True)
    return {k: v[-1] for k, v in parsed.items()}


def note(scope: Scope, **event: Any) -> None:
    """Append one JSON line to the request's `record` file (if it named one)."""
    path = query(scope).get("record")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps(event) + "\n")


def write_count(path: str | None, value: int) -> None:
    """Replace the file's content with `value`, atomically (a reader never sees half)."""
    if path:
        tmp = f"{path}.tmp"
        with open(tmp, "w") as f:
            f.write(str(value))
        os.replace(tmp, path)


def jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)


def error_note(exc: BaseException) -> dict[str, Any]:
    return {"exc": type(exc).__name__, "oserror": isinstance(exc, OSError)}


async def wait_disconnect(scope: Scope, receive: Receive) -> Message:
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            note(scope, event="disconnect", code=message.get("code"),
                 reason=message.get("reason"))
            return message


# -- WebSocket routes -------------------------------------------------------------------------
async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    q = query(scope)
    accept: Message = {"type": "websocket.accept"}
    if q.get("subprotocol"):
        accept["subprotocol"] = q["subprotocol"]
    if q.get("header"):
        name, _, value = q["header"].partition(":")
        accept["headers"] = [(name.encode("latin-1"), value.encode("latin-1"))]
    await send(accept)
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            note(scope, event="disconnect", code=message.get("code"),
                 reason=message.get("reason"))
            break
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message.get("bytes") or b""})
    note(scope, event="done")


async def dump_scope(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "websocket.accept"})
    doc = jsonable(scope)
    doc["_types"] = {k: type(v).__name__ for k, v in scope.items()}
    doc["_header_types"] = sorted({f"{type(n).__name__},{type(v).__name__}"
                                   for n, v in scope["headers"]})
    await send({"type": "websocket.send", "text": json.dumps(doc)})
    scope["state"]["mutated"] = True  # a later connection's state must not show this
    await wait_disconnect(scope, receive)


async def close_before_accept(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "websocket.close"})


async def close(scope: Scope, receive: Receive, send: Send) -> None:
    q = query(scope)
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.close", "code": int(q.get("code", "1000")),
                "reason": q.get("reason", "")})
    await wait_disconnect(scope, receive)


async def deny(scope: Scope, receive: Receive, send: Send) -> None:
    status = int(query(scope).get("status", "403"))
    await send({"type": "websocket.http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain"), (b"x-denied", b"yes")]})
    await send({"type": "websocket.http.response.body", "body": b"denied: ",
                "more_body": True})
    await send({"type": "websocket.http.response.body", "body": b"go away"})


async def raise_before_accept(scope: Scope, receive: Receive, send: Send) -> None:
    raise RuntimeError("this app serves no WebSockets")


async def ignore(scope: Scope, receive: Receive, send: Send) -> None:
    return None


async def accept_and_return(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "websocket.accept"})


async def raise_after_accept(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "websocket.accept"})
    raise RuntimeError("the app failed after accepting")


async def after_disconnect(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "websocket.accept"})
    await wait_disconnect(scope, receive)
    try:
        await send({"type": "websocket.send", "text": "too late"})
    except Exception as exc:
        note(scope, event="send_error", **error_note(exc))
    else:
        note(scope, event="send_error", exc=None, oserror=False)


async def after_close(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.close", "code": 1000})
    try:
        await send({"type": "websocket.send", "text": "too late"})
    except Exception as exc:
        note(scope, event="send_error", **error_note(exc))
    else:
        note(scope, event="send_error", exc=None, oserror=False)
    await wait_disconnect(scope, receive)


async def flood(scope: Scope, receive: Receive, send: Send) -> None:
    q = query(scope)
    payload = b"\x5a" * int(q.get("size", "65536"))
    counter = q.get("count")
    limit = int(q.get("limit", "1000"))
    await send({"type": "websocket.accept"})
    sent = 0
    try:
        while sent < limit:
            await send({"type": "websocket.send", "bytes": payload})
            sent += 1
            write_count(counter, sent)
    except Exception as exc:
        note(scope, event="flood_end", count=sent, **error_note(exc))
    else:
        note(scope, event="flood_end", count=sent, exc=None, oserror=False)


async def burst(scope: Scope, receive: Receive, send: Send) -> None:
    """`count` numbered messages without yielding to the loop, then a close with 4000."""
    count = int(query(scope).get("count", "1000"))
    await send({"type": "websocket.accept"})
    for number in range(count):
        await send({"type": "websocket.send", "text": str(number)})
    await send({"type": "websocket.close", "code": 4000, "reason": "burst done"})


async def slow(scope: Scope, receive: Receive, send: Send) -> None:
    q = query(scope)
    delay = float(q.get("delay", "0.05"))
    gate, counter = q.get("gate"), q.get("count")
    await send({"type": "websocket.accept"})
    messages = size = 0
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            note(scope, event="slow_end", messages=messages, bytes=size,
                 code=message.get("code"))
            return
        messages += 1
        size += len(message.get("bytes") or b"") + len(message.get("text") or "")
        write_count(counter, messages)
        if not (gate and os.path.exists(gate)):
            await asyncio.sleep(delay)  # the app is slow: messages pile up for it


async def deaf(scope: Scope, receive: Receive, send: Send) -> None:
    gate = query(scope).get("gate")
    await send({"type": "websocket.accept"})
    for _ in range(1200):
        if gate and os.path.exists(gate):
            break
        await asyncio.sleep(0.05)
    await wait_disconnect(scope, receive)


ROUTES: dict[str, Callable[[Scope, Receive, Send], Awaitable[None]]] = {
    "/echo": echo,
    "/close_before_accept": close_before_accept,
    "/close": close,
    "/deny": deny,
    "/raise": raise_before_accept,
    "/ignore": ignore,
    "/accept_and_return": accept_and_return,
    "/raise_after_accept": raise_after_accept,
    "/after_disconnect": after_disconnect,
    "/after_close": after_close,
    "/flood": flood,
    "/burst": burst,
    "/slow": slow,
    "/deaf": deaf,
}


async def websocket(scope: Scope, receive: Receive, send: Send) -> None:
    path = scope["path"]
    root = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root):]
    first = await receive()
    note(scope, event="first", type=first["type"])
    if path.startswith("/scope"):
        await dump_scope(scope, receive, send)
        return
    route = ROUTES.get(path)
    if route is None:
        await send({"type": "websocket.close", "code": 1008})
        return
    await route(scope, receive, send)


async def lifespan(scope: Scope, receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            if "state" in scope:
                scope["state"]["booted"] = "yes"
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    kind = scope["type"]
    if kind == "lifespan":
        await lifespan(scope, receive, send)
    elif kind == "websocket":
        await websocket(scope, receive, send)
    else:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain"), (b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})


def wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """A WSGI app knows nothing of WebSockets: an upgrade request is one more request."""
    body = b"wsgi"
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
