"""Server hooks with Gunicorn's documented arguments, `--reload`, `--check-config`,
`--print-config`, `preload_app`, and our options refused at boot, each against a real
gunicorn, for ASGI and WSGI apps.

`test_arbiter_contract.py` already shows that each hook runs at its moment (ASGI); here
the hooks record what they were given (types and attributes) as JSON lines, for both kinds
of app, and `worker_abort` runs on a direct SIGABRT too.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from gunicorn.config import KNOWN_SETTINGS
from gunicorn_process import REPO, TESTS, GunicornProcess, pid_alive, wait_for

GUNICORN_SETTINGS = {setting.name for setting in KNOWN_SETTINGS}
# One app of each kind, the path the test requests, and the body it answers.
APPS = {
    "asgi": ("apps.contract:app", "/", "ok"),
    "wsgi": ("apps.wsgi_apps:app", "/plain", "plain body\n"),
}


def hooks_config(records: Path) -> str:
    """Every worker-side hook appends one JSON line describing its arguments to `records`;
    `when_ready` (in the arbiter) notes whether the app module was already imported there."""
    return f'''
import json as _json
import os as _os
import sys as _sys

def _record(event, **fields):
    with open({str(records)!r}, "a") as f:
        f.write(_json.dumps({{"event": event, "pid": _os.getpid(), **fields}}) + "\\n")

def _worker(worker):
    return {{"classes": [c.__name__ for c in type(worker).__mro__],
             "pid": worker.pid, "ppid": worker.ppid, "has_cfg": worker.cfg is not None,
             "has_log": worker.log is not None, "age": worker.age}}

def when_ready(server):
    _record("when_ready", preloaded=any(m in _sys.modules for m in
                                         ("apps.contract", "apps.wsgi_apps")))

def post_worker_init(worker):
    _record("post_worker_init", worker=_worker(worker))

def worker_int(worker):
    _record("worker_int", worker=_worker(worker))

def worker_abort(worker):
    _record("worker_abort", worker=_worker(worker))

def worker_exit(server, worker):
    _record("worker_exit", server=type(server).__module__ + "." + type(server).__name__,
            server_pid=server.pid, worker=_worker(worker))

def pre_request(worker, req):
    _record("pre_request", worker=_worker(worker), method=req.method, path=req.path,
            uri=req.uri, query=req.query, version=list(req.version), scheme=req.scheme,
            headers=[list(h) for h in req.headers])

def post_request(worker, req, environ, resp):
    _record("post_request", worker=_worker(worker), method=req.method, path=req.path,
            environ_type=type(environ).__name__,
            environ={{k: environ.get(k) for k in ("REQUEST_METHOD", "PATH_INFO",
                                                  "QUERY_STRING", "SERVER_PROTOCOL")}},
            status=str(resp.status), status_code=resp.status_code, sent=resp.sent,
            response_headers=[list(h) for h in resp.headers])
'''


def read_records(path: Path) -> list[dict[str, Any]]:
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line]
    except FileNotFoundError:
        return []


def records_of(records: Path, event: str, pid: int | None = None,
               **match: object) -> list[dict[str, Any]]:
    return [r for r in read_records(records)
            if r["event"] == event and (pid is None or r["pid"] == pid)
            and all(r.get(k) == v for k, v in match.items())]


def wait_record(records: Path, event: str, pid: int | None = None, timeout: float = 10.0,
                **match: object) -> dict[str, Any]:
    """The last record of `event` (by `pid`, with fields equal to `match`), waited for.
    (The harness's readiness probe, GET /__ready, also passes through the request hooks.)"""
    found = wait_for(lambda: records_of(records, event, pid, **match), timeout,
                     what=f"the {event} hook{'' if pid is None else f' of {pid}'} {match}")
    assert isinstance(found, list)
    return found[-1]


def assert_is_our_worker(described: dict[str, Any], worker_class: str, pid: int) -> None:
    """The hook got the worker object itself: our class, Gunicorn's Worker attributes."""
    assert described["classes"][0] == worker_class.rsplit(".", 1)[1], described
    assert "AsyncWorkerBase" in described["classes"] and "Worker" in described["classes"]
    assert described["pid"] == pid and described["has_cfg"] and described["has_log"]


@pytest.fixture(params=sorted(APPS))
def app_kind(request: pytest.FixtureRequest) -> str:
    return request.param


# -- hooks ---------------------------------------------------------------------------------
def test_hooks_get_gunicorns_documented_arguments(
        app_kind: str, worker_class: str, tmp_path: Path,
        gunicorn: Callable[..., GunicornProcess]) -> None:
    app, path, body = APPS[app_kind]
    records = tmp_path / "records"
    server = gunicorn(app, config_text=hooks_config(records))
    [pid] = server.worker_pids()
    assert server.proc is not None
    assert_is_our_worker(wait_record(records, "post_worker_init", pid)["worker"],
                         worker_class, pid)

    resp = httpx.get(f"{server.url}{path}?x=1&y=two", headers={"X-Probe": "yes"}, timeout=10)
    assert (resp.status_code, resp.text) == (200, body)
    pre = wait_record(records, "pre_request", pid, path=path)
    post = wait_record(records, "post_request", pid, path=path)
    assert_is_our_worker(pre["worker"], worker_class, pid)
    assert_is_our_worker(post["worker"], worker_class, pid)
    assert (pre["method"], pre["path"], pre["query"]) == ("GET", path, "x=1&y=two")
    assert pre["uri"] == f"{path}?x=1&y=two" and pre["version"] == [1, 1]
    assert pre["scheme"] == "http"
    assert ["X-PROBE", "yes"] in pre["headers"], pre["headers"]  # Gunicorn's upper-case names
    assert (post["method"], post["path"]) == ("GET", path)
    assert post["environ_type"] == "dict"
    assert post["environ"] == {"REQUEST_METHOD": "GET", "PATH_INFO": path,
                               "QUERY_STRING": "x=1&y=two", "SERVER_PROTOCOL": "HTTP/1.1"}
    assert post["status"] == "200 OK" and post["status_code"] == 200  # as Gunicorn gives it
    assert post["sent"] >= len(body)
    assert any(name.lower() == "content-length" for name, _ in post["response_headers"])

    os.kill(pid, signal.SIGQUIT)  # a quick exit: worker_int, then worker_exit
    assert_is_our_worker(wait_record(records, "worker_int", pid)["worker"], worker_class, pid)
    exited = wait_record(records, "worker_exit", pid)
    assert exited["server"] == "gunicorn.arbiter.Arbiter"
    assert exited["server_pid"] == server.proc.pid
    assert_is_our_worker(exited["worker"], worker_class, pid)
    wait_for(lambda: [p for p in server.worker_pids() if p != pid], 15,
             what="a worker replacing the one that quit")


def test_worker_abort_runs_on_sigabrt(app_kind: str, worker_class: str, tmp_path: Path,
                                      gunicorn: Callable[..., GunicornProcess]) -> None:
    """What the arbiter sends a worker that missed its heartbeat, sent here directly: for a
    WSGI app too, whose threads can never block the loop into a timeout."""
    app, path, body = APPS[app_kind]
    records = tmp_path / "records"
    server = gunicorn(app, config_text=hooks_config(records))
    [pid] = server.worker_pids()
    wait_record(records, "post_worker_init", pid)
    os.kill(pid, signal.SIGABRT)
    assert_is_our_worker(wait_record(records, "worker_abort", pid)["worker"], worker_class, pid)
    wait_for(lambda: not pid_alive(pid), 10, what=f"worker {pid} exiting after SIGABRT")
    new = wait_for(lambda: [p for p in server.worker_pids() if p != pid], 15,
                   what="a replacement worker")
    assert isinstance(new, list)
    wait_record(records, "post_worker_init", new[0], timeout=15)
    assert httpx.get(server.url + path, timeout=10).text == body


SLOW_WORKER_EXIT = """
import os as _os
import time as _time

def worker_exit(server, worker):
    _record("worker_exit_started")
    deadline = _time.monotonic() + 10
    while not _os.path.exists({release!r}) and _time.monotonic() < deadline:
        _time.sleep(0.01)  # a hook with slow work of its own, released by the test
    _record("worker_exit_finished")
"""


def test_a_second_sigterm_does_not_cut_worker_exit_short(
        worker_class: str, tmp_path: Path, gunicorn: Callable[..., GunicornProcess]) -> None:
    """The arbiter sends SIGTERM again on every tick to a worker it retires (TTOU, SIGHUP)
    until it is gone; as in Gunicorn's own workers, one arriving while the worker exits
    must not kill it before `worker_exit` has run."""
    records = tmp_path / "records"
    release = tmp_path / "release"
    config = hooks_config(records) + SLOW_WORKER_EXIT.format(release=str(release))
    server = gunicorn(APPS["asgi"][0], config_text=config)
    [pid] = server.worker_pids()
    os.kill(pid, signal.SIGTERM)
    wait_record(records, "worker_exit_started", pid)
    os.kill(pid, signal.SIGTERM)
    release.touch()
    wait_for(lambda: not pid_alive(pid), 15, what=f"worker {pid} exiting")
    assert records_of(records, "worker_exit_finished", pid), server.logs()
    assert "was sent SIGTERM" not in server.logs()


# -- --reload ------------------------------------------------------------------------------
ASGI_RELOAD_APP = '''
VERSION = {version!r}


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            kind = message["type"].rsplit(".", 1)[1]
            await send({{"type": f"lifespan.{{kind}}.complete"}})
            if kind == "shutdown":
                return
    body = VERSION.encode()
    await send({{"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())]}})
    await send({{"type": "http.response.body", "body": body}})
'''

WSGI_RELOAD_APP = '''
VERSION = {version!r}


def app(environ, start_response):
    body = VERSION.encode()
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]
'''


def write_app(path: Path, template: str, version: str) -> None:
    path.write_text(template.format(version=version))
    # A clearly newer mtime: the polling reloader compares mtimes, and an import must not
    # take a stale .pyc written within the same second.
    stat = path.stat()
    os.utime(path, (stat.st_atime + 5, stat.st_mtime + 5))


def body_or_none(url: str) -> str | None:
    try:
        return httpx.get(url, timeout=5).text
    except httpx.HTTPError:  # the moment between the old worker and the new one
        return None


def test_reload_restarts_the_worker_on_a_code_change(
        app_kind: str, worker_class: str, tmp_path: Path,
        gunicorn: Callable[..., GunicornProcess]) -> None:
    module = f"reload_{app_kind}_app"
    source = tmp_path / f"{module}.py"
    template = ASGI_RELOAD_APP if app_kind == "asgi" else WSGI_RELOAD_APP
    write_app(source, template, "first")
    records = tmp_path / "records"
    server = gunicorn(f"{module}:app", config_text=hooks_config(records),
                      settings={"reload": True, "pythonpath": str(tmp_path)},
                      env={"PYTHONDONTWRITEBYTECODE": "1"})
    [old] = server.worker_pids()
    assert body_or_none(server.url) == "first"
    write_app(source, template, "second, longer")

    touched = [time.monotonic()]

    def reloaded() -> bool:
        if body_or_none(server.url) == "second, longer":
            return True
        # Gunicorn's polling reloader takes a file's first mtime it sees for its own: if
        # its first look at the app's module came after the change, only a later change is
        # one to it. Touch the file (once a second, its poll) until the new code answers.
        if time.monotonic() - touched[0] >= 1.0:
            os.utime(source)
            touched[0] = time.monotonic()
        return False

    wait_for(reloaded, 30, interval=0.05, what="the new code answering after --reload")
    assert "Worker reloading" in server.logs()
    assert old not in server.worker_pids()
    assert records_of(records, "worker_int", old), "the reloader calls worker_int"


# -- --check-config, --print-config --------------------------------------------------------
def run_gunicorn_command(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(TESTS), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", "gunicorn", *args], cwd=str(cwd), env=env,
                          capture_output=True, text=True, timeout=60)


CONFIGURED = '''
from gaw import {name}

worker_class = {name}.configure(lifespan="off", server_header="probe")
'''


@pytest.mark.parametrize("app_kind_name", sorted(APPS))
@pytest.mark.parametrize("how", ["configure", "name"])
def test_check_config_accepts_our_classes(worker_class: str, tmp_path: Path, how: str,
                                          app_kind_name: str) -> None:
    name = worker_class.rsplit(".", 1)[1]
    conf = tmp_path / "gunicorn.conf.py"
    conf.write_text(CONFIGURED.format(name=name) if how == "configure"
                    else f"worker_class = {worker_class!r}\n")
    app = APPS[app_kind_name][0]
    done = run_gunicorn_command(["--check-config", "-c", str(conf), app], tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    broken = run_gunicorn_command(["--check-config", "-c", str(conf), "apps.missing:app"],
                                  tmp_path)
    assert broken.returncode != 0, "check-config passed an app that cannot be imported"


def print_config_value(output: str, setting: str) -> str:
    for line in output.splitlines():
        name, sep, value = line.partition("=")
        if sep and name.strip() == setting:
            return value.strip()
    raise AssertionError(f"{setting} not in --print-config output:\n{output}")


def test_print_config_shows_our_class(worker_class: str, tmp_path: Path) -> None:
    name = worker_class.rsplit(".", 1)[1]
    conf = tmp_path / "gunicorn.conf.py"
    conf.write_text(CONFIGURED.format(name=name) + "keepalive = 9\n")
    done = run_gunicorn_command(["--print-config", "-c", str(conf), APPS["asgi"][0]], tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    # Gunicorn prints a class value as <QualifiedName()>.
    assert name in print_config_value(done.stdout, "worker_class")
    assert print_config_value(done.stdout, "keepalive") == "9"
    by_name = run_gunicorn_command(["--print-config", "-k", worker_class, APPS["wsgi"][0]],
                                   tmp_path)
    assert by_name.returncode == 0, by_name.stdout + by_name.stderr
    assert print_config_value(by_name.stdout, "worker_class") == worker_class


# -- preload_app ---------------------------------------------------------------------------
def test_preload_app_serves_with_the_loop_made_after_fork(
        app_kind: str, worker_class: str, tmp_path: Path,
        gunicorn: Callable[..., GunicornProcess]) -> None:
    app, path, body = APPS[app_kind]
    records = tmp_path / "records"
    markers = tmp_path / "markers"  # apps.contract notes its lifespan events here
    server = gunicorn(app, workers=2, settings={"preload_app": True},
                      config_text=hooks_config(records), env={"GAW_TEST_MARKERS": str(markers)})
    assert server.proc is not None
    ready = wait_record(records, "when_ready")
    assert ready["pid"] == server.proc.pid and ready["preloaded"] is True, ready
    pids = set(server.worker_pids())
    assert len(pids) == 2
    answered = set()
    for _ in range(20):
        resp = httpx.get(server.url + path, timeout=10)
        assert (resp.status_code, resp.text) == (200, body)
    if app_kind == "asgi":
        for _ in range(20):
            answered.add(int(httpx.get(server.url + "/pid", timeout=10).text))
        assert answered <= pids
        # Lifespan startup ran in each worker (after the fork), never in the arbiter.
        started = wait_for(lambda: {int(line.split()[1]) for line in
                                    (markers.read_text().splitlines() if markers.exists()
                                     else []) if line.startswith("startup ")} == pids, 10,
                           what="lifespan startup in both workers")
        assert started
        assert server.proc.pid not in {int(line.split()[1])
                                       for line in markers.read_text().splitlines()}
    os.kill(server.proc.pid, signal.SIGTERM)
    assert server.proc.wait(20) == 0, server.logs()
    if app_kind == "asgi":
        lines = markers.read_text().splitlines()
        assert {f"shutdown {pid}" for pid in pids} <= set(lines), lines


# -- our options at boot -------------------------------------------------------------------
@pytest.mark.parametrize(("options", "env", "expected"), [
    pytest.param({"lifespam": "off"}, {}, ["lifespam", "known: interface, lifespan"],
                 id="unknown-option"),
    pytest.param({}, {"GAW_LIFESPAM": "off"}, ["GAW_LIFESPAM", "GAW_LIFESPAN"],
                 id="unknown-env"),
    pytest.param({}, {"GAW_LIFESPAN": "sometimes"},
                 ["GAW_LIFESPAN must be one of auto, on, off", "'sometimes'"], id="invalid-env"),
    pytest.param({"header_timeout": 0}, {},
                 ["configure(header_timeout=...) must be a number of at least 0.1"],
                 id="invalid-configure"),
])
def test_unknown_or_invalid_option_stops_the_arbiter(
        worker_class: str, gunicorn: Callable[..., GunicornProcess],
        options: dict[str, object], env: dict[str, str], expected: list[str]) -> None:
    """One line naming the option and what it accepts, Gunicorn's boot-error exit code (3),
    and so an arbiter that halts instead of respawning workers."""
    module, name = worker_class.rsplit(".", 1)
    config = (f"from {module} import {name}\nworker_class = {name}.configure(**{options!r})\n"
              if options else "")
    server = gunicorn(APPS["asgi"][0], wait=False, env=env, config_text=config)
    assert server.proc is not None
    assert server.proc.wait(30) == 3, server.logs()
    logs = server.logs()
    errors = [line for line in logs.splitlines() if "gunicorn-async-workers:" in line]
    assert len(errors) == 1, logs
    assert all(text in errors[0] for text in expected), errors[0]
    assert "Traceback" not in logs


def test_a_bad_option_under_four_workers_still_halts_with_exit_3(
        worker_class: str, gunicorn: Callable[..., GunicornProcess]) -> None:
    """Every worker fails to boot at once. Gunicorn's arbiter, halting for the first, would
    crash on reaping a second exit 3 (exit 1, a HaltServer traceback); the first worker to
    fail exits 3 and the others wait to be stopped."""
    server = gunicorn(APPS["asgi"][0], wait=False, workers=4,
                      env={"GAW_LIFESPAN": "sometimes"})
    assert server.proc is not None
    assert server.proc.wait(30) == 3, server.logs()
    logs = server.logs()
    assert "Traceback" not in logs and "HaltServer" not in logs, logs
