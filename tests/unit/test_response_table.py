"""frame_response_head against the bytes frame_head gave before it was split (issue #22).

Each row is a request side and an app's response; the expected head is what the former
`frame_head` (removed since) produced for it, recorded before the change.
"""

from __future__ import annotations

import pytest

from gunicorn_async_workers.http.response import (
    DateHeader,
    Framing,
    frame_response_head,
    status_line,
)

DATE = DateHeader()
DATE.date_line = b"date: Thu, 01 Jan 2026 00:00:00 GMT\r\n"
DATE.value = DATE.date_line + DATE.server_line
CT = (b"content-type", b"text/plain")

# (id, status, headers, head_request, http10, keep_alive, body_length,
#  the fields after the date and server lines, (content_length, chunked, keep_alive, no_body))
ROWS = [
    ("plain_200_app_length", 200, [CT, (b"content-length", b"13")], False, False, True, 13,
     b"content-type: text/plain\r\ncontent-length: 13\r\n", (13, False, True, False)),
    ("body_length_added", 200, [CT], False, False, True, 5,
     b"content-type: text/plain\r\ncontent-length: 5\r\n", (5, False, True, False)),
    ("empty_body_length", 200, [], False, False, True, 0,
     b"content-length: 0\r\n", (0, False, True, False)),
    ("streaming_http11_chunked", 200, [CT], False, False, True, None,
     b"content-type: text/plain\r\ntransfer-encoding: chunked\r\n", (None, True, True, False)),
    ("streaming_http10_close_delimited", 200, [CT], False, True, True, None,
     b"content-type: text/plain\r\nconnection: close\r\n", (None, False, False, False)),
    ("http10_keep_alive", 200, [CT], False, True, True, 3,
     b"content-type: text/plain\r\ncontent-length: 3\r\nconnection: keep-alive\r\n",
     (3, False, True, False)),
    ("http10_close", 200, [CT], False, True, False, 3,
     b"content-type: text/plain\r\ncontent-length: 3\r\nconnection: close\r\n",
     (3, False, False, False)),
    ("keep_alive_false", 200, [CT], False, False, False, 7,
     b"content-type: text/plain\r\ncontent-length: 7\r\nconnection: close\r\n",
     (7, False, False, False)),
    ("keep_alive_false_streaming", 500, [], False, False, False, None,
     b"transfer-encoding: chunked\r\nconnection: close\r\n", (None, True, False, False)),
    ("head_with_length", 200, [CT], True, False, True, 10,
     b"content-type: text/plain\r\ncontent-length: 10\r\n", (10, False, True, True)),
    ("head_empty_body", 200, [CT], True, False, True, 0,
     b"content-type: text/plain\r\n", (None, False, True, True)),
    ("head_streaming", 200, [CT], True, False, True, None,
     b"content-type: text/plain\r\n", (None, False, True, True)),
    ("head_app_length", 200, [(b"content-length", b"42")], True, False, True, 0,
     b"content-length: 42\r\n", (42, False, True, True)),
    ("204_drops_length", 204, [(b"content-length", b"0"), CT], False, False, True, 0,
     b"content-type: text/plain\r\n", (0, False, True, True)),
    ("304_no_length", 304, [(b"etag", b'"x"')], False, False, True, 0,
     b'etag: "x"\r\n', (None, False, True, True)),
    ("304_keeps_app_length", 304, [(b"content-length", b"99")], False, False, True, None,
     b"content-length: 99\r\n", (99, False, True, True)),
    ("app_connection_close", 200, [(b"Connection", b"close")], False, False, True, 2,
     b"content-length: 2\r\nconnection: close\r\n", (2, False, False, False)),
    ("app_keep_alive_http10", 200, [(b"connection", b"keep-alive")], False, True, True, 2,
     b"content-length: 2\r\nconnection: keep-alive\r\n", (2, False, True, False)),
    ("app_transfer_encoding_dropped", 200, [(b"transfer-encoding", b"chunked")],
     False, False, True, None,
     b"transfer-encoding: chunked\r\n", (None, True, True, False)),
    ("unknown_status", 299, [CT], False, False, True, 4,
     b"content-type: text/plain\r\ncontent-length: 4\r\n", (4, False, True, False)),
]
# Rows where the app's own Date or Server replaces the server's: the whole head.
OWN_DATE_ROWS = [
    ("app_date_and_server", 200, [(b"date", b"x"), (b"Server", b"me")], False, False, True, 1,
     b"HTTP/1.1 200 OK\r\ndate: x\r\nServer: me\r\ncontent-length: 1\r\n\r\n",
     (1, False, True, False)),
    ("app_server_only", 201, [(b"server", b"me")], False, True, True, None,
     b"HTTP/1.1 201 Created\r\ndate: Thu, 01 Jan 2026 00:00:00 GMT\r\nserver: me\r\n"
     b"connection: close\r\n\r\n", (None, False, False, False)),
]
EXPECTED = [
    (row[:7], status_line(row[1]) + DATE.value + row[7] + b"\r\n", row[8]) for row in ROWS
] + [(row[:7], row[7], row[8]) for row in OWN_DATE_ROWS]


def outcome(framing: Framing) -> tuple[int | None, bool, bool, bool]:
    return framing.content_length, framing.chunked, framing.keep_alive, framing.no_body


@pytest.mark.parametrize(("case", "head", "framed"), EXPECTED, ids=[e[0][0] for e in EXPECTED])
def test_same_head_and_framing_as_before(
        case: tuple[str, int, list[tuple[bytes, bytes]], bool, bool, bool, int | None],
        head: bytes, framed: tuple[int | None, bool, bool, bool]) -> None:
    _, status, headers, head_request, http10, keep_alive, body_length = case
    framing = Framing()
    assert frame_response_head(
        status, headers, DATE, framing, head_request=head_request, http10=http10,
        keep_alive=keep_alive, body_length=body_length) == head
    assert outcome(framing) == framed
