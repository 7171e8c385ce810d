"""The chunked transfer coding of request bodies (RFC 9112 section 7.1), sans-I/O.

Bytes in; body pieces out through a callback; the bytes after the final CRLF back to the
caller. Strict where smuggling hides (sizes are hex digits only, lines end in CRLF, chunk data
is followed by CRLF, forbidden trailer fields are refused) and as permissive as the grammar
where clients differ (whitespace around extensions). Every outcome is the same however the
bytes are split: a line is judged too long by the bytes before its LF, whether they came in
one piece or many.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import NoReturn

from .errors import BadRequest, ContentTooLarge, HeadersTooLarge

# A chunk-size line: hex size, then extensions with optional whitespace (BWS) around ; and =.
_TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_QUOTED = rb'"(?:[^"\\\r\n]|\\[^\r\n])*"'
_EXTENSION = (rb"[ \t]*;[ \t]*" + _TOKEN
              + rb"(?:[ \t]*=[ \t]*(?:" + _TOKEN + rb"|" + _QUOTED + rb"))?")
_SIZE_LINE = re.compile(rb"([0-9A-Fa-f]{1,16})((?:" + _EXTENSION + rb")*)")
_FIELD_NAME = re.compile(_TOKEN)
# RFC 9110 section 6.5.1: fields a trailer may not carry.
_FORBIDDEN_TRAILERS = frozenset(
    (b"host", b"content-length", b"transfer-encoding", b"trailer", b"authorization", b"te"))
# Longest chunk-size line, its extensions and CRLF included. No app sees an extension (ASGI
# and WSGI have no place for one), so a line needs little room; it was the bound on a line
# split across reads before it held for every line.
MAX_SIZE_LINE = 8192
# Longest trailer field line, CRLF included, when the caller gives none: Gunicorn's default
# limit_request_field_size, which the parsers pass (a trailer is a header field that comes late).
MAX_TRAILER_LINE = 8190

_SIZE, _DATA, _DATA_END, _TRAILER = range(4)


class ChunkedDecoder:
    """Decodes one chunked body; `feed` returns the bytes after it once it is complete."""

    __slots__ = ("crlf_seen", "left", "line", "max_size", "max_trailer_line", "max_trailers",
                 "on_body", "size", "state", "trailers")

    def __init__(self, on_body: Callable[[bytes], None], max_trailers: int = 100,
                 max_size: int = 0, max_trailer_line: int = MAX_TRAILER_LINE) -> None:
        self.on_body = on_body
        self.max_trailers = max_trailers
        self.max_size = max_size  # of the whole body, 0: no limit
        self.max_trailer_line = max_trailer_line  # limit_request_field_size
        self.size = 0
        self.state = _SIZE
        self.line = bytearray()  # a line whose LF has not arrived
        self.left = 0
        self.crlf_seen = 0
        self.trailers = 0

    def feed(self, data: bytes) -> bytes | None:
        """Consume `data`; None while the body goes on, else what follows the body."""
        while data:
            state = self.state
            if state == _DATA:
                left = self.left
                if len(data) <= left:
                    self.left = left - len(data)
                    self.on_body(data)
                    if not self.left:
                        self.state = _DATA_END
                    return None
                self.on_body(data[:left])
                data = data[left:]
                self.left = 0
                self.state = _DATA_END
            elif state == _DATA_END:
                expected = b"\r\n"[self.crlf_seen:]
                got = data[:len(expected)]
                if not expected.startswith(got):
                    raise BadRequest("chunk data not followed by CRLF")
                data = data[len(got):]
                self.crlf_seen += len(got)
                if self.crlf_seen == 2:
                    self.crlf_seen = 0
                    self.state = _SIZE
            else:
                # A line is too long once the bytes before its LF reach the limit (the line
                # with its LF would be over it): the same test on the same bytes, whether
                # they are all here or still coming.
                held = len(self.line)
                limit = (MAX_SIZE_LINE if state == _SIZE else self.max_trailer_line) - held
                end = data.find(b"\n", 0, limit)
                if end < 0:
                    if len(data) >= limit:
                        self._too_long(state)
                    self.line += data
                    return None
                if held:
                    line = bytes(self.line) + data[:end + 1]
                    self.line.clear()
                else:
                    line = data[:end + 1]
                data = data[end + 1:]
                if len(line) < 2 or line[-2:-1] != b"\r":
                    raise BadRequest("chunk line ends in a bare LF")
                line = line[:-2]
                if b"\r" in line or b"\0" in line:
                    raise BadRequest("CR or NUL inside a chunk line")
                if state == _SIZE:
                    self._size(line)
                elif not line:
                    return data  # the empty line after the trailers ends the body
                else:
                    self._trailer(line)
        return None

    def _too_long(self, state: int) -> NoReturn:
        if state == _SIZE:
            raise BadRequest(f"chunk-size line over {MAX_SIZE_LINE} bytes (extensions included)")
        raise HeadersTooLarge(
            f"trailer field over {self.max_trailer_line} bytes, limit_request_field_size is "
            f"{self.max_trailer_line}")

    def _size(self, line: bytes) -> None:
        match = _SIZE_LINE.fullmatch(line)
        if match is None:
            raise BadRequest(f"invalid chunk size line {line[:40]!r}")
        size = int(match.group(1), 16)
        self.size += size
        if self.size > self.max_size > 0:
            raise ContentTooLarge(
                f"chunked body of at least {self.size} bytes is over max_body_size "
                f"{self.max_size}")
        if size:
            self.left = size
            self.state = _DATA
        else:
            self.state = _TRAILER

    def _trailer(self, line: bytes) -> None:
        self.trailers += 1
        if self.trailers > self.max_trailers:
            raise HeadersTooLarge(f"more than {self.max_trailers} trailer fields")
        name, colon, _value = line.partition(b":")
        if not colon or not _FIELD_NAME.fullmatch(name):
            raise BadRequest(f"invalid trailer field {line[:40]!r}")
        if name.lower() in _FORBIDDEN_TRAILERS:
            raise BadRequest(f"{name.decode('latin-1')} is not allowed in a trailer")
