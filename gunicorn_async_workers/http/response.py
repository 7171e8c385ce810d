"""Response framing, sans-I/O: status lines, the cached Date/Server block, head and chunks.

Nothing here touches a socket. `frame_response_head` validates what the application sent and decides
how the body is delimited (Content-Length, chunked, or close-delimited); the bytes it returns
go to the transport in one write together with the first body piece. The interim 103 Early
Hints head (`frame_early_hints`) and the trailer section that ends a chunked body
(`frame_trailers`) are framed here too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from email.utils import formatdate
from http import HTTPStatus

CRLF = b"\r\n"
LAST_CHUNK = b"0\r\n\r\n"
# The last chunk's size line alone: the trailer section and an empty line follow it.
LAST_CHUNK_LINE = b"0\r\n"
EARLY_HINTS = b"HTTP/1.1 103 Early Hints\r\n"

# Status lines for every final status (200-599) Python knows, encoded once at import. A
# final response never has a 1xx status: the server sends those itself (100 Continue), and an
# app's 1xx would be read by the client as an interim answer, pairing every later response
# with the wrong request.
STATUS_LINES: dict[int, bytes] = {
    s.value: f"HTTP/1.1 {s.value} {s.phrase}\r\n".encode("latin-1") for s in HTTPStatus
    if 200 <= s.value <= 599
}

# What a response header name is, by name as the app spelled it: a plain field, or one of
# the framing fields the server decides itself. Names enter once validated; bounded, so a
# hostile app cannot grow it without end.
_PLAIN, _CONTENT_LENGTH, _TRANSFER_ENCODING, _CONNECTION, _DATE, _SERVER = range(6)
_NAME_KINDS: dict[bytes, int] = {
    b"content-length": _CONTENT_LENGTH,
    b"transfer-encoding": _TRANSFER_ENCODING,
    b"connection": _CONNECTION,
    b"date": _DATE,
    b"server": _SERVER,
    b"content-type": _PLAIN,
}
_NAME_KINDS_MAX = 4096
# RFC 9110 section 5.6.2 token: what a field name may be made of.
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# A field value may not carry these (response splitting; RFC 9110 5.5).
_FORBIDDEN_IN_VALUE = re.compile(rb"[\r\n\0]")
# Fields a trailer section never carries, whatever the app sends: those that frame the
# message or belong to the connection (RFC 9110 6.5.1, RFC 9112 7.1.2). Which other fields
# may be trailers is the app's to know (the ASGI extension leaves it to the app).
NOT_IN_TRAILERS = frozenset((
    b"content-length", b"transfer-encoding", b"trailer", b"host", b"connection",
    b"keep-alive", b"proxy-connection", b"te", b"upgrade"))


# The compiled framing of the usual head (http/compiled_head.c `frame`), where it was built:
# the same bytes and Framing as the code below, which frames everything it declines.
FrameHead = Callable[[int, "bytes | None", Iterable[tuple[bytes, bytes]], bytes,
                      dict[bytes, int], "Framing", bool, bool, bool, "int | None"],
                     "bytes | None"]
compiled_frame: FrameHead | None
try:
    from .compiled_head import frame as compiled_frame
except ImportError:  # no C compiler at install (setup.py)
    compiled_frame = None


class ResponseError(Exception):
    """The application sent a response the server must not put on the wire."""


def status_line(status: int) -> bytes:
    """`HTTP/1.1 <status> <reason>` with CRLF for a final status, cached."""
    line = STATUS_LINES.get(status)
    if line is None:
        if type(status) is not int or not 200 <= status <= 599:
            raise ResponseError(
                f"a response's status must be an int from 200 to 599, got {status!r}")
        line = STATUS_LINES[status] = f"HTTP/1.1 {status} \r\n".encode("latin-1")
    return line


class DateHeader:
    """The `date` and `server` header lines, rebuilt once a second by the worker's ticker."""

    __slots__ = ("date_line", "h2_fields", "lines", "server", "server_line", "value")

    def __init__(self, server: bytes = b"gunicorn") -> None:
        self.server = server
        self.server_line = b"server: " + server + CRLF if server else b""
        self.value = self.date_line = b""
        self.lines = 0
        # The same two fields for an HTTP/2 response head: (date, server) pairs.
        self.h2_fields: list[tuple[bytes, bytes]] = []
        self.refresh()

    def refresh(self) -> None:
        date = formatdate(usegmt=True).encode("ascii")
        self.date_line = b"date: " + date + CRLF
        self.h2_fields = [(b"date", date)] + ([(b"server", self.server)] if self.server else [])
        self.value = value = self.date_line + self.server_line
        self.lines = value.count(b"\n")

    def without(self, date: bool, server: bool) -> tuple[bytes, int]:
        """The block less the lines the app sent itself, and how many lines are left."""
        value = (b"" if date else self.date_line) + (b"" if server else self.server_line)
        return value, value.count(b"\n")


