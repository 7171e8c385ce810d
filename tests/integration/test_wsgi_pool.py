"""The WSGI thread pool under Gunicorn's process rules: heartbeat, max_requests, hooks."""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from gunicorn_process import GunicornProcess, wait_for

APP = "apps.wsgi_apps:app"


def heartbeat(pid: int) -> float:
    """The time stamped on a worker's heartbeat file (Gunicorn's `wgunicorn-` temporary
    file, unlinked, found through /proc): the arbiter kills the worker once it is older
    than `timeout`. 0.0 when the file is not found."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except FileNotFoundError:
        raise AssertionError(f"worker {pid} has exited") from None
    for fd in fds:
        path = f"/proc/{pid}/fd/{fd}"
        with contextlib.suppress(OSError):
            if "wgunicorn-" in os.readlink(path):
                return os.stat(path).st_mtime
    return 0.0


def test_heartbeat_goes_on_while_every_thread_is_busy(
        gunicorn: Callable[..., GunicornProcess], tmp_path: Path) -> None:
    """One thread, held by a request past `timeout` while a second waits for it: the loop
    still beats, so the arbiter does not kill the worker; the queued request waits on the
    loop and is answered once the thread is free."""
    timeout = 2
    server = gunicorn(APP, settings={"threads": 1, "timeout": timeout})
    [pid] = server.worker_pids()
    entered, release = tmp_path / "entered", tmp_path / "release"
    target = f"{server.url}/sleep?s=30&entered={entered}&until={release}"
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(httpx.get, target, timeout=40) for _ in range(2)]
        wait_for(entered.exists, 10, what="the first request holding the only thread")
        busy_since = time.monotonic()
        # The worker stamps its beats up to one interval (1 s at this timeout) ahead: a
        # stamp past busy_since + timeout + 1 was written more than `timeout` after the
        # thread became busy, which a worker whose loop stalled with it could not do.
        # (Gunicorn stamps time.monotonic(), the same clock on the whole machine.)
        wait_for(lambda: heartbeat(pid) > busy_since + timeout + 1, 10,
                 what="a heartbeat written more than `timeout` into the busy thread")
        assert not futures[0].done() and not futures[1].done()
        release.touch()
        answers = [f.result() for f in futures]
    assert [r.status_code for r in answers] == [200, 200]
    assert [r.text for r in answers] == ["slept", "slept"]
    assert server.worker_pids() == [pid]
    assert "WORKER TIMEOUT" not in server.logs()


def test_max_requests_waits_for_the_app_thread(
        gunicorn: Callable[..., GunicornProcess], tmp_path: Path) -> None:
    """The recycle that max_requests triggers lets a request running in a thread finish."""
    server = gunicorn(APP, settings={"threads": 2, "max_requests": 2})
    [pid] = server.worker_pids()
    entered = tmp_path / "entered"
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        slow = pool.submit(httpx.get, server.url + "/sleep?s=1.5&entered=" + str(entered),
                           timeout=20)
        wait_for(entered.exists, 10, what="the slow request running in its thread")
        quick = httpx.get(server.url + "/plain", timeout=10)  # the second request: the limit
        assert quick.status_code == 200
        assert slow.result().status_code == 200 and slow.result().text == "slept"
    wait_for(lambda: pid not in server.worker_pids() and server.worker_pids(), 15,
             what="the recycled worker replaced")
    assert "Autorestarting worker after current request." in server.logs()
    assert httpx.get(server.url + "/plain", timeout=10).status_code == 200


def test_request_hooks_get_gunicorns_objects(gunicorn: Callable[..., GunicornProcess],
                                             tmp_path: Path) -> None:
    marks = tmp_path / "hooks"
    hooks = f"""
def pre_request(worker, req):
    open({str(marks)!r}, "a").write(f"pre {{req.method}} {{req.path}}\\n")

def post_request(worker, req, environ, resp):
    open({str(marks)!r}, "a").write(
        f"post {{req.method}} {{req.path}} {{environ['PATH_INFO']}} {{resp.status}}\\n")
"""
    server = gunicorn(APP, config_text=hooks)
    assert httpx.get(server.url + "/plain").status_code == 200
    # The readiness probe's own hooks come first: wait for this request's post_request.
    wait_for(lambda: marks.exists() and "post GET /plain" in marks.read_text(), 5,
             what="post_request for /plain")
    lines = marks.read_text().splitlines()
    assert "pre GET /plain" in lines
    assert any(line.startswith("post GET /plain /plain 200") for line in lines), lines


def test_a_request_stuck_past_timeout_is_named_once_with_its_stack(
        gunicorn: Callable[..., GunicornProcess], tmp_path: Path) -> None:
    """One thread held past `timeout`: one WARNING names the request, its time and the
    thread's stack (where the app is stuck); later ticks do not repeat it, and the request
    still gets its answer once the app returns."""
    timeout = 2
    server = gunicorn(APP, settings={"threads": 1, "timeout": timeout})
    [pid] = server.worker_pids()
    entered, release = tmp_path / "entered", tmp_path / "release"
    target = f"{server.url}/sleep?s=30&entered={entered}&until={release}"
    marker = "WSGI app still running"
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        stuck = pool.submit(httpx.get, target, timeout=40)
        wait_for(entered.exists, 10, what="the request holding the only thread")
        wait_for(lambda: marker in server.logs(), 10, what="the stuck-request warning")
        warned_at = time.monotonic()
        # Two more ticks of the worker (its heartbeat, stamped up to one interval ahead)
        # pass before the app is let go: a repeated warning would be in the log by then.
        wait_for(lambda: heartbeat(pid) > warned_at + 3, 10, what="two more ticks")
        release.touch()
        assert stuck.result().status_code == 200
    logs = server.logs()
    assert logs.count(marker) == 1, logs
    line = next(line for line in logs.splitlines() if marker in line)
    assert "[WARNING]" in line and f"GET /sleep?s=30&entered={entered}" in line
    assert "timeout is 2 s" in line
    stack = logs[logs.index(marker):]
    # The app's frame, caught in its wait loop: at the sleep or at the file check.
    assert "in sleep_route" in stack
    assert "time.sleep(0.01)" in stack or "os.path.exists(q[\"until\"])" in stack, stack
    assert "[ERROR]" not in logs and "WORKER TIMEOUT" not in logs
