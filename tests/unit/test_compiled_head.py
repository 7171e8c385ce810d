"""The compiled module (http/compiled_head.c) reads and frames heads as the long way does.

HttptoolsParser reads a plain head in one C call and leaves every other head to llhttp and
the Python header policy. Fed the same bytes at any split, a parser with the compiled reader
and one without it must tell their listener the same things and refuse alike, under policies
that put each limit and rule in play. Heads are drawn near the edge of what the C reader
takes (methods, targets, versions, field names and values, repeated or odd framing fields),
so that both of its answers, "read" and "not mine", are exercised. The same for response
heads: `frame_response_head` with the compiled framing and without it gives the same bytes,
framing and errors for any status, fields and request.
"""

from __future__ import annotations

import compiled_module
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_fuzz_parser import mutated
from test_parser_differences import Events

from gunicorn_async_workers.http import response
from gunicorn_async_workers.http.errors import RequestError
from gunicorn_async_workers.http.parsers import HeadPolicy, HttptoolsParser, ParserAdapter


class LongWay(HttptoolsParser):
    """HttptoolsParser without the compiled reader: every head through llhttp's callbacks."""

    use_compiled_head = False


class Record(Events):
    """Everything a listener is told (as `Events`), with every field the head exposes."""

    def on_request_head(self, head: ParserAdapter) -> None:
        self.seen.append((head.method, head.target, head.http_version, tuple(head.headers),
                          head.keep_alive, head.upgrade, head.scheme, head.host,
                          head.content_length, head.chunked, head.expect_continue,
                          head.te_trailers))


POLICIES = {
    "default": {},
    "tight": {"limit_line": 24, "limit_fields": 3, "limit_field_size": 16},
    "max-body": {"max_body_size": 5},
    "require-host": {"require_host": True},
    "drop-underscore": {"header_map": "drop"},
    "dangerous": {"header_map": "dangerous"},
    "lenient": {"lenient_headers": True},
}


def policy(name: str) -> HeadPolicy:
    settings_: dict[str, object] = {
        "limit_line": 4094, "limit_fields": 100, "limit_field_size": 8190,
        "scheme_headers": {b"x-forwarded-proto": b"https"}, "forwarder_headers": frozenset(),
        "header_map": "refuse"}
    settings_.update(POLICIES[name])
    return HeadPolicy(**settings_)  # type: ignore[arg-type]


def outcome(parser_class: type[HttptoolsParser], data: bytes, splits: list[int],
            policy_name: str, trusted: bool) -> tuple[object, ...]:
    """(refusal status or 0, what the listener was told, and the parser's state at the end
    where nothing was refused: a refusal ends the connection whatever the state)."""
    record = Record()
    parser = parser_class(record, policy(policy_name), trusted=trusted, scheme="http")
    status = 0
    at = 0
    try:
        for cut in [*sorted(splits), len(data)]:
            if cut > at:
                parser.feed(data[at:cut])
                at = cut
    except RequestError as exc:
        status = exc.status
    return status, record.seen, None if status else parser.state


# Each part: a plain choice (the C reader's own) eleven times in twelve, else an odd one.
METHODS = ([b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PATCH"],
           [b"get", b"CONNECT", b"TRACE", b"PROPFIND", b"G", b""])
TARGETS = ([b"/", b"/a/b?c=d&e", b"/%41%42", b"/~!$&'()*+,;=:@", b"//"],
           [b"/%zz", b"/x#frag", b"*", b"http://h/p", b"/a b", b"/\x7f", b"/\xc3\xa9", b""])
VERSIONS = ([b"HTTP/1.1", b"HTTP/1.0"],
            [b"HTTP/1.2", b"HTTP/2.0", b"http/1.1", b"HTTP/1.1 "])
NAMES = ([b"Host", b"host", b"Content-Length", b"content-type", b"Content-Type",
          b"Connection", b"User-Agent", b"Accept", b"X-A", b"X-Forwarded-Proto"],
         [b"Upgrade", b"Transfer-Encoding", b"Expect", b"TE", b"X_Under",
          b"X A", b"", b"X-\xff", b"Trailer"])
SEPARATORS = ([b": ", b":"], [b" : ", b":\t", b" :"])
VALUES = ([b"x", b"", b" x ", b"x\t", b"5", b"05", b"3", b"0", b"close", b"keep-alive",
           b"text/plain; charset=utf-8", b"a" * 20, b"999999999999999999", b"https", b"http"],
          [b"-1", b"1, 1", b"99999999999999999999", b"Keep-Alive", b"Close", b"upgrade",
           b"chunked", b"100-continue", b"trailers", b"HTTPS", b"a\x00b", b"\xe9t\xe9",
           b"a\x7fb", b"a\rb"])


def part(draw: st.DrawFn, choices: tuple[list[bytes], list[bytes]]) -> bytes:
    plain, odd = choices
    return draw(st.sampled_from(plain if draw(st.integers(0, 11)) else odd))


@st.composite
def plain_heads(draw: st.DrawFn) -> bytes:
    """One to three requests, each a head of drawn parts and perhaps a body."""
    requests = b""
    for _ in range(draw(st.integers(1, 3))):
        fields = b"".join(part(draw, NAMES) + part(draw, SEPARATORS) + part(draw, VALUES)
                          + b"\r\n" for _ in range(draw(st.integers(0, 5))))
        line = (part(draw, METHODS) + b" " + part(draw, TARGETS) + b" " + part(draw, VERSIONS)
                + b"\r\n")
        requests += line + fields + b"\r\n" + draw(st.sampled_from([b"", b"abc", b"hello"]))
    return requests


def splits_of(data: bytes) -> st.SearchStrategy[list[int]]:
    return st.lists(st.integers(0, len(data)), max_size=3)


@settings(max_examples=600, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), requests=plain_heads(),
       policy_name=st.sampled_from(sorted(POLICIES)), trusted=st.booleans())
