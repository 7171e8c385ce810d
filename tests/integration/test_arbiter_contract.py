"""The worker's contract with Gunicorn's arbiter, each clause checked against a real gunicorn.

Binds (TCP v4/v6, unix, several at once), heartbeat and timeout kills, parent death, SIGTERM
to the arbiter or to a worker, SIGINT/SIGQUIT, SIGUSR1 log reopening, max_requests recycling
without a lost request, worker_connections, boot failures and their exit codes, server hooks
and the ASGI lifespan. Apps: `tests/apps/contract.py`.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from gunicorn.config import KNOWN_SETTINGS
from gunicorn_process import GunicornProcess, pid_alive, wait_for
from raw_http import RawResponse, ResponseReader

APP = "apps.contract:app"
GUNICORN_SETTINGS = {setting.name for setting in KNOWN_SETTINGS}
_LISTENING = re.compile(r"Listening at: (\S+)")


# -- small client side --------------------------------------------------------------------------
def request_bytes(path: str, keep_alive: bool = False) -> bytes:
    connection = b"keep-alive" if keep_alive else b"close"
    return b"GET %s HTTP/1.1\r\nHost: contract\r\nConnection: %s\r\n\r\n" % (
        path.encode(), connection)


def get(server: GunicornProcess, path: str, timeout: float = 10.0) -> RawResponse:
    """One request on its own connection."""
    with server.connect(timeout) as s:
        s.sendall(request_bytes(path))
        return ResponseReader(s, timeout).read_response()


def get_pid(server: GunicornProcess) -> int:
    resp = get(server, "/pid")
    assert resp.status == 200, resp
    return int(resp.body)


def wait_replaced(server: GunicornProcess, old: int) -> None:
    """Wait until the arbiter has a new worker serving in place of `old`. (This also keeps
    the teardown's SIGTERM away from a worker that has not installed its handlers yet.)"""
    wait_for(lambda: [p for p in server.worker_pids() if p != old], timeout=10,
             what=f"a worker replacing {old}")
    assert get_pid(server) != old


def connect_to(address: str, timeout: float = 5.0) -> socket.socket:
    """A client socket to one address as Gunicorn logs it (http://h:p, http://[h]:p, unix:p)."""
    if address.startswith("unix:"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        target: Any = address[len("unix:"):]
    else:
        host, port = address.split("://", 1)[1].rsplit(":", 1)
        host = host.strip("[]")
        s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        target = (host, int(port))
    s.settimeout(timeout)
    try:
        s.connect(target)
    except OSError:
        s.close()
        raise
    return s


def markers(path: Path) -> list[str]:
    try:
        return path.read_text().splitlines()
    except FileNotFoundError:
        return []


def has_ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


def require_setting(name: str) -> None:
    if name not in GUNICORN_SETTINGS:
        pytest.skip(f"the installed gunicorn has no setting {name}")


def hooks_config(marker_file: Path) -> str:
    """Server hooks that each append `<hook> [details] <pid>` to `marker_file`."""
    return f'''
import os as _os

def _mark(line):
    with open({str(marker_file)!r}, "a") as f:
        f.write(f"{{line}} {{_os.getpid()}}\\n")

def post_worker_init(worker):
    _mark("post_worker_init")

def worker_int(worker):
    _mark("worker_int")

def worker_abort(worker):
    _mark("worker_abort")

def worker_exit(server, worker):
    _mark("worker_exit")

def pre_request(worker, req):
    _mark(f"pre_request {{req.method}} {{req.path}}")

def post_request(worker, req, environ, resp):
    status = str(getattr(resp, "status", None)).split()[0]
    _mark(f"post_request {{req.method}} {{req.path}} {{status}} {{type(environ).__name__}}")
'''


@pytest.fixture
def marker_file(tmp_path: Path) -> Path:
    return tmp_path / "markers"


@pytest.fixture
def hooked(gunicorn: Callable[..., GunicornProcess],
           marker_file: Path) -> Callable[..., GunicornProcess]:
    """Factory: a server of `apps.contract` whose hooks and app both write to `marker_file`."""
    def start(app: str = APP, **kwargs: Any) -> GunicornProcess:
        kwargs.setdefault("config_text", hooks_config(marker_file))
        kwargs.setdefault("env", {"GAW_TEST_MARKERS": str(marker_file)})
        return gunicorn(app, **kwargs)
    return start


# -- 1. binds -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def short_dir() -> Iterator[Path]:
    """A directory with a short path: a unix socket path must stay under 108 bytes."""
    path = Path(tempfile.mkdtemp(prefix="gaw-"))
    yield path
    for child in path.iterdir():
        child.unlink()
    path.rmdir()


@pytest.mark.parametrize("family", ["ipv4", "ipv6", "unix"])
def test_serves_each_kind_of_bind(family: str, worker_class: str, short_dir: Path,
                                  gunicorn: Callable[..., GunicornProcess]) -> None:
    if family == "ipv6" and not has_ipv6_loopback():
        pytest.skip("no IPv6 loopback on this machine")
    bind = {"ipv4": "127.0.0.1:0", "ipv6": "[::1]:0",
            "unix": f"unix:{short_dir}/{worker_class.replace('.', '_')}.sock"}[family]
    server = gunicorn(APP, bind=bind)
    pid = get_pid(server)
    assert pid in server.worker_pids()


def answers_pid(address: str) -> int | None:
    """The pid that answers GET /pid at `address`, or None if nothing answers yet."""
    try:
        with connect_to(address, timeout=2.0) as s:
            s.sendall(request_bytes("/pid"))
            resp = ResponseReader(s, 10.0).read_response()
    except (OSError, EOFError):
        return None
    assert resp.status == 200, resp
    return int(resp.body)


def test_serves_every_bound_socket(worker_class: str, short_dir: Path,
                                   gunicorn: Callable[..., GunicornProcess]) -> None:
    binds = ["127.0.0.1:0", "127.0.0.1:0",
             f"unix:{short_dir}/many-{worker_class.replace('.', '_')}.sock"]
    if has_ipv6_loopback():
        binds.append("[::1]:0")
    # Gunicorn logs every address on one "Listening at: a,b,c" line, which
    # GunicornProcess.wait_ready does not parse: wait here instead.
    server = gunicorn(APP, settings={"bind": binds}, wait=False)
    line = wait_for(lambda: _LISTENING.search(server.logs()), timeout=20,
                    what="gunicorn 'Listening at'")
    assert isinstance(line, re.Match)
    addresses = line.group(1).split(",")
    assert len(addresses) == len(binds), addresses
    pids = {address: wait_for(lambda a=address: answers_pid(a), timeout=20,
                              what=f"an answer at {address}") for address in addresses}
    assert len(set(pids.values())) == 1, pids
    assert list(pids.values())[0] in server.worker_pids()


# -- 2. heartbeat ----------------------------------------------------------------------------
def observe_same_worker(server: GunicornProcess, pid: int, seconds: float) -> None:
    """Watch for `seconds` that `pid` stays the only worker and no timeout is logged."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert "WORKER TIMEOUT" not in server.logs(), server.logs()
        assert server.worker_pids() == [pid], server.logs()
        time.sleep(0.25)  # an observation window: nothing to wait for, everything to watch


def test_idle_worker_outlives_the_timeout(worker_class: str,
                                          gunicorn: Callable[..., GunicornProcess]) -> None:
    server = gunicorn(APP, settings={"timeout": 2})
    pid = get_pid(server)
    observe_same_worker(server, pid, 6.0)
    assert get_pid(server) == pid


def test_busy_worker_outlives_the_timeout(worker_class: str,
                                          gunicorn: Callable[..., GunicornProcess]) -> None:
    server = gunicorn(APP, settings={"timeout": 2})
    pid = get_pid(server)
    clients = [server.connect(10.0) for _ in range(20)]
    try:
        for s in clients:
            s.sendall(request_bytes("/sleep?ms=3000"))
        answers = [ResponseReader(s, 10.0).read_response() for s in clients]
    finally:
        for s in clients:
            s.close()
    assert [(r.status, int(r.body)) for r in answers] == [(200, pid)] * 20
    assert "WORKER TIMEOUT" not in server.logs()
    assert server.worker_pids() == [pid]


@dataclass
class BlockedRun:
    """What happened when the app blocked the event loop of a worker with `timeout = 2`."""

    old_pid: int
    new_pid: int
    answered_by: int
    old_alive: bool
    logs: str
    marks: list[str] = field(default_factory=list)


def run_blocked(worker_class: str, marker_file: Path) -> BlockedRun:
    server = GunicornProcess(APP, worker_class, settings={"timeout": 2},
                             config_text=hooks_config(marker_file),
                             env={"GAW_TEST_MARKERS": str(marker_file)})
    try:
        try:
            server.start()
        except TimeoutError as exc:
            raise AssertionError(f"{exc}; gunicorn logged:\n{server.logs()}") from exc
        old = get_pid(server)
        with server.connect(15.0) as blocker:
            blocker.sendall(request_bytes("/block?s=10"))
            new = wait_for(lambda: [p for p in server.worker_pids() if p != old], timeout=15,
                           what="a replacement worker")
            answered_by = get_pid(server)
        return BlockedRun(old, new[0], answered_by, pid_alive(old), server.logs(),
                          markers(marker_file))
    finally:
        server.stop()


@pytest.fixture(scope="module")
def blocked_runs() -> dict[str, BlockedRun]:
    return {}


@pytest.fixture
def blocked(worker_class: str, blocked_runs: dict[str, BlockedRun],
            tmp_path: Path) -> BlockedRun:
    """One blocked-loop scenario per worker class, shared by the tests that read it."""
    if worker_class not in blocked_runs:
        blocked_runs[worker_class] = run_blocked(worker_class, tmp_path / "markers")
    return blocked_runs[worker_class]


def test_blocked_worker_is_killed_and_replaced(blocked: BlockedRun) -> None:
    assert "WORKER TIMEOUT" in blocked.logs
    assert not blocked.old_alive
    assert blocked.answered_by == blocked.new_pid != blocked.old_pid


def test_worker_abort_hook_runs_on_timeout(blocked: BlockedRun) -> None:
    assert f"worker_abort {blocked.old_pid}" in blocked.marks, blocked.marks


def test_a_timed_out_worker_logs_one_traceback(blocked: BlockedRun) -> None:
    """The app's frame where the loop was held, once: not again as asyncio's "Task
    exception was never retrieved" when the dying worker's loop closes."""
    assert blocked.logs.count("Traceback (most recent call last)") == 1, blocked.logs
    assert "never retrieved" not in blocked.logs, blocked.logs


# -- 3. parent death ------------------------------------------------------------------------
def test_worker_exits_when_the_arbiter_dies(worker_class: str,
                                            gunicorn: Callable[..., GunicornProcess]) -> None:
    server = gunicorn(APP)
    pid = get_pid(server)
    assert server.proc is not None
    os.kill(server.proc.pid, signal.SIGKILL)
    server.proc.wait(5)
    wait_for(lambda: not pid_alive(pid), timeout=5, what=f"orphaned worker {pid} exiting")


# -- 4./5. SIGTERM ---------------------------------------------------------------------------
@dataclass
class Connections:
    """An idle keep-alive connection and one with a /sleep request in flight."""

    idle: socket.socket
    busy: socket.socket

    def close(self) -> None:
        self.idle.close()
        self.busy.close()


def open_idle_and_busy(server: GunicornProcess, marker_file: Path, ms: int) -> Connections:
    idle = server.connect(15.0)
    idle.sendall(request_bytes("/", keep_alive=True))
    first = ResponseReader(idle, 10.0).read_response()
    assert first.status == 200
    busy = server.connect(15.0)
    busy.sendall(request_bytes(f"/sleep?ms={ms}"))
    wait_for(lambda: any(line.startswith(f"sleep {ms} ") for line in markers(marker_file)),
             what="the app running the in-flight request")
    return Connections(idle, busy)


def assert_graceful(conns: Connections) -> None:
    """The in-flight request completes; the idle keep-alive connection is closed cleanly."""
    resp = ResponseReader(conns.busy, 15.0).read_response()
    assert resp.status == 200, resp
    conns.idle.settimeout(15.0)
    try:
        rest = conns.idle.recv(1024)
    except ConnectionResetError as exc:
        raise AssertionError("the idle keep-alive connection was reset, not closed") from exc
    assert rest == b"", f"unexpected bytes on the idle connection: {rest!r}"


def refused(server: GunicornProcess) -> bool:
    try:
        connect_to(server.address, 1.0).close()
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
    return False


def test_sigterm_to_the_arbiter_is_graceful(worker_class: str, marker_file: Path,
                                            hooked: Callable[..., GunicornProcess]) -> None:
    graceful_timeout = 6
    server = hooked(settings={"keepalive": 30, "graceful_timeout": graceful_timeout})
    assert server.proc is not None
    conns = open_idle_and_busy(server, marker_file, 1500)
    try:
        started = time.monotonic()
        os.kill(server.proc.pid, signal.SIGTERM)
        wait_for(lambda: refused(server), timeout=5, what="new connections refused")
        assert_graceful(conns)
        code = server.proc.wait(graceful_timeout + 5)
    finally:
        conns.close()
    assert code == 0, server.logs()
    assert time.monotonic() - started <= graceful_timeout, "exit took longer than graceful_timeout"
    assert refused(server)


def test_sigterm_to_a_worker_is_graceful_and_it_is_replaced(
        worker_class: str, marker_file: Path, hooked: Callable[..., GunicornProcess]) -> None:
    server = hooked(settings={"keepalive": 30, "graceful_timeout": 6})
    old = get_pid(server)
    conns = open_idle_and_busy(server, marker_file, 1500)
    try:
        os.kill(old, signal.SIGTERM)
        assert_graceful(conns)
    finally:
        conns.close()
    wait_for(lambda: not pid_alive(old), timeout=10, what=f"worker {old} exiting")
    wait_replaced(server, old)
    assert server.proc is not None and server.proc.poll() is None, "the arbiter stopped"


# -- 6. SIGINT / SIGQUIT ---------------------------------------------------------------------
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGQUIT], ids=["SIGINT", "SIGQUIT"])
def test_quick_exit_on_sigint_and_sigquit(sig: signal.Signals, worker_class: str,
                                          marker_file: Path,
                                          hooked: Callable[..., GunicornProcess]) -> None:
    server = hooked()
    pid = get_pid(server)
    with server.connect(15.0) as busy:
        busy.sendall(request_bytes("/sleep?ms=10000"))
        wait_for(lambda: f"sleep 10000 {pid}" in markers(marker_file),
                 what="the app running the long request")
        os.kill(pid, sig)
        wait_for(lambda: not pid_alive(pid), timeout=2.0,
                 what=f"worker exit within 2 s of {sig.name}")
    assert f"worker_int {pid}" in markers(marker_file)
    wait_replaced(server, pid)


