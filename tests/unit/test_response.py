"""Unit tests of response framing (frame_response_head, chunk, status_line, DateHeader),
with h11 as the oracle."""

from __future__ import annotations

import re

import h11
import pytest

from gunicorn_async_workers.http.response import (
    LAST_CHUNK,
    DateHeader,
    Framing,
    ResponseError,
    chunk,
    frame_response_head,
    status_line,
)

DATE_BLOCK = b"date: Thu, 01 Jan 2026 00:00:00 GMT\r\nserver: gunicorn\r\n"
DATE = DateHeader()
DATE.value = DATE_BLOCK

Headers = list[tuple[bytes, bytes]]


def frame(
    status: int,
    headers: Headers,
    *,
    head_request: bool = False,
    http10: bool = False,
    keep_alive: bool = True,
    body_length: int | None = None,
) -> tuple[bytes, Framing]:
    framing = Framing()
    head = frame_response_head(
        status, headers, DATE, framing, head_request=head_request, http10=http10,
        keep_alive=keep_alive, body_length=body_length)
    return head, framing


def header_lines(head: bytes) -> list[bytes]:
    """The header lines of a head: status line and blank line stripped."""
    assert head.endswith(b"\r\n\r\n")
    return head[:-4].split(b"\r\n")[1:]


def connection_lines(head: bytes) -> list[bytes]:
    return [line for line in header_lines(head) if line.lower().startswith(b"connection:")]


def h11_read(data: bytes, *, method: bytes = b"GET", close: bool = False,
             eof: bool = False) -> list[object]:
    """The events an independent HTTP/1.1 client (h11) parses from `data`.

    A request is sent first so that h11 knows which response it reads (HEAD: no body).
    """
    conn = h11.Connection(h11.CLIENT)
    headers = [(b"host", b"example.test")]
    if close:
        headers.append((b"connection", b"close"))
    conn.send(h11.Request(method=method, target="/", headers=headers))
    conn.send(h11.EndOfMessage())
    conn.receive_data(data)
    if eof:
        conn.receive_data(b"")
    events: list[object] = []
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA or event is h11.PAUSED:
            break
        events.append(event)
        if isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
            break
    return events


def h11_response(events: list[object]) -> tuple[int, Headers, bytes, bool]:
    """Status, raw headers, whole body, and whether the message ended, from h11's events."""
    response = events[0]
    assert isinstance(response, h11.Response)
    body = b"".join(bytes(e.data) for e in events if isinstance(e, h11.Data))
    ended = isinstance(events[-1], h11.EndOfMessage)
    return response.status_code, list(response.headers.raw_items()), body, ended


# -- status_line and DateHeader -------------------------------------------------------------

def test_status_line_known_and_unknown() -> None:
    assert status_line(200) == b"HTTP/1.1 200 OK\r\n"
    assert status_line(404) == b"HTTP/1.1 404 Not Found\r\n"
    assert status_line(599) == b"HTTP/1.1 599 \r\n"


@pytest.mark.parametrize("status", [0, 99, 1000, -200])
def test_status_out_of_range_is_refused(status: int) -> None:
    with pytest.raises(ResponseError):
        status_line(status)
    with pytest.raises(ResponseError):
        frame(status, [], body_length=0)


def test_date_header_block_and_refresh() -> None:
    date = DateHeader(b"gaw-test")
    assert re.fullmatch(
        rb"date: [A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT\r\n"
        rb"server: gaw-test\r\n", date.value)
    date.value = b"stale"
    date.refresh()
    assert date.value.startswith(b"date: ") and date.value.endswith(b"server: gaw-test\r\n")


def test_chunk_pieces() -> None:
    assert chunk(b"hello") == [b"5\r\n", b"hello", b"\r\n"]
    assert b"".join(chunk(b"x" * 26)) == b"1a\r\n" + b"x" * 26 + b"\r\n"
    assert LAST_CHUNK == b"0\r\n\r\n"


# -- framing decisions ----------------------------------------------------------------------

def test_plain_200_keeps_app_content_length_and_header_order() -> None:
    headers = [(b"X-First", b"1"), (b"Content-Length", b"5"), (b"x-last", b"3")]
    head, framing = frame(200, headers, body_length=5)
    assert head == (b"HTTP/1.1 200 OK\r\n" + DATE_BLOCK
                    + b"X-First: 1\r\nContent-Length: 5\r\nx-last: 3\r\n\r\n")
    assert framing.content_length == 5
    assert not framing.chunked and framing.keep_alive and not framing.no_body
    status, raw, body, ended = h11_response(h11_read(head + b"hello"))
    assert status == 200 and body == b"hello" and ended
    assert raw == [(b"date", DATE_BLOCK[6:35]), (b"server", b"gunicorn"), (b"X-First", b"1"),
                   (b"Content-Length", b"5"), (b"x-last", b"3")]


