"""Chunked request bodies at their edges, on a real Gunicorn, for every worker class and both
app interfaces: long chunk-size and trailer lines are judged the same however the bytes are
split; a body over `max_body_size` or with broken framing is refused before the app runs when
the bytes are there, and gets its 413/400 while the app runs when they come later; never an
ERROR line for the client's mistake.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
from conftest import WORKER_CLASSES
from gunicorn_process import GunicornProcess, error_log, wait_for
from raw_http import RawResponse, ResponseReader

from gunicorn_async_workers.http.chunked import MAX_SIZE_LINE

APPS = {"asgi": "apps.chunked_apps:asgi_app", "wsgi": "apps.chunked_apps:wsgi_app"}
MAX_BODY_SIZE = 4096
FIELD_SIZE = 8190  # Gunicorn's default limit_request_field_size, named for the trailer cases
HEAD = b"POST /read%s HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
# An accepted request closes its connection: the reader need not wait for a close.
LAST = b"POST /read HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"


@pytest.fixture(scope="module", params=[(w, i) for w in WORKER_CLASSES for i in APPS],
                ids=lambda p: f"{p[0]}-{p[1]}")
def server(request: pytest.FixtureRequest) -> Iterator[GunicornProcess]:
    worker_class, interface = request.param
    # threads: a WSGI app blocked reading a body leaves threads to answer /count
    proc = GunicornProcess(APPS[interface], worker_class,
                           settings={"threads": 4, "limit_request_field_size": FIELD_SIZE},
                           env={"GAW_MAX_BODY_SIZE": str(MAX_BODY_SIZE)})
    try:
        proc.start()
        yield proc
    finally:
        proc.stop()


def counter(server: GunicornProcess, name: bytes) -> int:
    with server.connect() as s:
        s.sendall(b"GET /%s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n" % name)
        resp = ResponseReader(s).read_response()
    assert resp.status == 200
    return int(resp.body)


def app_calls(server: GunicornProcess) -> int:
    return counter(server, b"count")


def error_lines(server: GunicornProcess, mark: int) -> list[str]:
    return [line for line in error_log(server)[mark:].splitlines() if " [ERROR] " in line]


def send_in_pieces(s: socket.socket, data: bytes, size: int) -> None:
    """`data` in `size`-byte sends with a pause between them, so that the server reads them
    apart (the answer must not depend on it either way); stops if the server closed."""
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for i in range(0, len(data), size):
        try:
            s.sendall(data[i:i + size])
        except (BrokenPipeError, ConnectionResetError):
            return  # refused before the rest: the response is read next
        time.sleep(0.002)


def answer(server: GunicornProcess, data: bytes, split: int | None, *,
           half_close: bool = False) -> tuple[RawResponse, bool]:
    """Send `data` on a fresh connection (whole, or in `split`-byte pieces): the response
    and whether the server closed the connection after it."""
    with server.connect() as s:
        if half_close:
            # Corked, the data and the FIN leave in one segment: both are there when the
            # server first reads, however busy the machine is.
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
        if split is None:
            s.sendall(data)
        else:
            send_in_pieces(s, data, split)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        reader = ResponseReader(s, 10)
        resp = reader.read_response()
        return resp, reader.at_eof()


def assert_refused(server: GunicornProcess, data: bytes, status: int, *,
                   split: int | None = None, half_close: bool = False) -> None:
    """Refused with `status` and a close, quietly; with the bytes in one send, the app is
    never called; the worker serves on."""
    pids = server.worker_pids()
    calls = app_calls(server)
    mark = len(error_log(server))
    resp, closed = answer(server, data, split, half_close=half_close)
    assert resp.status == status, (resp.status, resp.body)
    assert closed, "connection left open after a refused body"
    if split is None:
        assert app_calls(server) == calls, "the app was called for a refused request"
    resp, _ = answer(server, LAST + b"5\r\nhello\r\n0\r\n\r\n", None)
    assert (resp.status, resp.body) == (200, b"5")
    assert server.worker_pids() == pids, "the worker changed"
    assert not error_lines(server, mark)


# -- point 5: long chunk-size and trailer lines, however they are split -----------------------
def size_line(length: int) -> bytes:
    """A chunk-size line of `length` bytes, CRLF included: size 5 and one long extension."""
    return b"5;x=" + b"e" * (length - 6) + b"\r\n"


def trailer_line(length: int) -> bytes:
    """A trailer field line of `length` bytes, CRLF included."""
    return b"X-Big: " + b"t" * (length - 9) + b"\r\n"


def with_size_line(length: int, head: bytes = HEAD % b"") -> bytes:
    return head + size_line(length) + b"hello\r\n0\r\n\r\n"


def with_trailer(length: int, head: bytes = HEAD % b"") -> bytes:
    return head + b"5\r\nhello\r\n0\r\n" + trailer_line(length) + b"\r\n"


@pytest.mark.parametrize("split", [None, 4096], ids=["one-read", "4KiB-pieces"])
@pytest.mark.parametrize("length", [60 * 1024, 100 * 1024])
def test_long_chunk_extension_refused_however_split(
        server: GunicornProcess, length: int, split: int | None) -> None:
    assert_refused(server, with_size_line(length), 400, split=split)


@pytest.mark.parametrize("split", [None, 4096], ids=["one-read", "4KiB-pieces"])
@pytest.mark.parametrize("length", [60 * 1024, 100 * 1024])
def test_long_trailer_line_refused_however_split(
        server: GunicornProcess, length: int, split: int | None) -> None:
    assert_refused(server, with_trailer(length), 431, split=split)


@pytest.mark.parametrize("split", [None, 4096], ids=["one-read", "4KiB-pieces"])
def test_lines_at_their_limits_accepted(server: GunicornProcess, split: int | None) -> None:
    for data in (with_size_line(MAX_SIZE_LINE, LAST), with_trailer(FIELD_SIZE, LAST)):
        resp, _ = answer(server, data, split)
        assert (resp.status, resp.body) == (200, b"5")
    assert_refused(server, with_size_line(MAX_SIZE_LINE + 1), 400, split=split)
    assert_refused(server, with_trailer(FIELD_SIZE + 1), 431, split=split)


# -- points 8 and 9: refused before the app when the bytes are there ---------------------------
BROKEN = {
    "bad_size": b"zz\r\nhello\r\n0\r\n\r\n",
    "data_without_crlf": b"5\r\nhelloXX0\r\n\r\n",
    "bare_lf_size_line": b"5\nhello\r\n0\r\n\r\n",
    "bad_trailer": b"5\r\nhello\r\n0\r\nno colon here\r\n\r\n",
    "forbidden_trailer": b"5\r\nhello\r\n0\r\nContent-Length: 5\r\n\r\n",
}


@pytest.mark.parametrize("case", BROKEN)
def test_broken_framing_in_one_read_refused_before_the_app(
        server: GunicornProcess, case: str) -> None:
    assert_refused(server, HEAD % b"" + BROKEN[case], 400)


def test_missing_final_crlf_then_half_close_refused_before_the_app(
        server: GunicornProcess) -> None:
    assert_refused(server, HEAD % b"" + b"5\r\nhello\r\n0\r\n", 400, half_close=True)


def test_body_over_max_body_size_in_one_read_refused_before_the_app(
        server: GunicornProcess) -> None:
    body = b"%x\r\n%s\r\n0\r\n\r\n" % (MAX_BODY_SIZE + 1, b"b" * (MAX_BODY_SIZE + 1))
    assert_refused(server, HEAD % b"" + body, 413)
    many = b"800\r\n" + b"b" * 0x800 + b"\r\n"  # over it by adding up
    assert_refused(server, HEAD % b"" + many * 3 + b"0\r\n\r\n", 413)


# -- points 8 and 9: the app already runs when the bad bytes come --------------------------------
LATE = {
    "over_max_body_size": (b"%x\r\n%s\r\n" % (MAX_BODY_SIZE, b"b" * MAX_BODY_SIZE), 413),
    "bad_size": (b"zz\r\n", 400),
    "data_without_crlf": (b"5\r\nhelloXX", 400),
    "long_extension": (size_line(100 * 1024), 400),
}


@pytest.mark.parametrize("gone", ["return", "raise"])
@pytest.mark.parametrize("case", LATE)
def test_bad_body_while_the_app_reads_gets_its_answer(
        server: GunicornProcess, case: str, gone: str) -> None:
    """The app reads the first chunk and waits; the rest turns out bad: the client gets the
    4xx (no response had started) and a close, the app's body read fails, and whether the
    app then returns or raises, nothing is logged at ERROR."""
    later, status = LATE[case]
    pids = server.worker_pids()
    calls = app_calls(server)
    mark = len(error_log(server))
    with server.connect() as s:
        s.sendall(HEAD % (b"?gone=" + gone.encode()) + b"a\r\n0123456789\r\n")
        wait_for(lambda: app_calls(server) == calls + 1, what="the app reading the body")
        send_in_pieces(s, later, 65536)
        reader = ResponseReader(s, 10)
        resp = reader.read_response()
        assert resp.status == status, (resp.status, resp.body)
        assert reader.at_eof()
    resp, _ = answer(server, LAST + b"5\r\nhello\r\n0\r\n\r\n", None)
    assert (resp.status, resp.body) == (200, b"5")
    assert server.worker_pids() == pids
    # The app ends after the answer went out: what the server logs of it comes by then.
    wait_for(lambda: counter(server, b"done") == app_calls(server), what="the app to finish")
    app_calls(server)  # one more round trip through the worker's loop
    assert not error_lines(server, mark)
