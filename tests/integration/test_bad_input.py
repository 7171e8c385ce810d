"""Malformed and over-limit requests are refused before the app, quietly, and the worker lives on.

Each case sends one bad request on a fresh connection and checks: the status, that the server
closes the connection, that the app was never called (its /count is unchanged), that nothing was
logged at ERROR level, and that the same worker still serves a normal request afterwards.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from conftest import WORKER_CLASSES
from gunicorn_process import GunicornProcess, error_log
from raw_http import RawResponse, ResponseReader

APP = "apps.http_behaviour:app"
SETTINGS: dict[str, object] = {
    "limit_request_line": 100,
    "limit_request_fields": 10,
    "limit_request_field_size": 100,
    "header_map": "refuse",
}


@pytest.fixture(scope="module", params=WORKER_CLASSES)
def server(request: pytest.FixtureRequest) -> Iterator[GunicornProcess]:
    """One server for the module: every case checks that it is left as it was found."""
    proc = GunicornProcess(APP, request.param, settings=SETTINGS)
    try:
        proc.start()
        yield proc
    finally:
        proc.stop()


def exchange(server: GunicornProcess, raw: bytes) -> tuple[RawResponse, bool]:
    """Send `raw` on a fresh connection; the response and whether the server then closed.

    Only a server that closes (or a request with ``Connection: close``) keeps this quick:
    otherwise the close check waits for the reader's timeout.
    """
    with server.connect() as s:
        s.sendall(raw)
        reader = ResponseReader(s)
        resp = reader.read_response()
        return resp, reader.at_eof()


def fetch(server: GunicornProcess, target: bytes) -> RawResponse:
    """A normal GET on a fresh connection that the server closes after the response."""
    resp, _ = exchange(server, b"GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
                       % target)
    return resp


def app_calls(server: GunicornProcess) -> int:
    resp = fetch(server, b"/count")
    assert resp.status == 200
    return int(resp.body)



def assert_refused(server: GunicornProcess, raw: bytes, statuses: set[int]) -> RawResponse:
    pids = server.worker_pids()
    calls = app_calls(server)
    log_mark = len(error_log(server))

    resp, closed = exchange(server, raw)

    assert resp.status in statuses, f"status {resp.status}, expected one of {sorted(statuses)}"
    assert closed, "connection left open after refusing a malformed request"
    assert app_calls(server) == calls, "the app was called for a refused request"
    ok = fetch(server, b"/echo?after")
    assert ok.status == 200 and json.loads(ok.body)["query_string"] == "after"
    assert server.worker_pids() == pids, "the worker changed"
    errors = [line for line in error_log(server)[log_mark:].splitlines() if " [ERROR] " in line]
    assert not errors, f"logged at ERROR level: {errors}"
    return resp


def request(*lines: bytes, body: bytes = b"") -> bytes:
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


MALFORMED: dict[str, tuple[bytes, set[int]]] = {
    "request_line_over_limit": (
        request(b"GET /" + b"a" * 200 + b" HTTP/1.1", b"Host: t"), {414}),
    "header_fields_over_limit": (
        request(b"GET /echo HTTP/1.1", b"Host: t",
                *(b"X-H%d: v" % i for i in range(11))), {431, 400}),
    "header_field_over_size": (
        request(b"GET /echo HTTP/1.1", b"Host: t", b"X-Big: " + b"v" * 200), {431, 400}),
    "content_length_with_chunked": (
        request(b"POST /echo HTTP/1.1", b"Host: t", b"Content-Length: 5",
                b"Transfer-Encoding: chunked", body=b"0\r\n\r\n"), {400}),
    # Refused whatever the length's value, 0 included (a truthiness test would let it by).
    "content_length_zero_with_chunked": (
        request(b"POST /echo HTTP/1.1", b"Host: t", b"Content-Length: 0",
                b"Transfer-Encoding: chunked", body=b"5\r\nhello\r\n0\r\n\r\n"), {400}),
    # Over 64 bits (llhttp's bound, held by both parsers), and past the 4,300 digits Python
    # refuses to convert.
    "content_length_over_64_bits": (
        request(b"POST /echo HTTP/1.1", b"Host: t", b"Content-Length: 18446744073709551616",
                body=b"hello"), {400}),
    "content_length_of_4301_digits": (  # a field over this module's size limit, too
        request(b"POST /echo HTTP/1.1", b"Host: t", b"Content-Length: " + b"9" * 4301,
                body=b"hello"), {400, 431}),
    "two_different_content_lengths": (
        request(b"POST /echo HTTP/1.1", b"Host: t", b"Content-Length: 5",
                b"Content-Length: 6", body=b"hello!"), {400}),
    # The whole request, body included, arrives in one write: a server that parses what it
    # received before it dispatches can refuse it without the app ever seeing it.
    "bad_chunk_size": (
        request(b"POST /echo HTTP/1.1", b"Host: t", b"Transfer-Encoding: chunked",
                body=b"zz\r\nhello\r\n0\r\n\r\n"), {400}),
    "chunk_data_without_crlf": (
        request(b"POST /echo HTTP/1.1", b"Host: t", b"Transfer-Encoding: chunked",
                body=b"5\r\nhelloXX0\r\n\r\n"), {400}),
    "chunk_size_overflow": (
        request(b"POST /echo HTTP/1.1", b"Host: t", b"Transfer-Encoding: chunked",
                body=b"1" + b"0" * 32 + b"\r\nhello\r\n0\r\n\r\n"), {400}),
    "space_in_header_name": (
        request(b"GET /echo HTTP/1.1", b"Host: t", b"Bad Header: x"), {400}),
    "control_char_in_header_name": (
        request(b"GET /echo HTTP/1.1", b"Host: t", b"X\x01: y"), {400}),
    "bare_lf_line_endings": (
        b"GET /echo HTTP/1.1\nHost: t\nX-A: b\n\n", {400}),
    "nul_in_header_value": (
        request(b"GET /echo HTTP/1.1", b"Host: t", b"X-A: a\x00b"), {400}),
    "garbage_request_line": (
        request(b"\x16\x03\x01 !!garbage!! ~~~", b"Host: t"), {400}),
    "http_2_0_version": (
        request(b"GET /echo HTTP/2.0", b"Host: t"), {400, 505}),
    "http_9_9_version": (
        request(b"GET /echo HTTP/9.9", b"Host: t"), {400, 505}),
    "obs_fold_continuation_line": (
        request(b"GET /echo HTTP/1.1", b"Host: t", b"X-A: first", b"  continued"), {400}),
    "underscore_in_header_name_refused": (
        request(b"GET /echo HTTP/1.1", b"Host: t", b"X_Forwarded_For: 1"), {400}),
}

# RFC 9112 requirements on a server, one case each.
RFC9112_MUST: dict[str, tuple[bytes, set[int]]] = {
    # 3.2: "MUST respond with a 400 ... to any HTTP/1.1 request message that lacks a Host"
    # 3.2: "... or that contains more than one Host header field line"
    "two_host_fields": (request(b"GET /echo HTTP/1.1", b"Host: a", b"Host: b"), {400}),
    # 5.1: whitespace between field name and colon: "MUST reject ... with 400"
    "whitespace_before_colon": (request(b"GET /echo HTTP/1.1", b"Host: t", b"X-A : b"), {400}),
    # 6.3: an invalid Content-Length is an unrecoverable error: 400 and close
    "content_length_not_digits": (
        request(b"POST /echo HTTP/1.1", b"Host: t", b"Content-Length: 5a", body=b"hello"),
        {400}),
    "content_length_with_sign": (
        request(b"POST /echo HTTP/1.1", b"Host: t", b"Content-Length: +5", body=b"hello"),
        {400}),
    # 6.3: chunked present but not final: "MUST respond with 400 ... and then close"
    "chunked_not_final_coding": (
        request(b"POST /echo HTTP/1.1", b"Host: t", b"Transfer-Encoding: chunked, gzip",
                body=b"0\r\n\r\n"), {400, 501}),
    # 6.1: a transfer coding the server does not understand: 501 (or refuse as unframeable)
    "unknown_transfer_coding": (
        request(b"POST /echo HTTP/1.1", b"Host: t", b"Transfer-Encoding: bogus",
                body=b"hello"), {400, 501}),
    # 6.1: "A server that receives a request message with a transfer coding it does not
    # understand SHOULD respond with 501": a coding before chunked is not decoded by us.
    "gzip_then_chunked": (
        request(b"POST /echo HTTP/1.1", b"Host: t", b"Transfer-Encoding: gzip, chunked",
                body=b"5\r\nhello\r\n0\r\n\r\n"), {501}),
    "identity_then_chunked": (
        request(b"POST /echo HTTP/1.1", b"Host: t", b"Transfer-Encoding: identity",
                b"Transfer-Encoding: chunked", body=b"5\r\nhello\r\n0\r\n\r\n"), {501}),
    # 3: request-line components are separated by single SP
    "request_line_double_space": (request(b"GET  /echo HTTP/1.1", b"Host: t"), {400}),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_request_refused(server: GunicornProcess, case: str) -> None:
    raw, statuses = MALFORMED[case]
    assert_refused(server, raw, statuses)


@pytest.mark.parametrize("case", RFC9112_MUST)
def test_rfc9112_server_requirement(server: GunicornProcess, case: str) -> None:
    raw, statuses = RFC9112_MUST[case]
    assert_refused(server, raw, statuses)


def test_http11_without_host_refused(server: GunicornProcess) -> None:
    """RFC 9112 3.2: "A server MUST respond with a 400 (Bad Request) status code to any
    HTTP/1.1 request message that lacks a Host header field". HTTP/1.0 needs none."""
    assert_refused(server, request(b"GET /echo HTTP/1.1", b"X-A: b"), {400})
    resp, _ = exchange(server, request(b"GET /echo HTTP/1.0", b"X-A: b"))
    assert resp.status == 200


