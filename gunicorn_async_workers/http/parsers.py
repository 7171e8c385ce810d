"""Parser adapters: turn a parser's callbacks or events into four calls on the protocol.

The protocol (`http/protocol.py`) implements `RequestListener`. An adapter feeds bytes to a
concrete parser and calls `on_request_head(adapter)` once the head is complete (the adapter
itself carries the parsed head, so no object is built per request), `on_body(data)` for each
body piece, and `on_request_end()` when the message is complete. Errors are raised from
`feed` as `RequestError`s carrying their status. The rules every parser shares (limits and
Gunicorn's header policy) live once, in `HeadPolicy`.

`feed` is a dispatch: the byte stream is always in one `Stage`, and each stage has its reader
(`ParserAdapter._READERS`), which consumes what it can and hands the rest back.

Errors: the listener never raises; judged errors are recorded, then feed raises them. A rule
broken inside an llhttp callback is recorded in `ParserAdapter.error` before llhttp is
stopped (by raising it: httptools has no other way to stop), and `feed` raises the recorded
error, or `BadRequest` for llhttp's own parse errors; nothing is dug out of an exception's
`__context__`. Until the protocol's listener calls are guaranteed not to raise, a
`RequestError` raised by the listener inside a callback is recorded the same way.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from typing import ClassVar, Protocol

import h11
import httptools

from .chunked import ChunkedDecoder
from .errors import (
    BadRequest,
    ContentTooLarge,
    ExpectationFailed,
    HeadersTooLarge,
    RequestError,
    RequestLineTooLong,
    UnsupportedTransferCoding,
)

_HOST = b"host"
_CONTENT_TYPE = b"content-type"
_CONTENT_LENGTH = b"content-length"
# llhttp refuses a Content-Length over 2**64 - 1; the shared policy holds both parsers to it.
_MAX_CONTENT_LENGTH = (1 << 64) - 1
_CONTENT_LENGTH_DIGITS = 20  # of 2**64 - 1; longer values may still be leading zeros
_TRANSFER_ENCODING = b"transfer-encoding"
_EXPECT = b"expect"
_UPGRADE = b"upgrade"
_TE = b"te"
# RFC 9110 section 5.3: fields with a single member; a repeat makes the message ambiguous.
_SINGLETONS = frozenset((_CONTENT_TYPE,))  # Host is tracked apart: it comes every time
# RFC 3986 absolute-URI as a request target: scheme "://" authority, then path or query.
_ABSOLUTE_FORM = re.compile(
    rb"[A-Za-z][A-Za-z0-9+.\-]*://(?:[A-Za-z0-9\-._~%!$&'()*+,;=:]*@)?"
    rb"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~%!$&'()*+,;=]*)(?::[0-9]*)?(?:[/?].*)?")
# RFC 9112 3.2.3 authority-form (CONNECT): host ":" port.
_AUTHORITY_FORM = re.compile(
    rb"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~%!$&'()*+,;=]*):[0-9]+")
# RFC 9110 section 5.6.2 token, for field names the parser was told to be lenient about.
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Methods llhttp parses itself; any other token method reaches llhttp as GET, and the real
# one is restored from the request line (Gunicorn accepts any uppercase token method).
_LLHTTP_METHODS = frozenset(
    b"DELETE GET HEAD POST PUT CONNECT OPTIONS TRACE COPY LOCK MKCOL MOVE PROPFIND PROPPATCH "
    b"SEARCH UNLOCK BIND REBIND UNBIND ACL REPORT MKACTIVITY CHECKOUT MERGE M-SEARCH NOTIFY "
    b"SUBSCRIBE UNSUBSCRIBE PATCH PURGE MKCALENDAR LINK UNLINK SOURCE QUERY".split())
_CONVENTIONAL_METHOD = re.compile(rb"[A-Z0-9!$%&'*+\-.^_`|~]{3,20}")
# The fields `police` reads (TE only for whether the client takes trailers).
_POLICY_NAMES = frozenset((_CONTENT_TYPE, _CONTENT_LENGTH, _TRANSFER_ENCODING, _EXPECT, _TE))
_WHITESPACE = (b" ", b"\t")
# The watched fields `compiled_head.scan` judges itself.
_SCANNED_NAMES = frozenset((_CONTENT_TYPE, _CONTENT_LENGTH))
# What `compiled_head.scan` returns for a head it read: its end, method, target, version,
# fields, Host, whether the connection stays open, Content-Length, and the scheme its
# scheme headers say (for a trusted peer; None without one).
ScannedHead = tuple[int, str, bytes, str, list[tuple[bytes, bytes]], bytes | None, bool,
                    int | None, str | None]
ScanHead = Callable[[bytes, int, int, int, frozenset[bytes], dict[bytes, bytes]],
                    ScannedHead | None]
_NO_SCHEME_HEADERS: dict[bytes, bytes] = {}
compiled_scan: ScanHead | None
try:
    from .compiled_head import scan as compiled_scan
except ImportError:  # built where a C compiler was at install (setup.py): else the long way
    compiled_scan = None


def compiled_head_problem() -> str | None:
    """The boot warning for a worker class that reads heads with httptools where the
    compiled module was not built (None where it was)."""
    if compiled_scan is not None:
        return None
    return ("the compiled head reader (http/compiled_head.c) was not built when this package "
            "was installed, for want of a C compiler: request heads are read and framed in "
            "Python, about 3 µs more per request; reinstall it where a C compiler and "
            "Python's headers are at hand for the fast path")
# Method names as llhttp reports them, decoded once.
_METHOD_NAMES = {m: m.decode("ascii") for m in (
    b"GET", b"POST", b"PUT", b"DELETE", b"HEAD", b"OPTIONS", b"PATCH", b"CONNECT", b"TRACE")}


class Stage(enum.IntEnum):
    """Where the byte stream is, between one message and the next; each has its reader.

    An IntEnum: its hash is int's, so looking up the reader costs no Python call (Enum's
    own `__hash__` is one).
    """

    LINE = 0  # between messages: a request line starts here (its start may be held)
    FIELDS = 1  # the request line is judged; the head goes to the parser up to its blank line
    BODY = 2  # Content-Length bytes still to come (`body_left`)
    CHUNKED = 3  # a chunked body, through `decoder`
    UPGRADED = 4  # the request left HTTP/1.1: what follows is kept in `upgrade_data`
    CLOSED = 5  # the last request closes the connection: more bytes are refused


_LINE, _FIELDS, _BODY, _CHUNKED, _UPGRADED, _CLOSED = Stage


class NotRaised(Exception):
    """In place of an exception class a parser never raises."""


class RequestListener(Protocol):
    """What a parser adapter calls; implemented by `HttpProtocol`."""

    def on_request_head(self, head: ParserAdapter) -> RequestError | None:
        """The head is complete: None, or the error that refuses the request (the adapter
        records it in `error` and stops; the listener answers it from `feed`'s raise)."""
        ...
    def on_body(self, data: bytes) -> None: ...
    def on_request_end(self) -> None: ...


class HeadPolicy:
    """Limits and header rules shared by every parser, precomputed from the frozen config.

    `scheme_headers` maps a lower-cased header name to the value that means "https"; it is
    only consulted for peers in `forwarded_allow_ips` (the adapter is told per connection).
    """

    __slots__ = (
        "allow_underscore",
        "any_forwarder",
        "drop_underscore",
        "forwarder_headers",
        "lenient_headers",
        "limit_fields",
        "limit_field_size",
        "limit_line",
        "max_body_size",
        "casefold_method",
        "max_head_bytes",
        "permit_unconventional_method",
        "require_host",
        "scheme_headers",
        "watch_trusted",
        "watch_untrusted",
    )

    def __init__(
        self,
        *,
        limit_line: int,
        limit_fields: int,
        limit_field_size: int,
        scheme_headers: dict[bytes, bytes],
        forwarder_headers: frozenset[bytes],
        header_map: str,
        lenient_headers: bool = False,
        permit_unconventional_method: bool = False,
        casefold_method: bool = False,
        max_body_size: int = 0,
        require_host: bool = False,
    ) -> None:
        self.lenient_headers = lenient_headers
        self.require_host = require_host
        self.permit_unconventional_method = permit_unconventional_method
        self.casefold_method = casefold_method
        self.max_body_size = max_body_size
        self.limit_line = limit_line
        self.limit_fields = limit_fields
        self.limit_field_size = limit_field_size
        # Everything a head may occupy before it is complete, request line included.
        self.max_head_bytes = limit_line + 2 + limit_fields * (limit_field_size + 2) + 2
        self.scheme_headers = scheme_headers
        self.forwarder_headers = forwarder_headers
        self.allow_underscore = header_map == "dangerous"
        # forwarder_headers exempt names only for peers in forwarded_allow_ips (as Gunicorn)
        self.any_forwarder = b"*" in forwarder_headers
        self.drop_underscore = header_map == "drop"
        self.watch_untrusted = _POLICY_NAMES
        self.watch_trusted = _POLICY_NAMES | frozenset(scheme_headers)


class HeadFields:
    """A request head's fields as every HTTP version shares them, and the header policy
    (`HeadPolicy`) applied to each field as it arrives (`on_header`).

    Attributes: `method` (str), `target` (bytes), `http_version` (str), `headers` (list of
    (lower-cased name, value)), `keep_alive`, `expect_continue`, `upgrade` (the Upgrade
    header's value or None), `scheme` ("http" or "https", after trusted scheme headers),
    `chunked`, `content_length`, `te_trailers` (a TE field lists `trailers`: the client
    takes a response's trailer section), `host`, `trusted` (the peer is in
    `forwarded_allow_ips`). The HTTP/1.x parser adapters and the HTTP/2 head
    (`http/h2_head.py`) build on it.
    """

    def __init__(self, policy: HeadPolicy, *, trusted: bool, scheme: str) -> None:
        self.policy = policy
        self.trusted = trusted
        self.base_scheme = scheme
        self.watch = policy.watch_trusted if trusted else policy.watch_untrusted
        self.method = ""
        self.target = b""
        self.http_version = "1.1"
        self.headers: list[tuple[bytes, bytes]] = []
        self.keep_alive = True
        self.expect_continue = False
        self.upgrade: bytes | None = None
        self.scheme = scheme
        self.chunked = False
        self.te_trailers = False
        self.content_length: int | None = None
        self.codings: list[bytes] | None = None
        self.host: bytes | None = None
        self._seen: set[bytes] | None = None
        self._scheme_set = False
        self._policed = False  # whether `police` changed anything since the last reset
        # The RequestError that refused the request: recorded by a parser callback before
        # the parser is stopped (then `feed` raises it), or by `feed` as it raises one judged
        # elsewhere. The connection ends with it.
        self.error: RequestError | None = None

    def reset_policed(self) -> None:
        """The rarely-set fields of a head, reset before the next head once `police` set one."""
        self._policed = False
        self.expect_continue = False
        self.upgrade = None
        self.scheme = self.base_scheme
        self.chunked = False
        self.te_trailers = False
        self.content_length = None
        self.codings = None
        self._seen = None
        self._scheme_set = False

    def police(self, name: bytes, value: bytes) -> bool:
        """Apply the header rules to a watched or underscored name; False drops the field."""
        self._policed = True
        policy = self.policy
        if b"_" in name and not policy.allow_underscore and not (
                self.trusted and (policy.any_forwarder or name in policy.forwarder_headers)):
            if policy.drop_underscore:
                return False
            raise BadRequest(f"header name {name!r} contains '_' (header_map is 'refuse')")
        if name in _SINGLETONS:
            seen = self._seen
            if seen is None:
                seen = self._seen = set()
            if name in seen:
                raise BadRequest(f"repeated {name.decode()} header")
            seen.add(name)
        elif name == _CONTENT_LENGTH:
            if self.content_length is not None or not value.isdigit():
                raise BadRequest(f"invalid or repeated content-length {value!r}")
            if (len(value) > _CONTENT_LENGTH_DIGITS
                    and len(value.lstrip(b"0")) > _CONTENT_LENGTH_DIGITS):
                # Counted before int(): Python refuses to convert over 4,300 digits.
                raise BadRequest(f"content-length of {len(value)} digits")
            self.content_length = length = int(value)
            if length > _MAX_CONTENT_LENGTH:
                raise BadRequest(f"content-length {length} does not fit in 64 bits")
            if length > policy.max_body_size > 0:
                raise ContentTooLarge(
                    f"content-length {length} is over max_body_size {policy.max_body_size}")
        elif name == _TRANSFER_ENCODING:
            codings = self.codings
            if codings is None:
                codings = self.codings = []
            codings.extend(c.strip() for c in value.lower().split(b","))
            self.chunked = True  # settled in finish_head, once every line is in
        elif name == _EXPECT:
            if value.lower() != b"100-continue":
                raise ExpectationFailed(f"unsupported expectation {value!r}")
            self.expect_continue = True
        elif name == _TE:
            # RFC 9110 10.1.4: a list of codings, each with parameters, and `trailers`.
            self.te_trailers = self.te_trailers or any(
                member.partition(b";")[0].strip() == b"trailers"
                for member in value.lower().split(b","))
        elif self.trusted and name in self.policy.scheme_headers:
            scheme = "https" if value == self.policy.scheme_headers[name] else "http"
            if self._scheme_set and scheme != self.scheme:
                raise BadRequest("conflicting secure scheme headers")
            self._scheme_set = True
            self.scheme = scheme
        return True

    def on_header(self, name: bytes, value: bytes) -> None:
        """One header field (an llhttp callback; h11's adapter calls it for each field)."""
        policy = self.policy
        headers = self.headers
        try:
            if len(headers) >= policy.limit_fields:
                raise HeadersTooLarge(
                    f"more than {policy.limit_fields} header fields (limit_request_fields)")
            if policy.lenient_headers:
                name = name.rstrip(b" \t")
                if not _TOKEN.fullmatch(name):
                    raise BadRequest(f"invalid header name {name[:40]!r}")
            elif len(name) + len(value) + 4 > policy.limit_field_size:
                raise HeadersTooLarge(
                    f"header {name[:40]!r} is {len(name) + len(value) + 4} bytes, "
                    f"limit_request_field_size is {policy.limit_field_size}")
            name = name.lower()
            if value[-1:] in _WHITESPACE:
                value = value.rstrip(b" \t")  # RFC 9110 5.5: llhttp keeps trailing whitespace
            if name == _HOST:
                if self.host is not None:
                    raise BadRequest("repeated host header")
                self.host = value
            elif (name in self.watch or b"_" in name) and not self.police(name, value):
                return
        except RequestError as error:
            self.error = error  # recorded; raised to stop llhttp, then raised again by feed
            raise
        headers.append((name, value))


class ParserAdapter(HeadFields):
    """The parsed head of the current request, the shared per-header policy, and the framing
    of the byte stream into messages (`feed`), the same for every parser.

    Attributes read by the protocol in `on_request_head`: `method` (str), `target` (bytes),
    `http_version` (str), `headers` (list of (lower-cased name, value)), `keep_alive`,
    `expect_continue`, `upgrade` (the Upgrade header's value or None), `scheme` ("http" or
    "https", after trusted scheme headers), `chunked`, `content_length`, `te_trailers` (a TE
    field lists `trailers`: the client takes a chunked response's trailer section). After a
    feed: `upgraded` (the request left HTTP/1.1) and `upgrade_data` (the bytes after it).
    """

    # What each parser supplies: the head in pieces before its blank line arrived
    # (`feed_head_piece`) and up to it (`feed_head`, which ends in `on_request_head` and
    # sets the stage the body needs), Content-Length body pieces (`feed_body`), and the end
    # of a chunked body the shared decoder read (`end_chunked`).
    feed_head_piece: Callable[[bytes], None]
    feed_head: Callable[[bytes], None]
    feed_body: Callable[[bytes], None]
    end_chunked: Callable[[], None]
    # What `feed_head` raises when a head asks to leave HTTP/1.1, and on a malformed head.
    upgrade_exception: type[Exception] = NotRaised
    parse_exception: type[Exception] = NotRaised
    # The compiled reading of a plain head (`compiled_head.scan`), where the parser has one.
    scan: ScanHead | None = None
    declined: frozenset[bytes] = frozenset()  # the watched fields `scan` leaves to the policy
    scanned_schemes: dict[bytes, bytes] = _NO_SCHEME_HEADERS  # the scheme headers `scan` reads

    def __init__(self, listener: RequestListener, policy: HeadPolicy, *,
                 trusted: bool, scheme: str) -> None:
        super().__init__(policy, trusted=trusted, scheme=scheme)
        self.listener = listener
        # The listener's calls, looked up once (httptools also looks `on_body` up here).
        self.on_request_head = listener.on_request_head
        self.on_body = listener.on_body
        self.on_request_end = listener.on_request_end
        self.raw_head = b""  # the head as received, kept only for lenient field sizes
        self.method_override: str | None = None  # a method the parser was shown as GET
        # The framing of the byte stream (see `Stage`).
        self.state = _LINE
        self.held = b""  # LINE: the start of a request line, held until its CRLF has come
        self.tail = b""  # FIELDS: the last bytes fed of a head (a CRLFCRLF may straddle)
        self.head_bytes = 0  # FIELDS: the bytes fed of a head whose blank line has not come
        self.body_left = 0  # BODY: Content-Length bytes still to come
        self.decoder: ChunkedDecoder | None = None  # CHUNKED
        # UPGRADED: a plain attribute too, for the protocol reads it after every feed.
        self.upgraded = False
        self.upgrade_data = b""

    def finish_head(self) -> None:
        """Checks that need the whole head (RFC 9112 sections 3.2, 6.1 and 6.3).

        An HTTP/1.1 request without Host is refused unless `require_host` is off (Gunicorn
        accepts it, and its corpus lists such requests as valid); a repeated Host is refused.
        """
        codings = self.codings
        if codings is not None:
            if codings[-1] != b"chunked":
                # RFC 9112 6.3: the body's length cannot be known: 400 and close.
                raise BadRequest(
                    f"transfer-encoding {b', '.join(codings)!r} does not end in chunked")
            if b"chunked" in codings[:-1]:
                raise BadRequest("chunked applied more than once")
            if len(codings) > 1:
                # RFC 9112 6.1: a coding the server does not implement (gzip, identity, ...)
                # is answered 501; Gunicorn passes gzip and identity on still encoded.
                raise UnsupportedTransferCoding(
                    f"transfer-encoding {b', '.join(codings)!r}: only chunked is implemented")
            if self.content_length is not None:
                raise BadRequest("both content-length and transfer-encoding")
            if self.http_version == "1.0":
                raise BadRequest("transfer-encoding in an HTTP/1.0 request")
        if self.http_version == "1.0":
            self.expect_continue = False  # RFC 9110 10.1.1: ignored in HTTP/1.0
        elif self.http_version != "1.1":
            raise BadRequest(f"unsupported HTTP version {self.http_version}")
        elif self.host is None and self.policy.require_host:
            raise BadRequest("an HTTP/1.1 request without Host (RFC 9112 3.2; the "
                             "require_host option accepts it)")
        target = self.target
        if target[:1] == b"/":
            if self.method == "CONNECT":
                raise BadRequest("CONNECT needs an authority-form target")
        elif target == b"*":
            if self.method != "OPTIONS":
                raise BadRequest("the asterisk-form target is only for OPTIONS")
        elif self.method == "CONNECT":
            if not _AUTHORITY_FORM.fullmatch(target):
                raise BadRequest(f"invalid CONNECT target {target[:100]!r}")
        elif not _ABSOLUTE_FORM.fullmatch(target):
            raise BadRequest(f"invalid request target {target[:100]!r}")

    # -- shared by every adapter -------------------------------------------------------
    def _check_raw_field_sizes(self) -> None:
        """With lenient headers, a field's size is that of its raw lines, folds included."""
        limit = self.policy.limit_field_size
        head = self.raw_head
        self.raw_head = b""
        size = 0
        for line in head.split(b"\r\n")[1:]:
            if line[:1] in (b" ", b"\t"):
                size += len(line) + 2
            else:
                size = len(line) + 2
            if size > limit:
                raise HeadersTooLarge(
                    f"a header field is {size} bytes, limit_request_field_size is {limit}")

    def _check_request_line(self, data: bytes, end: int) -> bytes:
        """A request line off the usual path, judged as Gunicorn judges it: one whose CRLF
        has not come (`end` < 0: held), extra empty lines (RFC 9112 2.2 allows one), extra
        spaces in the request line (3), and methods llhttp does not know. `end` is where the
        first CRLF is. Returns the bytes from the request line on, as llhttp can parse them
        (empty when more must arrive first)."""
        if end < 0:
            self._hold_request_line(data)
            return b""
        if end == 0:
            if data[2:4] == b"\r\n":
                raise BadRequest("more than one empty line before the request line")
            if b"\n" in data[2:4]:
                raise BadRequest("bare LF before the request line")
            if len(data) > 2:
                return self.feed_after_crlf(data[2:])
            self.held = data  # judged once the next bytes come
            return b""
        line = data[:end]
        if line.count(b" ") != 2 or b"  " in line:
            raise BadRequest(f"request line {line[:100]!r} is not three parts")
        space = line.find(b" ")
        method = line[:space]
        if method in _LLHTTP_METHODS:
            return data
        policy = self.policy
        if not policy.permit_unconventional_method and not _CONVENTIONAL_METHOD.fullmatch(
                method):
            raise BadRequest(f"invalid method {method[:40]!r}")
        if not _TOKEN.fullmatch(method):
            raise BadRequest(f"invalid method {method[:40]!r}")
        name = method.decode("ascii")
        self.method_override = name.upper() if policy.casefold_method else name
        return b"GET" + data[space:]

    def _hold_request_line(self, data: bytes) -> None:
        """Keep a request line whose CRLF has not arrived; refuse it when it cannot be one."""
        limit = self.policy.limit_line + 2
        if b"\n" in data[:limit]:
            raise BadRequest("bare LF in or before the request line")
        if len(data) >= limit:
            raise RequestLineTooLong(
                f"request line exceeds limit_request_line ({limit - 2} bytes)")
        self.held = data

    def feed_after_crlf(self, data: bytes) -> bytes:
        """The bytes after one allowed leading CRLF: checked as a fresh request line."""
        end = data.find(b"\r\n", 0, self.policy.limit_line + 2)
        if end < 0:
            self._hold_request_line(data)
            self.held = b"\r\n" + data  # judged again, CRLF included, with the next bytes
            return b""
        if end == 0:
            raise BadRequest("more than one empty line before the request line")
        return self._check_request_line(data, end)

    # -- framing: one message at a time, the same for every parser ----------------------
    def partial(self) -> bool:
        """Whether part of a request head has arrived and the rest has not."""
        return self.state is _FIELDS or bool(self.held)

    def feed(self, data: bytes) -> None:
        """Hand `data` to the reader of each stage it goes through (see `Stage`); a
        RequestError refuses the request, and is kept in `error`."""
        readers = self._READERS
        try:
            while data:
                data = readers[self.state](self, data)
        except RequestError as error:
            self.error = error
            raise

    def refusal(self, exc: Exception) -> RequestError:
        """What refuses the request once the parser stopped with `exc`: the error recorded
        by a callback, else the parser's own complaint, as BadRequest."""
        if self.error is None:
            self.error = BadRequest(f"malformed request: {exc}")
        return self.error

    def read_head(self, data: bytes) -> bytes:
        """LINE and FIELDS: a request line, judged once whole, then its head up to the blank
        line, fed to the parser; the body's stage follows, or the end of a bodiless message.

        One reader for both stages, so that a head that comes whole (the usual case) costs
        one call: the request line's checks are inline when it is the usual line (a method
        llhttp knows, single spaces), and message ends are too (no llhttp callback)."""
        if self.state is _LINE:
            held = self.held
            scan = self.scan
            if held:
                data = held + data
                self.held = b""
                scan = None  # a line that came in pieces: not the usual case, nor rescanned
            if scan is not None:
                policy = self.policy
                scanned = scan(data, policy.limit_line, policy.limit_fields,
                               policy.limit_field_size, self.declined, self.scanned_schemes)
                if scanned is not None:
                    return self._read_scanned(data, scanned)
            end = data.find(b"\r\n", 0, self.policy.limit_line + 2)
            space = data.find(b" ", 0, end)
            if not (0 < space < end and data[:space] in _LLHTTP_METHODS
                    and data.count(b" ", 0, end) == 2):
                data = self._check_request_line(data, end)
                if not data:
                    return b""  # held until more bytes come
                end = data.find(b"\r\n")
                space = data.find(b" ")
            self.target = data[space + 1:data.find(b" ", space + 1, end)]
            self.headers = []  # a new list: the listener may keep the last one
            self.host = None
            if self._policed:
                self.reset_policed()
            self.state = _FIELDS
        tail = self.tail
        if tail:
            end = (tail + data).find(b"\r\n\r\n")
            cut = end + 4 - len(tail) if end >= 0 else -1
        else:
            cut = data.find(b"\r\n\r\n")
            cut = cut + 4 if cut >= 0 else -1
        if cut < 0:
            self._feed_head_part(data, tail)
            return b""
        if tail:
            self.tail = b""
            self.head_bytes = 0
        head = data[:cut]
        if self.policy.lenient_headers:
            self.raw_head += head
        try:
            self.feed_head(head)
        except self.upgrade_exception:  # llhttp stops after a head that leaves HTTP/1.1
            self.state = _UPGRADED
        except self.parse_exception as exc:
            raise self.refusal(exc) from None
        state = self.state
        if state is _FIELDS:  # no body: the message ends with its head
            self.state = _LINE if self.keep_alive else _CLOSED
            self.on_request_end()
        elif state is _UPGRADED:
            self.upgraded = True
            self.on_request_end()
        return data[cut:]

    def _read_scanned(self, data: bytes, scanned: ScannedHead) -> bytes:
        """A head `scan` read whole: judged and listened to as `on_headers_complete` does
        for llhttp's (`scan` declines every head the policy would change or refuse, but for
        the limits that need the numbers: max_body_size, and Host where it is required)."""
        (end, self.method, self.target, version, self.headers, host, keep_alive, length,
         scheme) = scanned
        if self._policed:
            self.reset_policed()
        if scheme is not None:  # a trusted proxy's scheme headers, agreeing (as `police`)
            self._policed = self._scheme_set = True
            self.scheme = scheme
        self.http_version = version
        self.host = host
        self.keep_alive = keep_alive
        if length is not None:
            self._policed = True  # reset before the next head
            self.content_length = length
            if length > self.policy.max_body_size > 0:
                raise ContentTooLarge(f"content-length {length} is over max_body_size "
                                      f"{self.policy.max_body_size}")
        if host is None or version != "1.1":
            self.finish_head()
        if length:
            self.body_left = length
            self.state = _BODY
            self.feed_body = self.on_body  # llhttp never saw this head: nor its body
        else:
            self.state = _FIELDS
        refused = self.on_request_head(self)
        if refused is not None:
            raise refused  # recorded by feed
        if self.state is _FIELDS:  # no body: the message ends with its head
            self.state = _LINE if keep_alive else _CLOSED
            self.on_request_end()
        return data[end:]

    def _feed_head_part(self, data: bytes, tail: bytes) -> None:
        """Part of a head whose blank line has not come: to the parser, which may refuse bad
        bytes as they come, and counted against the whole head's limit."""
        if self.policy.lenient_headers:
            self.raw_head += data
        self.feed_head_piece(data)
        self.tail = (tail + data)[-3:]
        self.head_bytes += len(data)
        if self.head_bytes > self.policy.max_head_bytes:
            raise HeadersTooLarge(
                f"request head exceeds {self.policy.max_head_bytes} bytes "
                "(limit_request_fields x limit_request_field_size)")

    def read_body(self, data: bytes) -> bytes:
        """BODY: Content-Length bytes to the parser; the message ends with the last."""
        left = self.body_left
        if len(data) < left:
            self.body_left = left - len(data)
            self.feed_body(data)
            return b""
        self.body_left = 0
        # Set before the last piece: llhttp may leave HTTP/1.1 after it (an upgrade's body).
        self.state = _LINE if self.keep_alive else _CLOSED
        self.feed_body(data[:left])
        self.on_request_end()
        return data[left:]

    def read_chunked(self, data: bytes) -> bytes:
        """CHUNKED: the body through the shared decoder; the message ends with it."""
        decoder = self.decoder
        assert decoder is not None  # set with the stage
        rest = decoder.feed(data)
        if rest is None:
            return b""
        self.decoder = None
        self.state = _LINE if self.keep_alive else _CLOSED
        self.end_chunked()
        self.on_request_end()
        return rest

    def read_upgraded(self, data: bytes) -> bytes:
        """UPGRADED: what follows is not HTTP/1.1; kept for the protocol to hand on or refuse."""
        self.upgrade_data += data
        return b""

    def read_closed(self, data: bytes) -> bytes:
        """CLOSED: the last request closes the connection; nothing may follow it."""
        raise BadRequest("bytes after a request that closes the connection")

    _READERS: ClassVar[dict[Stage, Callable[[ParserAdapter, bytes], bytes]]] = {
        Stage.LINE: read_head,
        Stage.FIELDS: read_head,
        Stage.BODY: read_body,
        Stage.CHUNKED: read_chunked,
        Stage.UPGRADED: read_upgraded,
        Stage.CLOSED: read_closed,
    }


class HttptoolsParser(ParserAdapter):
    """httptools (llhttp) adapter.

    llhttp parses each request head and Content-Length body, fed exactly one message's
    bytes at a time, so message boundaries are always known here: the checks llhttp does
    not make (methods it does not know, extra spaces or empty lines before a request line,
    raw field sizes with obsolete folding) run at every message, and chunked bodies go to
    our own `ChunkedDecoder`, whose grammar follows RFC 9112 where llhttp's is narrower.

    Its callbacks are `on_header` and `on_headers_complete` only (both record a
    RequestError before it stops llhttp), and body pieces go straight to the listener's
    `on_body`, which raises none: the request target is read from the request line the
    framing has already judged, and the framing knows where each message ends.
    """

    upgrade_exception = httptools.HttpParserUpgrade
    parse_exception = httptools.HttpParserError
    # Plain heads are read in one C call where the module was built (False: never).
    use_compiled_head: ClassVar[bool] = True

    def __init__(self, listener: RequestListener, policy: HeadPolicy, *,
                 trusted: bool, scheme: str) -> None:
        super().__init__(listener, policy, trusted=trusted, scheme=scheme)
        # httptools looks its callbacks up once, here.
        self.parser = httptools.HttpRequestParser(self)
        if policy.lenient_headers:
            # strip_header_spaces / permit_obsolete_folding: llhttp's lenient header mode;
            # field names and raw field sizes are then checked here instead.
            self.parser.set_dangerous_leniencies(lenient_headers=True)
        # A whole head goes to llhttp with no Python call in between (`read_head` handles
        # its exceptions); pieces and bodies through `_llhttp`.
        self.feed_head = self.parser.feed_data
        self.feed_head_piece = self.feed_body = self.feed_llhttp = self._llhttp
        if self.use_compiled_head and not policy.lenient_headers:
            self.scan = compiled_scan
            # The fields `scan` leaves to the long way (it judges Content-Length and
            # Content-Type itself, and a trusted peer's scheme headers; Host, Connection and
            # Upgrade are its own).
            if trusted and policy.scheme_headers:
                self.scanned_schemes = policy.scheme_headers
            self.declined = self.watch - _SCANNED_NAMES - frozenset(self.scanned_schemes)

    def on_headers_complete(self) -> None:
        """The llhttp callback after the last field: the head is judged, then listened to."""
        parser = self.parser
        policy = self.policy
        try:
            override = self.method_override
            if override is None:
                method = parser.get_method()
                self.method = _METHOD_NAMES.get(method) or method.decode("ascii")
            else:
                self.method = override
                self.method_override = None
            self.http_version = parser.get_http_version()
            line = len(self.method) + len(self.target) + 10
            if line > policy.limit_line:
                raise RequestLineTooLong(
                    f"request line is {line} bytes, limit_request_line is {policy.limit_line}")
            if policy.lenient_headers:
                self._check_raw_field_sizes()
            self.keep_alive = parser.should_keep_alive()
            if parser.should_upgrade():
                self._policed = True
                for name, value in self.headers:
                    if name == _UPGRADE:
                        self.upgrade = value
            if (self._policed or self.target[:1] != b"/" or self.http_version != "1.1"
                    or self.host is None):
                self.finish_head()  # the usual GET with Host and an origin-form target needs none
            if self.chunked:
                self.decoder = ChunkedDecoder(self.on_body, policy.limit_fields,
                                              policy.max_body_size, policy.limit_field_size)
                self.state = _CHUNKED
            elif self.content_length:
                self.body_left = self.content_length
                self.state = _BODY
                self.feed_body = self.feed_llhttp  # llhttp has the head: the body too
            refused = self.on_request_head(self)
            if refused is not None:
                raise refused  # stops llhttp; recorded just below
        except RequestError as error:
            self.error = error  # recorded; raised to stop llhttp, then raised again by feed
            raise

    def end_chunked(self) -> None:
        self._llhttp(b"0\r\n\r\n")  # the decoder had the body: this ends llhttp's message

    def _llhttp(self, data: bytes) -> None:
        """Part of a head or a body to llhttp."""
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # llhttp stops after an upgrade request; the protocol decides what follows.
            self.state = _UPGRADED
            self.upgraded = True
        except httptools.HttpParserError as exc:
            raise self.refusal(exc) from None

    def refusal(self, exc: Exception) -> RequestError:
        if self.error is None and isinstance(exc, httptools.HttpParserCallbackError):
            raise exc  # a callback failed with no RequestError: a bug, with its cause chained
        return super().refusal(exc)


# `Name : value` as `Name: value`, for strip_header_spaces with a parser that refuses it.
_SPACE_BEFORE_COLON = re.compile(rb"(?m)^([^\s:]+)[ \t]+:")
# RFC 9112 3: method SP request-target SP HTTP-version (1.0 and 1.1 are served).
_REQUEST_LINE = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+ [\x21-\x7e]+ HTTP/1\.[01]")
# An obsolete line fold (RFC 9112 5.2), replaced by one space where it is permitted.
_OBS_FOLD = re.compile(rb"\r\n[ \t]+")
# RFC 9110 5.5: no control characters but HTAB in a field value (h11 allows them).
_CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


class H11Parser(ParserAdapter):
    """h11 adapter: pure Python, with h11's strict RFC 9112 grammar for each request head.

    The shared framing loop finds message boundaries (a head ends at its first CRLFCRLF;
    bodies are counted by Content-Length or decoded by the shared `ChunkedDecoder`), so h11
    judges one complete head at a time: the request line, field names and values. What
    every parser shares (limits, Gunicorn's header policy, the request-line checks) runs
    here as for httptools; field values are also refused with control characters, which
    h11's grammar lets through.
    """

    def __init__(self, listener: RequestListener, policy: HeadPolicy, *,
                 trusted: bool, scheme: str) -> None:
        super().__init__(listener, policy, trusted=trusted, scheme=scheme)
        self.head = b""  # the pieces of a head whose blank line has not arrived
        self.feed_body = listener.on_body  # counted by the framing: straight to the listener

    def feed_head_piece(self, data: bytes) -> None:
        # Every CR and LF in a head is part of a CRLF (RFC 9112 2.2 lets a server accept a
        # bare LF; Gunicorn does not, h11 would): checked as the pieces come, so that a
        # head that can never be valid is refused before its blank line.
        if not self.head:  # the request line is whole (the framing loop held it until then)
            line = data[:data.find(b"\r\n")]
            if not _REQUEST_LINE.fullmatch(line):
                raise BadRequest(f"invalid request line {line[:100]!r}")
        piece = b"\r" + data if self.head[-1:] == b"\r" else data
        pairs = piece.count(b"\r\n")
        if piece.count(b"\n") != pairs or piece.count(b"\r") != pairs + piece.endswith(b"\r"):
            raise BadRequest("bare CR or LF in the request head")
        self.head += data

    def end_chunked(self) -> None:
        pass  # the shared decoder read the whole body; h11 never saw it

    def feed_head(self, data: bytes) -> None:
        """The rest of a head: its grammar judged by h11, its meaning by the shared policy.

        h11's own semantics differ from Gunicorn's in three places, so h11 is not shown
        them: an HTTP/1.1 request line goes to h11 as HTTP/1.0 (h11 requires Host; Gunicorn
        does not), and Content-Length and Transfer-Encoding lines are judged by `police`
        (h11 merges a Content-Length list and refuses codings other than `chunked`).
        """
        policy = self.policy
        head = self.head + data if self.head else data
        self.head = b""
        pairs = head.count(b"\r\n")
        if head.count(b"\n") != pairs or head.count(b"\r") != pairs:
            raise BadRequest("bare CR or LF in the request head")
        if policy.lenient_headers:
            self._check_raw_field_sizes()
            head = _SPACE_BEFORE_COLON.sub(rb"\1:", _OBS_FOLD.sub(b" ", head))
        elif b"\r\n " in head or b"\r\n\t" in head:
            raise BadRequest("obsolete line folding (permit_obsolete_folding is off)")
        lines = head[:-4].split(b"\r\n")
        request_line = lines[0]
        version_11 = request_line.endswith(b" HTTP/1.1")
        shown = [request_line[:-1] + b"0" if version_11 else request_line]
        framing: dict[int, tuple[bytes, bytes]] = {}
        for index, line in enumerate(lines):
            name, colon, value = line.partition(b":")
            if index and colon and name.lower() in (_CONTENT_LENGTH, _TRANSFER_ENCODING):
                framing[index] = (name, value.strip(b" \t"))
            elif index:
                shown.append(line)
        shown.append(b"\r\n")
        connection = h11.Connection(h11.SERVER, max_incomplete_event_size=len(head) + 1)
        connection.receive_data(b"\r\n".join(shown))
        try:
            event = connection.next_event()
        except h11.RemoteProtocolError as exc:
            raise BadRequest(f"malformed request: {exc}") from None
        if not isinstance(event, h11.Request):  # pragma: no cover - the head is complete
            raise BadRequest("incomplete request head")
        override = self.method_override
        if override is None:
            self.method = event.method.decode("ascii")
        else:
            self.method = override
            self.method_override = None
        self.target = target = event.target
        self.http_version = "1.1" if version_11 else event.http_version.decode("ascii")
        line_size = len(self.method) + len(target) + 10
        if line_size > policy.limit_line:
            raise RequestLineTooLong(
                f"request line is {line_size} bytes, limit_request_line is {policy.limit_line}")
        tokens: set[bytes] = set()
        upgrade = None
        items = iter(event.headers.raw_items())
        for index in range(1, len(lines)):
            name, value = framing[index] if index in framing else next(items)
            if _CONTROL.search(value):
                raise BadRequest(f"control character in the value of {name[:40]!r}")
            lowered = name.lower()
            if lowered == b"connection":
                tokens.update(t.strip() for t in value.lower().split(b","))
            elif lowered == _UPGRADE:
                upgrade = value
            self.on_header(name, value)
        if self.http_version == "1.1":
            self.keep_alive = b"close" not in tokens
        else:
            self.keep_alive = b"keep-alive" in tokens
        upgrading = (upgrade is not None and b"upgrade" in tokens) or self.method == "CONNECT"
        if upgrading and upgrade is not None:
            self._policed = True
            self.upgrade = upgrade
        self.finish_head()
        if upgrading:
            self.state = _UPGRADED  # what follows is not HTTP/1.1: the protocol decides
        elif self.chunked:
            self.decoder = ChunkedDecoder(self.on_body, policy.limit_fields, policy.max_body_size,
                                          policy.limit_field_size)
            self.state = _CHUNKED
        elif self.content_length:
            self.body_left = self.content_length
            self.state = _BODY
        refused = self.on_request_head(self)
        if refused is not None:
            raise refused  # recorded by feed
