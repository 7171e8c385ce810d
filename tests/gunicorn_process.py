"""Start and stop a real `gunicorn` arbiter for integration tests, and read what it logged.

Each server binds port 0 on 127.0.0.1 (or a unix socket / ::1) and the port it got is read
from Gunicorn's own "Listening at" line, so tests never race for a port. Every wait is
bounded and polled; every process is stopped by its pid.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import gunicorn
import pytest
from gunicorn.config import KNOWN_SETTINGS
from gunicorn.workers import SUPPORTED_WORKERS

from gunicorn_async_workers.config import OPTIONS

REPO = Path(__file__).resolve().parent.parent
TESTS = REPO / "tests"

_LISTENING = re.compile(r"Listening at: ([^,\s]+)")  # the first of several binds
_BOOTING = re.compile(r"Booting worker with pid: (\d+)")
_EXITING = re.compile(r"Worker exiting \(pid: (\d+)\)")

GUNICORN_SETTINGS = frozenset(setting.name for setting in KNOWN_SETTINGS)
GUNICORN_MAJOR: int = gunicorn.version_info[0]
# Gunicorn's own `-k asgi` worker, the reference some tests compare with (24 and later).
HAS_GUNICORN_ASGI = "asgi" in SUPPORTED_WORKERS
needs_gunicorn_asgi = pytest.mark.skipif(
    not HAS_GUNICORN_ASGI,
    reason=f"gunicorn {gunicorn.__version__} has no -k asgi worker to compare with")
# Gunicorn settings our options take their default from (root_path, asgi_lifespan,
# websocket_max_message_size) -> the option's GAW_* variable.
_OPTION_ENV = {o.gunicorn_setting: o.env for o in OPTIONS if o.gunicorn_setting}


def option_env_for_missing_settings(settings: dict[str, object]) -> dict[str, str]:
    """On a Gunicorn without some of these settings (23 has none of the three), the same
    values for our options through their GAW_* variables, so a test of the behaviour runs
    there too. (A missing setting in the config file is ignored by Gunicorn.)"""
    return {_OPTION_ENV[name]: str(value) for name, value in settings.items()
            if name in _OPTION_ENV and name not in GUNICORN_SETTINGS}


def wait_for(condition: Callable[[], object], timeout: float = 10.0, interval: float = 0.02,
             what: str = "condition") -> object:
    """Poll `condition` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not met within {timeout} s")
        time.sleep(interval)


def pid_alive(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie counts as dead)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z"


