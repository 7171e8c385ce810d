"""`max_requests` exactly: with no jitter, a worker answers that many requests and no more
(no readiness probe here: it would be one of them and hide an off-by-one)."""

from __future__ import annotations

import pytest
from gunicorn_process import GunicornProcess
from raw_http import ResponseReader


@pytest.mark.parametrize("max_requests", [1, 5])
def test_a_worker_answers_exactly_max_requests(worker_class: str, max_requests: int) -> None:
    server = GunicornProcess("apps.contract:app", worker_class, settings={
        "max_requests": max_requests, "max_requests_jitter": 0, "graceful_timeout": 5})
    try:
        server.start(probe=False)  # requests wait in the backlog until a worker accepts
        pids = []
        for _ in range(2 * max_requests + 1):
            with server.connect(10.0) as s:
                s.sendall(b"GET /pid HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                resp = ResponseReader(s, 20.0).read_response()
            assert resp.status == 200
            pids.append(int(resp.body))
    finally:
        server.stop()
    first = pids[0]
    assert pids[:max_requests] == [first] * max_requests, pids
    assert first not in pids[max_requests:], pids
    assert pids[max_requests:2 * max_requests] == [pids[max_requests]] * max_requests, pids
