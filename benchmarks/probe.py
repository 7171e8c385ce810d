"""Check that a running server answers each workload's request correctly before it is measured."""

from __future__ import annotations

import contextlib
import http.client
import socket
from collections.abc import Callable

from benchmarks import h2c_request, wsload
from benchmarks.workloads import Workload

WS_TEXT = "hello, websocket"


def problem(workload: Workload, host: str, port: int, timeout: float = 10.0) -> str | None:
    """Send the workload's request once; None if the response is right, else what is wrong."""
    if workload.protocol == "ws":
        return ws_problem(workload, host, port, timeout)
    if workload.protocol == "h2":
        return h2_problem(workload, host, port, timeout)
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/octet-stream"} if workload.request_body else {}
        connection.request(
            workload.method, workload.path, body=workload.request_body or None, headers=headers
        )
        response = connection.getresponse()
        body = response.read()
    except (OSError, http.client.HTTPException) as error:
        return f"{workload.method} {workload.path}: {type(error).__name__}: {error}"
    finally:
        connection.close()
    return _compare(workload, response.status, response.getheader, body)


def h2_problem(workload: Workload, host: str, port: int, timeout: float = 10.0) -> str | None:
    """The workload's GET over cleartext HTTP/2 with prior knowledge, checked like an HTTP/1.1
    one (a server that answers it in HTTP/1 or not at all has a problem)."""
    try:
        response = h2c_request.get(host, port, workload.path, timeout)
    except (OSError, h2c_request.H2RequestError) as error:
        return f"HTTP/2 GET {workload.path}: {type(error).__name__}: {error}"
    headers = response.headers

    def header(name: str, default: str | None = None) -> str | None:
        return headers.get(name, default)

    return _compare(workload, response.status, header, response.body)


def _compare(
    workload: Workload, status: int, header: Callable[[str, str | None], str | None], body: bytes
) -> str | None:
    where = f"{workload.method} {workload.path}"
    expected = workload.expected
    assert expected is not None
    if status != 200:
        return f"{where}: status {status} {body[:200]!r}"
    content_type = header("content-type", "") or ""
    if not content_type.startswith(expected.content_type):
        return f"{where}: content-type {content_type!r}, expected {expected.content_type!r}"
    if expected.body is not None and body != expected.body:
        return f"{where}: body {body[:60]!r}… ({len(body)} bytes) differs from the expected one"
    if expected.length is not None and len(body) != expected.length:
        return f"{where}: body of {len(body)} bytes, expected {expected.length}"
    if expected.chunked:
        encoding = (header("transfer-encoding", None) or "").lower()
        if "chunked" not in encoding or header("content-length", None) is not None:
            return f"{where}: expected a chunked response without content-length"
    return None


class _Closed(Exception):
    """The server closed the connection."""


def _read_exact(sock: socket.socket, buffer: bytearray, count: int) -> bytes:
    """Take `count` bytes from buffer, reading more from the socket as needed."""
    while len(buffer) < count:
        chunk = sock.recv(65536)
        if not chunk:
            raise _Closed(f"connection closed after {len(buffer)} of {count} bytes")
        buffer += chunk
    data = bytes(buffer[:count])
    del buffer[:count]
    return data


def _read_message(sock: socket.socket, buffer: bytearray) -> tuple[int, bytes]:
    """The next data message (opcode, payload), reassembling fragments; answers pings."""
    opcode, parts = -1, []
    while True:
        b0, b1 = _read_exact(sock, buffer, 2)
        length = b1 & 0x7F
        if length == 126:
            length = int.from_bytes(_read_exact(sock, buffer, 2), "big")
        elif length == 127:
            length = int.from_bytes(_read_exact(sock, buffer, 8), "big")
        if b1 & 0x80:
            raise _Closed("the server sent a masked frame")
        if b0 & 0x70:
            raise _Closed(f"RSV bits set ({b0 & 0x70:#x}): a compressed frame nobody asked for")
        payload = _read_exact(sock, buffer, length)
        frame_op = b0 & 0x0F
        if frame_op == wsload.OP_PING:
            sock.sendall(wsload.client_frame(payload, wsload.OP_PONG))
            continue
        if frame_op == wsload.OP_CLOSE:
            code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
            raise _Closed(f"the server closed the WebSocket with code {code}")
        if frame_op == wsload.OP_PONG:
            continue
        if opcode < 0:
            opcode = frame_op
        parts.append(payload)
        if b0 & 0x80:
            return opcode, b"".join(parts)


def ws_problem(workload: Workload, host: str, port: int, timeout: float = 10.0) -> str | None:
    """A real handshake, a text echo and a binary echo of the workload's message size."""
    where = f"WebSocket {workload.path}"
    key = wsload.new_key()
    payload = bytes(i % 251 for i in range(workload.ws_message_size))
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(wsload.handshake_request(host, port, workload.path, key))
            buffer = bytearray()
            while b"\r\n\r\n" not in buffer:
                chunk = sock.recv(65536)
                if not chunk:
                    return f"{where}: connection closed during the handshake {bytes(buffer)!r}"
                buffer += chunk
            end = buffer.index(b"\r\n\r\n")
            head = bytes(buffer[:end])
            del buffer[: end + 4]
            trouble = wsload.handshake_problem(head, key)
            if trouble is not None:
                return f"{where}: {trouble}"
            for opcode, sent in (
                (wsload.OP_TEXT, WS_TEXT.encode("utf-8")),
                (wsload.OP_BINARY, payload),
            ):
                sock.sendall(wsload.client_frame(sent, opcode))
                got_op, got = _read_message(sock, buffer)
                kind = "text" if opcode == wsload.OP_TEXT else "binary"
                if got_op != opcode or got != sent:
                    return (
                        f"{where}: {kind} echo of {len(sent)} bytes came back as opcode "
                        f"{got_op} with {len(got)} bytes {got[:40]!r}"
                    )
            sock.sendall(wsload.client_frame(wsload.close_payload(), wsload.OP_CLOSE))
            with contextlib.suppress(OSError, _Closed):
                _read_message(sock, buffer)  # until the server's close frame or EOF
    except (OSError, _Closed) as error:
        return f"{where}: {type(error).__name__}: {error}"
    return None
