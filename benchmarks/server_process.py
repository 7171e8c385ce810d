"""Start a server pinned to one core, poll until it answers, and stop its whole process tree."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from benchmarks import h2c_request, proctree
from benchmarks.servers import HOST, ServerConfig

READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0


class ServerStartError(RuntimeError):
    """The server exited or never answered a request within the readiness bound."""


def free_port() -> int:
    """A TCP port on HOST that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def taskset(cpu: int | None) -> list[str]:
    """The `taskset -c CPU` prefix, or nothing when pinning is off."""
    return [] if cpu is None else ["taskset", "-c", str(cpu)]


def _answers(port: int, path: str, timeout: float) -> bool:
    """True when one real HTTP request to path gets a 200 status line."""
    request = f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nConnection: close\r\n\r\n"
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as sock:
            sock.sendall(request.encode("ascii"))
            head = b""
            while b"\r\n" not in head:
                chunk = sock.recv(4096)
                if not chunk:
                    return False
                head += chunk
    except OSError:
        return False
    return head.split(b"\r\n", 1)[0].split(b" ")[1:2] == [b"200"]


def _h2_problem(port: int, path: str, timeout: float) -> str | None:
    """None when one real GET of path over cleartext HTTP/2 (prior knowledge) gets a 200,
    else what went wrong."""
    try:
        status = h2c_request.get(HOST, port, path, timeout).status
    except (OSError, h2c_request.H2RequestError) as error:
        return f"{type(error).__name__}: {error}"
    return None if status == 200 else f"status {status}"


class RunningServer:
    """A started server; use as a context manager so that it is always stopped.

    Each server gets its own scratch directory (`workdir`) holding its configuration's
    `files`; it is removed when the server stops, after any `*.log` the server wrote there has
    been added to the end of `log_path`. With `protocol` "h2" it runs the configuration's
    HTTP/2 command and is ready once it answers over cleartext HTTP/2.
    """

    def __init__(self, config: ServerConfig, kind: str, log_path: Path, cpu: int | None,
                 protocol: str = "http") -> None:
        self.config = config
        self.protocol = protocol
        self.port = free_port()
        self.log_path = log_path
        self.workdir = Path(tempfile.mkdtemp(prefix=f"benchmark-{config.name}-"))
        try:
            self.process = self._start(kind, cpu)
        except BaseException:
            shutil.rmtree(self.workdir, ignore_errors=True)
            raise
        self.pid = self.process.pid

    def _start(self, kind: str, cpu: int | None) -> subprocess.Popen[bytes]:
        files = self.config.files(kind, self.port) if self.config.files else {}
        for name, text in files.items():
            (self.workdir / name).write_text(text)
        self.command = [
            *taskset(cpu), *self.config.command(kind, self.port, self.workdir, self.protocol)
        ]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            log.write(("$ " + " ".join(self.command) + "\n").encode())
            log.flush()
            return subprocess.Popen(
                self.command,
                cwd=self.config.cwd(),
                env=self.config.env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def log_tail(self, lines: int = 4) -> str:
        """The last lines the server printed (for error messages)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        printed = [line for line in text.strip().splitlines() if not line.startswith("$ ")]
        return " | ".join(printed[-lines:])

    def wait_ready(self, path: str = "/plaintext", timeout: float = READY_TIMEOUT_S) -> float:
        """Poll until a real request succeeds; return seconds taken or raise ServerStartError."""
        started = time.monotonic()
        deadline = started + timeout
        problem = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerStartError(
                    f"exited with code {self.process.returncode}: {self.log_tail()}"
                )
            if self.protocol == "h2":
                problem = _h2_problem(self.port, path, timeout=2.0)
                if problem is None:
                    return time.monotonic() - started
            elif _answers(self.port, path, timeout=2.0):
                return time.monotonic() - started
            time.sleep(0.05)
        over_h2 = f" over HTTP/2 (last: {problem})" if problem else ""
        raise ServerStartError(
            f"no 200 from {path}{over_h2} within {timeout:.0f} s: {self.log_tail()}")

    def tree(self) -> list[int]:
        """The server's live process tree (arbiter or main process first)."""
        return proctree.tree(self.pid)

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM the main process, wait (bounded), then SIGKILL it and any leftover children."""
        members: dict[int, int | None] = {}

        def remember_tree() -> None:
            for pid in proctree.tree(self.pid):
                members.setdefault(pid, proctree.start_ticks(pid))

        remember_tree()
        if self.process.poll() is None:
            _signal(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self.process.poll() is None and time.monotonic() < deadline:
            remember_tree()
            time.sleep(0.05)
        if self.process.poll() is None:
            remember_tree()
            _signal(self.pid, signal.SIGKILL)
            self.process.wait(timeout=5)
        leftovers = {pid: ticks for pid, ticks in members.items() if pid != self.pid}
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline and any(_same(pid, t) for pid, t in leftovers.items()):
            time.sleep(0.05)
        for pid, ticks in leftovers.items():
            if _same(pid, ticks):
                _signal(pid, signal.SIGKILL)
        self._keep_logs_and_remove_workdir()

    def _keep_logs_and_remove_workdir(self) -> None:
        """Add the server's own log files to its log, then remove its scratch directory."""
        with contextlib.suppress(OSError), self.log_path.open("ab") as log:
            for written in sorted(self.workdir.glob("*.log")):
                text = written.read_bytes()
                if text:
                    log.write(f"--- {written.name} ---\n".encode() + text)
        shutil.rmtree(self.workdir, ignore_errors=True)


def _same(pid: int, ticks: int | None) -> bool:
    """True while pid is alive and still the process we saw (not a recycled pid)."""
    return proctree.is_alive(pid) and proctree.start_ticks(pid) == ticks


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)
