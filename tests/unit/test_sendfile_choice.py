"""Which loops send `wsgi.file_wrapper` bodies with `loop.sendfile`: the stdlib loop does,
uvloop (which has none) streams them, and Gunicorn's `sendfile` setting turns it off
(Gunicorn reads any explicit value of it, even True, as "off": so do we)."""

from __future__ import annotations

import asyncio
import sys

import pytest
import uvloop
from gunicorn.config import Config
from gunicorn.glogging import Logger

from gunicorn_async_workers.config import ServerConfig
from gunicorn_async_workers.server import Server


@pytest.mark.parametrize(("loop_factory", "sendfile", "expected"), [
    (asyncio.new_event_loop, None, True),
    (asyncio.new_event_loop, False, False),
    (uvloop.new_event_loop, None, False),
])
def test_sendfile_allowed(loop_factory: object, sendfile: bool | None, expected: bool) -> None:
    cfg = Config()
    if sendfile is not None:
        cfg.set("sendfile", sendfile)
    loop = loop_factory()  # type: ignore[operator]
    try:
        server = Server(ServerConfig.from_gunicorn(cfg, Logger(cfg), {}, sys.maxsize),
                        None, loop, Logger(cfg), None)
        server.serve_wsgi({}, "")
        assert server.bridge.sendfile_allowed is expected  # type: ignore[attr-defined]
        server.close_all()
    finally:
        loop.close()
