"""The two parser adapters, fed the same bytes, accept and refuse the same requests.

H11Worker and the httptools workers share every rule but the grammar of a head. Random and
mutated corpus requests go through both: either both refuse, or both accept with the same
heads, bodies and ends. The differences that remain are listed here, each with its reason.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from test_fuzz_parser import mutated

from gunicorn_async_workers.http.errors import RequestError
from gunicorn_async_workers.http.parsers import (
    H11Parser,
    HeadPolicy,
    HttptoolsParser,
    ParserAdapter,
)


class Events:
    """Everything a listener is told, body pieces joined."""

    def __init__(self) -> None:
        self.seen: list[object] = []

    def on_request_head(self, head: ParserAdapter) -> None:
        self.seen.append((head.method, head.target, head.http_version, tuple(head.headers),
                          head.keep_alive, head.upgrade, head.scheme))

    def on_body(self, data: bytes) -> None:
        if self.seen and isinstance(self.seen[-1], bytes):
            self.seen[-1] += data
        else:
            self.seen.append(data)

    def on_request_end(self) -> None:
        self.seen.append("end")


def outcome(parser_class: type[ParserAdapter], data: bytes,
            require_host: bool = False) -> tuple[int, list[object]]:
    """(status of the refusal or 0, what the listener was told)."""
    policy = HeadPolicy(limit_line=4094, limit_fields=100, limit_field_size=8190,
                        scheme_headers={b"x-forwarded-proto": b"https"},
                        forwarder_headers=frozenset(), header_map="refuse",
                        require_host=require_host)
    events = Events()
    parser = parser_class(events, policy, trusted=True, scheme="http")
    try:
        parser.feed(data)
    except RequestError as exc:
        return exc.status, events.seen
    return 0, events.seen


# llhttp reads a URI scheme as letters only; RFC 3986 3.1 also allows digits, "+", "-", ".".
_SCHEME_LLHTTP_REFUSES = re.compile(rb"^[A-Za-z]+ [A-Za-z][A-Za-z]*[0-9+\-.][A-Za-z0-9+\-.]*:")


@settings(max_examples=300, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(data=mutated())
def test_both_parsers_accept_and_refuse_alike(data: bytes) -> None:
    # A blank line at the end completes any head, so that a head refused only once whole
    # (h11 judges a head whole) is judged by both.
    data += b"\r\n\r\n"
    assume(not _SCHEME_LLHTTP_REFUSES.match(data))
    httptools_status, httptools_events = outcome(HttptoolsParser, data)
    h11_status, h11_events = outcome(H11Parser, data)
    assert bool(httptools_status) == bool(h11_status), (data, httptools_status, h11_status)
    if not httptools_status:
        assert httptools_events == h11_events


@st.composite
def content_length_value(draw: st.DrawFn) -> bytes:
    """Digits around the bounds that matter: 2**64 (llhttp's) and 4,300 digits (Python's
    int() limit), with leading zeros at times."""
    if draw(st.booleans()):
        number = draw(st.integers(0, 1 << 66) | st.sampled_from(
            [(1 << 64) - 1, 1 << 64, (1 << 64) + 1, 10 ** 19, 10 ** 20]))
        digits = str(number).encode()
    else:
        digits = b"9" * draw(st.sampled_from([19, 20, 21, 4299, 4300, 4301, 4302, 6000]))
    return b"0" * draw(st.sampled_from([0, 0, 1, 30])) + digits


@settings(max_examples=200, deadline=None, database=None)
@given(value=content_length_value(), chunked=st.booleans())
def test_both_parsers_judge_any_content_length_alike(value: bytes, chunked: bool) -> None:
    data = (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: " + value + b"\r\n"
            + (b"Transfer-Encoding: chunked\r\n" if chunked else b"") + b"\r\n")
    httptools_status, httptools_events = outcome(HttptoolsParser, data)
    h11_status, h11_events = outcome(H11Parser, data)
    assert (httptools_status, httptools_events) == (h11_status, h11_events), value[:40]
    too_big = int(value) > (1 << 64) - 1 if len(value.lstrip(b"0")) < 4000 else True
    assert h11_status == (400 if chunked or too_big else 0)


@pytest.mark.parametrize("data", [
    b"GET / HTTP/1.1\r\n\r\n",
    b"GET /x?y HTTP/1.1\r\nX-A: b\r\n\r\n",
    b"POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\nok",
    b"GET http://example.com/ HTTP/1.1\r\n\r\n",
])
def test_http11_without_host_is_refused_by_both_unless_allowed(data: bytes) -> None:
    for parser_class in (HttptoolsParser, H11Parser):
        assert outcome(parser_class, data, require_host=True)[0] == 400, parser_class
        assert outcome(parser_class, data, require_host=False)[0] == 0, parser_class
        with_host = data.replace(b"\r\n", b"\r\nHost: x\r\n", 1)
        assert outcome(parser_class, with_host, require_host=True)[0] == 0, parser_class


def test_difference_absolute_form_scheme_with_digits() -> None:
    """llhttp refuses a scheme with digits, '+', '-' or '.'; RFC 3986 3.1 and h11 allow it."""
    data = b"GET h2c+x://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n"
    assert outcome(HttptoolsParser, data)[0] == 400
    status, events = outcome(H11Parser, data)
    assert status == 0 and events[0][1] == b"h2c+x://example.com/"  # type: ignore[index]


def test_difference_first_fault_reported() -> None:
    """A head with two faults is refused by both; which fault is reported may differ, as
    llhttp judges field by field and h11 a whole head (here: 431 for the 101st field, or
    400 for the NUL after it)."""
    fields = b"".join(b"F%d: %d\r\n" % (i, i) for i in range(101))
    data = b"GET / HTTP/1.1\r\nHost: x\r\n" + fields + b"X: a\x00b\r\n\r\n"
    assert outcome(HttptoolsParser, data)[0] == 431
    assert outcome(H11Parser, data)[0] == 400


@pytest.mark.parametrize("data", [
    b"GET / HTTP/1.1\r\nHost: x\r\nA: value \t \r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\t\r\n\r\n",
])
def test_trailing_whitespace_is_not_part_of_a_value(data: bytes) -> None:
    """RFC 9110 5.5: optional whitespace around a value is not part of it (llhttp keeps
    trailing whitespace; the adapter strips it so both parsers agree)."""
    for parser_class in (HttptoolsParser, H11Parser):
        status, events = outcome(parser_class, data)
        assert status == 0
        assert all(value == value.strip(b" \t") for _, value in events[0][3])  # type: ignore[index]


@pytest.mark.parametrize("parser_class", [HttptoolsParser, H11Parser])
def test_bytes_after_a_closing_request_are_refused(parser_class: type[ParserAdapter]) -> None:
    status, events = outcome(parser_class,
                             b"GET / HTTP/1.0\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 400 and events[-1] == "end" and len(events) == 2
