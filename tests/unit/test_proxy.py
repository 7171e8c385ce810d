"""Unit tests of PROXY protocol v1/v2 header parsing (read_proxy_header): bytes in, results out."""

from __future__ import annotations

import ipaddress
import struct

import pytest

from gunicorn_async_workers.http.errors import BadRequest
from gunicorn_async_workers.http.proxy_protocol import NO_HEADER, V2_SIGNATURE, read_proxy_header

REQUEST = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"


def v2(command: int, family_proto: int, body: bytes, *, version: int = 2) -> bytes:
    return V2_SIGNATURE + struct.pack("!BBH", (version << 4) | command, family_proto,
                                      len(body)) + body


def v2_ipv4(src: str, dst: str, sport: int, dport: int, tlvs: bytes = b"") -> bytes:
    body = (ipaddress.IPv4Address(src).packed + ipaddress.IPv4Address(dst).packed
            + struct.pack("!HH", sport, dport) + tlvs)
    return v2(1, 0x11, body)


def v2_ipv6(src: str, dst: str, sport: int, dport: int) -> bytes:
    body = (ipaddress.IPv6Address(src).packed + ipaddress.IPv6Address(dst).packed
            + struct.pack("!HH", sport, dport))
    return v2(1, 0x21, body)


# -- v1 -------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["v1", "auto"])
def test_v1_tcp4(mode: str) -> None:
    line = b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n"
    header = read_proxy_header(line + REQUEST, mode)
    assert header is not None
    assert header.length == len(line)
    assert header.client == ("192.0.2.1", 56324)
    assert header.server == ("198.51.100.2", 443)


def test_v1_tcp6() -> None:
    line = b"PROXY TCP6 2001:db8::1 2001:db8::2 65535 0\r\n"
    header = read_proxy_header(line, "v1")
    assert header is not None and header.length == len(line)
    assert header.client == ("2001:db8::1", 65535) and header.server == ("2001:db8::2", 0)


