"""PROXY protocol v1 (text) and v2 (binary) headers, sans-I/O.

`read_proxy_header(buffer, mode)` looks at the first bytes of a connection and says how
many bytes a PROXY header occupies and the client address it names, or that more bytes are
needed, or that there is no header; a malformed header raises BadRequest.
"""

from __future__ import annotations

import ipaddress
import struct

from .errors import BadRequest

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V1_PREFIX = b"PROXY "
# The longest v1 line the specification allows, CRLF included.
V1_MAX_LINE = 107

NEED_MORE = None


class ProxyHeader:
    """A parsed PROXY header: where the client really is, the address it reached on the
    proxy (`server`), `TCP4` or `TCP6` (None when the header names no addresses), and the
    header's length."""

    __slots__ = ("client", "family", "length", "server")

    def __init__(self, length: int, client: tuple[str, int] | None,
                 server: tuple[str, int] | None, family: str | None = None) -> None:
        self.length = length
        self.client = client
        self.server = server
        self.family = family


NO_HEADER = ProxyHeader(0, None, None)


def proxy_signature(data: bytes, mode: str) -> bool | None:
    """Whether `data` starts with the v2 signature or the v1 prefix that `mode` (`v1`, `v2`
    or `auto`) accepts; None while too few bytes have come to tell."""
    if mode in ("v2", "auto"):
        if data.startswith(V2_SIGNATURE):
            return True
        if len(data) < len(V2_SIGNATURE) and V2_SIGNATURE.startswith(data):
            return None
    if mode in ("v1", "auto"):
        if data.startswith(V1_PREFIX):
            return True
        if len(data) < len(V1_PREFIX) and V1_PREFIX.startswith(data):
            return None
    return False


def read_proxy_header(data: bytes, mode: str) -> ProxyHeader | None:
    """Parse a PROXY header at the start of `data`; None means more bytes are needed.

    `mode` is `v1`, `v2` or `auto`. Bytes that cannot start a header give NO_HEADER.
    """
    found = proxy_signature(data, mode)
    if found is None:
        return NEED_MORE
    if not found:
        return NO_HEADER
    return _read_v2(data) if data.startswith(V2_SIGNATURE) else _read_v1(data)


def _address(text: str, version: int) -> str:
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        raise BadRequest(f"invalid address {text!r} in PROXY header") from None
    if addr.version != version:
        raise BadRequest(f"address {text!r} is not IPv{version} in PROXY header")
    return text


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535 or (len(text) > 1 and text[0] == "0"):
        raise BadRequest(f"invalid port {text!r} in PROXY header")
    return int(text)


def _read_v1(data: bytes) -> ProxyHeader | None:
    end = data.find(b"\r\n", 0, V1_MAX_LINE)
    if end < 0:
        if len(data) >= V1_MAX_LINE:
            raise BadRequest("PROXY v1 line longer than 107 bytes")
        return NEED_MORE
    try:
        parts = data[:end].decode("ascii").split(" ")
    except UnicodeDecodeError:
        raise BadRequest("non-ASCII PROXY v1 line") from None
    if len(parts) >= 2 and parts[1] == "UNKNOWN":
        return ProxyHeader(end + 2, None, None)
    if len(parts) != 6 or parts[1] not in ("TCP4", "TCP6"):
        raise BadRequest(f"malformed PROXY v1 line {data[:end][:80]!r}")
    version = 4 if parts[1] == "TCP4" else 6
    client = (_address(parts[2], version), _port(parts[4]))
    server = (_address(parts[3], version), _port(parts[5]))
    return ProxyHeader(end + 2, client, server, parts[1])


def _read_v2(data: bytes) -> ProxyHeader | None:
    if len(data) < 16:
        return NEED_MORE
    ver_cmd, fam_proto, length = struct.unpack("!BBH", data[12:16])
    if ver_cmd >> 4 != 2:
        raise BadRequest(f"PROXY v2 header with version {ver_cmd >> 4}")
    command = ver_cmd & 0x0F
    if command not in (0, 1):
        raise BadRequest(f"PROXY v2 header with command {command}")
    total = 16 + length
    if len(data) < total:
        return NEED_MORE
    if command == 0:  # LOCAL: the proxy's own connection, e.g. a health check
        return ProxyHeader(total, None, None)
    family, transport = fam_proto >> 4, fam_proto & 0x0F
    body = data[16:total]
    src: ipaddress.IPv4Address | ipaddress.IPv6Address
    dst: ipaddress.IPv4Address | ipaddress.IPv6Address
    if family == 0:
        return ProxyHeader(total, None, None)
    if transport != 1:
        raise BadRequest("PROXY v2 header for a transport other than TCP")
    if family == 1:
        if length < 12:
            raise BadRequest("PROXY v2 IPv4 header too short")
        src, dst = ipaddress.IPv4Address(body[0:4]), ipaddress.IPv4Address(body[4:8])
        sport, dport = struct.unpack("!HH", body[8:12])
    elif family == 2:
        if length < 36:
            raise BadRequest("PROXY v2 IPv6 header too short")
        src, dst = ipaddress.IPv6Address(body[0:16]), ipaddress.IPv6Address(body[16:32])
        sport, dport = struct.unpack("!HH", body[32:36])
    else:
        raise BadRequest(f"PROXY v2 header with address family {family}")
    return ProxyHeader(total, (str(src), sport), (str(dst), dport),
                       "TCP4" if family == 1 else "TCP6")
