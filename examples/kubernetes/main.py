"""The app the Kubernetes example deploys: `/` says hello, `/healthz` is the probes' endpoint.

A raw ASGI app, so the image needs nothing beyond the base image. `main:app` is the base
image's default APP_MODULE: the Dockerfile beside this file only copies it in.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Awaitable, Callable
from typing import Any

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

HOST = socket.gethostname()  # the pod's name


async def respond(send: Send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode()),
                            (b"cache-control", b"no-store")]})
    await send({"type": "http.response.body", "body": body})


async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                # Open pools and load what the app needs here: a worker serves (and so
                # answers the probes) only after startup completes.
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    if scope["path"] == "/healthz":
        # Liveness and readiness: the worker's loop answers. Check only what this process
        # owns; a database that is down would fail every pod at once and restart them all.
        await respond(send, 200, b"ok\n")
    elif scope["path"] == "/":
        await respond(send, 200, f"Hello from {HOST} (worker {os.getpid()})\n".encode())
    else:
        await respond(send, 404, b"not found\n")
