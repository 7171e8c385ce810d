"""examples/ws_chat.py served by a real gunicorn with our worker: the page, and a broadcast
that reaches every connected client."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import WORKER_CLASSES
from gunicorn_process import GunicornProcess
from websockets.asyncio.client import connect

APP = "examples.ws_chat:app"


@pytest.fixture(scope="module", params=WORKER_CLASSES)
def chat(request: pytest.FixtureRequest) -> Iterator[GunicornProcess]:
    proc = GunicornProcess(APP, request.param)
    try:
        proc.start()
        yield proc
    finally:
        proc.stop()


def join(server: GunicornProcess, name: str) -> Any:
    return connect(f"ws://{server.host}:{server.port}/ws?name={name}", open_timeout=10,
                   close_timeout=5, ping_interval=None, proxy=None)


def test_page_at_root(chat: GunicornProcess) -> None:
    r = httpx.get(chat.url + "/", timeout=10)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "new WebSocket(" in r.text and "/ws?name=" in r.text


def test_a_message_is_broadcast_to_every_client(chat: GunicornProcess) -> None:
    async def scenario() -> dict[str, list[str]]:
        seen: dict[str, list[str]] = {"alice": [], "bob": []}
        async with join(chat, "alice") as alice:
            seen["alice"].append(await alice.recv())
            async with join(chat, "bob") as bob:
                # Both see bob join: from here on, bob is among the broadcast's clients.
                seen["bob"].append(await bob.recv())
                seen["alice"].append(await alice.recv())
                await alice.send("hello, bob")
                seen["alice"].append(await alice.recv())
                seen["bob"].append(await bob.recv())
                await bob.send(b"hi alice")
                seen["alice"].append(await alice.recv())
                seen["bob"].append(await bob.recv())
            seen["alice"].append(await alice.recv())
        return seen

    seen = asyncio.run(asyncio.wait_for(scenario(), 30))
    assert seen["alice"] == ["* alice joined", "* bob joined", "alice: hello, bob",
                             "bob: hi alice", "* bob left"]
    assert seen["bob"] == ["* bob joined", "alice: hello, bob", "bob: hi alice"]
