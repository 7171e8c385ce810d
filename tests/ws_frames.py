"""Client-side WebSocket wire bytes for raw-socket tests: the upgrade request and masked
frames, built by hand so tests can send what no well-behaved client library would."""

from __future__ import annotations

KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455's sample Sec-WebSocket-Key
MASK = b"\x37\xfa\x21\x3d"
ZERO_MASK = b"\0\0\0\0"  # a valid mask that leaves the payload as it is (fast to build)

TEXT, BINARY, CONT, CLOSE, PING, PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA


def upgrade_request(path: str, *extra: str, method: str = "GET", key: str | None = KEY,
                    version: str | None = "13", http: str = "1.1", upgrade: str = "websocket",
                    connection: str = "Upgrade") -> bytes:
    lines = [f"{method} {path} HTTP/{http}", "Host: test", f"Upgrade: {upgrade}",
             f"Connection: {connection}"]
    if key is not None:
        lines.append(f"Sec-WebSocket-Key: {key}")
    if version is not None:
        lines.append(f"Sec-WebSocket-Version: {version}")
    lines += extra
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def masked(payload: bytes, key: bytes) -> bytes:
    if not payload or key == ZERO_MASK:
        return payload
    n = len(payload)
    stream = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(stream, "big")).to_bytes(n, "big")


def frame(opcode: int, payload: bytes = b"", *, fin: bool = True, rsv: int = 0,
          mask: bytes | None = MASK) -> bytes:
    """One client frame (masked unless mask=None)."""
    first = (0x80 if fin else 0) | (rsv << 4) | opcode
    bit = 0x80 if mask is not None else 0
    n = len(payload)
    if n < 126:
        head = bytes([first, bit | n])
    elif n < 1 << 16:
        head = bytes([first, bit | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([first, bit | 127]) + n.to_bytes(8, "big")
    if mask is None:
        return head + payload
    return head + mask + masked(payload, mask)
