"""ASGI and WSGI apps for the reliability tests: load across process events, faults, hostile
clients. Each notes what it started, so a test can tell a request the app never saw from one
it lost.

`GAW_TEST_STARTED` names a file the apps append a request's id to the moment they start it
(before reading its body); `GAW_TEST_MARKERS` a file for other notes (``<note> <pid>``).

Routes of `app` (ASGI, with lifespan) and `wsgi_app` (WSGI):

- ``/r?id=ID&ms=N``     notes ID as started, reads the whole body, waits N ms, answers
                        ``ID <pid> <body length>`` with content-length
- ``/pid``              the worker's pid
- ``/big?size=N&piece=P``  N bytes (``b"x"``), content-length, sent in P-byte pieces
- ``/block?s=N``        (ASGI) notes ``block <time.monotonic()>``, then blocks the event loop
                        for N seconds
- ``/fault/<name>``     an app that breaks the protocol in one way (see `ASGI_FAULTS`,
                        `WSGI_FAULTS`); the worker must answer 500 or close, log one ERROR
                        line, and live on
- ``/ws?accept_ms=N`` (ASGI, WebSocket)  notes ``accepting``, waits N ms, then accepts and
                        echoes every message until the disconnect (the benchmarks' echo)

`hanging_shutdown_app` is `app` whose lifespan shutdown never completes.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any
from urllib.parse import parse_qs

from benchmarks.apps.asgi_apps import ws_echo

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
StartResponse = Callable[..., Any]

_START = "http.response.start"
_BODY = "http.response.body"


def query(raw: str) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()}


def note_started(request_id: str) -> None:
    path = os.environ.get("GAW_TEST_STARTED")
    if path:
        with open(path, "a") as f:  # one short O_APPEND write: lines never interleave
            f.write(request_id + "\n")


def mark(line: str) -> None:
    path = os.environ.get("GAW_TEST_MARKERS")
    if path:
        with open(path, "a") as f:
            f.write(f"{line} {os.getpid()}\n")


def pid() -> bytes:
    return str(os.getpid()).encode()


# -- ASGI ---------------------------------------------------------------------------------------
async def respond(send: Send, status: int, body: bytes) -> None:
    await send({"type": _START, "status": status,
                "headers": [(b"content-type", b"text/plain"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": _BODY, "body": body})


async def read_all(receive: Receive) -> bytes | None:
    """The whole request body, or None if the client went away first."""
    parts = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(parts)


async def fault_body_before_start(send: Send) -> None:
    await send({"type": _BODY, "body": b"too early"})


async def fault_start_twice(send: Send) -> None:
    await send({"type": _START, "status": 200, "headers": []})
    await send({"type": _START, "status": 200, "headers": []})


async def fault_after_complete(send: Send) -> None:
    await respond(send, 200, b"complete")
    await send({"type": _BODY, "body": b"after the end"})


async def fault_unknown_type(send: Send) -> None:
    await send({"type": "http.response.trailers", "headers": []})


async def fault_raise(send: Send) -> None:
    raise RuntimeError("fault marker: raised before responding")


async def fault_noresponse(send: Send) -> None:
    return None


async def fault_start_only(send: Send) -> None:
    await send({"type": _START, "status": 200, "headers": []})


# name -> (the fault, what the client may get: a status, or None for a cut connection)
ASGI_FAULTS: dict[str, tuple[Callable[[Send], Awaitable[None]], int | None]] = {
    "body_before_start": (fault_body_before_start, 500),
    "start_twice": (fault_start_twice, 500),
    "after_complete": (fault_after_complete, 200),
    "unknown_type": (fault_unknown_type, 500),
    "raise": (fault_raise, 500),
    "noresponse": (fault_noresponse, 500),
    "start_only": (fault_start_only, 500),
}


async def http(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    path = scope["path"]
    q = query(scope["query_string"].decode("latin-1"))
    if path == "/r":
        request_id = q.get("id", "")
        note_started(request_id)
        body = await read_all(receive)
        if body is None:
            mark(f"disconnected {request_id}")
            return  # the client went away: nobody to answer
        ms = int(q.get("ms", "0"))
        if ms:
            await asyncio.sleep(ms / 1000)
        await respond(send, 200, b"%s %s %d" % (request_id.encode(), pid(), len(body)))
    elif path == "/pid":
        await respond(send, 200, pid())
    elif path == "/big":
        size, piece = int(q.get("size", "1048576")), int(q.get("piece", "65536"))
        await send({"type": _START, "status": 200,
                    "headers": [(b"content-length", str(size).encode())]})
        block = b"x" * piece
        sent = 0
        while sent < size:
            data = block[:size - sent]
            sent += len(data)
            await send({"type": _BODY, "body": data, "more_body": sent < size})
    elif path == "/block":
        mark(f"block {time.monotonic():.6f}")  # the system-wide clock: tests compare it
        time.sleep(float(q.get("s", "10")))
        await respond(send, 200, pid())
    elif path.startswith("/fault/"):
        fault, _ = ASGI_FAULTS[path[len("/fault/"):]]
        await fault(send)
    else:
        await respond(send, 404 if path != "/" else 200, b"ok")


async def lifespan(receive: Receive, send: Send, hang_on_shutdown: bool) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            mark("shutdown")
            if hang_on_shutdown:
                await asyncio.Event().wait()  # never set: only graceful_timeout ends this
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    kind = scope["type"]
    if kind == "http":
        await http(scope, receive, send)
    elif kind == "websocket":
        ms = int(query(scope["query_string"].decode("latin-1")).get("accept_ms", "0"))
        if ms:
            mark("accepting")
            await asyncio.sleep(ms / 1000)  # the handshake waits on the app
        await ws_echo(scope, receive, send)
    elif kind == "lifespan":
        await lifespan(receive, send, hang_on_shutdown=False)


async def hanging_shutdown_app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await lifespan(receive, send, hang_on_shutdown=True)
    else:
        await app(scope, receive, send)


# -- WSGI ---------------------------------------------------------------------------------------
def wsgi_respond(start_response: StartResponse, body: bytes, status: str = "200 OK"
                 ) -> list[bytes]:
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def wsgi_fault_raise(environ: dict[str, Any], start_response: StartResponse) -> Any:
    raise RuntimeError("fault marker: raised before start_response")


def wsgi_fault_no_start_response(environ: dict[str, Any], start_response: StartResponse
                                 ) -> Any:
    return [b"never started"]


def wsgi_fault_iter_raise(environ: dict[str, Any], start_response: StartResponse) -> Any:
    start_response("200 OK", [("Content-Type", "text/plain")])

    def body() -> Iterator[bytes]:
        yield b"first piece"
        raise RuntimeError("fault marker: raised while iterating")
    return body()


def wsgi_fault_bad_status(environ: dict[str, Any], start_response: StartResponse) -> Any:
    return wsgi_respond(start_response, b"x", status="OK")


WSGI_FAULTS: dict[str, tuple[Callable[..., Any], int | None]] = {
    "raise": (wsgi_fault_raise, 500),
    "no_start_response": (wsgi_fault_no_start_response, 500),
    "iter_raise": (wsgi_fault_iter_raise, None),
    "bad_status": (wsgi_fault_bad_status, 500),
}


def wsgi_app(environ: dict[str, Any], start_response: StartResponse) -> Any:
    path = environ["PATH_INFO"]
    q = query(environ.get("QUERY_STRING", ""))
    if path == "/r":
        request_id = q.get("id", "")
        note_started(request_id)
        body = environ["wsgi.input"].read()
        ms = int(q.get("ms", "0"))
        if ms:
            time.sleep(ms / 1000)
        return wsgi_respond(start_response, b"%s %s %d" % (request_id.encode(), pid(),
                                                           len(body)))
    if path == "/pid":
        return wsgi_respond(start_response, pid())
    if path == "/big":
        size, piece = int(q.get("size", "1048576")), int(q.get("piece", "65536"))
        start_response("200 OK", [("Content-Length", str(size))])

        def pieces() -> Iterator[bytes]:
            block = b"x" * piece
            sent = 0
            while sent < size:
                data = block[:size - sent]
                sent += len(data)
                yield data
        return pieces()
    if path.startswith("/fault/"):
        fault, _ = WSGI_FAULTS[path[len("/fault/"):]]
        return fault(environ, start_response)
    return wsgi_respond(start_response, b"ok", "200 OK" if path == "/" else "404 Not Found")