# -- 7. SIGUSR1 ------------------------------------------------------------------------------
def test_sigusr1_reopens_the_access_log(worker_class: str, tmp_path: Path,
                                        gunicorn: Callable[..., GunicornProcess]) -> None:
    access_log = tmp_path / "access.log"
    rotated = tmp_path / "access.log.1"
    server = gunicorn(APP, settings={"accesslog": str(access_log)})
    pid = get_pid(server)
    assert get(server, "/?tag=before").status == 200
    wait_for(lambda: access_log.exists() and "tag=before" in access_log.read_text(),
             what="the access log line before rotation")
    access_log.rename(rotated)
    os.kill(pid, signal.SIGUSR1)
    wait_for(access_log.exists, what="the access log reopened at its path")
    assert get(server, "/?tag=after").status == 200
    wait_for(lambda: "tag=after" in access_log.read_text(),
             what="the access log line after rotation in the new file")
    assert "tag=after" not in rotated.read_text()
    assert server.worker_pids() == [pid]


# -- 8. max_requests -------------------------------------------------------------------------
@dataclass
class Tally:
    """Per-client results: pids that answered, and failures with what happened."""

    pids: list[int] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def sequential_client(server: GunicornProcess, count: int, tally: Tally) -> None:
    for i in range(count):
        try:
            resp = get(server, "/pid")
        except (OSError, EOFError) as exc:
            tally.failures.append(f"request {i}: {exc!r}")
            continue
        if resp.status != 200:
            tally.failures.append(f"request {i}: status {resp.status}")
        else:
            tally.pids.append(int(resp.body))


