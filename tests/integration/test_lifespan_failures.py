"""A failed ASGI lifespan startup stops Gunicorn with its traceback printed once; an app that
refuses the lifespan scope itself is served, with one INFO line saying so.

Apps: `tests/apps/lifespan_apps.py`. Each test runs a real gunicorn for each worker class.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from gunicorn_process import GunicornProcess

TRACEBACK = "Traceback (most recent call last)"
# Gunicorn's error log line: "[date] [pid] [LEVEL] message".
_RECORD = re.compile(r"^\[[^\]]+\] \[(\d+)\] \[([A-Z]+)\] (.*)$", re.MULTILINE)


def exit_code(server: GunicornProcess, timeout: float = 30.0) -> int:
    assert server.proc is not None
    return server.proc.wait(timeout)


def records(logs: str, level: str) -> list[tuple[int, str]]:
    """(pid, message) of each log record at `level`."""
    return [(int(pid), message) for pid, lvl, message in _RECORD.findall(logs) if lvl == level]


def test_auto_startup_that_raises_after_receiving_stops_with_one_traceback(
        worker_class: str, gunicorn: Callable[..., GunicornProcess]) -> None:
    server = gunicorn("apps.lifespan_apps:startup_raising_app", wait=False,
                      settings={"asgi_lifespan": "auto"})
    assert exit_code(server) == 3, server.logs()
    logs = server.logs()
    assert logs.count(TRACEBACK) == 1, logs
    assert logs.count('raise RuntimeError("STARTUP-BOOM') == 1, logs  # the app's own frame
    failed = [m for _, m in records(logs, "ERROR") if "lifespan startup failed" in m]
    assert len(failed) == 1 and "STARTUP-BOOM" in failed[0], logs


def test_two_workers_failing_together_halt_the_arbiter_with_exit_3(
        worker_class: str, gunicorn: Callable[..., GunicornProcess]) -> None:
    """Each worker runs its own startup, so both fail. Gunicorn's arbiter, halting for the
    first, would crash (exit 1, its own traceback) on reaping a second exit 3: the second
    says its one line and waits to be stopped. The traceback is printed once."""
    server = gunicorn("apps.lifespan_apps:startup_raising_app", wait=False, workers=2)
    assert exit_code(server) == 3, server.logs()
    logs = server.logs()
    assert "HaltServer" not in logs, logs
    failed = [pid for pid, m in records(logs, "ERROR") if "lifespan startup failed" in m]
    assert 1 <= len(failed) <= 2 and len(set(failed)) == len(failed), logs
    assert logs.count(TRACEBACK) == 1, logs


def test_starlette_startup_failure_prints_its_traceback_once(
        worker_class: str, gunicorn: Callable[..., GunicornProcess]) -> None:
    server = gunicorn("apps.lifespan_apps:starlette_failing_app", wait=False)
    assert exit_code(server) == 3, server.logs()
    logs = server.logs()
    assert logs.count('raise RuntimeError("STARTUP-BOOM') == 1, logs
    failed = [m for _, m in records(logs, "ERROR") if "lifespan startup failed" in m]
    assert len(failed) == 1 and "STARTUP-BOOM" in failed[0], logs


def test_auto_serves_an_app_that_refuses_the_scope_with_one_info_line(
        worker_class: str, gunicorn: Callable[..., GunicornProcess]) -> None:
    server = gunicorn("apps.lifespan_apps:scope_refusing_app",
                      settings={"asgi_lifespan": "auto"})
    with server.connect() as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        assert s.recv(4096).endswith(b"\r\n\r\nok")
    logs = server.logs()
    said = [(level, m) for _, level, m in _RECORD.findall(logs) if "REFUSED-BOOM" in m]
    assert len(said) == 1 and said[0][0] == "INFO", logs
    assert "lifespan" in said[0][1] and TRACEBACK not in logs, logs
    assert not records(logs, "ERROR") and not records(logs, "WARNING"), logs


def test_lifespan_on_stops_for_an_app_that_refuses_the_scope(
        worker_class: str, gunicorn: Callable[..., GunicornProcess]) -> None:
    server = gunicorn("apps.lifespan_apps:scope_refusing_app", wait=False,
                      settings={"asgi_lifespan": "on"})
    assert exit_code(server) == 3, server.logs()
    logs = server.logs()
    failed = [m for _, m in records(logs, "ERROR") if "lifespan startup failed" in m]
    assert len(failed) == 1 and "REFUSED-BOOM" in failed[0], logs
    assert logs.count(TRACEBACK) <= 1, logs