@pytest.mark.parametrize("line", [b"PROXY UNKNOWN\r\n",
                                  b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n"])
def test_v1_unknown(line: bytes) -> None:
    header = read_proxy_header(line + REQUEST, "v1")
    assert header is not None
    assert header.length == len(line) and header.client is None and header.server is None


@pytest.mark.parametrize("data", [b"P", b"PROXY", b"PROXY ", b"PROXY TCP4 192.0.2.1 198.51",
                                  b"PROXY TCP4 192.0.2.1 198.51.100.2 1 2\r"])
def test_v1_incomplete_needs_more(data: bytes) -> None:
    assert read_proxy_header(data, "v1") is None
    assert read_proxy_header(data, "auto") is None


def test_v1_longest_allowed_line() -> None:
    line = (b"PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
            b"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n")
    assert len(line) == 104
    header = read_proxy_header(line, "v1")
    assert header is not None and header.length == 104


def test_v1_too_long() -> None:
    with pytest.raises(BadRequest):
        read_proxy_header(b"PROXY TCP4 " + b"1" * 120, "v1")
    assert read_proxy_header(b"PROXY TCP4 " + b"1" * 90, "v1") is None


@pytest.mark.parametrize("line", [
    b"PROXY TCP4 192.0.2.1 198.51.100.2 65536 443\r\n",
    b"PROXY TCP4 192.0.2.1 198.51.100.2 -1 443\r\n",
    b"PROXY TCP4 192.0.2.1 198.51.100.2 0443 443\r\n",
    b"PROXY TCP4 192.0.2.1 198.51.100.2 abc 443\r\n",
    b"PROXY TCP4 192.0.2.1 198.51.100.2 1 \r\n",
    b"PROXY TCP4 192.0.2 198.51.100.2 1 2\r\n",
    b"PROXY TCP4 192.0.2.256 198.51.100.2 1 2\r\n",
    b"PROXY TCP4 2001:db8::1 198.51.100.2 1 2\r\n",
    b"PROXY TCP6 192.0.2.1 2001:db8::2 1 2\r\n",
    b"PROXY TCP4 192.0.2.1 198.51.100.2 1\r\n",
    b"PROXY TCP4 192.0.2.1 198.51.100.2 1 2 3\r\n",
    b"PROXY TCP4  192.0.2.1 198.51.100.2 1 2\r\n",
    b"PROXY UDP4 192.0.2.1 198.51.100.2 1 2\r\n",
    b"PROXY \r\n",
    b"PROXY TCP4 192.0.2.\xff 198.51.100.2 1 2\r\n",
])
def test_v1_malformed(line: bytes) -> None:
    with pytest.raises(BadRequest) as info:
        read_proxy_header(line, "v1")
    assert info.value.status == 400


# -- v2 -------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["v2", "auto"])
def test_v2_ipv4(mode: str) -> None:
    data = v2_ipv4("192.0.2.1", "198.51.100.2", 56324, 443)
    assert len(data) == 28
    header = read_proxy_header(data + REQUEST, mode)
    assert header is not None
    assert header.length == 28
    assert header.client == ("192.0.2.1", 56324) and header.server == ("198.51.100.2", 443)


def test_v2_ipv4_with_tlvs_skips_them() -> None:
    tlvs = b"\x04\x00\x03abc"  # PP2_TYPE_NOOP with 3 bytes of value
    data = v2_ipv4("10.0.0.1", "10.0.0.2", 1, 2, tlvs)
    header = read_proxy_header(data + REQUEST, "v2")
    assert header is not None and header.length == 28 + len(tlvs)
    assert header.client == ("10.0.0.1", 1)


def test_v2_ipv6() -> None:
    data = v2_ipv6("2001:db8::1", "2001:db8::2", 1234, 8443)
    header = read_proxy_header(data, "v2")
    assert header is not None and header.length == 16 + 36
    assert header.client == ("2001:db8::1", 1234) and header.server == ("2001:db8::2", 8443)


def test_v2_local() -> None:
    data = v2(0, 0x00, b"")
    header = read_proxy_header(data + REQUEST, "v2")
    assert header is not None
    assert header.length == 16 and header.client is None and header.server is None
    # LOCAL may still carry (ignored) address bytes: they are skipped.
    data = v2(0, 0x11, b"\x00" * 12)
    header = read_proxy_header(data, "auto")
    assert header is not None and header.length == 28 and header.client is None


def test_v2_unspec_family() -> None:
    header = read_proxy_header(v2(1, 0x00, b""), "v2")
    assert header is not None and header.length == 16 and header.client is None


def test_v2_incomplete_needs_more() -> None:
    data = v2_ipv4("192.0.2.1", "198.51.100.2", 1, 2)
    for end in range(len(data)):
        assert read_proxy_header(data[:end], "v2") is None, end
        assert read_proxy_header(data[:end], "auto") is None, end
    assert read_proxy_header(data, "v2") is not None


@pytest.mark.parametrize("data", [
    v2(1, 0x11, b"\x00" * 12, version=1),
    v2(2, 0x11, b"\x00" * 12),
    v2(1, 0x12, b"\x00" * 12),  # UDP
    v2(1, 0x31, b"\x00" * 216),  # AF_UNIX
    v2(1, 0x41, b"\x00" * 12),  # unknown family
    v2(1, 0x11, b"\x00" * 11),
    v2(1, 0x21, b"\x00" * 35),
])
def test_v2_malformed(data: bytes) -> None:
    with pytest.raises(BadRequest):
        read_proxy_header(data, "v2")


# -- modes and absent headers ---------------------------------------------------------------

@pytest.mark.parametrize("mode", ["v1", "v2", "auto"])
def test_no_header(mode: str) -> None:
    header = read_proxy_header(REQUEST, mode)
    assert header is NO_HEADER
    assert header.length == 0 and header.client is None and header.server is None


def test_v1_mode_ignores_v2_signature() -> None:
    data = v2_ipv4("192.0.2.1", "198.51.100.2", 1, 2)
    assert read_proxy_header(data, "v1") is NO_HEADER
    assert read_proxy_header(data[:5], "v1") is NO_HEADER


def test_v2_mode_ignores_v1_line() -> None:
    line = b"PROXY TCP4 192.0.2.1 198.51.100.2 1 2\r\n"
    assert read_proxy_header(line, "v2") is NO_HEADER
    assert read_proxy_header(b"PROX", "v2") is NO_HEADER


def test_bytes_that_only_look_like_a_start() -> None:
    assert read_proxy_header(b"PRX", "auto") is NO_HEADER
    assert read_proxy_header(b"\r\n\r\n\x00\r\nQUIX", "auto") is NO_HEADER