def keep_alive_client(server: GunicornProcess, stop: threading.Event, tally: Tally) -> None:
    """Reuses its connection until the server announces `Connection: close`; a request that
    gets no answer on a connection the server had not announced closing is a lost one."""
    sock: socket.socket | None = None
    try:
        while not stop.is_set():
            try:
                if sock is None:
                    sock = server.connect(10.0)
                    reader = ResponseReader(sock, 10.0)
                sock.sendall(request_bytes("/pid", keep_alive=True))
                resp = reader.read_response()
            except (OSError, EOFError) as exc:
                tally.failures.append(f"keep-alive request {len(tally.pids) + 1}: {exc!r}")
                if sock is not None:
                    sock.close()
                sock = None
                continue
            if resp.status != 200:
                tally.failures.append(f"keep-alive request: status {resp.status}")
            else:
                tally.pids.append(int(resp.body))
            if (resp.header(b"connection") or b"").lower() == b"close":
                sock.close()
                sock = None
    finally:
        if sock is not None:
            sock.close()


def test_max_requests_recycles_without_losing_a_request(
        worker_class: str, gunicorn: Callable[..., GunicornProcess]) -> None:
    max_requests, jitter = 50, 5
    # A short graceful_timeout: a SIGTERM at teardown that lands on a worker still booting
    # is lost (Gunicorn's fork window), and the arbiter then waits out the whole timeout.
    server = gunicorn(APP, workers=2, settings={
        "max_requests": max_requests, "max_requests_jitter": jitter, "graceful_timeout": 3})
    sequential, kept = Tally(), Tally()
    stop = threading.Event()
    background = threading.Thread(target=keep_alive_client, args=(server, stop, kept))
    background.start()
    try:
        sequential_client(server, 300, sequential)
    finally:
        stop.set()
        background.join(30)
    assert not background.is_alive()
    assert sequential.failures == [] and kept.failures == []
    assert len(sequential.pids) == 300 and len(kept.pids) >= 20, len(kept.pids)
    served = Counter(sequential.pids + kept.pids)
    assert len(served) >= 2, served
    # One request per client may still be in flight when a worker reaches its limit.
    assert max(served.values()) <= max_requests + jitter + 2, served