def test_body_length_adds_content_length() -> None:
    head, framing = frame(200, [(b"content-type", b"text/plain")], body_length=11)
    assert header_lines(head)[-1] == b"content-length: 11"
    assert framing.content_length == 11 and not framing.chunked
    status, raw, body, ended = h11_response(h11_read(head + b"hello world"))
    assert (status, body, ended) == (200, b"hello world", True)
    assert (b"content-length", b"11") in raw


def test_streaming_http11_is_chunked() -> None:
    head, framing = frame(200, [(b"content-type", b"text/plain")], body_length=None)
    assert b"transfer-encoding: chunked" in header_lines(head)
    assert framing.chunked and framing.content_length is None and framing.keep_alive
    wire = head + b"".join(chunk(b"hel")) + b"".join(chunk(b"lo")) + LAST_CHUNK
    status, raw, body, ended = h11_response(h11_read(wire))
    assert (status, body, ended) == (200, b"hello", True)
    assert (b"transfer-encoding", b"chunked") in raw


def test_streaming_http10_is_close_delimited() -> None:
    head, framing = frame(200, [], http10=True, body_length=None)
    lines = header_lines(head)
    assert b"connection: close" in lines
    assert not any(line.lower().startswith((b"content-length", b"transfer-encoding"))
                   for line in lines)
    assert not framing.keep_alive and not framing.chunked and framing.content_length is None
    status, _, body, ended = h11_response(h11_read(head + b"streamed", eof=True))
    assert (status, body, ended) == (200, b"streamed", True)


def test_http10_keep_alive_is_announced() -> None:
    head, framing = frame(200, [], http10=True, keep_alive=True, body_length=2)
    assert header_lines(head)[-2:] == [b"content-length: 2", b"connection: keep-alive"]
    assert framing.keep_alive


def test_http10_without_keep_alive_closes() -> None:
    head, framing = frame(200, [], http10=True, keep_alive=False, body_length=2)
    assert header_lines(head)[-1] == b"connection: close"
    assert not framing.keep_alive


def test_request_close_gives_connection_close() -> None:
    head, framing = frame(200, [], keep_alive=False, body_length=2)
    assert header_lines(head)[-1] == b"connection: close"
    assert not framing.keep_alive
    events = h11_read(head + b"ok", close=True)
    assert h11_response(events)[2:] == (b"ok", True)


def test_head_request_has_no_body_and_keeps_content_length() -> None:
    head, framing = frame(200, [(b"content-length", b"1234")], head_request=True,
                          body_length=0)
    assert b"content-length: 1234" in header_lines(head)
    assert framing.no_body and framing.content_length == 1234
    status, raw, body, ended = h11_response(h11_read(head, method=b"HEAD"))
    assert (status, body, ended) == (200, b"", True)
    assert (b"content-length", b"1234") in raw


def test_head_request_streaming_is_not_chunked() -> None:
    head, framing = frame(200, [], head_request=True, body_length=None)
    assert framing.no_body and not framing.chunked
    assert not any(b"transfer-encoding" in line for line in header_lines(head))


def test_204_drops_content_length() -> None:
    head, framing = frame(204, [(b"content-length", b"0"), (b"x-a", b"b")], body_length=0)
    lines = header_lines(head)
    assert not any(line.lower().startswith(b"content-length") for line in lines)
    assert b"x-a: b" in lines and framing.no_body and framing.keep_alive
    status, _, body, ended = h11_response(h11_read(head))
    assert (status, body, ended) == (204, b"", True)


def test_304_has_no_body_and_no_added_length() -> None:
    head, framing = frame(304, [(b"etag", b'"v1"')], body_length=0)
    lines = header_lines(head)
    assert not any(line.startswith((b"content-length", b"transfer-encoding")) for line in lines)
    assert framing.no_body and not framing.chunked
    status, raw, body, ended = h11_response(h11_read(head))
    assert (status, body, ended) == (304, b"", True)
    assert (b"etag", b'"v1"') in raw


def test_304_keeps_an_app_content_length() -> None:
    head, framing = frame(304, [(b"content-length", b"42")], body_length=0)
    assert b"content-length: 42" in header_lines(head)
    assert framing.no_body
    assert h11_response(h11_read(head))[2:] == (b"", True)


@pytest.mark.parametrize("status", [100, 101, 103, 199, 600, 999, 0, 1000, "200", True])
def test_a_final_response_has_a_final_status(status: object) -> None:
    """A 1xx written as the final response would be read as an interim one (the client
    pairs every later response with the wrong request); 600 and up are no HTTP status."""
    with pytest.raises(ResponseError, match="200 to 599"):
        frame(status, [], body_length=0)  # type: ignore[arg-type]


