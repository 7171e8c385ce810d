"""Read HTTP/1.x responses off a raw socket exactly as sent, for tests that must see framing."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field


@dataclass
class RawResponse:
    """One response as it came off the wire."""

    version: bytes
    status: int
    reason: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes = b""
    trailers: list[tuple[bytes, bytes]] = field(default_factory=list)
    chunked: bool = False

    def header(self, name: bytes) -> bytes | None:
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None

    def header_all(self, name: bytes) -> list[bytes]:
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]


class ResponseReader:
    """Buffered reader that parses consecutive responses from one connection."""

    def __init__(self, sock: socket.socket, timeout: float = 5.0) -> None:
        self.sock = sock
        self.sock.settimeout(timeout)
        self.buf = b""
        self.closed = False

    def _fill(self) -> bool:
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        if not data:
            self.closed = True
            return False
        self.buf += data
        return True

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            if not self._fill():
                raise EOFError("connection closed inside a line")
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                raise EOFError(f"connection closed with {len(self.buf)} of {n} bytes")
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def at_eof(self) -> bool:
        """True when the server closed the connection and nothing is buffered."""
        if self.buf:
            return False
        try:
            return not self._fill()
        except TimeoutError:
            return False

    def read_response(self, head_request: bool = False) -> RawResponse:
        status_line = self._line()
        version, status, *reason = status_line.split(b" ", 2)
        headers = []
        while True:
            line = self._line()
            if not line:
                break
            name, _, value = line.partition(b":")
            headers.append((name, value.strip()))
        resp = RawResponse(version, int(status), reason[0] if reason else b"", headers)
        code = resp.status
        if head_request or 100 <= code < 200 or code in (204, 304):
            return resp
        te = resp.header(b"transfer-encoding")
        cl = resp.header(b"content-length")
        if te is not None and b"chunked" in te.lower():
            resp.chunked = True
            parts = []
            while True:
                size = int(self._line().split(b";")[0], 16)
                if size == 0:
                    break
                parts.append(self._exact(size))
                if self._exact(2) != b"\r\n":
                    raise ValueError("chunk not followed by CRLF")
            while True:
                line = self._line()
                if not line:
                    break
                name, _, value = line.partition(b":")
                resp.trailers.append((name, value.strip()))
            resp.body = b"".join(parts)
        elif cl is not None:
            resp.body = self._exact(int(cl))
        else:
            while self._fill():
                pass
            resp.body, self.buf = self.buf, b""
        return resp


def http(method: str, target: str, *headers: str, body: bytes = b"",
         version: str = "HTTP/1.1", host: bool = True) -> bytes:
    """Bytes of one request; `headers` are 'Name: value' lines, `Host: test` first unless
    host=False."""
    lines = [f"{method} {target} {version}"]
    if host:
        lines.append("Host: test")
    lines += headers
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def request(sock: socket.socket, data: bytes, head_request: bool = False) -> RawResponse:
    """Send `data` and read one response."""
    sock.sendall(data)
    return ResponseReader(sock).read_response(head_request)
