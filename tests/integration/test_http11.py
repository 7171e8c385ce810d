"""HTTP/1.x connection management and message framing of the worker, observed on raw sockets."""

from __future__ import annotations

import email.utils
import hashlib
import json
import os
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import WORKER_CLASSES
from gunicorn_process import GunicornProcess, wait_for
from raw_http import RawResponse, ResponseReader, http

APP = "apps.http_behaviour:app"
KEEPALIVE = 1  # seconds; small so the idle-close test is quick


@pytest.fixture(scope="module", params=WORKER_CLASSES)
def server(request: pytest.FixtureRequest) -> Iterator[GunicornProcess]:
    """One server for the module: no test here changes the server's state."""
    proc = GunicornProcess(APP, request.param, settings={"keepalive": KEEPALIVE})
    try:
        proc.start()
        yield proc
    finally:
        proc.stop()


def pattern(size: int) -> bytes:
    """The bytes /bigresponse sends (same rule as the app)."""
    block = bytes(range(256))
    return (block * (size // 256 + 1))[:size]


def closed_by_server(sock: socket.socket, within: float = 4.0) -> bool:
    """Whether the server closes `sock` within `within` seconds (nothing else may arrive)."""
    sock.settimeout(within)
    try:
        data = sock.recv(1)
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    assert data == b"", f"unexpected bytes after the response: {data!r}"
    return True


def echo_doc(resp: RawResponse) -> dict:
    assert resp.status == 200, resp
    return json.loads(resp.body)


# -- persistence ----------------------------------------------------------------------------
def test_keepalive_serves_several_requests_on_one_connection(server: GunicornProcess) -> None:
    with server.connect() as s:
        reader = ResponseReader(s)
        for i in range(5):
            s.sendall(http("GET", f"/echo?i={i}"))
            doc = echo_doc(reader.read_response())
            assert doc["query_string"] == f"i={i}"
        assert not reader.closed


def test_idle_keepalive_connection_closed_after_keepalive_seconds(
        server: GunicornProcess) -> None:
    with server.connect() as s:
        s.sendall(http("GET", "/echo"))
        ResponseReader(s).read_response()
        started = time.monotonic()
        assert closed_by_server(s, within=KEEPALIVE + 3), "idle connection was never closed"
        elapsed = time.monotonic() - started
    assert elapsed >= KEEPALIVE * 0.8, f"closed after {elapsed:.2f} s, before keepalive"


def test_pipelined_requests_answered_in_order(server: GunicornProcess) -> None:
    with server.connect() as s:
        s.sendall(
            http("GET", "/echo?first")
            + http("POST", "/echo?second", "Content-Length: 3", body=b"abc")
            + http("GET", "/head")
            + http("GET", "/stream?parts=2")
        )
        reader = ResponseReader(s)
        first = echo_doc(reader.read_response())
        second = echo_doc(reader.read_response())
        third = reader.read_response()
        fourth = reader.read_response()
    assert first["query_string"] == "first"
    assert (second["query_string"], second["body"]) == ("second", "abc")
    assert third.header(b"x-route") == b"head"
    assert third.body == b"hello from /head\n"
    assert fourth.body == b"part0;part1;"


# -- request bodies -------------------------------------------------------------------------
def test_content_length_body_reaches_app_whole(server: GunicornProcess) -> None:
    body = bytes(range(256)) * 40
    with server.connect() as s:
        s.sendall(http("POST", "/echo", f"Content-Length: {len(body)}"))
        s.sendall(body[:1000])
        s.sendall(body[1000:])
        doc = echo_doc(ResponseReader(s).read_response())
    assert doc["length"] == len(body)
    assert doc["sha256"] == hashlib.sha256(body).hexdigest()


def test_chunked_body_with_extensions_and_trailers_reaches_app_whole(
        server: GunicornProcess) -> None:
    chunked = (b"5;name=value\r\nhello\r\n"
               b"6;quoted=\"a b\";flag\r\n world\r\n"
               b"1\r\n!\r\n"
               b"0\r\nX-Trailer: t1\r\nX-Other: t2\r\n\r\n")
    with server.connect() as s:
        reader = ResponseReader(s)
        s.sendall(http("POST", "/echo", "Transfer-Encoding: chunked", "Trailer: X-Trailer")
                  + chunked)
        doc = echo_doc(reader.read_response())
        # the trailer section was consumed: the next request on the connection parses
        s.sendall(http("GET", "/echo?after-trailers"))
        after = echo_doc(reader.read_response())
    assert doc["body"] == "hello world!"
    assert after["query_string"] == "after-trailers"


def test_expect_100_continue_sent_when_app_first_reads_body(
        server: GunicornProcess, tmp_path: Path) -> None:
    entered, go = tmp_path / "entered", tmp_path / "go"
    target = f"/expect?entered={entered}&go={go}"
    with server.connect() as s:
        s.sendall(http("POST", target, "Content-Length: 5", "Expect: 100-continue"))
        wait_for(entered.exists, 5, what="app entered")
        # The app runs but has not called receive(): no interim response may have been sent.
        s.settimeout(0.3)
        try:
            early = s.recv(4096)
        except TimeoutError:
            early = b""
        assert early == b"", f"sent before the app read the body: {early!r}"
        go.touch()
        reader = ResponseReader(s)
        interim = reader.read_response()
        assert (interim.version, interim.status) == (b"HTTP/1.1", 100)
        s.sendall(b"hello")
        final = reader.read_response()
    assert final.status == 200
    assert final.body == b"got:hello"


def test_expect_100_continue_not_sent_when_app_answers_without_reading(
        server: GunicornProcess) -> None:
    with server.connect() as s:
        s.sendall(http("POST", "/noread", "Content-Length: 5", "Expect: 100-continue"))
        resp = ResponseReader(s).read_response()
    assert resp.status == 200, f"first response was {resp.status}, expected the final 200"
    assert resp.body == b"answered without reading the body"


# -- responses without a body ---------------------------------------------------------------
def test_head_has_get_headers_and_no_body(server: GunicornProcess) -> None:
    with server.connect() as s:
        reader = ResponseReader(s)
        s.sendall(http("GET", "/head"))
        got = reader.read_response()
        s.sendall(http("HEAD", "/head"))
        head = reader.read_response(head_request=True)
        # any body bytes after the HEAD response would break parsing of the next response
        s.sendall(http("GET", "/echo?after-head"))
        after = echo_doc(reader.read_response())
    assert head.status == 200
    assert head.header(b"content-length") == got.header(b"content-length") == b"17"
    assert head.header(b"transfer-encoding") is None
    assert after["query_string"] == "after-head"


@pytest.mark.parametrize("code", [204, 304])
def test_no_body_status_sent_without_body_or_chunked_framing(
        server: GunicornProcess, code: int) -> None:
    with server.connect() as s:
        reader = ResponseReader(s)
        s.sendall(http("GET", f"/status/{code}"))
        resp = reader.read_response()
        s.sendall(http("GET", f"/echo?after-{code}"))
        after = echo_doc(reader.read_response())
    assert resp.status == code
    assert resp.header(b"x-status") == str(code).encode()
    assert resp.header(b"transfer-encoding") is None
    if code == 204:
        assert resp.header(b"content-length") is None  # RFC 9110 8.6: MUST NOT
    assert after["query_string"] == f"after-{code}"


# -- connection close rules -----------------------------------------------------------------
def test_http10_request_closed_after_response(server: GunicornProcess) -> None:
    with server.connect() as s:
        s.sendall(http("GET", "/echo?v10", version="HTTP/1.0", host=False))
        reader = ResponseReader(s)
        doc = echo_doc(reader.read_response())
        assert doc["http_version"] == "1.0"
        assert reader.at_eof(), "HTTP/1.0 connection left open without keep-alive"


def test_http10_keepalive_request_keeps_connection_open(server: GunicornProcess) -> None:
    with server.connect() as s:
        reader = ResponseReader(s)
        s.sendall(http("GET", "/echo?a", "Connection: keep-alive", version="HTTP/1.0"))
        first = reader.read_response()
        s.sendall(http("GET", "/echo?b", "Connection: keep-alive", version="HTTP/1.0"))
        second = echo_doc(reader.read_response())
    assert echo_doc(first)["query_string"] == "a"
    assert (first.header(b"connection") or b"").lower() == b"keep-alive"
    assert second["query_string"] == "b"


def test_client_connection_close_answered_and_closed(server: GunicornProcess) -> None:
    with server.connect() as s:
        s.sendall(http("GET", "/echo", "Connection: close"))
        reader = ResponseReader(s)
        resp = reader.read_response()
        assert resp.status == 200
        assert (resp.header(b"connection") or b"").lower() == b"close"
        assert reader.at_eof(), "server kept the connection after Connection: close"


def test_app_connection_close_header_closes_after_response(server: GunicornProcess) -> None:
    with server.connect() as s:
        s.sendall(http("GET", "/close_header"))
        reader = ResponseReader(s)
        resp = reader.read_response()
        assert (resp.status, resp.body) == (200, b"closing")
        assert (resp.header(b"connection") or b"").lower() == b"close"
        assert reader.at_eof(), "server kept the connection after the app sent Connection: close"


def test_response_without_length_is_chunked_on_http11(server: GunicornProcess) -> None:
    with server.connect() as s:
        reader = ResponseReader(s)
        s.sendall(http("GET", "/stream?parts=3"))
        resp = reader.read_response()
        s.sendall(http("GET", "/echo?after-stream"))
        after = echo_doc(reader.read_response())
    assert resp.chunked
    assert resp.header(b"content-length") is None
    assert resp.body == b"part0;part1;part2;"
    assert after["query_string"] == "after-stream"


def test_response_without_length_is_close_delimited_on_http10(server: GunicornProcess) -> None:
    with server.connect() as s:
        s.sendall(http("GET", "/stream?parts=3", version="HTTP/1.0", host=False))
        reader = ResponseReader(s)
        resp = reader.read_response()  # no length, not chunked: reads until the server closes
        assert reader.closed
    assert not resp.chunked
    assert resp.header(b"transfer-encoding") is None
    assert resp.body == b"part0;part1;part2;"


# -- server-added headers -------------------------------------------------------------------
IMF_FIXDATE = re.compile(
    rb"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} "
    rb"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$"
)


def test_date_and_server_headers_present(server: GunicornProcess) -> None:
    with server.connect() as s:
        s.sendall(http("GET", "/echo"))
        resp = ResponseReader(s).read_response()
    date = resp.header(b"date")
    assert date is not None and IMF_FIXDATE.match(date), f"date header {date!r}"
    sent = email.utils.parsedate_to_datetime(date.decode()).timestamp()
    assert abs(sent - time.time()) < 5
    assert resp.header_all(b"date") == [date]
    assert resp.header(b"server"), "no server header"


# -- flow control ---------------------------------------------------------------------------
def test_large_response_to_slow_reader_arrives_whole(server: GunicornProcess) -> None:
    size = 8 * 1024 * 1024
    with server.connect() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        s.sendall(http("GET", f"/bigresponse?size={size}"))
        s.settimeout(10)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            assert chunk, "closed before the response head"
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        assert re.search(rb"(?im)^content-length: *%d\r?$" % size, head), head
        parts = [body]
        got = len(body)
        next_pause = 0
        while got < size:
            if got >= next_pause:
                # the behaviour under test: a client that stops reading for a while
                time.sleep(0.1)
                next_pause += 1024 * 1024
            chunk = s.recv(65536)
            assert chunk, f"closed after {got} of {size} body bytes"
            parts.append(chunk)
            got += len(chunk)
    body = b"".join(parts)
    assert len(body) == size
    assert body == pattern(size)


def test_large_chunked_upload_to_slow_app_arrives_whole(server: GunicornProcess) -> None:
    size = 32 * 1024 * 1024
    piece = 256 * 1024
    payload = os.urandom(size)
    with server.connect(timeout=30) as s:
        s.sendall(http("POST", "/slowbody", "Transfer-Encoding: chunked"))
        for start in range(0, size, piece):
            data = payload[start:start + piece]
            s.sendall(b"%x\r\n" % len(data) + data + b"\r\n")
        s.sendall(b"0\r\n\r\n")
        resp = ResponseReader(s, timeout=30).read_response()
    assert resp.status == 200, resp
    doc = json.loads(resp.body)
    assert doc["length"] == size
    assert doc["sha256"] == hashlib.sha256(payload).hexdigest()
