"""Faults: a worker that blocks its loop is replaced while the others serve; an app that breaks
the protocol gets a 500 or a closed connection, one ERROR line, and the worker lives on; a
hanging lifespan shutdown is cut off at `graceful_timeout`; a full disk or a closed stderr
does not kill the worker. Apps: `tests/apps/reliability.py`.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from apps.reliability import ASGI_FAULTS, WSGI_FAULTS
from conftest import WORKER_CLASSES
from gunicorn_process import (
    REPO,
    TESTS,
    GunicornProcess,
    error_log,
    pid_alive,
    serving,
    wait_for,
)
from raw_http import RawResponse, ResponseReader

ASGI_APP = "apps.reliability:app"
WSGI_APP = "apps.reliability:wsgi_app"


def connect(server: GunicornProcess, timeout: float) -> socket.socket:
    """`server.connect`, but a socket that fails to connect is closed, not leaked."""
    if server.unix_path:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.settimeout(timeout)
            s.connect(server.unix_path)
        except OSError:
            s.close()
            raise
        return s
    return socket.create_connection((server.host, server.port), timeout=timeout)


def get(server: GunicornProcess, target: str, timeout: float = 10.0) -> RawResponse:
    with connect(server, timeout) as s:
        s.sendall(b"GET %s HTTP/1.1\r\nHost: faults\r\nConnection: close\r\n\r\n"
                  % target.encode())
        return ResponseReader(s, timeout).read_response()


def get_pid(server: GunicornProcess) -> int:
    resp = get(server, "/pid")
    assert resp.status == 200, resp
    return int(resp.body)


def error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if " [ERROR] " in line or " [CRITICAL] " in line]


# -- a blocked loop ------------------------------------------------------------------------------
def block_a_worker(server: GunicornProcess, markers: Path) -> tuple[socket.socket, int]:
    """A connection whose request blocks the event loop of the worker that takes it; its pid."""
    blocker = connect(server, 30.0)
    blocker.sendall(b"GET /block?s=60 HTTP/1.1\r\nHost: faults\r\n\r\n")
    line = wait_for(lambda: markers.exists() and markers.read_text().strip(), timeout=10,
                    what="the app blocking its loop")
    return blocker, int(str(line).split()[-1])


def test_blocked_worker_is_replaced_while_the_others_serve(
        gunicorn: Callable[..., GunicornProcess], tmp_path: Path) -> None:
    markers = tmp_path / "markers"
    server = gunicorn(ASGI_APP, workers=2, settings={"timeout": 2},
                      env={"GAW_TEST_MARKERS": str(markers)})
    blocker, blocked = block_a_worker(server, markers)
    timed_out = f"WORKER TIMEOUT (pid:{blocked})"
    answers: list[int] = []
    failures: list[str] = []
    with blocker:
        # Until the arbiter gives up on the blocked worker, the other one answers everything.
        # (What happens from the kill on is test_requests_in_the_backlog_survive_a_timeout.)
        while timed_out not in server.logs():
            try:
                pid = get_pid(server)
            except (OSError, EOFError) as exc:
                if timed_out not in server.logs():
                    failures.append(repr(exc))
                continue
            if timed_out not in server.logs():
                answers.append(pid)
            assert len(answers) < 100_000, "the arbiter never killed the blocked worker"
    assert failures == []
    assert answers and blocked not in answers, answers
    wait_for(lambda: len(server.worker_pids()) == 2 and blocked not in server.worker_pids(),
             timeout=30, what="the blocked worker replaced")
    # It logs "Worker exiting" before its interpreter has finished shutting down; the arbiter
    # reaps it (or SIGKILLs it one `timeout` later), so it must be gone within a few seconds.
    wait_for(lambda: not pid_alive(blocked), timeout=10, what="the blocked worker gone")
    assert get(server, "/").status == 200


def test_requests_in_the_backlog_survive_a_timeout(
        gunicorn: Callable[..., GunicornProcess], tmp_path: Path, worker_class: str,
        request: pytest.FixtureRequest) -> None:
    """Clients that queued while the only worker was blocked are served once it is gone."""
    markers = tmp_path / "markers"
    server = gunicorn(ASGI_APP, settings={"timeout": 2}, env={"GAW_TEST_MARKERS": str(markers)})
    blocker, blocked = block_a_worker(server, markers)
    waiting = [connect(server, 30.0) for _ in range(10)]  # queued: nobody accepts them yet
    try:
        for i, s in enumerate(waiting):
            s.sendall(b"GET /r?id=%d HTTP/1.1\r\nHost: faults\r\nConnection: close\r\n\r\n" % i)
        outcomes = []
        for s in waiting:
            try:
                resp = ResponseReader(s, 30.0).read_response()
                outcomes.append(f"{resp.status} {resp.body.decode(errors='replace')}")
            except (OSError, EOFError) as exc:
                outcomes.append(repr(exc))
    finally:
        blocker.close()
        for s in waiting:
            s.close()
    assert f"WORKER TIMEOUT (pid:{blocked})" in server.logs()
    assert [o.rsplit(" ", 2)[0] for o in outcomes] == [f"200 {i}" for i in range(len(waiting))], \
        outcomes


# -- apps that break the protocol ----------------------------------------------------------------
@pytest.fixture(scope="module", params=WORKER_CLASSES)
def asgi_server(request: pytest.FixtureRequest) -> Iterator[GunicornProcess]:
    yield from serving(GunicornProcess(ASGI_APP, request.param))


@pytest.fixture(scope="module", params=WORKER_CLASSES)
def wsgi_server(request: pytest.FixtureRequest) -> Iterator[GunicornProcess]:
    yield from serving(GunicornProcess(WSGI_APP, request.param))


def assert_fault_handled(server: GunicornProcess, fault: str, expected: int | None) -> None:
    """The client gets `expected` (None: a cut response), one ERROR line naming the request
    is logged, and the same worker serves on."""
    pid = get_pid(server)
    mark = len(error_log(server))
    try:
        status: int | None = get(server, f"/fault/{fault}").status
    except EOFError:
        status = None  # the response was cut: the connection closed under it
    assert status == expected
    wait_for(lambda: error_lines(error_log(server)[mark:]), timeout=10,
             what="the fault in the error log")
    assert get_pid(server) == pid  # one more round trip: anything else logged is in by now
    logged = error_log(server)[mark:]
    assert len(error_lines(logged)) == 1, logged
    assert f"/fault/{fault}" in error_lines(logged)[0], logged
    assert server.worker_pids() == [pid]


@pytest.mark.parametrize("fault", ASGI_FAULTS)
def test_broken_asgi_app_gets_500_or_a_close_and_one_error_line(
        asgi_server: GunicornProcess, fault: str) -> None:
    assert_fault_handled(asgi_server, fault, ASGI_FAULTS[fault][1])


@pytest.mark.parametrize("fault", WSGI_FAULTS)
def test_broken_wsgi_app_gets_500_or_a_close_and_one_error_line(
        wsgi_server: GunicornProcess, fault: str) -> None:
    assert_fault_handled(wsgi_server, fault, WSGI_FAULTS[fault][1])


def test_app_returning_after_a_disconnect_logs_no_error(
        gunicorn: Callable[..., GunicornProcess], tmp_path: Path) -> None:
    markers = tmp_path / "markers"
    started = tmp_path / "started"
    server = gunicorn(ASGI_APP, env={"GAW_TEST_MARKERS": str(markers),
                                     "GAW_TEST_STARTED": str(started)})
    mark = len(error_log(server))
    with connect(server, 10.0) as s:
        s.sendall(b"POST /r?id=gone HTTP/1.1\r\nHost: faults\r\nContent-Length: 1000\r\n\r\n"
                  b"only ten b")
        wait_for(lambda: started.exists() and "gone" in started.read_text().split(),
                 timeout=10, what="the app reading the body")
    wait_for(lambda: markers.exists() and "disconnected gone" in markers.read_text(),
             timeout=10, what="the app seeing the disconnect")
    assert get(server, "/").status == 200
    assert error_lines(error_log(server)[mark:]) == []


# -- lifespan shutdown that never ends -----------------------------------------------------------
def test_hanging_lifespan_shutdown_is_cut_off_at_graceful_timeout(
        gunicorn: Callable[..., GunicornProcess], tmp_path: Path) -> None:
    markers = tmp_path / "markers"
    server = gunicorn("apps.reliability:hanging_shutdown_app",
                      settings={"graceful_timeout": 3},
                      env={"GAW_TEST_MARKERS": str(markers)})
    pid = get_pid(server)
    assert server.proc is not None
    os.kill(server.proc.pid, signal.SIGTERM)
    code = server.proc.wait(30)
    logs = server.logs()
    assert f"shutdown {pid}" in markers.read_text()
    assert "lifespan shutdown did not finish" in logs, logs
    # The worker ended itself: the arbiter did not have to kill it.
    assert "SIGKILL" not in logs and code == 0, logs
    assert not pid_alive(pid)


# -- logs that cannot be written -----------------------------------------------------------------
@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A directory with a short path, for a unix socket (under 108 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="gaw-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def exercise(server: GunicornProcess, pid: int) -> None:
    """Requests that log (access lines, ERROR lines) all answered by the same worker."""
    for fault in ("raise", "noresponse"):
        assert get(server, f"/fault/{fault}").status == 500
    for i in range(50):
        assert get(server, f"/r?id={i}").status == 200
    assert get_pid(server) == pid
    os.kill(pid, signal.SIGUSR1)  # reopen the log files
    assert get_pid(server) == pid


def test_logs_on_a_full_device_do_not_kill_the_worker(
        gunicorn: Callable[..., GunicornProcess], short_dir: Path) -> None:
    """Error and access log on /dev/full: every write fails with ENOSPC."""
    sock = short_dir / "s.sock"
    server = gunicorn(ASGI_APP, bind=f"unix:{sock}", wait=False,
                      settings={"errorlog": "/dev/full", "accesslog": "/dev/full",
                                "loglevel": "debug"})
    server.address = f"unix:{sock}"  # nothing can be read from the log: ask the socket

    def answering_pid() -> int | None:
        try:
            return get_pid(server)
        except (OSError, EOFError):
            return None
    pid = int(str(wait_for(answering_pid, timeout=30, what="the worker answering")))
    exercise(server, pid)
    assert pid_alive(pid)


def read_until(stream: int, pattern: re.Pattern[str], seen: list[str], timeout: float) -> str:
    """Read `stream` (a pipe fd) until `pattern` matches what was read; the match's group 1."""
    deadline = time.monotonic() + timeout
    while True:
        found = pattern.search("".join(seen))
        if found:
            return found.group(1)
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"{pattern.pattern} not seen within {timeout} s: {seen}")
        ready, _, _ = select.select([stream], [], [], left)
        if ready:
            data = os.read(stream, 65536)
            if not data:
                raise AssertionError(f"gunicorn closed its output: {''.join(seen)}")
            seen.append(data.decode(errors="replace"))