def _name_kind(name: bytes) -> int:
    """Classify a header name not seen before (validating it), remembering the answer."""
    kind = _NAME_KINDS.get(name.lower())
    if kind is None:
        if not isinstance(name, bytes) or not _TOKEN.fullmatch(name):
            raise ResponseError(f"invalid response header name {name!r}")
        kind = _PLAIN
    if len(_NAME_KINDS) < _NAME_KINDS_MAX:
        _NAME_KINDS[name] = kind
    return kind


class Framing:
    """How one response body is delimited, as decided by `frame_response_head`.

    The class attributes are the defaults; `frame_response_head` sets only what differs.
    """

    content_length: int | None = None
    chunked = False
    keep_alive = True
    no_body = False


def frame_response_head(status: int, headers: Iterable[tuple[bytes, bytes]], date: DateHeader,
                        framing: Framing, *, head_request: bool, http10: bool,
                        keep_alive: bool, body_length: int | None) -> bytes:
    """The response head; how its body is delimited goes into `framing`.

    The request side: `head_request` (no body), `http10` (no chunked coding; a kept
    connection is announced), `keep_alive` (what the request and server allow; the result,
    after the app's `connection`, is `framing.keep_alive`). `body_length`: the whole body's
    length when all of it is at hand, else None. Raises ResponseError for a status or header
    that must not be sent. Its steps are inline: it runs once per response.
    """
    line = STATUS_LINES.get(status)
    if compiled_frame is not None:  # the usual head in one C call; None: the long way
        head = compiled_frame(status, line, headers, date.value, _NAME_KINDS, framing,
                              head_request, http10, keep_alive, body_length)
        if head is not None:
            return head
    parts = [line if line is not None else status_line(status), date.value]
    lines = 2 + date.lines  # the status line, the date block and the final empty line
    app_length: bytes | None = None
    own_date = own_server = False
    try:  # TypeError, ValueError, AttributeError: the headers are not pairs of bytes
        # 1. The app's fields, in its order, less those the server frames itself.
        for name, value in headers:
            kind = _NAME_KINDS.get(name)
            if kind is None:
                kind = _name_kind(name)
            if kind:  # a field the server frames or states itself
                if kind == _CONTENT_LENGTH:
                    if app_length is not None:
                        raise ResponseError("more than one content-length header")
                    app_length = value
                    if status == 204:
                        continue  # RFC 9110 8.6: never on 204
                elif kind == _CONNECTION:  # the server states its own, after the app's close
                    if b"\r" in value or b"\n" in value or b"\0" in value:
                        raise ResponseError("response header value contains CR, LF or NUL")
                    keep_alive = keep_alive and b"close" not in value.lower()
                    continue
                elif kind == _TRANSFER_ENCODING:
                    continue  # the server frames the body itself
                else:  # RFC 9110 6.6.1: one Date (and one Server); the app's win
                    own_date = own_date or kind == _DATE
                    own_server = own_server or kind == _SERVER
            parts += (name, b": ", value, CRLF)
            lines += 1
        if own_date or own_server:
            parts[1], kept = date.without(own_date, own_server)
            lines -= date.lines - kept
        # 2. The body's delimiting: the app's length, the length at hand, chunked, or close.
        bodiless = status == 204 or status == 304 or head_request
        if bodiless:
            framing.no_body = True
        if app_length is not None:
            if not app_length.isdigit():
                raise ResponseError(f"invalid content-length {app_length!r}")
            framing.content_length = int(app_length)
        elif body_length is not None and status != 204 and status != 304 and (
                body_length or not head_request):  # HEAD: the length a GET would have
            framing.content_length = body_length
            parts += (b"content-length: ", b"%d" % body_length, CRLF)
            lines += 1
        elif bodiless:
            pass
        elif http10:
            keep_alive = False  # close-delimited: the body ends with the connection
        else:
            framing.chunked = True
            parts.append(b"transfer-encoding: chunked\r\n")
            lines += 1
        # 3. The server's own connection decision, and the head in one piece.
        if not keep_alive:
            framing.keep_alive = False
            parts.append(b"connection: close\r\n")
            lines += 1
        elif http10:
            parts.append(b"connection: keep-alive\r\n")
            lines += 1
        parts.append(CRLF)
        head = b"".join(parts)
    except (TypeError, ValueError, AttributeError) as exc:
        raise ResponseError(f"response headers must be (bytes, bytes) pairs: {exc}") from None
    # One scan of the whole head instead of one per value: a value carrying CR, LF or NUL
    # adds line breaks beyond the `lines` framed here (response splitting).
    if head.count(b"\n") != lines or head.count(b"\r") != lines or b"\0" in head:
        raise ResponseError("response header value contains CR, LF or NUL")
    return head


def chunk(data: bytes) -> list[bytes]:
    """One chunk of a chunked body, as pieces for `transport.writelines`."""
    return [b"%x\r\n" % len(data), data, CRLF]