def test_http11_without_host_accepted_with_require_host_off(gunicorn: object) -> None:
    """`require_host = false` accepts it, as Gunicorn's own workers do, for old clients."""
    server = gunicorn(APP, env={"GAW_REQUIRE_HOST": "false"})  # type: ignore[operator]
    resp, _ = exchange(server, request(b"GET /echo HTTP/1.1", b"X-A: b", b"Connection: close"))
    assert resp.status == 200


def test_absolute_form_target_accepted(server: GunicornProcess) -> None:
    # RFC 9112 3.2.2: "a server MUST accept the absolute-form in requests"
    resp, _ = exchange(server, request(b"GET http://test.example/scope?q=1 HTTP/1.1",
                                       b"Host: test.example", b"Connection: close"))
    assert resp.status == 200
    scope = json.loads(resp.body)
    assert scope["path"] == "/scope"
    assert scope["query_string"] == "q=1"


def test_request_at_the_limits_accepted(server: GunicornProcess) -> None:
    """The limits are not off by one: a request exactly at the line and field-count limits."""
    line = b"GET /echo?" + b"q" * 81 + b" HTTP/1.1"
    assert len(line) == SETTINGS["limit_request_line"]
    fields = [b"Host: t", b"Connection: close", b"X-Big: " + b"v" * 80]
    fields += [b"X-H%d: v" % i for i in range(10 - len(fields))]
    assert len(fields) == SETTINGS["limit_request_fields"]
    resp, _ = exchange(server, request(line, *fields))
    assert resp.status == 200
    headers = dict(json.loads(resp.body)["headers"])
    assert headers["x-big"] == "v" * 80


@pytest.mark.parametrize("digits", [4300, 4301, 6000])
def test_huge_content_length_refused_with_default_limits(gunicorn: object, digits: int) -> None:
    """With the default field size limit such a line reaches the Content-Length check itself
    (H11Worker raised an unhandled ValueError from 4,301 digits on, Python's int() limit)."""
    server = gunicorn(APP)  # type: ignore[operator]
    raw = request(b"POST /echo HTTP/1.1", b"Host: t", b"Content-Length: " + b"9" * digits,
                  body=b"hello")
    assert_refused(server, raw, {400})
