"""Response framing, sans-I/O: status lines, the cached Date/Server block, head and chunks.

Nothing here touches a socket. `frame_head` validates what the application sent and decides
how the body is delimited (Content-Length, chunked, or close-delimited); the bytes it returns
go to the transport in one write together with the first body piece.
"""

from __future__ import annotations

import re
from email.utils import formatdate
from http import HTTPStatus

CRLF = b"\r\n"
LAST_CHUNK = b"0\r\n\r\n"

# Status lines for every status Python knows, encoded once at import.
STATUS_LINES: dict[int, bytes] = {
    s.value: f"HTTP/1.1 {s.value} {s.phrase}\r\n".encode("latin-1") for s in HTTPStatus
}

# Framing headers the server decides itself; the app's own copies are read, not trusted.
_CONTENT_LENGTH = b"content-length"
_TRANSFER_ENCODING = b"transfer-encoding"
_CONNECTION = b"connection"
_FRAMING_NAMES = frozenset((_CONTENT_LENGTH, _TRANSFER_ENCODING, _CONNECTION))

# RFC 9110 section 5.6.2 token: what a field name may be made of.
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Header names seen valid before; bounded so a hostile app cannot grow it without end.
_VALID_NAMES: set[bytes] = set()
_VALID_NAMES_MAX = 4096


class ResponseError(Exception):
    """The application sent a response the server must not put on the wire."""


def status_line(status: int) -> bytes:
    """`HTTP/1.1 <status> <reason>` with CRLF, cached for every status."""
    line = STATUS_LINES.get(status)
    if line is None:
        if not isinstance(status, int) or not 100 <= status <= 999:
            raise ResponseError(f"status must be an int from 100 to 999, got {status!r}")
        line = STATUS_LINES[status] = f"HTTP/1.1 {status} \r\n".encode("latin-1")
    return line


class DateHeader:
    """The `date` and `server` header lines, rebuilt once a second by the worker's ticker."""

    __slots__ = ("server", "value")

    def __init__(self, server: bytes = b"gunicorn") -> None:
        self.server = server
        self.value = b""
        self.refresh()

    def refresh(self) -> None:
        self.value = (
            b"date: " + formatdate(usegmt=True).encode("ascii") + b"\r\nserver: "
            + self.server + CRLF
        )


def _check_name(name: bytes) -> None:
    if not _TOKEN.fullmatch(name):
        raise ResponseError(f"invalid response header name {name!r}")
    if len(_VALID_NAMES) < _VALID_NAMES_MAX:
        _VALID_NAMES.add(name)


class Framing:
    """How one response body is delimited, as decided by `frame_head`."""

    __slots__ = ("chunked", "content_length", "keep_alive", "no_body")

    def __init__(self) -> None:
        self.content_length: int | None = None
        self.chunked = False
        self.keep_alive = True
        self.no_body = False


def frame_head(
    status: int,
    headers: object,
    date_block: bytes,
    *,
    head_request: bool,
    http10: bool,
    keep_alive: bool,
    body_length: int | None,
    framing: Framing,
) -> bytes:
    """Build the response head and fill `framing`.

    `body_length` is the whole body's length when the server already holds all of it
    (a single final body message), else None. `keep_alive` is what the request allows;
    the result, after the app's own `connection` header, is left in `framing.keep_alive`.
    Raises ResponseError for a status or header that must not be sent.
    """
    parts = [status_line(status), date_block]
    content_length: bytes | None = None
    app_close = False
    lines = 0
    try:
        for name, value in headers:  # type: ignore[attr-defined]
            lname = name.lower()
            if lname not in _VALID_NAMES:
                _check_name(lname)
            if lname in _FRAMING_NAMES:
                if lname == _CONTENT_LENGTH:
                    if content_length is not None:
                        raise ResponseError("more than one content-length header")
                    content_length = value
                    if status < 200 or status == 204:
                        continue  # RFC 9110 8.6: never on 1xx or 204
                    parts += (name, b": ", value, CRLF)
                    lines += 1
                    continue
                if lname == _TRANSFER_ENCODING:
                    continue  # the server frames the body itself
                # connection: the server states its own decision below; the app's "close"
                # is honoured, its "keep-alive" is not echoed when the server closes.
                if b"\r" in value or b"\n" in value or b"\0" in value:
                    raise ResponseError("response header value contains CR, LF or NUL")
                if b"close" in value.lower():
                    app_close = True
                if status != 101:
                    continue
            parts += (name, b": ", value, CRLF)
            lines += 1
    except (TypeError, ValueError, AttributeError) as exc:
        raise ResponseError(f"response headers must be (bytes, bytes) pairs: {exc}") from None

    no_body = status < 200 or status == 204 or status == 304
    framing.no_body = no_body or head_request
    if app_close or not keep_alive:
        keep_alive = False
    if content_length is not None:
        try:
            framing.content_length = int(content_length)
        except ValueError:
            raise ResponseError(f"invalid content-length {content_length!r}") from None
        if framing.content_length < 0 or not content_length.isdigit():
            raise ResponseError(f"invalid content-length {content_length!r}")
    elif no_body:
        pass
    elif body_length is not None:
        framing.content_length = body_length
        parts += (b"content-length: ", str(body_length).encode("ascii"), CRLF)
        lines += 1
    elif head_request:
        pass
    elif http10:
        keep_alive = False  # close-delimited: the end of the body is the end of the connection
    else:
        framing.chunked = True
        parts.append(b"transfer-encoding: chunked\r\n")
        lines += 1
    if status >= 200:
        if not keep_alive:
            parts.append(b"connection: close\r\n")
            lines += 1
        elif http10:
            parts.append(b"connection: keep-alive\r\n")
            lines += 1
    framing.keep_alive = keep_alive
    parts.append(CRLF)
    head = b"".join(parts)
    # One scan of the whole head instead of one per value: a value carrying CR, LF or NUL
    # would add line breaks beyond the ones framed here (response splitting). The status
    # line, the date block's lines, each header line and the blank line end in CRLF.
    expected = 2 + date_block.count(b"\n") + lines
    if head.count(b"\n") != expected or head.count(b"\r") != expected or b"\0" in head:
        raise ResponseError("response header value contains CR, LF or NUL")
    return head


def chunk(data: bytes) -> list[bytes]:
    """One chunk of a chunked body, as pieces for `transport.writelines`."""
    return [b"%x\r\n" % len(data), data, CRLF]
