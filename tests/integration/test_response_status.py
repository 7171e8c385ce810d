"""What an app's response status and body framing become on the wire, for ASGI and WSGI apps
and every worker class: a final status is 200-599 (anything else is the app's error: 500,
logged once, and the connection closed after it, so a pipelined request is never answered
as if it were the one before), and a chunked
response always ends with its last chunk."""

from __future__ import annotations

import subprocess

import pytest
from gunicorn_process import GunicornProcess, error_log, wait_for
from raw_http import ResponseReader

APPS = {"asgi": "apps.http_behaviour:app", "wsgi": "apps.wsgi_apps:app"}


def get(target: str, close: bool = False) -> bytes:
    extra = "Connection: close\r\n" if close else ""
    return f"GET {target} HTTP/1.1\r\nHost: t\r\n{extra}\r\n".encode()


@pytest.mark.parametrize("kind", sorted(APPS))
@pytest.mark.parametrize("code", [100, 101, 103, 199, 600, 999])
def test_a_status_outside_200_to_599_is_the_apps_error(gunicorn: object, kind: str,
                                                       code: int) -> None:
    server: GunicornProcess = gunicorn(APPS[kind])  # type: ignore[operator]
    mark = len(error_log(server))
    second = "/echo?second" if kind == "asgi" else "/plain"
    with server.connect() as s:
        s.sendall(get(f"/status/{code}") + get(second, close=True))  # pipelined
        reader = ResponseReader(s)
        first = reader.read_response()
        assert first.status == 500, (first.status, first.body[:200])
        assert first.header(b"connection") == b"close"
        assert reader.at_eof(), "a response after the 500 (the client would pair it wrongly)"
    errors = wait_for(lambda: [line for line in error_log(server)[mark:].splitlines()
                               if "[ERROR]" in line], timeout=5, what="the ERROR line")
    assert len(errors) == 1, errors  # type: ignore[arg-type]
    assert "200 to 599" in error_log(server)[mark:]


@pytest.mark.parametrize("code", [200, 299, 418, 599])
def test_a_status_from_200_to_599_is_sent_as_is(gunicorn: object, code: int) -> None:
    server: GunicornProcess = gunicorn(APPS["asgi"])  # type: ignore[operator]
    with server.connect() as s:
        s.sendall(get(f"/status/{code}", close=True))
        assert ResponseReader(s).read_response().status == code


def test_empty_body_messages_give_a_complete_chunked_response(gunicorn: object) -> None:
    """start, an empty body with more_body, an empty final body: a chunked head, then the
    last chunk (curl used to wait for it until keep-alive closed and exit 18)."""
    server: GunicornProcess = gunicorn(APPS["asgi"])  # type: ignore[operator]
    with server.connect() as s:
        s.sendall(get("/empty_chunks") + get("/echo?after", close=True))
        reader = ResponseReader(s)
        first = reader.read_response()
        after = reader.read_response()
    assert first.status == 200 and first.chunked and first.body == b""
    assert after.status == 200 and b"after" in after.body
    done = subprocess.run(["curl", "-sS", "--max-time", "5", f"{server.url}/empty_chunks"],
                          capture_output=True, timeout=20, check=False)
    assert done.returncode == 0 and done.stdout == b"", done.stderr
