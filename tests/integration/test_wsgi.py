"""WSGI apps on the async worker, as a user switching from `-k gthread` sees them.

A real gunicorn serves the apps of tests/apps/wsgi_apps.py: interface detection and its
boot errors, the PEP 3333 environ, wsgiref's validator, start_response and its exc_info
rules, close() of the response iterable, request and response bodies streamed with bounded
memory both ways (worker RSS read from /proc), wsgi.file_wrapper with and without sendfile,
a Flask app, keep-alive, pipelining, HTTP/1.0, HEAD, 100-continue and a graceful stop.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import json
import os
import shutil
import signal
import socket
import struct
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from conftest import WORKER_CLASSES
from gunicorn_process import (
    GunicornProcess,
    error_log,
    read_until_close,
    rss,
    serving,
    wait_for,
    worker_pid,
)
from raw_http import RawResponse, ResponseReader, http

APP = "apps.wsgi_apps:app"
MiB = 1 << 20
BLOCK = bytes(range(256)) * 256  # what /big repeats (the same rule as the app)


def serve(app: str, worker_class: str, **kwargs: object) -> Iterator[GunicornProcess]:
    yield from serving(GunicornProcess(app, worker_class, **kwargs))


@pytest.fixture(scope="module", params=WORKER_CLASSES)
def server(request: pytest.FixtureRequest) -> Iterator[GunicornProcess]:
    """The main app: 4 threads, 1 worker, 127.0.0.1 trusted for X-Forwarded-Proto."""
    yield from serve(APP, request.param, settings={
        "threads": 4, "forwarded_allow_ips": "127.0.0.1", "keepalive": 5})


@pytest.fixture(scope="module", params=WORKER_CLASSES)
def rooted(request: pytest.FixtureRequest) -> Iterator[GunicornProcess]:
    """root_path=/api, one thread per worker, two workers, 127.0.0.1 not a trusted proxy."""
    proc = GunicornProcess(APP, request.param, workers=2, settings={
        "threads": 1, "root_path": "/api", "forwarded_allow_ips": "192.0.2.1"})
    # Both workers past loading the app before any test (and so before the stop): see
    # test_sigterm_while_the_app_loads.
    booted = proc.dir / "booted"
    proc.config_text = ("def post_worker_init(worker):\n"
                        f"    with open({str(booted)!r}, 'a') as f:\n"
                        "        f.write(f'{worker.pid}\\n')\n")
    try:
        proc.start()
        wait_for(lambda: len(read_marker(booted).split()) >= 2, 20, what="2 workers booted")
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module", params=WORKER_CLASSES)
def mounted(request: pytest.FixtureRequest) -> Iterator[GunicornProcess]:
    """SCRIPT_NAME=/mount in the server's environment, and sendfile off."""
    yield from serve(APP, request.param, env={"SCRIPT_NAME": "/mount"},
                     settings={"threads": 2, "sendfile": False})


@pytest.fixture(scope="module", params=WORKER_CLASSES)
def streaming(request: pytest.FixtureRequest) -> Iterator[GunicornProcess]:
    """A server of its own for the memory-bounded streaming tests."""
    yield from serve(APP, request.param, settings={"threads": 4, "timeout": 60})


@pytest.fixture(scope="module", params=WORKER_CLASSES)
def flask_server(request: pytest.FixtureRequest) -> Iterator[GunicornProcess]:
    pytest.importorskip("flask")
    yield from serve("apps.wsgi_apps:flask_app", request.param, settings={"threads": 4})


# -- helpers ----------------------------------------------------------------------------------
def exchange(server: GunicornProcess, data: bytes, head_request: bool = False) -> RawResponse:
    """Send `data` on a fresh connection and read one response."""
    with server.connect() as s:
        s.sendall(data)
        return ResponseReader(s).read_response(head_request)


def get_environ(server: GunicornProcess, target: str = "/environ", *headers: str,
                method: str = "GET", body: bytes = b"", version: str = "HTTP/1.1") -> dict:
    resp = exchange(server, http(method, target, *headers, "Connection: close", body=body,
                                 version=version))
    assert resp.status == 200, resp
    return json.loads(resp.body)





def q(path: Path) -> str:
    return quote(str(path), safe="")


