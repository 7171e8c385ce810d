"""What an HTTP/1.1 connection needs to hand itself to HTTP/2, without importing `h2`: the
client's preface (prior knowledge), and the `Upgrade: h2c` request judged and turned into
the head of stream 1 (RFC 7540 3.2; RFC 9113 drops the upgrade, Gunicorn 27 still serves
it)."""

from __future__ import annotations

import base64
import binascii
from typing import NamedTuple

from .parsers import HeadFields

# The client's connection preface (RFC 9113 3.4).
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SWITCHING = b"HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: h2c\r\n\r\n"
# Fields of the HTTP/1.1 request that are its connection's, not the stream's.
_HOP_BY_HOP = frozenset((b"connection", b"upgrade", b"http2-settings", b"keep-alive",
                         b"proxy-connection", b"transfer-encoding"))


class H2cUpgrade(NamedTuple):
    """An accepted `Upgrade: h2c`: the client's settings (the `HTTP2-Settings` field, as h2
    decodes it) and the request, as stream 1's head."""

    settings: bytes
    head: HeadFields


def h2c_upgrade(head: HeadFields) -> H2cUpgrade | None:
    """The upgrade a request asks for, when it may be taken: `h2c` among its Upgrade
    tokens, no body (the server would have to read it as HTTP/1.1 first), and one
    `HTTP2-Settings` field that decodes to whole settings. None: the request is served as
    HTTP/1.1, the upgrade ignored (as RFC 9110 7.8 allows)."""
    upgrade = head.upgrade
    if upgrade is None or b"h2c" not in [t.strip() for t in upgrade.lower().split(b",")]:
        return None
    if head.chunked or head.content_length:
        return None
    values = [value for name, value in head.headers if name == b"http2-settings"]
    if len(values) != 1:
        return None
    settings = values[0].strip()
    settings += b"=" * (-len(settings) % 4)
    try:
        decoded = base64.urlsafe_b64decode(settings)
    except (ValueError, binascii.Error):
        return None
    if len(decoded) % 6:
        return None
    stream_head = HeadFields(head.policy, trusted=head.trusted, scheme=head.scheme)
    stream_head.http_version = "2"
    stream_head.method = head.method
    stream_head.target = head.target
    stream_head.host = head.host
    stream_head.te_trailers = head.te_trailers
    stream_head.headers = [(name, value) for name, value in head.headers
                           if name not in _HOP_BY_HOP
                           and (name != b"te" or value.strip().lower() == b"trailers")]
    return H2cUpgrade(settings, stream_head)