@pytest.mark.parametrize("status", [200, 299, 418, 599])
def test_any_status_from_200_to_599_is_sent(status: int) -> None:
    head, _ = frame(status, [], body_length=2)
    events = h11_read(head + b"ok")
    assert isinstance(events[0], h11.Response) and events[0].status_code == status


@pytest.mark.parametrize("value", [b"close", b"Close", b"keep-alive, close"])
def test_app_connection_close_ends_keep_alive(value: bytes) -> None:
    head, framing = frame(200, [(b"Connection", value)], body_length=0)
    assert not framing.keep_alive
    assert connection_lines(head) == [b"connection: close"]


def test_app_transfer_encoding_is_dropped() -> None:
    head, framing = frame(200, [(b"transfer-encoding", b"chunked")], body_length=3)
    assert not any(b"transfer-encoding" in line for line in header_lines(head))
    assert framing.content_length == 3 and not framing.chunked


def test_app_keep_alive_is_not_echoed_when_the_server_closes() -> None:
    head, framing = frame(200, [(b"connection", b"keep-alive")], keep_alive=False,
                          body_length=0)
    assert not framing.keep_alive
    assert connection_lines(head) == [b"connection: close"]


def test_app_keep_alive_is_stated_once_on_http10() -> None:
    head, framing = frame(200, [(b"Connection", b"keep-alive")], http10=True, body_length=0)
    assert framing.keep_alive
    assert connection_lines(head) == [b"connection: keep-alive"]


def test_app_keep_alive_on_http11_adds_nothing() -> None:
    head, framing = frame(200, [(b"connection", b"keep-alive")], body_length=0)
    assert framing.keep_alive and connection_lines(head) == []


# -- refused responses ----------------------------------------------------------------------

@pytest.mark.parametrize("name", [b"bad name", b"bad:name", b"", b"x\r\ny", b"caf\xc3\xa9"])
def test_invalid_header_name_is_refused(name: bytes) -> None:
    with pytest.raises(ResponseError):
        frame(200, [(name, b"v")], body_length=0)


@pytest.mark.parametrize("value", [
    b"a\r\nset-cookie: evil=1", b"a\rb", b"a\nb", b"a\x00b", b"\r\n", b"a\r\n\r\nHTTP/1.1 200 OK",
])
def test_header_value_with_cr_lf_nul_is_refused(value: bytes) -> None:
    with pytest.raises(ResponseError):
        frame(200, [(b"x-value", value)], body_length=0)


def test_split_value_refused_in_content_length_and_connection_too() -> None:
    with pytest.raises(ResponseError):
        frame(200, [(b"content-length", b"0\r\nx: y")], body_length=0)
    with pytest.raises(ResponseError):
        frame(200, [(b"connection", b"upgrade\r\nx: y")], body_length=0)


def test_two_content_lengths_are_refused() -> None:
    with pytest.raises(ResponseError, match="content-length"):
        frame(200, [(b"content-length", b"5"), (b"Content-Length", b"5")], body_length=5)


@pytest.mark.parametrize("value", [b"abc", b"-1", b"+5", b" 5", b"5 ", b"0x10", b"", b"1_0"])
def test_non_digit_content_length_is_refused(value: bytes) -> None:
    with pytest.raises(ResponseError):
        frame(200, [(b"content-length", value)], body_length=0)


@pytest.mark.parametrize("headers", [
    [(b"x-a",)], [b"x-a: b"], [(b"x-a", b"b", b"c")], None, [(1, b"v")], [("x-a", b"v")],
])
def test_malformed_header_pairs_are_refused(headers: object) -> None:
    with pytest.raises(ResponseError):
        frame(200, headers, body_length=0)  # type: ignore[arg-type]


def test_str_header_value_is_refused_as_response_error() -> None:
    with pytest.raises(ResponseError):
        frame(200, [(b"x-a", "text")], body_length=0)  # type: ignore[list-item]


def test_app_date_and_server_replace_the_servers_own() -> None:
    """RFC 9110 6.6.1 allows one Date: an app's own Date (or Server) replaces the server's."""
    head, _ = frame(200, [(b"Date", b"Tue, 01 Jan 2030 00:00:00 GMT"), (b"server", b"app")],
                    body_length=0)
    lines = [line.lower() for line in header_lines(head)]
    assert [line for line in lines if line.startswith(b"date:")] == [
        b"date: tue, 01 jan 2030 00:00:00 gmt"]
    assert [line for line in lines if line.startswith(b"server:")] == [b"server: app"]
    head, _ = frame(200, [(b"date", b"Tue, 01 Jan 2030 00:00:00 GMT")], body_length=0)
    assert b"server: gunicorn\r\n" in head and head.count(b"date:") == 1