def rss(pid: int) -> int:
    """Resident set size of `pid` in bytes."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


def error_log(server: GunicornProcess) -> str:
    """What the server wrote to its error log so far."""
    try:
        return server.errorlog.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def worker_pid(server: GunicornProcess) -> int:
    """The pid of the one live worker."""
    pids = server.worker_pids()
    assert len(pids) == 1, pids
    return pids[0]


class GunicornProcess:
    """One gunicorn arbiter started with a generated `gunicorn.conf.py`."""

    def __init__(self, app: str, worker_class: str, *, bind: str = "127.0.0.1:0",
                 workers: int = 1, settings: dict[str, object] | None = None,
                 config_text: str = "", env: dict[str, str] | None = None,
                 loglevel: str = "info", args: list[str] | None = None) -> None:
        self.app = app
        self.worker_class = worker_class
        self.bind = bind
        self.workers = workers
        self.settings = dict(settings or {})
        self.config_text = config_text
        self.extra_env = dict(env or {})
        self.loglevel = loglevel
        self.args = list(args or [])  # command-line options, after `-c gunicorn.conf.py`
        self.dir = Path(tempfile.mkdtemp(prefix="gaw-test-"))
        self.errorlog = self.dir / "error.log"
        self.output = self.dir / "output.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.address: str = ""
        self.seen_pids: set[int] = set()

    # -- life ------------------------------------------------------------------------------
    def write_config(self) -> Path:
        lines = [
            f"bind = [{self.bind!r}]",
            f"workers = {self.workers}",
            f"worker_class = {self.worker_class!r}",
            f"errorlog = {str(self.errorlog)!r}",
            f"loglevel = {self.loglevel!r}",
            "graceful_timeout = 10",
            "timeout = 30",
            "control_socket_disable = True",
        ]
        for key, value in self.settings.items():
            lines.append(f"{key} = {value!r}")
        path = self.dir / "gunicorn.conf.py"
        path.write_text("\n".join(lines) + "\n" + self.config_text + "\n")
        return path

    def start(self, wait: bool = True, timeout: float = 20.0,
              probe: bool = True) -> GunicornProcess:
        conf = self.write_config()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(TESTS), env.get("PYTHONPATH", "")])
        env["PYTHONUNBUFFERED"] = "1"
        env.update(option_env_for_missing_settings(self.settings))
        env.update(self.extra_env)
        out = open(self.output, "wb")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(conf), *self.args, self.app],
            cwd=str(self.dir), env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        out.close()
        if wait:
            self.wait_ready(timeout, probe)
        return self

    def wait_ready(self, timeout: float = 20.0, probe: bool = True) -> None:
        """Wait until the arbiter listens and `workers` workers booted, then (with `probe`)
        until a worker answers a request: that request counts toward max_requests."""
        def listening() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}:\n{self.logs()}")
            m = _LISTENING.search(self.logs())
            if m:
                self.address = m.group(1)
            return bool(m)
        wait_for(listening, timeout, what="gunicorn 'Listening at'")
        wait_for(lambda: len(self.worker_pids()) >= self.workers, timeout,
                 what=f"{self.workers} workers booted")
        if probe:
            wait_for(self._accepts, timeout, what="a worker accepting")

    def _accepts(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {self.proc.returncode}:\n{self.logs()}")
        try:
            s = self.connect(timeout=1.0)
        except OSError:
            return False
        try:
            s.sendall(b"GET /__ready HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            return s.recv(1) != b""
        except OSError:
            return False
        finally:
            s.close()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int | None:
        """Stop the arbiter (by pid) and make sure no worker of it outlives the test."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, sig)
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
            except ProcessLookupError:
                pass
        for pid in self.all_worker_pids():
            if pid_alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        return self.proc.returncode

    def __enter__(self) -> GunicornProcess:
        try:
            return self.start()
        except BaseException:
            self.stop()  # a server that never became ready is still stopped by its pid
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- observation -----------------------------------------------------------------------
    def logs(self) -> str:
        text = ""
        for path in (self.errorlog, self.output):
            with contextlib.suppress(FileNotFoundError):
                text += path.read_text(errors="replace")
        return text

    def all_worker_pids(self) -> list[int]:
        return [int(p) for p in _BOOTING.findall(self.logs())]

    def worker_pids(self) -> list[int]:
        """Workers booted and not yet exited (by the log, then by /proc)."""
        text = self.logs()
        exited = {int(p) for p in _EXITING.findall(text)}
        return [p for p in (int(x) for x in _BOOTING.findall(text))
                if p not in exited and pid_alive(p)]

    @property
    def host(self) -> str:
        return self.address.split("://", 1)[1].rsplit(":", 1)[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.address.rsplit(":", 1)[1])

    @property
    def url(self) -> str:
        if self.address.startswith("unix:"):
            return "http://localhost"
        return self.address

    @property
    def unix_path(self) -> str | None:
        return self.address[len("unix:"):] if self.address.startswith("unix:") else None

    def connect(self, timeout: float = 5.0) -> socket.socket:
        """A raw client socket connected to the server."""
        if self.unix_path:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(timeout)
            s.connect(self.unix_path)
            return s
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        s = socket.socket(family, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect((self.host, self.port))
        return s


def serving(proc: GunicornProcess) -> Iterator[GunicornProcess]:
    """For module-scoped fixtures: `yield from serving(GunicornProcess(...))` starts the
    server, yields it, and stops it by pid afterwards, also when it failed to start."""
    with proc:
        yield proc


def read_until_close(s: socket.socket, timeout: float = 5.0, limit: int = 1 << 24) -> bytes:
    """Read everything the server sends until it closes (bounded in time and size)."""
    s.settimeout(timeout)
    chunks = []
    total = 0
    deadline = time.monotonic() + timeout
    while total < limit and time.monotonic() < deadline:
        try:
            data = s.recv(65536)
        except TimeoutError:
            break
        except ConnectionResetError:
            break
        if not data:
            break
        chunks.append(data)
        total += len(data)
    return b"".join(chunks)
