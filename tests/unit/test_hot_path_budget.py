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
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from benchmarks.hot_path import REQUEST, MemoryTransport, build, plaintext
from gunicorn_async_workers.http import parsers

# Python-level calls in gunicorn_async_workers per plaintext request: 16 measured on
# 2026-12-06 (RequestCycle.send x2, HttpProtocol.data_received, ParserAdapter.feed, its
# head reader read_head, which hands the head the compiled reader read to _read_scanned,
# on_request_head, AsgiBridge.open_request, Exchange.__init__, on_request_end,
# RequestCycle.start (the seam's one call: the bridge's way of starting a request),
# RequestCycle.run, Exchange.write_head, frame_response_head, Exchange.finish,
# on_response_complete). Without the compiled reader (no C compiler at install) llhttp's
# callbacks on_header and on_headers_complete stand for _read_scanned: 17.
# `count_calls` lists them by name when the budget fails.
CALL_BUDGET = 16 if parsers.HttptoolsParser.use_compiled_head and parsers.compiled_scan else 17
# With Prometheus metrics on, the calls a request adds: the metrics route's open_request,
# the recorder's start and end, and the tally's request_finished (nothing else: gauges and
# files are the tick's work).
METRICS_CALLS = 4
PACKAGE = "gunicorn_async_workers"

Builder = Callable[[asyncio.AbstractEventLoop], list[tuple[Any, MemoryTransport]]]


def count_calls(requests: int, builder: Builder = build) -> Counter[str]:
    calls: Counter[str] = Counter()

    def profiler(frame: FrameType, event: str, arg: Any) -> None:
        if event == "call" and PACKAGE in frame.f_code.co_filename:
            calls[f"{frame.f_code.co_filename.rsplit('/', 1)[-1]}:{frame.f_code.co_name}"] += 1

    async def drive() -> None:
        [(protocol, transport)] = builder(asyncio.get_running_loop())
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


def test_no_access_log_or_metrics_work_without_them() -> None:
    calls = count_calls(10)
    assert not any("accesslog" in name or "prometheus" in name for name in calls), calls


def metered(directory: Path, opened: list[Any]) -> Builder:
    """`build`, with Prometheus metrics on (their files in `directory`; each WorkerMetrics
    made goes into `opened`, for the test to close)."""
    def builder(loop: asyncio.AbstractEventLoop) -> list[tuple[Any, MemoryTransport]]:
        from gunicorn.config import Config
        from gunicorn.glogging import Logger

        from gunicorn_async_workers.config import ServerConfig
        from gunicorn_async_workers.http.protocol import HttpProtocol
        from gunicorn_async_workers.prometheus.worker_metrics import WorkerMetrics
        from gunicorn_async_workers.server import Server

        cfg = Config()
        config = ServerConfig.from_gunicorn(cfg, Logger(cfg), {}, sys.maxsize)
        metrics = WorkerMetrics(str(directory), "/metrics")
        opened.append(metrics)
        server = Server(config, plaintext, loop, Logger(cfg), None, metrics=metrics)
        protocol = HttpProtocol(server)
        transport = MemoryTransport()
        protocol.connection_made(transport)
        return [(protocol, transport)]
    return builder


def test_metrics_add_a_few_calls_per_request(tmp_path: Path) -> None:
    requests = 50
    off = sum(count_calls(requests).values()) / requests
    opened: list[Any] = []
    try:
        calls = count_calls(requests, metered(tmp_path, opened))
    finally:
        for metrics in opened:
            metrics.close("other")
    on = sum(calls.values()) / requests
    detail = ", ".join(f"{name} x{n / requests:g}" for name, n in calls.most_common())
    assert on - off <= METRICS_CALLS, f"{on - off:g} calls more per request: {detail}"
