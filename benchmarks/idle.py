"""Hold many idle keep-alive connections: each does one request, then stays open and silent."""

from __future__ import annotations

import resource
import select
import socket
import time
from types import TracebackType

OPEN_TIMEOUT_S = 60.0


class IdleConnectionError(RuntimeError):
    """An idle connection could not be opened or its one request failed."""


def raise_fd_limit(wanted: int) -> None:
    """Lift RLIMIT_NOFILE's soft limit towards `wanted` (bounded by the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def _read_response(sock: socket.socket) -> bytes:
    """Read one response with a content-length; return its status line."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise IdleConnectionError("connection closed before the response head")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise IdleConnectionError("connection closed inside the response body")
        body += chunk
    return head.split(b"\r\n", 1)[0]


class IdleConnections:
    """A context manager that opens `count` connections, one request each, and closes them."""

    def __init__(self, host: str, port: int, count: int, path: str) -> None:
        self.host = host
        self.port = port
        self.count = count
        self.request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode("ascii")
        self.sockets: list[socket.socket] = []

    def __enter__(self) -> IdleConnections:
        raise_fd_limit(self.count * 2 + 1024)
        deadline = time.monotonic() + OPEN_TIMEOUT_S
        try:
            for _ in range(self.count):
                if time.monotonic() > deadline:
                    raise IdleConnectionError(f"opened only {len(self.sockets)} in time")
                sock = socket.create_connection((self.host, self.port), timeout=10.0)
                self.sockets.append(sock)
                sock.sendall(self.request)
                status = _read_response(sock)
                if b" 200 " not in status + b" ":
                    raise IdleConnectionError(f"idle request got {status!r}")
        except (OSError, IdleConnectionError) as error:
            self.close()
            raise IdleConnectionError(
                f"after {len(self.sockets)} idle connections: {error}"
            ) from error
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def still_open(self) -> int:
        """How many connections the server has not closed (no EOF or error pending)."""
        poller = select.poll()
        by_fd = {sock.fileno(): sock for sock in self.sockets}
        for fd in by_fd:
            poller.register(fd, select.POLLIN)
        closed = 0
        for fd, events in poller.poll(0):
            if events & (select.POLLHUP | select.POLLERR):
                closed += 1
                continue
            try:
                if not by_fd[fd].recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT):
                    closed += 1
            except BlockingIOError:
                pass
            except OSError:
                closed += 1
        return len(self.sockets) - closed

    def close(self) -> None:
        """Close every connection."""
        for sock in self.sockets:
            sock.close()
        self.sockets = []
