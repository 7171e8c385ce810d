"""A serving smoke test: each worker class answers an ASGI app, a WSGI app and a WebSocket.

CI runs this file (with the unit tests) on every Python version the package claims, and the
whole suite on the newest; see .ci/run."""

from __future__ import annotations

import asyncio

import httpx
from gunicorn_process import GunicornProcess
from websockets.asyncio.client import connect


def test_asgi_http(gunicorn: GunicornProcess) -> None:
    server = gunicorn("apps.ws_apps:app")
    r = httpx.get(server.url + "/", timeout=10)
    assert (r.status_code, r.text, r.http_version) == (200, "ok", "HTTP/1.1")


def test_wsgi_http(gunicorn: GunicornProcess) -> None:
    server = gunicorn("apps.wsgi_apps:app", settings={"threads": 2})
    r = httpx.post(server.url + "/input?how=read", content=b"x" * 100_000, timeout=10)
    assert r.status_code == 200
    assert "".join(r.json()["pieces"]) == "x" * 100_000


def test_websocket_echo(gunicorn: GunicornProcess) -> None:
    server = gunicorn("apps.ws_apps:app")

    async def talk() -> tuple[str, bytes]:
        async with connect(f"ws://{server.host}:{server.port}/echo", open_timeout=10,
                           close_timeout=5) as ws:
            await ws.send("héllo")
            text = await asyncio.wait_for(ws.recv(), 10)
            await ws.send(b"\x00\x01" * 1000)
            data = await asyncio.wait_for(ws.recv(), 10)
            return str(text), bytes(data)

    assert asyncio.run(talk()) == ("héllo", b"\x00\x01" * 1000)
