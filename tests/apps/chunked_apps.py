"""ASGI and WSGI apps that count their calls and read request bodies, for refused-body tests.

Both serve the same routes (one worker: the count is the worker's):

- ``/count``               how many requests reached the app (``/count``, ``/done`` excluded)
- ``/done``                how many of those the app has finished (returned or raised)
- ``/read?gone=M``         reads the whole body and answers its length; when the body read
                           fails (ASGI: ``http.disconnect``; WSGI: ``wsgi.input`` raises) it
                           returns quietly with M=return, or raises with M=raise, as
                           frameworks do (Starlette raises ``ClientDisconnect``)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

CALLS = 0
DONE = 0


class BodyReadFailed(Exception):
    """The app's own error for a body it could not read (a framework's ClientDisconnect)."""


def _gone(query: bytes | str) -> str:
    text = query.decode("latin-1") if isinstance(query, bytes) else query
    return parse_qs(text).get("gone", ["return"])[-1]


async def asgi_app(scope: Message, receive: Receive, send: Send) -> None:
    global CALLS, DONE
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
    if scope["path"] in ("/count", "/done"):
        body = str(CALLS if scope["path"] == "/count" else DONE).encode()
    else:
        CALLS += 1
        try:
            length = 0
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    if _gone(scope["query_string"]) == "raise":
                        raise BodyReadFailed("the client went away while sending the body")
                    return
                length += len(message.get("body", b""))
                if not message.get("more_body"):
                    break
            body = str(length).encode()
        finally:
            DONE += 1
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})


def wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    global CALLS, DONE
    if environ["PATH_INFO"] in ("/count", "/done"):
        body = str(CALLS if environ["PATH_INFO"] == "/count" else DONE).encode()
    else:
        CALLS += 1
        try:
            body = str(len(environ["wsgi.input"].read())).encode()
        except OSError as exc:
            if _gone(environ.get("QUERY_STRING", "")) == "raise":
                raise BodyReadFailed("the body could not be read") from exc
            body = b"body read failed"
        finally:
            DONE += 1
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]
