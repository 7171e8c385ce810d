"""Unit tests of the httptools parser adapter: events at any split, limits, policy errors."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from gunicorn_async_workers.http.errors import (
    BadRequest,
    ExpectationFailed,
    Forbidden,
    HeadersTooLarge,
    RequestError,
    RequestLineTooLong,
)
from gunicorn_async_workers.http.parsers import HeadPolicy, HttptoolsParser, ParserAdapter


@dataclass
class Head:
    method: str
    target: bytes
    http_version: str
    headers: list[tuple[bytes, bytes]]
    keep_alive: bool
    scheme: str
    chunked: bool
    content_length: int | None
    expect_continue: bool
    upgrade: bytes | None


@dataclass
class Request:
    head: Head
    body: bytes = b""
    ended: bool = False


@dataclass
class Recorder:
    """A RequestListener that records what the adapter reports, one Request per head."""

    requests: list[Request] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)

    def on_request_head(self, head: ParserAdapter) -> None:
        self.calls.append("head")
        self.requests.append(Request(Head(
            head.method, head.target, head.http_version, list(head.headers), head.keep_alive,
            head.scheme, head.chunked, head.content_length, head.expect_continue,
            head.upgrade)))

    def on_body(self, data: bytes) -> None:
        self.calls.append("body")
        self.requests[-1].body += data

    def on_request_end(self) -> None:
        self.calls.append("end")
        self.requests[-1].ended = True


# The adapter under test: every test here runs once per adapter (see conftest.py).
Parser: type[ParserAdapter] = HttptoolsParser


@pytest.fixture(autouse=True)
def _each_parser(parser_class: type[ParserAdapter], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(globals(), "Parser", parser_class)


def policy(**overrides: object) -> HeadPolicy:
    settings: dict[str, object] = dict(
        limit_line=4094, limit_fields=100, limit_field_size=8190,
        scheme_headers={b"x-forwarded-proto": b"https"}, forwarder_headers=frozenset(),
        header_map="refuse")
    settings.update(overrides)
    return HeadPolicy(**settings)  # type: ignore[arg-type]


def parse(pieces: list[bytes], *, trusted: bool = True, scheme: str = "http",
          **overrides: object) -> list[Request]:
    """Feed `pieces` one by one; the requests reported (RequestError propagates)."""
    recorder = Recorder()
    parser = Parser(recorder, policy(**overrides), trusted=trusted, scheme=scheme)
    for piece in pieces:
        parser.feed(piece)
    return recorder.requests


def whole(data: bytes, **kw: object) -> list[Request]:
    return parse([data], **kw)  # type: ignore[arg-type]


def bytewise(data: bytes, **kw: object) -> list[Request]:
    return parse([data[i:i + 1] for i in range(len(data))], **kw)  # type: ignore[arg-type]


def splits(data: bytes) -> list[list[bytes]]:
    """The data cut in two at every point, and in pieces of 1 to 8 bytes."""
    cuts = [[data[:i], data[i:]] for i in range(1, len(data))]
    sized = [[data[i:i + n] for i in range(0, len(data), n)] for n in range(1, 9)]
    return cuts + sized


def error_of(pieces: list[bytes], **kw: object) -> RequestError:
    with pytest.raises(RequestError) as info:
        parse(pieces, **kw)  # type: ignore[arg-type]
    return info.value


def assert_split_independent(data: bytes, **kw: object) -> list[Request]:
    """Every split gives the same requests as one feed; returns them."""
    expected = whole(data, **kw)
    for pieces in splits(data):
        assert parse(pieces, **kw) == expected, pieces  # type: ignore[arg-type]
    return expected


def assert_refused(data: bytes, status: int, **kw: object) -> RequestError:
    """Refused with `status` in one feed, byte by byte and at every split point."""
    error = error_of([data], **kw)
    assert error.status == status, error
    for pieces in splits(data):
        assert error_of(pieces, **kw).status == status, pieces
    return error


# -- accepted requests ----------------------------------------------------------------------

SIMPLE = (b"GET /a/b?x=1 HTTP/1.1\r\nHost: example.test\r\nX-Mixed-Case: Value\r\n"
          b"Accept: */*\r\n\r\n")


def test_simple_get_events() -> None:
    [request] = assert_split_independent(SIMPLE)
    head = request.head
    assert head.method == "GET" and head.target == b"/a/b?x=1" and head.http_version == "1.1"
    assert head.headers == [(b"host", b"example.test"), (b"x-mixed-case", b"Value"),
                            (b"accept", b"*/*")]
    assert head.keep_alive and request.ended and request.body == b""
    assert head.scheme == "http" and not head.chunked and head.content_length is None


def test_listener_call_order() -> None:
    recorder = Recorder()
    parser = Parser(recorder, policy(), trusted=False, scheme="http")
    parser.feed(b"POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\nab")
    assert recorder.calls == ["head", "body"]
    assert parser.partial() is False
    parser.feed(b"cd")
    assert recorder.calls == ["head", "body", "body", "end"]


def test_partial_head() -> None:
    parser = Parser(Recorder(), policy(), trusted=False, scheme="http")
    assert not parser.partial()
    parser.feed(b"GE")
    assert parser.partial()
    parser.feed(b"T / HTTP/1.1\r\nHost: a\r\n")
    assert parser.partial()
    parser.feed(b"\r\n")
    assert not parser.partial()


def test_content_length_body() -> None:
    data = b"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world"
    [request] = assert_split_independent(data)
    assert request.head.content_length == 11 and request.body == b"hello world"
    assert request.ended


def test_chunked_body_pieces_joined() -> None:
    data = (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n1;ext=1\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: t\r\n\r\n")
    [request] = assert_split_independent(data)
    assert request.head.chunked and request.body == b"hello world" and request.ended
    assert request.head.headers == [(b"host", b"a"), (b"transfer-encoding", b"chunked")]


def test_http10_defaults_to_close_and_keep_alive_header_keeps_it() -> None:
    [request] = assert_split_independent(b"GET / HTTP/1.0\r\n\r\n")
    assert request.head.http_version == "1.0" and not request.head.keep_alive
    [request] = whole(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    assert request.head.keep_alive
    [request] = whole(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert not request.head.keep_alive


def test_pipelined_requests_in_order() -> None:
    data = (b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"
            b"POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
            b"GET /3 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    requests = assert_split_independent(data)
    assert [r.head.target for r in requests] == [b"/1", b"/2", b"/3"]
    assert [r.body for r in requests] == [b"", b"abc", b""]
    assert [r.head.keep_alive for r in requests] == [True, True, False]
    assert all(r.ended for r in requests)


def test_expect_100_continue_flag() -> None:
    [request] = whole(b"POST / HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\nx")
    assert request.head.expect_continue
    [request] = whole(b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx")
    assert not request.head.expect_continue  # ignored in HTTP/1.0


def test_one_leading_crlf_is_accepted() -> None:
    [request] = assert_split_independent(b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n")
    assert request.head.method == "GET" and request.ended


def test_unknown_method_is_restored() -> None:
    [request] = assert_split_independent(b"-BLARGH /x HTTP/1.1\r\nHost: a\r\n\r\n")
    assert request.head.method == "-BLARGH" and request.head.target == b"/x"


def test_lowercase_method_permitted_and_casefolded() -> None:
    data = b"get / HTTP/1.1\r\nHost: a\r\n\r\n"
    assert_refused(data, 400)
    [request] = assert_split_independent(data, permit_unconventional_method=True)
    assert request.head.method == "get"
    [request] = assert_split_independent(data, permit_unconventional_method=True,
                                         casefold_method=True)
    assert request.head.method == "GET"


def test_asterisk_form_for_options() -> None:
    [request] = assert_split_independent(b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n")
    assert request.head.method == "OPTIONS" and request.head.target == b"*"
    assert_refused(b"GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400)


def test_connect_authority_form() -> None:
    [request] = assert_split_independent(b"CONNECT example.test:443 HTTP/1.1\r\nHost: a\r\n\r\n")
    assert request.head.method == "CONNECT" and request.head.target == b"example.test:443"
    assert_refused(b"CONNECT /path HTTP/1.1\r\nHost: a\r\n\r\n", 400)


def test_absolute_form() -> None:
    data = b"GET http://example.test:8080/p/q?r=1 HTTP/1.1\r\nHost: example.test\r\n\r\n"
    [request] = assert_split_independent(data)
    assert request.head.target == b"http://example.test:8080/p/q?r=1"


def test_trusted_scheme_header() -> None:
    data = b"GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-Proto: https\r\n\r\n"
    [request] = assert_split_independent(data, trusted=True)
    assert request.head.scheme == "https"
    assert (b"x-forwarded-proto", b"https") in request.head.headers
    [request] = whole(data, trusted=False)
    assert request.head.scheme == "http"
    [request] = whole(b"GET / HTTP/1.1\r\nX-Forwarded-Proto: http\r\n\r\n", trusted=True,
                      scheme="https")
    assert request.head.scheme == "http"


def test_scheme_resets_between_requests() -> None:
    requests = whole(b"GET / HTTP/1.1\r\nX-Forwarded-Proto: https\r\n\r\n"
                     b"GET / HTTP/1.1\r\n\r\n", trusted=True)
    assert [r.head.scheme for r in requests] == ["https", "http"]


def test_conflicting_scheme_headers() -> None:
    data = (b"GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-Proto: https\r\n"
            b"X-Forwarded-Proto: http\r\n\r\n")
    assert_refused(data, 400, trusted=True)
    [request] = whole(data, trusted=False)  # not consulted for untrusted peers
    assert request.head.scheme == "http"


def test_underscore_header_policy() -> None:
    data = b"GET / HTTP/1.1\r\nHost: a\r\nX_Forwarded_For: 1.2.3.4\r\nX-Ok: 1\r\n\r\n"
    assert_refused(data, 400, header_map="refuse")
    [request] = assert_split_independent(data, header_map="drop")
    assert request.head.headers == [(b"host", b"a"), (b"x-ok", b"1")]
    [request] = assert_split_independent(data, header_map="dangerous")
    assert request.head.headers == [(b"host", b"a"), (b"x_forwarded_for", b"1.2.3.4"),
                                    (b"x-ok", b"1")]
    [request] = whole(data, forwarder_headers=frozenset({b"x_forwarded_for"}))
    assert (b"x_forwarded_for", b"1.2.3.4") in request.head.headers


# -- limits ---------------------------------------------------------------------------------

def test_request_line_too_long() -> None:
    data = b"GET /" + b"a" * 100 + b" HTTP/1.1\r\nHost: a\r\n\r\n"
    assert isinstance(assert_refused(data, 414, limit_line=64), RequestLineTooLong)
    assert whole(data, limit_line=200)[0].head.target == b"/" + b"a" * 100


def test_too_many_fields() -> None:
    data = b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(5)) + b"\r\n"
    assert isinstance(assert_refused(data, 431, limit_fields=4), HeadersTooLarge)
    assert len(whole(data, limit_fields=5)[0].head.headers) == 5


def test_field_too_large() -> None:
    data = b"GET / HTTP/1.1\r\nX-Big: " + b"v" * 100 + b"\r\n\r\n"
    assert isinstance(assert_refused(data, 431, limit_field_size=64), HeadersTooLarge)
    assert whole(data, limit_field_size=200)[0].head.headers == [(b"x-big", b"v" * 100)]


def test_endless_head_exceeds_max_head_bytes() -> None:
    head_policy = policy(limit_fields=1000, limit_field_size=64, limit_line=64)
    parser = Parser(Recorder(), head_policy, trusted=False, scheme="http")
    parser.feed(b"GET / HTTP/1.1\r\n")
    # One header line that never ends: neither the field count nor a complete field trips.
    with pytest.raises(HeadersTooLarge) as info:
        for _ in range(head_policy.max_head_bytes // 1000 + 2):
            parser.feed(b"X-Endless: " + b"v" * 989)
    assert info.value.status == 431


# -- refused requests -----------------------------------------------------------------------

@pytest.mark.parametrize(("data", "status", "error"), [
    (b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
     400, BadRequest),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
     400, BadRequest),
    (b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", 400, BadRequest),
    (b"POST / HTTP/1.1\r\nContent-Length: +3\r\n\r\nabc", 400, BadRequest),
    (b"POST / HTTP/1.1\r\nContent-Length: 3x\r\n\r\nabc", 400, BadRequest),
    # RFC 9112 6.3: chunked not the final coding: the length is unknown, 400 (as Gunicorn 27)
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 400, BadRequest),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: foo\r\n\r\n", 400, BadRequest),
    # Chunked, then another coding: llhttp refuses it first (RFC 9112 section 6.3: 400).
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400, BadRequest),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 400, BadRequest),
    (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 400,
     BadRequest),
    (b"GET / HTTP/1.1\r\nExpect: foo\r\n\r\n", 417, ExpectationFailed),
    (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, BadRequest),
    (b"GET / HTTP/1.1\r\nContent-Type: a\r\ncontent-type: b\r\n\r\n", 400, BadRequest),
    (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 400, BadRequest),
    (b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400, BadRequest),
    (b"GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400, BadRequest),
    (b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400, BadRequest),
    (b"GET s://]ufd/: HTTP/1.1\r\nHost: a\r\n\r\n", 400, BadRequest),
    (b"GET / HTTP/1.1\r\nBad Name: v\r\n\r\n", 400, BadRequest),
    (b"GET / HTTP/1.1\nHost: a\n\n", 400, BadRequest),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nHost: x\r\n\r\n",
     400, BadRequest),
])
def test_refused_in_one_feed(data: bytes, status: int, error: type[RequestError]) -> None:
    raised = error_of([data])
    assert isinstance(raised, error) and raised.status == status


@pytest.mark.parametrize(("data", "status"), [
    (b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nContent-Length: 1a\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
    (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nExpect: foo\r\n\r\n", 417),
    (b"GET / HTTP/1.1\r\nX_A: 1\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    (b"GET / HTTP/2.0\r\n\r\n", 400),
    (b"GET s://]ufd/: HTTP/1.1\r\n\r\n", 400),
    (b"GET * HTTP/1.1\r\n\r\n", 400),
])
def test_refused_at_every_split(data: bytes, status: int) -> None:
    assert_refused(data, status)


# -- request-line checks at every message boundary and every split --------------------------

def test_two_leading_crlfs_refused_at_every_split() -> None:
    assert_refused(b"\r\n\r\nGET / HTTP/1.1\r\n\r\n", 400)


def test_unknown_method_after_leading_crlf() -> None:
    [request] = assert_split_independent(b"\r\n-BLARGH / HTTP/1.1\r\n\r\n")
    assert request.head.method == "-BLARGH"


def test_pipelined_unknown_method() -> None:
    requests = assert_split_independent(b"GET / HTTP/1.1\r\n\r\n-BLARGH /b HTTP/1.1\r\n\r\n")
    assert [r.head.method for r in requests] == ["GET", "-BLARGH"]


def test_pipelined_request_after_a_body_is_checked() -> None:
    data = (b"POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\nok"
            b"PURGE-IT /x HTTP/1.1\r\n\r\n")
    requests = assert_split_independent(data)
    assert [(r.head.method, r.body) for r in requests] == [("POST", b"ok"), ("PURGE-IT", b"")]


def test_pipelined_request_lines_checked_in_one_feed() -> None:
    with pytest.raises(BadRequest):
        whole(b"GET / HTTP/1.1\r\n\r\nGET  / HTTP/1.1\r\n\r\n")
    with pytest.raises(BadRequest):
        whole(b"GET / HTTP/1.1\r\n\r\nget / HTTP/1.1\r\n\r\n")


def test_two_empty_lines_between_pipelined_requests() -> None:
    data = b"GET / HTTP/1.1\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\n\r\n"
    for pieces in [[data], *splits(data)]:
        recorder = Recorder()
        parser = Parser(recorder, policy(), trusted=False, scheme="http")
        with pytest.raises(BadRequest):
            for piece in pieces:
                parser.feed(piece)
        assert len(recorder.requests) == 1, pieces


@pytest.mark.parametrize("data", [
    b"GET  / HTTP/1.1\r\n\r\n",
    b"GET /  HTTP/1.1\r\n\r\n",
    b"\nGET / HTTP/1.1\r\n\r\n",
    b"GET / HTTP/1.1\r\n\r\nGET  /2 HTTP/1.1\r\n\r\n",
])
def test_malformed_request_line_refused_at_every_split(data: bytes) -> None:
    assert isinstance(error_of([data]), BadRequest)
    for pieces in splits(data):
        assert isinstance(error_of(pieces), BadRequest), pieces


# -- chunked bodies -------------------------------------------------------------------------

CHUNKED_HEAD = b"POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"


@pytest.mark.parametrize("body", [
    b"5\r\nhello\r\n0\r\n\r\n",
    b"5 ; a = b ;c=\"q\\\"x\"\r\nhello\r\n0\r\n\r\n",
    b"2\r\nhe\r\n3;x\r\nllo\r\n0;last\r\nX-Trailer: 1\r\nY: 2\r\n\r\n",
    b"0000000000000005\r\nhello\r\n0\r\n\r\n",
    b"5\r\nhello\r\n000\r\n\r\n",
])
def test_chunked_grammar_accepted(body: bytes) -> None:
    [request] = assert_split_independent(CHUNKED_HEAD + body)
    assert request.body == b"hello" and request.ended
    assert request.head.headers == [(b"host", b"a"), (b"transfer-encoding", b"chunked")]


@pytest.mark.parametrize(("body", "status"), [
    (b"5;\r\nhello\r\n0\r\n\r\n", 400),
    (b"5\nhello\r\n0\r\n\r\n", 400),
    (b"5\r\nhelloXX0\r\n\r\n", 400),
    (b"5\r\nhello\n0\r\n\r\n", 400),
    (b"+5\r\nhello\r\n0\r\n\r\n", 400),
    (b"-5\r\nhello\r\n0\r\n\r\n", 400),
    (b"0x5\r\nhello\r\n0\r\n\r\n", 400),
    (b" 5\r\nhello\r\n0\r\n\r\n", 400),
    (b"00000000000000005\r\nhello\r\n0\r\n\r\n", 400),
    (b"5;a\x00\r\nhello\r\n0\r\n\r\n", 400),
    (b"5\r\nhello\r\n0\r\nHost: x\r\n\r\n", 400),
    (b"5\r\nhello\r\n0\r\nContent-Length: 5\r\n\r\n", 400),
    (b"5\r\nhello\r\n0\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    (b"5\r\nhello\r\n0\r\n X: folded\r\n\r\n", 400),
    (b"5\r\nhello\r\n0\r\nBad Name: 1\r\n\r\n", 400),
    (b"5\r\nhello\r\n0\r\n" + b"T: 1\r\n" * 5 + b"\r\n", 431),
])
def test_chunked_grammar_refused(body: bytes, status: int) -> None:
    assert_refused(CHUNKED_HEAD + body, status, limit_fields=4)


def test_chunked_body_never_ends_without_final_crlf() -> None:
    recorder = Recorder()
    parser = Parser(recorder, policy(), trusted=False, scheme="http")
    parser.feed(CHUNKED_HEAD + b"5\r\nhello\r\n0\r\n\r")
    assert recorder.requests[0].body == b"hello" and not recorder.requests[0].ended
    parser.feed(b"\n")
    assert recorder.requests[0].ended


def test_chunked_then_pipelined() -> None:
    data = CHUNKED_HEAD + b"3\r\nabc\r\n0\r\n\r\nGET /next HTTP/1.1\r\nHost: a\r\n\r\n"
    requests = assert_split_independent(data)
    assert [(r.head.target, r.body, r.ended) for r in requests] == [
        (b"/c", b"abc", True), (b"/next", b"", True)]


def test_upgrade_keeps_the_bytes_that_follow() -> None:
    data = (b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
            b"\r\n\x81\x05hello")
    for pieces in [[data], *splits(data)]:
        recorder = Recorder()
        parser = Parser(recorder, policy(), trusted=False, scheme="http")
        for piece in pieces:
            parser.feed(piece)
        assert parser.upgraded
        assert parser.upgrade_data == b"\x81\x05hello", pieces
        assert [r.head.upgrade for r in recorder.requests] == [b"websocket"]


def test_error_status_attributes() -> None:
    assert [cls.status for cls in (BadRequest, RequestLineTooLong, HeadersTooLarge,
                                   ExpectationFailed, Forbidden)] == [400, 414, 431, 417, 403]


# -- max_body_size ------------------------------------------------------------------------------
@pytest.mark.parametrize("data", [
    b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world",
    b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
])
def test_body_over_max_body_size_is_refused_with_413(data: bytes) -> None:
    assert assert_refused(data, 413, max_body_size=10).status == 413
    [request] = assert_split_independent(data, max_body_size=11)  # at the limit: accepted
    assert request.body == b"hello world"
    [request] = assert_split_independent(data, max_body_size=0)  # 0: no limit
    assert request.body == b"hello world"