def test_closed_stderr_does_not_kill_the_worker(worker_class: str) -> None:
    """Error and access log on stderr, a pipe whose reader goes away after boot (EPIPE)."""
    server = GunicornProcess(ASGI_APP, worker_class,
                             settings={"errorlog": "-", "accesslog": "-"})
    conf = server.write_config()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(TESTS)]),
               PYTHONUNBUFFERED="1")
    server.proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", str(conf), ASGI_APP], cwd=str(server.dir),
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    pid = 0
    try:
        assert server.proc.stdout is not None
        seen: list[str] = []
        fd = server.proc.stdout.fileno()
        server.address = read_until(fd, re.compile(r"Listening at: (\S+)"), seen, 30)
        pid = int(read_until(fd, re.compile(r"Booting worker with pid: (\d+)"), seen, 30))
        wait_for(lambda: get_pid(server) == pid if _answers(server) else False, timeout=30,
                 what="the worker answering")
        server.proc.stdout.close()  # from now on every log write fails with EPIPE
        exercise(server, pid)
        assert pid_alive(pid)
        assert server.proc.poll() is None, "the arbiter died"
    finally:
        server.stop()
        if pid and pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _answers(server: GunicornProcess) -> bool:
    try:
        return get(server, "/").status == 200
    except (OSError, EOFError):
        return False
