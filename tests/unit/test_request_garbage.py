"""A served request leaves nothing for the cyclic garbage collector.

Objects in a reference circle are freed only by the cyclic GC, whose collections cost CPU
on every ~700 net allocations and, for the oldest generation, a pause that grows with the
heap (a latency tail). Each request is served by a real server and protocol in-process
(benchmarks/hot_path.py's harness, a real event loop and, for WSGI, the real thread pool);
with the GC off, a collection afterwards must find none of the request's objects.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import pytest

from benchmarks.hot_path import drive, drive_wsgi


@pytest.fixture
def garbage() -> Iterator[list[object]]:
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        yield gc.garbage
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


def ours(objects: list[object]) -> list[str]:
    return sorted({type(o).__qualname__ for o in objects
                   if type(o).__module__.startswith("gunicorn_async_workers")})


@pytest.mark.parametrize("interface", ["asgi", "wsgi"])
def test_requests_are_freed_by_reference_counting(interface: str,
                                                   garbage: list[object]) -> None:
    loop = asyncio.new_event_loop()
    try:
        requests = 64
        if interface == "wsgi":
            loop.run_until_complete(drive_wsgi(requests, 16))
        else:
            loop.run_until_complete(drive(requests))
    finally:
        loop.close()
    gc.collect()
    # The server and its pool form circles of their own (once per server, not per request).
    per_request = [o for o in garbage if type(o).__qualname__ in
                   ("WsgiCycle", "RequestCycle", "WsgiInput", "Framing")]
    assert per_request == [], ours(garbage)