# -- 9. worker_connections -------------------------------------------------------------------
def test_worker_connections_caps_open_connections(
        worker_class: str, gunicorn: Callable[..., GunicornProcess]) -> None:
    # Five requests the app is still answering: none of them may be closed for a sixth
    # (an idle keep-alive one would be: tests/integration/test_slot_attacks.py).
    server = gunicorn(APP, settings={"worker_connections": 5, "keepalive": 30})
    held = [server.connect(10.0) for _ in range(5)]
    extra = server.connect(10.0)
    try:
        for s in held:
            s.sendall(request_bytes("/sleep?ms=4000"))
        extra.sendall(request_bytes("/pid"))
        extra.settimeout(1.0)
        try:
            early: bytes | None = extra.recv(1)
        except TimeoutError:
            early = None
        assert early is None, f"a 6th connection got {early!r} while 5 were open"
        for s in held:
            assert ResponseReader(s, 10.0).read_response().status == 200
        assert ResponseReader(extra, 10.0).read_response().status == 200
    finally:
        extra.close()
        for s in held:
            s.close()


# -- 10. boot failures -------------------------------------------------------------------------
def test_app_import_error_stops_the_arbiter(worker_class: str,
                                            gunicorn: Callable[..., GunicornProcess]) -> None:
    server = gunicorn("apps.broken_import:app", wait=False)
    assert server.proc is not None
    code = server.proc.wait(30)
    assert code in (3, 4), server.logs()