def read_marker(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


def stream_digest(size: int) -> str:
    digest = hashlib.sha256()
    full, rest = divmod(size, len(BLOCK))
    for _ in range(full):
        digest.update(BLOCK)
    digest.update(BLOCK[:rest])
    return digest.hexdigest()


def read_head(s: socket.socket, timeout: float = 10.0) -> tuple[bytes, bytes]:
    """Read up to the end of a response head: (head, what came after it)."""
    buf = b""
    deadline = time.monotonic() + timeout
    while b"\r\n\r\n" not in buf:
        s.settimeout(max(0.01, deadline - time.monotonic()))
        data = s.recv(65536)
        assert data, f"closed inside the head: {buf!r}"
        buf += data
    head, _, rest = buf.partition(b"\r\n\r\n")
    return head, rest


def decode_chunked_prefix(data: bytes) -> tuple[bytes, bool]:
    """(body so far, whether the terminating chunk arrived) of a chunked body prefix."""
    body = b""
    while True:
        line, sep, rest = data.partition(b"\r\n")
        if not sep:
            return body, False
        size = int(line.split(b";")[0], 16)
        if size == 0:
            return body, True
        if len(rest) < size + 2:
            return body + rest[:size], False
        body += rest[:size]
        data = rest[size + 2:]


# -- 1. detection -----------------------------------------------------------------------------
def test_function_app_is_detected_as_wsgi(server: GunicornProcess) -> None:
    resp = exchange(server, http("GET", "/plain", "Connection: close"))
    assert (resp.status, resp.body) == (200, b"plain body\n")


def test_class_instance_app_is_detected_as_wsgi(
        worker_class: str, gunicorn: Callable[..., GunicornProcess]) -> None:
    proc = gunicorn("apps.wsgi_apps:class_app")
    resp = httpx.get(proc.url + "/anything", timeout=10)
    assert resp.status_code == 200
    assert resp.text == f"class app {worker_pid(proc)}"


def test_interface_wsgi_set_with_configure(
        worker_class: str, gunicorn: Callable[..., GunicornProcess]) -> None:
    """validator(app) takes (*args, **kw): only interface='wsgi' says what it is."""
    module, name = worker_class.rsplit(".", 1)
    config = f"from {module} import {name} as _Worker\n" \
             "worker_class = _Worker.configure(interface='wsgi')\n"
    proc = gunicorn("apps.wsgi_apps:validated_app", config_text=config)
    resp = httpx.get(proc.url + "/stream?parts=2", timeout=10)
    assert (resp.status_code, resp.text) == (200, "part0;part1;")
    assert "Error handling request" not in error_log(proc)


@pytest.mark.parametrize(("app", "env"), [
    pytest.param("asgi_app", {"GAW_INTERFACE": "wsgi"}, id="wsgi-for-an-asgi-app"),
    pytest.param("app", {"GAW_INTERFACE": "asgi3"}, id="asgi3-for-a-wsgi-app"),
    pytest.param("app", {"GAW_INTERFACE": "bogus"}, id="bogus"),
    pytest.param("validated_app", {}, id="auto-for-an-args-kwargs-callable"),
])
def test_interface_that_cannot_work_stops_the_arbiter(
        worker_class: str, gunicorn: Callable[..., GunicornProcess], app: str,
        env: dict[str, str]) -> None:
    proc = gunicorn(f"apps.wsgi_apps:{app}", wait=False, env=env)
    assert proc.proc is not None
    code = proc.proc.wait(30)
    logs = proc.logs()
    assert code == 3, logs
    lines = [line for line in error_log(proc).splitlines() if "interface" in line.lower()]
    assert len(lines) == 1, logs
    assert "Traceback" not in logs


# -- 2. environ -------------------------------------------------------------------------------
def test_environ_is_pep3333(server: GunicornProcess) -> None:
    body = b"name=value"
    with server.connect() as s:
        client_port = s.getsockname()[1]
        s.sendall(http("POST", "/environ/a%20b?x=1&y=%20", "X-Multi: one",
                       "Content-Type: application/x-www-form-urlencoded",
                       f"Content-Length: {len(body)}", "X-Multi: two", "X-Latin: \xe9",
                       "Connection: close", body=body))
        resp = ResponseReader(s).read_response()
    assert resp.status == 200, resp
    env = json.loads(resp.body)
    types = env.pop("_types")

    assert env["REQUEST_METHOD"] == "POST"
    assert env["SCRIPT_NAME"] == ""
    assert env["PATH_INFO"] == "/environ/a b"
    assert env["QUERY_STRING"] == "x=1&y=%20"
    assert env["CONTENT_TYPE"] == "application/x-www-form-urlencoded"
    assert env["CONTENT_LENGTH"] == str(len(body))
    assert "HTTP_CONTENT_TYPE" not in env and "HTTP_CONTENT_LENGTH" not in env
    assert env["SERVER_NAME"] == server.host
    assert env["SERVER_PORT"] == str(server.port)
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert env["REMOTE_PORT"] == str(client_port)
    assert env["HTTP_HOST"] == "test"
    assert env["HTTP_X_MULTI"] == "one,two"  # joined as Gunicorn joins repeated fields
    assert env["HTTP_X_LATIN"] == "\xe9"  # header bytes decoded latin-1
    assert env["HTTP_CONNECTION"] == "close"

    assert env["wsgi.version"] == [1, 0] and types["wsgi.version"] == "tuple"
    assert env["wsgi.url_scheme"] == "http"
    assert env["wsgi.multithread"] is True  # threads = 4
    assert env["wsgi.multiprocess"] is False  # workers = 1
    assert env["wsgi.run_once"] is False
    assert env["wsgi.input_terminated"] is True
    assert env["_file_wrapper_callable"] is True
    for key in ("wsgi.input", "wsgi.errors", "wsgi.file_wrapper"):
        assert key in types, key
    # Every CGI-style key (no dot in its name) is a native str, as PEP 3333 wants.
    not_str = {k: t for k, t in types.items() if "." not in k and t != "str"}
    assert not not_str, not_str


def test_an_app_writing_over_its_environ_leaves_the_next_requests_whole(
        server: GunicornProcess) -> None:
    """The keys that are the connection's are built once per connection: each request must
    still get its own environ, untouched by what the app did to the one before."""
    with server.connect() as s:
        reader = ResponseReader(s)
        docs = []
        for target in ("/environ?scribble=1", "/environ"):
            s.sendall(http("GET", target))
            resp = reader.read_response()
            assert resp.status == 200, resp
            docs.append(json.loads(resp.body))
    first, second = docs
    for key in ("REMOTE_ADDR", "REMOTE_PORT", "SERVER_NAME", "SERVER_PORT", "SCRIPT_NAME",
                "wsgi.url_scheme"):
        assert second[key] == first[key] != "scribbled", key
    assert "HTTP_X_LEFT_BEHIND" not in second
    assert second["QUERY_STRING"] == ""


def test_environ_of_a_request_without_body(server: GunicornProcess) -> None:
    env = get_environ(server, "/environ")
    assert env["REQUEST_METHOD"] == "GET"
    assert "CONTENT_LENGTH" not in env
    assert "CONTENT_TYPE" not in env
    assert env["QUERY_STRING"] == ""
    assert env["PATH_INFO"] == "/environ"


@pytest.mark.parametrize(("target", "path_info", "query"), [
    ("/environ/a%20b", "/environ/a b", ""),
    # UTF-8 bytes of "café", each byte one latin-1 character (PEP 3333's native strings)
    ("/environ/caf%C3%A9", "/environ/caf\xc3\xa9", ""),
    ("/environ/%7Euser?a=%C3%A9&b", "/environ/~user", "a=%C3%A9&b"),
    ("http://other.example/environ/abs?q=1", "/environ/abs", "q=1"),
])
def test_path_info_is_decoded_as_latin1(server: GunicornProcess, target: str,
                                        path_info: str, query: str) -> None:
    env = get_environ(server, target)
    assert env["PATH_INFO"] == path_info
    assert env["QUERY_STRING"] == query
    assert env["SCRIPT_NAME"] == ""


def test_http10_request_protocol(server: GunicornProcess) -> None:
    env = get_environ(server, "/environ", version="HTTP/1.0")
    assert env["SERVER_PROTOCOL"] == "HTTP/1.0"


@pytest.mark.parametrize(("headers", "scheme"), [
    ((), "http"),
    (("X-Forwarded-Proto: https",), "https"),
])
def test_url_scheme(server: GunicornProcess, headers: tuple[str, ...], scheme: str) -> None:
    assert get_environ(server, "/environ", *headers)["wsgi.url_scheme"] == scheme


def test_url_scheme_header_from_an_untrusted_peer_is_ignored(rooted: GunicornProcess) -> None:
    """There forwarded_allow_ips names another address: the header is not believed."""
    env = get_environ(rooted, "/api/environ", "X-Forwarded-Proto: https")
    assert env["wsgi.url_scheme"] == "http"


def test_environ_on_a_unix_socket(worker_class: str,
                                  gunicorn: Callable[..., GunicornProcess]) -> None:
    short = Path(tempfile.mkdtemp(prefix="gaw-"))
    try:
        proc = gunicorn(APP, bind=f"unix:{short / 's.sock'}", settings={"threads": 2})
        resp = exchange(proc, http("GET", "/environ", "Host: example.org:8080",
                                   "Connection: close", host=False))
        assert resp.status == 200, resp
        env = json.loads(resp.body)
    finally:
        shutil.rmtree(short, ignore_errors=True)
    assert (env["SERVER_NAME"], env["SERVER_PORT"]) == ("example.org", "8080")
    assert "REMOTE_PORT" not in env
    assert env.get("REMOTE_ADDR") == ""


def test_wsgi_errors_writes_to_the_error_log(server: GunicornProcess) -> None:
    token = f"wsgi-errors-{os.getpid()}-{time.monotonic_ns()}"
    get_environ(server, f"/environ?errors={token}")
    wait_for(lambda: token in error_log(server), 5, what="the wsgi.errors line in the error log")


def test_root_path_splits_script_name(rooted: GunicornProcess) -> None:
    env = get_environ(rooted, "/api/environ/x")
    assert (env["SCRIPT_NAME"], env["PATH_INFO"]) == ("/api", "/environ/x")
    assert env["wsgi.multithread"] is False  # threads = 1
    assert env["wsgi.multiprocess"] is True  # workers = 2


def test_script_name_from_the_environment_splits_path(mounted: GunicornProcess) -> None:
    env = get_environ(mounted, "/mount/environ/y%20z")
    assert (env["SCRIPT_NAME"], env["PATH_INFO"]) == ("/mount", "/environ/y z")
    assert env["wsgi.multithread"] is True  # threads = 2


# -- 3. wsgiref.validate ------------------------------------------------------------------------
LINES = b"one\ntwo\nthree\n\nfour"


@pytest.mark.parametrize(("method", "target", "body", "expected"), [
    ("GET", "/v/plain", b"", b"plain body\n"),
    ("GET", "/v/stream?parts=4", b"", b"part0;part1;part2;part3;"),
    ("GET", "/v/write", b"", b"written by write()"),
    ("GET", "/v/environ", b"", None),
    ("POST", "/v/input?how=readn", LINES, None),
    ("POST", "/v/input?how=readline", LINES, None),
    ("POST", "/v/input?how=readline_n", LINES, None),
    ("POST", "/v/input?how=readlines", LINES, None),
    ("POST", "/v/input?how=iter", LINES, None),
    ("HEAD", "/v/head", b"", b""),
    ("HEAD", "/v/stream", b"", b""),
])
def test_validator_finds_nothing_wrong(server: GunicornProcess, method: str, target: str,
                                       body: bytes, expected: bytes | None) -> None:
    headers = [f"Content-Length: {len(body)}"] if body else []
    with server.connect() as s:
        reader = ResponseReader(s)
        s.sendall(http(method, target, *headers, body=body))
        resp = reader.read_response(head_request=method == "HEAD")
        # and the connection is still good: nothing was left half-sent
        s.sendall(http("GET", "/plain", "Connection: close"))
        after = reader.read_response()
    assert resp.status == 200, (resp, error_log(server)[-3000:])
    if expected is not None:
        assert resp.body == expected
    elif target.startswith("/v/input"):
        assert json.loads(resp.body)["length"] == len(LINES)
    assert after.status == 200
    logs = server.logs()
    assert f"Error handling request {method} {target}" not in logs
    assert "garbage collected without being closed" not in logs
    assert "WSGIWarning" not in logs


# -- 4. start_response ------------------------------------------------------------------------
def test_start_response_twice_without_exc_info_is_500(server: GunicornProcess) -> None:
    resp = exchange(server, http("GET", "/twice", "Connection: close"))
    assert resp.status == 500
    assert b"should not be sent" not in resp.body
    wait_for(lambda: "Error handling request GET /twice" in error_log(server), 5,
             what="the error logged")


def test_exc_info_before_headers_sent_replaces_the_response(server: GunicornProcess) -> None:
    resp = exchange(server, http("GET", "/exc_before", "Connection: close"))
    assert resp.status == 503
    assert resp.header(b"x-second") == b"yes"
    assert resp.header(b"x-first") is None
    assert resp.body == b"recovered with exc_info"


def test_exc_info_after_body_started_cuts_the_connection(server: GunicornProcess) -> None:
    with server.connect() as s:
        s.sendall(http("GET", "/exc_after"))
        head, rest = read_head(s)
        rest += read_until_close(s, timeout=5)
    assert head.startswith(b"HTTP/1.1 200 ")
    assert b"transfer-encoding: chunked" in head.lower()
    body, terminated = decode_chunked_prefix(rest)
    assert body == b"body started;"
    assert not terminated, "a cut response must not look complete"
    assert b"must never be sent" not in rest
    wait_for(lambda: "Error handling request GET /exc_after" in error_log(server), 5,
             what="the error logged")


def test_header_value_with_crlf_is_500_and_never_on_the_wire(server: GunicornProcess) -> None:
    with server.connect() as s:
        s.sendall(http("GET", "/bad_header", "Connection: close"))
        raw = read_until_close(s)
    assert raw.startswith(b"HTTP/1.1 500 "), raw
    assert b"Injected" not in raw
    assert b"X-Evil" not in raw
    assert b"bad header body" not in raw


def test_hop_by_hop_headers_from_the_app_are_not_sent(server: GunicornProcess) -> None:
    with server.connect() as s:
        reader = ResponseReader(s)
        s.sendall(http("GET", "/hop"))
        resp = reader.read_response()
        s.sendall(http("GET", "/plain", "Connection: close"))
        after = reader.read_response()
    assert resp.status == 200
    assert resp.body == b"hop-by-hop body"
    assert resp.header(b"x-after") == b"kept"
    assert resp.header(b"keep-alive") is None
    assert resp.header(b"transfer-encoding") is None  # framed by content-length
    assert resp.header(b"content-length") == b"15"
    assert [v.lower() for v in resp.header_all(b"connection")] in ([], [b"keep-alive"])
    assert after.status == 200 and after.body == b"plain body\n"


def test_connection_close_from_the_app_closes(server: GunicornProcess) -> None:
    with server.connect() as s:
        reader = ResponseReader(s)
        s.sendall(http("GET", "/close_header"))
        resp = reader.read_response()
        assert resp.body == b"closing"
        assert reader.at_eof()


def test_write_callable(server: GunicornProcess) -> None:
    resp = exchange(server, http("GET", "/write", "Connection: close"))
    assert (resp.status, resp.body) == (200, b"written by write()")


def test_exception_before_start_response_is_500_logged_once(server: GunicornProcess) -> None:
    resp = exchange(server, http("GET", "/raise?once", "Connection: close"))
    assert resp.status == 500
    wait_for(lambda: "Error handling request GET /raise?once" in error_log(server), 5,
             what="the error logged")
    assert error_log(server).count("Error handling request GET /raise?once") == 1


# -- 5. close() -------------------------------------------------------------------------------
def test_close_called_after_a_normal_response(server: GunicornProcess, tmp_path: Path) -> None:
    mark = tmp_path / "mark"
    resp = exchange(server, http("GET", f"/closing?mode=normal&mark={q(mark)}",
                                 "Connection: close"))
    assert resp.body == b"first piece;second piece"
    wait_for(lambda: "closed" in read_marker(mark), 5, what="close() called")
    assert read_marker(mark).count("closed") == 1


def test_close_called_when_the_app_raises_mid_iteration(
        server: GunicornProcess, tmp_path: Path) -> None:
    mark = tmp_path / "mark"
    with server.connect() as s:
        s.sendall(http("GET", f"/closing?mode=raise&mark={q(mark)}"))
        head, rest = read_head(s)
        rest += read_until_close(s)
    body, terminated = decode_chunked_prefix(rest)
    assert (body, terminated) == (b"first piece;", False)
    wait_for(lambda: "closed" in read_marker(mark), 5, what="close() called")


def test_close_called_when_the_client_disconnects_mid_stream(
        server: GunicornProcess, tmp_path: Path) -> None:
    mark = tmp_path / "mark"
    with server.connect() as s:
        s.sendall(http("GET", f"/closing?mode=forever&mark={q(mark)}"))
        head, rest = read_head(s)
        assert head.startswith(b"HTTP/1.1 200 ")
        wait_for(lambda: "streaming" in read_marker(mark), 5, what="the endless stream")
    wait_for(lambda: "closed" in read_marker(mark), 10, what="close() after the disconnect")


# -- 6. streaming both ways, bounded ----------------------------------------------------------
@pytest.mark.parametrize("framing", ["content-length", "chunked"])
@pytest.mark.parametrize("how", ["read", "readn", "readline", "readline_n", "readlines", "iter"])
def test_input_reading_styles(server: GunicornProcess, how: str, framing: str) -> None:
    """A multi-line body in pieces that split lines; each style reads it as PEP 3333 says."""
    pieces = [b"one\ntw", b"o\n", b"thr", b"ee\n\nfo", b"ur"]
    body = b"".join(pieces)
    if framing == "chunked":
        head = http("POST", f"/input?how={how}", "Transfer-Encoding: chunked",
                    "Connection: close")
        wire = [b"%x\r\n%s\r\n" % (len(p), p) for p in pieces] + [b"0\r\n\r\n"]
    else:
        head = http("POST", f"/input?how={how}", f"Content-Length: {len(body)}",
                    "Connection: close")
        wire = pieces
    with server.connect() as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(head)
        for piece in wire:
            s.sendall(piece)
        resp = ResponseReader(s).read_response()
    assert resp.status == 200, resp
    doc = json.loads(resp.body)
    expected = {
        "read": ["one\ntwo\nthree\n\nfour"],
        "readn": ["one\nt", "wo\nth", "ree\n\n", "four"],
        "readline": ["one\n", "two\n", "three\n", "\n", "four"],
        "readline_n": ["one\n", "two\n", "thre", "e\n", "\n", "four"],
        "readlines": ["one\n", "two\n", "three\n", "\n", "four"],
        "iter": ["one\n", "two\n", "three\n", "\n", "four"],
    }[how]
    assert doc["pieces"] == expected
    assert doc["types"] == ["bytes"]
    assert doc["at_end"] == ["", ""]


class RssSampler:
    """Samples a process's RSS on demand; `peak - base` is the growth seen."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.base = rss(pid)
        self.peak = self.base

    def sample(self) -> None:
        self.peak = max(self.peak, rss(self.pid))

    @property
    def growth(self) -> int:
        return self.peak - self.base


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_100_mib_upload_is_streamed_with_bounded_memory(
        streaming: GunicornProcess, framing: str) -> None:
    total = 100 * MiB
    piece = BLOCK * 16  # 1 MiB
    sampler = RssSampler(worker_pid(streaming))
    if framing == "chunked":
        header = "Transfer-Encoding: chunked"
        wire_piece = b"%x\r\n%s\r\n" % (len(piece), piece)
        tail = b"0\r\n\r\n"
    else:
        header = f"Content-Length: {total}"
        wire_piece, tail = piece, b""
    with streaming.connect(timeout=30) as s:
        s.sendall(http("POST", "/count?piece=65536", header, "Connection: close"))
        for i in range(total // len(piece)):
            s.sendall(wire_piece)
            if i % 4 == 0:
                sampler.sample()
        s.sendall(tail)
        resp = ResponseReader(s, timeout=30).read_response()
    sampler.sample()
    assert resp.status == 200, resp
    doc = json.loads(resp.body)
    assert doc["length"] == total
    assert doc["biggest"] <= 65536
    assert doc["sha256"] == stream_digest(total)
    assert sampler.growth < 64 * MiB, f"worker RSS grew by {sampler.growth / MiB:.1f} MiB"


# The bound for responses: a worker that buffered the 50 MiB response would grow by about
# 50 MiB, so the bound must be well under that to be able to fail.
RESPONSE_RSS_BOUND = 24 * MiB


def test_large_response_to_a_slow_reader_has_bounded_memory(
        streaming: GunicornProcess) -> None:
    size = 50 * MiB
    sampler = RssSampler(worker_pid(streaming))
    digest = hashlib.sha256()
    received = 0
    with streaming.connect(timeout=30) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        s.sendall(http("GET", f"/big?size={size}", "Connection: close"))
        head, rest = read_head(s)
        assert head.startswith(b"HTTP/1.1 200 ")
        raw = bytearray(rest)
        unpaced = 0
        while True:
            data = s.recv(65536)
            if not data:
                break
            raw += data
            unpaced += len(data)
            if unpaced >= 65536:  # a slow client: 64 KiB a millisecond at most
                unpaced = 0
                sampler.sample()
                time.sleep(0.001)  # pacing, not synchronisation
            # decode complete chunks as they come, to keep the client's memory small
            while True:
                line, sep, after = bytes(raw[:32]).partition(b"\r\n")
                if not sep:
                    break
                chunk_size = int(line.split(b";")[0], 16)
                start = len(line) + 2
                if chunk_size == 0 or len(raw) < start + chunk_size + 2:
                    break
                digest.update(raw[start:start + chunk_size])
                received += chunk_size
                del raw[:start + chunk_size + 2]
    assert bytes(raw) == b"0\r\n\r\n", "the response did not end with its last chunk"
    assert received == size
    assert digest.hexdigest() == stream_digest(size)
    assert sampler.growth < RESPONSE_RSS_BOUND, \
        f"worker RSS grew by {sampler.growth / MiB:.1f} MiB"


def test_client_that_never_reads_holds_bounded_memory(
        streaming: GunicornProcess, tmp_path: Path) -> None:
    progress = tmp_path / "progress"
    size = 512 * MiB
    sampler = RssSampler(worker_pid(streaming))
    with streaming.connect(timeout=30) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        s.sendall(http("GET", f"/big?size={size}&progress={q(progress)}"))
        last = {"value": "", "since": time.monotonic()}

        def stalled() -> bool:
            sampler.sample()
            value = read_marker(progress)
            now = time.monotonic()
            if value != last["value"]:
                last.update(value=value, since=now)
                return False
            return bool(value) and now - last["since"] >= 1.0

        wait_for(stalled, 20, interval=0.05, what="the app blocked on a full connection")
        produced = int(read_marker(progress))
        sampler.sample()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # reset
    assert produced < 64 * MiB, f"the app produced {produced / MiB:.0f} MiB for nobody"
    assert sampler.growth < RESPONSE_RSS_BOUND, \
        f"worker RSS grew by {sampler.growth / MiB:.1f} MiB"


def unread_body_then_next_request(proc: GunicornProcess, target: str, size: int,
                                  timeout: float = 5.0) -> RawResponse:
    """POST `size` bytes to a route that never reads them, then GET on the same connection."""
    with proc.connect() as s:
        reader = ResponseReader(s, timeout)
        s.sendall(http("POST", target, f"Content-Length: {size}") + b"z" * size)
        first = reader.read_response()
        assert first.status == 200
        s.sendall(http("GET", "/environ", "Connection: close"))
        return reader.read_response()


def test_small_unread_request_body_is_skipped_on_keepalive(server: GunicornProcess) -> None:
    second = unread_body_then_next_request(server, "/plain", 100_000)
    assert second.status == 200
    assert json.loads(second.body)["PATH_INFO"] == "/environ"


def test_large_unread_request_body_is_skipped_on_keepalive(
        worker_class: str, gunicorn: Callable[..., GunicornProcess]) -> None:
    """1 MiB arrives while the app sleeps without reading: reading pauses above the
    high-water mark; after the response the rest must be read and dropped."""
    proc = gunicorn(APP, settings={"threads": 2, "graceful_timeout": 1})
    second = unread_body_then_next_request(proc, "/sleep?s=1", MiB, timeout=2.0)
    assert second.status == 200
    assert json.loads(second.body)["PATH_INFO"] == "/environ"


def test_threads_run_requests_concurrently(server: GunicornProcess, tmp_path: Path) -> None:
    """threads = 4: four requests that each wait for the others are all inside the app at
    once (each notes its entry, then waits for a gate the test opens only when all four
    are in); a pool that ran them one at a time would never see four."""
    entered, gate = tmp_path / "entered", tmp_path / "gate"
    results: list[int] = []

    def one() -> None:
        resp = httpx.get(f"{server.url}/sleep?s=20&entered={q(entered)}&until={q(gate)}",
                         timeout=30)
        results.append(resp.status_code)

    workers = [threading.Thread(target=one) for _ in range(4)]
    for t in workers:
        t.start()
    try:
        wait_for(lambda: entered.exists() and entered.read_text().count("entered") == 4,
                 timeout=15, what="four requests inside the app at once")
    finally:
        gate.write_text("open")
        for t in workers:
            t.join(30)
    assert results == [200] * 4


# -- 7. wsgi.file_wrapper ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("files") / "five.bin"
    path.write_bytes(os.urandom(5 * MiB))
    return path


def fetch_file(server: GunicornProcess, prefix: str, path: Path, extra: str = "") -> bytes:
    resp = httpx.get(f"{server.url}{prefix}/file?path={q(path)}{extra}", timeout=20)
    assert resp.status_code == 200
    return resp.content


def test_file_wrapper_with_sendfile(server: GunicornProcess, big_file: Path) -> None:
    """sendfile left at Gunicorn's default (on): loop.sendfile where the loop has it."""
    data = fetch_file(server, "", big_file)
    assert hashlib.sha256(data).digest() == hashlib.sha256(big_file.read_bytes()).digest()


def test_file_wrapper_without_sendfile(mounted: GunicornProcess, big_file: Path) -> None:
    data = fetch_file(mounted, "/mount", big_file)
    assert hashlib.sha256(data).digest() == hashlib.sha256(big_file.read_bytes()).digest()


def test_file_wrapper_over_an_object_without_fileno(
        server: GunicornProcess, big_file: Path) -> None:
    data = fetch_file(server, "", big_file, "&memory=1")
    assert hashlib.sha256(data).digest() == hashlib.sha256(big_file.read_bytes()).digest()


def loop_has_sendfile(worker_class: str) -> bool:
    """Whether the worker's event loop implements loop.sendfile (the stdlib loop does)."""
    module, name = worker_class.rsplit(".", 1)
    loop = getattr(importlib.import_module(module), name).loop_factory()
    try:
        return type(loop).sendfile is not asyncio.AbstractEventLoop.sendfile
    finally:
        loop.close()


def nothing_past_content_length(proc: GunicornProcess, prefix: str, path: Path,
                                sendfile: bool) -> None:
    """An app's Content-Length shorter than its file: no byte past it reaches the wire
    (PEP 3333: stop at Content-Length, or raise an error). With sendfile the response is
    cut at the Content-Length; streamed, the first piece is already longer and the app's
    response is refused as an error, before any byte of it is sent."""
    with proc.connect() as s:
        s.sendall(http("GET", f"{prefix}/file?path={q(path)}&length=1000", "Connection: close"))
        sent = read_until_close(s)
    if sendfile:
        head, _, body = sent.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 ") and b"\r\ncontent-length: 1000" in head.lower()
        assert len(body) == 1000, f"{len(body) - 1000} bytes past Content-Length"
        assert body == path.read_bytes()[:1000]
    else:
        assert sent == b"", sent[:200]
        wait_for(lambda: "response body is longer than its content-length" in error_log(proc),
                 5, what="the refused response in the error log")


def test_file_wrapper_with_sendfile_never_sends_past_content_length(
        server: GunicornProcess, big_file: Path) -> None:
    nothing_past_content_length(server, "", big_file, loop_has_sendfile(server.worker_class))


def test_file_wrapper_without_sendfile_never_sends_past_content_length(
        mounted: GunicornProcess, big_file: Path) -> None:
    nothing_past_content_length(mounted, "/mount", big_file, False)


# -- 8. Flask ---------------------------------------------------------------------------------
def test_flask_get_with_query_args(flask_server: GunicornProcess) -> None:
    resp = httpx.get(flask_server.url + "/hello?name=gaw&tag=a&tag=b", timeout=10)
    assert resp.status_code == 200
    assert resp.json() == {"greeting": "hello gaw", "tags": ["a", "b"]}


def test_flask_json_post(flask_server: GunicornProcess) -> None:
    resp = httpx.post(flask_server.url + "/items", json={"name": "x", "n": [1, 2]}, timeout=10)
    assert resp.status_code == 201
    assert resp.json() == {"received": {"name": "x", "n": [1, 2]},
                           "content_type": "application/json"}


def test_flask_streamed_response(flask_server: GunicornProcess) -> None:
    with flask_server.connect() as s:
        s.sendall(http("GET", "/stream?n=3", "Connection: close"))
        resp = ResponseReader(s).read_response()
    assert resp.status == 200
    assert resp.chunked
    assert resp.body == b"line 0 of /stream\nline 1 of /stream\nline 2 of /stream\n"


def test_flask_404(flask_server: GunicornProcess) -> None:
    assert httpx.get(flask_server.url + "/missing", timeout=10).status_code == 404


def test_flask_exception_is_500_with_one_error_block(flask_server: GunicornProcess) -> None:
    resp = httpx.get(flask_server.url + "/boom", timeout=10)
    assert resp.status_code == 500
    wait_for(lambda: "flask view failed on purpose" in error_log(flask_server), 5,
             what="Flask's error in the error log")
    log = error_log(flask_server)
    assert log.count("Exception on /boom [GET]") == 1, log
    assert log.count("RuntimeError: flask view failed on purpose") == 1, log
    assert "Error handling request" not in log


# -- 9. connection handling -------------------------------------------------------------------
def test_keepalive_serves_several_requests(server: GunicornProcess) -> None:
    with server.connect() as s:
        reader = ResponseReader(s)
        ports = set()
        for i in range(4):
            s.sendall(http("GET", f"/environ?i={i}"))
            env = json.loads(reader.read_response().body)
            assert env["QUERY_STRING"] == f"i={i}"
            ports.add(env["REMOTE_PORT"])
        assert not reader.closed
    assert len(ports) == 1


def test_pipelined_requests_answered_in_order(server: GunicornProcess) -> None:
    with server.connect() as s:
        s.sendall(http("GET", "/environ?first")
                  + http("POST", "/input?how=read", "Content-Length: 6", body=b"second")
                  + http("GET", "/stream?parts=2", "Connection: close"))
        reader = ResponseReader(s)
        first, second, third = (reader.read_response() for _ in range(3))
    assert json.loads(first.body)["QUERY_STRING"] == "first"
    assert json.loads(second.body)["pieces"] == ["second"]
    assert third.body == b"part0;part1;"


@pytest.mark.parametrize(("target", "body"), [
    ("/plain", b"plain body\n"),
    ("/stream?parts=3", b"part0;part1;part2;"),
])
def test_http10_response(server: GunicornProcess, target: str, body: bytes) -> None:
    with server.connect() as s:
        s.sendall(http("GET", target, version="HTTP/1.0", host=False))
        reader = ResponseReader(s)
        resp = reader.read_response()
        assert resp.status == 200
        assert not resp.chunked  # HTTP/1.0 has no chunked coding
        assert resp.body == body
        assert reader.at_eof()


@pytest.mark.parametrize("target", ["/head", "/stream?parts=3", "/write"])
def test_head_has_no_body(server: GunicornProcess, target: str) -> None:
    with server.connect() as s:
        reader = ResponseReader(s)
        s.sendall(http("HEAD", target))
        resp = reader.read_response(head_request=True)
        s.sendall(http("GET", "/plain", "Connection: close"))
        after = reader.read_response()
    assert resp.status == 200
    if target == "/head":
        assert resp.header(b"content-length") == b"17"
    # no body bytes came between the two heads: the next response parsed from its first byte
    assert (after.status, after.body) == (200, b"plain body\n")


def test_expect_100_continue_answered_when_the_app_reads(server: GunicornProcess) -> None:
    with server.connect() as s:
        s.sendall(http("POST", "/input?how=read", "Content-Length: 5", "Expect: 100-continue",
                       "Connection: close"))
        head, rest = read_head(s)
        assert head == b"HTTP/1.1 100 Continue"
        assert rest == b""
        s.sendall(b"hello")
        resp = ResponseReader(s).read_response()
    assert json.loads(resp.body)["pieces"] == ["hello"]


def test_expect_100_continue_not_sent_when_the_app_does_not_read(
        server: GunicornProcess) -> None:
    with server.connect() as s:
        s.sendall(http("POST", "/plain", "Content-Length: 5", "Expect: 100-continue"))
        resp = ResponseReader(s).read_response()
    assert (resp.status, resp.body) == (200, b"plain body\n")


# -- 10. graceful stop ------------------------------------------------------------------------
def test_sigterm_lets_a_slow_request_finish(
        worker_class: str, gunicorn: Callable[..., GunicornProcess], tmp_path: Path) -> None:
    proc = gunicorn(APP, settings={"threads": 2})
    entered = tmp_path / "entered"
    with proc.connect(timeout=10) as s:
        s.sendall(http("GET", f"/sleep?s=1.5&entered={q(entered)}"))
        wait_for(lambda: "entered" in read_marker(entered), 5, what="the app running")
        assert proc.proc is not None
        os.kill(proc.proc.pid, signal.SIGTERM)
        resp = ResponseReader(s, timeout=10).read_response()
    assert (resp.status, resp.body) == (200, b"slept")
    assert proc.proc.wait(15) == 0


def loop_is_uvloop(worker_class: str) -> bool:
    module, name = worker_class.rsplit(".", 1)
    loop = getattr(importlib.import_module(module), name).loop_factory()
    try:
        return type(loop).__module__.startswith("uvloop")
    finally:
        loop.close()


def test_sigterm_while_the_app_loads(request: pytest.FixtureRequest, worker_class: str,
                                     gunicorn: Callable[..., GunicornProcess],
                                     tmp_path: Path) -> None:
    """A SIGTERM that reaches a worker while it still imports the app ends it as soon as
    it can, not after graceful_timeout with a SIGKILL."""
    loading = tmp_path / "loading"
    proc = gunicorn("apps.wsgi_apps:slow_factory()", wait=False,
                    env={"GAW_TEST_LOADING": str(loading)}, settings={"graceful_timeout": 4})
    assert proc.proc is not None
    wait_for(lambda: "loading" in read_marker(loading), 20, what="the worker loading the app")
    started = time.monotonic()
    os.kill(proc.proc.pid, signal.SIGTERM)
    assert proc.proc.wait(15) == 0
    elapsed = time.monotonic() - started
    assert elapsed < 3, f"the arbiter took {elapsed:.1f} s: the worker ignored SIGTERM"
