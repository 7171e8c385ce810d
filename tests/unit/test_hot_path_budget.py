"""A guard against regressions of the plaintext path, without timing: count Python calls.

Every Python-level function call our code makes for one keep-alive plaintext request is
counted with `sys.setprofile`, through a real Server and HttpProtocol on a real event loop
(the in-process harness of benchmarks/hot_path.py). The budget below is today's count plus a
little room; a change that adds work per request fails here and must be measured with
`python -m benchmarks` against the peers before the budget is raised.
"""

from __future__ import annotations

import asyncio
import gc
import sys
from collections import Counter
from types import FrameType
from typing import Any

from benchmarks.hot_path import REQUEST, build

# Python-level calls in gunicorn_async_workers per plaintext request: 17 measured on
# 2026-12-06 (RequestCycle.send x2, HttpProtocol.data_received, ParserAdapter.feed, its
# head reader read_head, the httptools callbacks on_header and on_headers_complete,
# on_request_head, AsgiBridge.open_request, Exchange.__init__, on_request_end,
# RequestCycle.start (the seam's one call: the bridge's way of starting a request),
# RequestCycle.run, Exchange.write_head, frame_response_head, Exchange.finish,
# on_response_complete). `count_calls` lists them by name when the budget fails.
CALL_BUDGET = 17
PACKAGE = "gunicorn_async_workers"


def count_calls(requests: int) -> Counter[str]:
    calls: Counter[str] = Counter()

    def profiler(frame: FrameType, event: str, arg: Any) -> None:
        if event == "call" and PACKAGE in frame.f_code.co_filename:
            calls[f"{frame.f_code.co_filename.rsplit('/', 1)[-1]}:{frame.f_code.co_name}"] += 1

    async def drive() -> None:
        [(protocol, transport)] = build(asyncio.get_running_loop())
        for _ in range(3):  # warm: first-time caches (header names, status lines) filled
            protocol.data_received(REQUEST)
            await asyncio.sleep(0)
        # Garbage left by earlier tests in this process (a WebSocket's suspended parser, say)
        # is collected first, and no collection runs while counting: a finalizer the
        # collector happens to run is not the request's work.
        gc.collect()
        gc.disable()
        sys.setprofile(profiler)
        try:
            for _ in range(requests):
                protocol.data_received(REQUEST)
                await asyncio.sleep(0)
        finally:
            sys.setprofile(None)
            gc.enable()
        assert transport.written == requests + 3

    asyncio.run(drive())
    return calls


def test_plaintext_request_stays_within_its_call_budget() -> None:
    requests = 50
    calls = count_calls(requests)
    per_request = sum(calls.values()) / requests
    detail = ", ".join(f"{name} x{n / requests:g}" for name, n in calls.most_common())
    assert per_request <= CALL_BUDGET, f"{per_request:g} calls per request: {detail}"


def test_no_access_log_work_without_an_access_log() -> None:
    calls = count_calls(10)
    assert not any("accesslog" in name for name in calls), calls
