"""How a refusal leaves the parser adapters (issue #22), and the stages of their framing.

A rule judged inside an llhttp callback is recorded in `error` before llhttp is stopped, and
`feed` raises that very object: nothing is dug out of httptools' exception. Each adapter runs
here (the `parser_class` fixture); the listener is a real one that records or refuses.
"""

from __future__ import annotations

import pytest

from gunicorn_async_workers.http.errors import (
    BadRequest,
    ContentTooLarge,
    ExpectationFailed,
    Forbidden,
    HeadersTooLarge,
    RequestError,
    UnsupportedTransferCoding,
)
from gunicorn_async_workers.http.parsers import HeadPolicy, HttptoolsParser, ParserAdapter, Stage


class Listener:
    """Counts heads and ends; refuses each head with `refuse` when it is set."""

    def __init__(self, refuse: Exception | None = None) -> None:
        self.refuse = refuse
        self.heads = 0
        self.ends = 0
        self.body = b""

    def on_request_head(self, head: ParserAdapter) -> None:
        self.heads += 1
        if self.refuse is not None:
            raise self.refuse

    def on_body(self, data: bytes) -> None:
        self.body += data

    def on_request_end(self) -> None:
        self.ends += 1


def make(parser_class: type[ParserAdapter], listener: Listener | None = None,
         **limits: int) -> ParserAdapter:
    policy = HeadPolicy(
        limit_line=limits.get("limit_line", 4094),
        limit_fields=limits.get("limit_fields", 100),
        limit_field_size=limits.get("limit_field_size", 8190),
        scheme_headers={}, forwarder_headers=frozenset(), header_map="refuse",
        max_body_size=limits.get("max_body_size", 0))
    return parser_class(listener or Listener(), policy, trusted=False, scheme="http")


def refusal(parser: ParserAdapter, data: bytes) -> RequestError:
    with pytest.raises(RequestError) as info:
        parser.feed(data)
    return info.value


JUDGED = [
    pytest.param(b"GET / HTTP/1.1\r\nX-Big: " + b"v" * 100 + b"\r\n\r\n",
                 {"limit_field_size": 64}, HeadersTooLarge,
                 id="field-over-limit_request_field_size"),
    pytest.param(b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", {"limit_fields": 2},
                 HeadersTooLarge, id="fields-over-limit_request_fields"),
    pytest.param(b"POST / HTTP/1.1\r\nContent-Length: 3x\r\n\r\nabc", {}, BadRequest,
                 id="bad-content-length"),
    pytest.param(b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", {},
                 BadRequest, id="repeated-content-length"),
    pytest.param(b"POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello world",
                 {"max_body_size": 10}, ContentTooLarge, id="content-length-over-max_body_size"),
    pytest.param(b"GET / HTTP/1.1\r\nExpect: foo\r\n\r\n", {}, ExpectationFailed,
                 id="expectation"),
    pytest.param(b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", {},
                 UnsupportedTransferCoding, id="coding-judged-after-the-last-field"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", {}, BadRequest,
                 id="repeated-host"),
]


@pytest.mark.parametrize(("data", "limits", "error"), JUDGED)
def test_a_judged_error_comes_out_of_feed_as_recorded(
        parser_class: type[ParserAdapter], data: bytes, limits: dict[str, int],
        error: type[RequestError]) -> None:
    listener = Listener()
    parser = make(parser_class, listener, **limits)
    raised = refusal(parser, data)
    assert type(raised) is error
    assert raised is parser.error  # the object recorded where it was judged, not a wrapper
    # Raised as itself: no parser exception as its cause, none shown as its context.
    assert raised.__cause__ is None and (raised.__context__ is None or raised.__suppress_context__)
    assert listener.heads == 0  # refused before the listener saw the head


@pytest.mark.parametrize(("data", "limits", "error"), JUDGED)
def test_a_judged_error_is_the_same_fed_byte_by_byte(
        parser_class: type[ParserAdapter], data: bytes, limits: dict[str, int],
        error: type[RequestError]) -> None:
    parser = make(parser_class, **limits)
    with pytest.raises(RequestError) as info:
        for i in range(len(data)):
            parser.feed(data[i:i + 1])
    assert type(info.value) is error and info.value is parser.error


def test_the_listeners_request_error_comes_out_of_feed(
        parser_class: type[ParserAdapter]) -> None:
    refused = Forbidden("the listener refuses this head")
    parser = make(parser_class, Listener(refuse=refused))
    assert refusal(parser, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n") is refused
    assert parser.error is refused


def test_a_parse_error_of_the_parser_itself_is_bad_request(
        parser_class: type[ParserAdapter]) -> None:
    parser = make(parser_class)
    raised = refusal(parser, b"GET / HTTP/1.1\r\nBad Name: v\r\n\r\n")
    assert type(raised) is BadRequest and raised is parser.error


def test_a_listener_bug_is_not_turned_into_a_refusal(parser_class: type[ParserAdapter]) -> None:
    """Anything but a RequestError from the listener is a bug: never answered as a 4xx."""
    parser = make(parser_class, Listener(refuse=LookupError("a bug")))
    with pytest.raises(Exception) as info:
        parser.feed(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    assert not isinstance(info.value, RequestError)
    assert parser.error is None
    if parser_class is not HttptoolsParser:
        assert isinstance(info.value, LookupError)


def test_a_callback_error_recorded_by_httptools_stops_llhttp_at_once() -> None:
    """After the first refused field no further callback runs: the first error is kept."""
    parser = make(HttptoolsParser, limit_field_size=16)
    raised = refusal(parser, b"GET / HTTP/1.1\r\nX-First: " + b"v" * 20 + b"\r\nExpect: x\r\n\r\n")
    assert type(raised) is HeadersTooLarge and "x-first" in raised.detail.lower()


# -- the stages of the framing ----------------------------------------------------------------

def test_stages_of_a_body_and_a_closing_request(parser_class: type[ParserAdapter]) -> None:
    listener = Listener()
    parser = make(parser_class, listener)
    assert parser.state is Stage.LINE
    parser.feed(b"POST / HT")
    assert parser.state is Stage.LINE and parser.partial()  # the line is held
    parser.feed(b"TP/1.1\r\nContent-Length: 5\r\n")
    assert parser.state is Stage.FIELDS and parser.partial()
    parser.feed(b"\r\nab")
    assert parser.state is Stage.BODY and not parser.partial()
    parser.feed(b"cde")
    assert parser.state is Stage.LINE and (listener.body, listener.ends) == (b"abcde", 1)
    parser.feed(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert parser.state is Stage.CLOSED and listener.ends == 2
    with pytest.raises(BadRequest):
        parser.feed(b"GET / HTTP/1.1\r\n\r\n")


def test_stages_of_a_chunked_body_and_an_upgrade(parser_class: type[ParserAdapter]) -> None:
    listener = Listener()
    parser = make(parser_class, listener)
    parser.feed(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
    assert parser.state is Stage.CHUNKED
    parser.feed(b"0\r\n\r\n")
    assert parser.state is Stage.LINE and (listener.body, listener.ends) == (b"abc", 1)
    parser.feed(b"GET / HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: x\r\n\r\nnot http")
    assert parser.state is Stage.UPGRADED and parser.upgraded and listener.ends == 2
    parser.feed(b" either")
    assert parser.upgrade_data == b"not http either"