def test_lifespan_startup_failure_stops_the_arbiter(
        worker_class: str, gunicorn: Callable[..., GunicornProcess]) -> None:
    server = gunicorn("apps.contract:startup_failing_app", wait=False)
    assert server.proc is not None
    code = server.proc.wait(30)
    assert code == 3, server.logs()


# -- 11. hooks ---------------------------------------------------------------------------------
def test_post_worker_init_and_request_hooks(worker_class: str, marker_file: Path,
                                            hooked: Callable[..., GunicornProcess]) -> None:
    server = hooked()
    pid = get_pid(server)
    assert f"post_worker_init {pid}" in markers(marker_file)
    assert get(server, "/?hooked=1").status == 200
    wait_for(lambda: f"post_request GET / 200 dict {pid}" in markers(marker_file),
             what="post_request with req, environ (a dict) and resp", timeout=5)
    assert f"pre_request GET / {pid}" in markers(marker_file)


def test_worker_exit_hook(worker_class: str, marker_file: Path,
                          hooked: Callable[..., GunicornProcess]) -> None:
    server = hooked()
    pid = get_pid(server)
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: f"worker_exit {pid}" in markers(marker_file), timeout=10,
             what="worker_exit hook")
    wait_replaced(server, pid)


# -- 12. lifespan ------------------------------------------------------------------------------
def test_lifespan_startup_finishes_before_the_first_request(
        worker_class: str, gunicorn: Callable[..., GunicornProcess]) -> None:
    server = gunicorn(APP, wait=False, env={"GAW_TEST_STARTUP_MS": "1000"})

    def listening() -> str | None:
        found = _LISTENING.search(server.logs())
        return found.group(1) if found else None

    server.address = str(wait_for(listening, timeout=20, what="gunicorn 'Listening at'"))
    with server.connect(20.0) as s:  # queued in the backlog while the worker starts up
        s.sendall(request_bytes("/state"))
        resp = ResponseReader(s, 20.0).read_response()
    assert resp.status == 200
    assert json.loads(resp.body) == {"startup_done": True, "state_visible": True}