def test_plain_heads_read_alike(data: st.DataObject, requests: bytes, policy_name: str,
                                trusted: bool) -> None:
    compiled_module.require()
    splits = data.draw(splits_of(requests))
    assert (outcome(HttptoolsParser, requests, splits, policy_name, trusted)
            == outcome(LongWay, requests, splits, policy_name, trusted)), requests


@settings(max_examples=300, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(requests=mutated(), policy_name=st.sampled_from(sorted(POLICIES)))
def test_mutated_corpus_requests_read_alike(requests: bytes, policy_name: str) -> None:
    compiled_module.require()
    assert (outcome(HttptoolsParser, requests, [], policy_name, True)
            == outcome(LongWay, requests, [], policy_name, True)), requests


BROWSER_HEAD = (b"GET /static/app.js?v=3 HTTP/1.1\r\nHost: example.com\r\n"
                b"User-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\nAccept: */*\r\n"
                b"Accept-Encoding: gzip, deflate, br\r\nAccept-Language: en-GB,en;q=0.9\r\n"
                b"Connection: keep-alive\r\nCookie: a=1; b=2\r\n\r\n")


PROXIED = b"GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-Proto: https\r\n"


@pytest.mark.parametrize("head, taken", [
    (BROWSER_HEAD, True),
    (b"POST /f HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\n",
     True),
    (b"GET / HTTP/1.0\r\n\r\n", True),
    # A trusted proxy's scheme header comes with every request: read here, not declined.
    (PROXIED + b"\r\n", True),
    (PROXIED + b"X-Forwarded-Proto: https\r\n\r\n", True),
    (PROXIED + b"X-Forwarded-Proto: http\r\n\r\n", False),  # conflicting: the long way's 400
    (b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", False),
    (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", False),
    (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", False),
    (b"GET / HTTP/1.1\r\nHost: h\r\nX_Under: 1\r\n\r\n", False),
    (b"GET http://h/ HTTP/1.1\r\nHost: h\r\n\r\n", False),
    (b"GET / HTTP/1.1\r\nHost: h\r\n", False),  # not whole yet
])
@pytest.mark.parametrize("trusted", [True, False], ids=["trusted", "untrusted"])
def test_the_compiled_reader_takes_plain_heads_and_leaves_the_rest(
        head: bytes, taken: bool, trusted: bool) -> None:
    """Both answers can happen: the reader is on the path, and it declines what it must
    (else the differential tests above would compare the long way with itself). An
    untrusted peer's scheme headers are plain fields, taken whatever they say."""
    compiled = compiled_module.require()
    default = policy("default")
    parser = HttptoolsParser(Record(), default, trusted=trusted, scheme="http")
    assert parser.scan is compiled.scan
    scanned = compiled.scan(head, default.limit_line, default.limit_fields,
                            default.limit_field_size, parser.declined, parser.scanned_schemes)
    assert (scanned is not None) is (taken or (not trusted and head.startswith(PROXIED)))
    if scanned is not None:
        assert scanned[0] == head.index(b"\r\n\r\n") + 4
        assert scanned[8] == ("https" if trusted and head.startswith(PROXIED) else None)
    assert outcome(HttptoolsParser, head, [], "default", trusted) == outcome(
        LongWay, head, [], "default", trusted)


def test_lenient_headers_never_take_the_compiled_reader() -> None:
    """insecure_lenient_headers changes what llhttp accepts: its heads stay with llhttp."""
    compiled_module.require()
    assert HttptoolsParser(Record(), policy("lenient"), trusted=False, scheme="http").scan is None


# -- the response head: compiled_head.frame against frame_response_head's long way ---------
STATUSES = [200, 201, 204, 299, 304, 404, 500, 599, True, 100, 600]
RESPONSE_NAMES = [b"content-type", b"Content-Type", b"x-a", b"X-Custom-Name", b"content-length",
                  b"Content-Length", b"date", b"Server", b"connection", b"transfer-encoding",
                  b"bad name", b"", "x-str", b"x-\xff"]
RESPONSE_VALUES = [b"x", b"", b"5", b"05", b"13", b"a\r\nb", b"a\nb", b"a\0b", b"1" * 19,
                   b"-1", b"close", b"keep-alive", b"chunked", "text", b"\x01\x7f\xff"]


def shaped(pairs: list[tuple[object, object]], shape: str) -> object:
    """The fields as an app may give them: a list or tuple of tuples, of lists, an iterator,
    or with a bad item."""
    if shape == "tuple":
        return tuple(pairs)
    if shape == "lists":
        return [list(pair) for pair in pairs]
    if shape == "iterator":
        return iter(pairs)
    if shape == "triple" and pairs:
        return [(*pairs[0], b"x"), *pairs[1:]]
    return list(pairs)


@st.composite
def response_heads(draw: st.DrawFn) -> tuple[object, ...]:
    pairs = [(draw(st.sampled_from(RESPONSE_NAMES)), draw(st.sampled_from(RESPONSE_VALUES)))
             for _ in range(draw(st.integers(0, 5)))]
    shape = draw(st.sampled_from(["list", "tuple", "lists", "iterator", "triple"]))
    return (draw(st.sampled_from(STATUSES)), pairs, shape, draw(st.booleans()),
            draw(st.booleans()), draw(st.booleans()),
            draw(st.none() | st.integers(0, 20) | st.just(10 ** 20)))


def framed(status: object, headers: object, head_request: bool, http10: bool,
           keep_alive: bool, body_length: int | None) -> tuple[object, ...]:
    """(head or the error's text, the framing decided): frame_response_head's answer."""
    framing = response.Framing()
    try:
        head: object = response.frame_response_head(
            status, headers, DATE, framing, head_request=head_request,  # type: ignore[arg-type]
            http10=http10, keep_alive=keep_alive, body_length=body_length)
    except response.ResponseError as exc:
        head = str(exc)
    return head, framing.content_length, framing.chunked, framing.keep_alive, framing.no_body


DATE = response.DateHeader()


@settings(max_examples=1500, deadline=None, database=None)
@given(case=response_heads())
def test_response_heads_framed_alike(case: tuple[object, ...]) -> None:
    compiled = compiled_module.require()
    status, pairs, shape, *flags = case
    with pytest.MonkeyPatch.context() as long_way:
        long_way.setattr(response, "compiled_frame", None)
        expected = framed(status, shaped(pairs, shape), *flags)  # type: ignore[arg-type]
    assert response.compiled_frame is compiled.frame
    assert framed(status, shaped(pairs, shape), *flags) == expected, case  # type: ignore[arg-type]


@pytest.mark.parametrize("headers, taken", [
    ([(b"content-type", b"text/plain"), (b"content-length", b"13")], True),
    (((b"content-type", b"text/plain"),), True),
    ([[b"content-type", b"text/plain"]], True),
    ([(b"content-type", b"text/plain"), (b"connection", b"close")], False),
    ([(b"content-type", b"a\r\nb")], False),
    (iter([(b"content-type", b"text/plain")]), False),  # never consumed by the C side
])
def test_the_compiled_framing_takes_the_usual_head_and_leaves_the_rest(
        headers: object, taken: bool) -> None:
    compiled = compiled_module.require()
    framing = response.Framing()
    head = compiled.frame(200, response.STATUS_LINES[200], headers, DATE.value,
                          response._NAME_KINDS, framing, False, False, True, 13)
    assert (head is not None) is taken
    if taken:
        assert head.startswith(b"HTTP/1.1 200 OK\r\n" + DATE.value) and head.endswith(
            b"\r\n\r\n")
        assert framing.content_length == 13
    else:
        assert vars(framing) == {}  # declined: nothing changed
        if not isinstance(headers, list):
            assert next(headers) == (b"content-type", b"text/plain")  # type: ignore[call-overload]


@settings(max_examples=1000, deadline=None, database=None)
@given(data=st.binary(max_size=300) | plain_heads().map(lambda head: head[:len(head) // 2]),
       limits=st.tuples(st.integers(-1, 64), st.integers(-1, 6), st.integers(-1, 64)))
def test_the_compiled_reader_takes_any_bytes_and_limits(data: bytes,
                                                        limits: tuple[int, int, int]) -> None:
    """Random bytes, cut heads and odd limits: None, or a head that ends where its blank
    line does and fits the limits (built with ASan, this is where memory errors show)."""
    compiled = compiled_module.require()
    scanned = compiled.scan(data, *limits, frozenset((b"te",)), {b"x-forwarded-proto": b"on"})
    if scanned is not None:
        end, _method, _target, _version, fields, *_ = scanned
        assert data[end - 4:end] == b"\r\n\r\n" and b"\r\n\r\n" not in data[:end - 4]
        assert len(fields) <= max(limits[1], 0)
