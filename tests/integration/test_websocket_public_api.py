"""A gunicorn whose WebSockets go through the `websockets` library's public API only (the
fallback where the fast path's self-test fails at import, forced here by
GAW_TEST_WEBSOCKET_PUBLIC_API): it serves the echo route as the fast path does, and says once,
at boot, why it is not on the fast path. (test_autobahn.py runs the Autobahn cases this way
too; tests/unit/test_websocket_paths.py the session's cases.)
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from gunicorn_process import GunicornProcess, wait_for
from test_websocket import close_between_fragments, ws_connect

from gunicorn_async_workers.asgi.websockets_internals import PUBLIC_API_ENV

APP = "apps.ws_apps:app"


@pytest.fixture
def server(gunicorn: Any) -> GunicornProcess:
    return gunicorn(APP, workers=2, env={PUBLIC_API_ENV: "1"})  # type: ignore[no-any-return]


def test_the_echo_route_is_served(server: GunicornProcess) -> None:
    async def scenario() -> list[Any]:
        async with ws_connect(server, "/echo") as ws:
            replies = []
            for message in ("text", b"bytes", "é" * 70_000, ["frag1-", "frag2"]):
                await ws.send(message)
                replies.append(await ws.recv())
            return replies

    assert asyncio.run(asyncio.wait_for(scenario(), 30)) == [
        "text", b"bytes", "é" * 70_000, "frag1-frag2"]


def test_a_close_between_fragments_closes_1000(server: GunicornProcess) -> None:
    close_between_fragments(server, "/echo")


def test_why_is_logged_once_at_boot(server: GunicornProcess) -> None:
    """One warning line for the whole server (the arbiter's check, before it forks), not
    one per worker."""
    wait_for(lambda: len(server.worker_pids()) == 2, 10)
    lines = [line for line in server.logs().splitlines() if PUBLIC_API_ENV in line]
    assert len(lines) == 1, lines
    assert "[WARNING]" in lines[0] and "public API" in lines[0]