def test_lifespan_shutdown_runs_on_sigterm(worker_class: str, marker_file: Path,
                                           hooked: Callable[..., GunicornProcess]) -> None:
    server = hooked()
    pid = get_pid(server)
    assert server.proc is not None
    os.kill(server.proc.pid, signal.SIGTERM)
    assert server.proc.wait(15) == 0
    lines = markers(marker_file)
    assert f"startup {pid}" in lines and f"shutdown {pid}" in lines, lines
    assert lines.index(f"startup {pid}") < lines.index(f"shutdown {pid}")


def test_lifespan_off_sends_no_lifespan_scope(worker_class: str, marker_file: Path,
                                              hooked: Callable[..., GunicornProcess]) -> None:
    require_setting("asgi_lifespan")
    server = hooked(settings={"asgi_lifespan": "off"})
    resp = get(server, "/state")
    assert json.loads(resp.body) == {"startup_done": False, "state_visible": False}
    assert server.proc is not None
    os.kill(server.proc.pid, signal.SIGTERM)
    assert server.proc.wait(15) == 0
    assert not [line for line in markers(marker_file) if line.startswith("lifespan ")]


def test_lifespan_auto_serves_an_app_that_raises_on_lifespan(
        worker_class: str, marker_file: Path, hooked: Callable[..., GunicornProcess]) -> None:
    require_setting("asgi_lifespan")
    server = hooked("apps.contract:lifespan_raising_app", settings={"asgi_lifespan": "auto"})
    resp = get(server, "/")
    assert (resp.status, resp.body) == (200, b"ok")
    pid = get_pid(server)
    assert f"lifespan {pid}" in markers(marker_file), "auto mode never offered a lifespan scope"
