"""examples/ws_chat.py served by a real gunicorn with our worker: the page, and a broadcast
of JSON events that reaches every connected client, each told which events are its own."""

from __future__ import annotations

import asyncio
import json
import re
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
    page = r.text
    assert "new WebSocket(" in page and "/ws?name=" in page
    # The name is a field with a guest-NNNN to start with: no prompt(), which blocks the page
    # (and a headless browser taking a screenshot) until someone answers it.
    assert "prompt(" not in page and '<input id="name"' in page and '"guest-"' in page
    assert "overflow-wrap: anywhere" in page  # a long word wraps instead of leaving the box
    assert "p.own {" in page and "event.own" in page  # own messages are set apart
    # A dropped connection is retried, and the page says so (test_browser_chat.py runs it).
    assert 'id="status"' in page and "setTimeout(connect" in page


def events(messages: list[str | bytes]) -> list[dict[str, Any]]:
    return [json.loads(m) for m in messages]


def test_a_message_is_broadcast_to_every_client(chat: GunicornProcess) -> None:
    async def scenario() -> dict[str, list[str | bytes]]:
        seen: dict[str, list[str | bytes]] = {"alice": [], "bob": []}
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
    hello = {"type": "message", "name": "alice", "text": "hello, bob"}
    hi = {"type": "message", "name": "bob", "text": "hi alice"}
    assert events(seen["alice"]) == [
        {"type": "joined", "name": "alice", "own": True},
        {"type": "joined", "name": "bob", "own": False},
        {**hello, "own": True}, {**hi, "own": False},
        {"type": "left", "name": "bob", "own": False}]
    assert events(seen["bob"]) == [
        {"type": "joined", "name": "bob", "own": True},
        {**hello, "own": False}, {**hi, "own": True}]


def test_own_messages_are_told_by_connection_not_by_name(chat: GunicornProcess) -> None:
    """Two tabs under one name: each sees only what it sent itself as its own."""
    async def scenario() -> tuple[list[str | bytes], list[str | bytes]]:
        async with join(chat, "sam") as first:
            await first.recv()  # first joined
            async with join(chat, "sam") as second:
                await second.recv()  # second joined, as seen by both
                await first.recv()
                await second.send("from the second tab")
                return [await first.recv()], [await second.recv()]

    first, second = asyncio.run(asyncio.wait_for(scenario(), 30))
    said = {"type": "message", "name": "sam", "text": "from the second tab"}
    assert events(first) == [{**said, "own": False}]
    assert events(second) == [{**said, "own": True}]


def test_a_client_without_a_name_is_a_numbered_guest(chat: GunicornProcess) -> None:
    async def scenario() -> str | bytes:
        async with join(chat, "") as guest:
            return await guest.recv()

    joined = json.loads(asyncio.run(asyncio.wait_for(scenario(), 30)))
    assert joined["type"] == "joined" and joined["own"] is True
    assert re.fullmatch(r"guest-\d+", joined["name"]), joined