def frame_early_hints(links: Iterable[bytes]) -> bytes:
    """A `103 Early Hints` interim head with one `link` field per value (RFC 8297); b""
    when there is none. Raises ResponseError for a value that is not bytes or carries CR,
    LF or NUL."""
    parts = [EARLY_HINTS]
    try:
        for link in links:
            if type(link) is not bytes or _FORBIDDEN_IN_VALUE.search(link):
                raise ResponseError(f"an early hint's link must be bytes without CR, LF or "
                                    f"NUL, got {link!r:.100}")
            parts += (b"link: ", link, CRLF)
    except TypeError:
        raise ResponseError(f"an early hint's links must be an iterable of bytes, got "
                            f"{links!r:.100}") from None
    if len(parts) == 1:
        return b""
    parts.append(CRLF)
    return b"".join(parts)


def frame_trailers(fields: Iterable[tuple[bytes, bytes]]) -> bytes:
    """The field lines of a trailer section (without the last chunk before them or the empty
    line after them); the framing and connection fields are left out. Raises ResponseError
    for a name that is not a token or a value that is not bytes or carries CR, LF or NUL."""
    parts: list[bytes] = []
    try:
        for name, value in fields:
            if type(name) is not bytes or not _TOKEN.fullmatch(name):
                raise ResponseError(f"invalid trailer name {name!r:.100}")
            if type(value) is not bytes or _FORBIDDEN_IN_VALUE.search(value):
                raise ResponseError(f"trailer {name!r:.40} has a value that is not bytes or "
                                    "carries CR, LF or NUL")
            if name.lower() not in NOT_IN_TRAILERS:
                parts += (name, b": ", value, CRLF)
    except (TypeError, ValueError):
        raise ResponseError(f"trailers must be (bytes, bytes) pairs, got {fields!r:.100}"
                            ) from None
    return b"".join(parts)


# HTTP/2 (RFC 9113 8.2.2): fields that are the connection's in HTTP/1.1 never appear; the
# names are sent lower-cased.
_H2_CONNECTION_FIELDS = frozenset((b"keep-alive", b"proxy-connection", b"upgrade"))
_H2_STATUS: dict[int, bytes] = {code: b"%d" % code for code in STATUS_LINES}
_H2_NAMES: dict[bytes, bytes] = {}


def frame_h2_head(status: int, headers: Iterable[tuple[bytes, bytes]], date: DateHeader,
                  framing: Framing, *, head_request: bool,
                  body_length: int | None) -> list[tuple[bytes, bytes]]:
    """An HTTP/2 response's header list (`:status` first, names lower-cased, the fields of
    HTTP/1.1's connection left out); how its body ends goes into `framing` (a length, or
    the end of the stream). The same rules as `frame_response_head`: ResponseError for a
    status or field that must not be sent."""
    code = _H2_STATUS.get(status)
    if code is None:
        status_line(status)  # raises for a status that is no final one
        code = _H2_STATUS[status] = b"%d" % status
    fields = [(b":status", code)]
    app_length: bytes | None = None
    own_date = own_server = False
    values = []
    try:
        for name, value in headers:
            kind = _NAME_KINDS.get(name)
            if kind is None:
                kind = _name_kind(name)
            if kind:
                if kind == _CONTENT_LENGTH:
                    if app_length is not None:
                        raise ResponseError("more than one content-length header")
                    app_length = value
                    continue  # stated below, once
                if kind in (_CONNECTION, _TRANSFER_ENCODING):
                    continue
                own_date = own_date or kind == _DATE
                own_server = own_server or kind == _SERVER
            lower = _H2_NAMES.get(name)
            if lower is None:
                lower = name.lower()
                if len(_H2_NAMES) < _NAME_KINDS_MAX:
                    _H2_NAMES[name] = lower
            if lower in _H2_CONNECTION_FIELDS:
                continue
            values.append(value)
            fields.append((lower, value))
        joined = b"".join(values)
    except (TypeError, ValueError, AttributeError) as exc:
        raise ResponseError(f"response headers must be (bytes, bytes) pairs: {exc}") from None
    if b"\r" in joined or b"\n" in joined or b"\0" in joined:
        raise ResponseError("response header value contains CR, LF or NUL")
    bodiless = status == 204 or status == 304 or head_request
    if bodiless:
        framing.no_body = True
    if app_length is not None:
        if not app_length.isdigit():
            raise ResponseError(f"invalid content-length {app_length!r}")
        framing.content_length = int(app_length)
        if status != 204:
            fields.append((b"content-length", app_length))
    elif body_length is not None and status != 204 and status != 304 and (
            body_length or not head_request):
        framing.content_length = body_length
        fields.append((b"content-length", b"%d" % body_length))
    if own_date or own_server:
        fields += [field for field in date.h2_fields
                   if not (own_date if field[0] == b"date" else own_server)]
    else:
        fields += date.h2_fields
    return fields
