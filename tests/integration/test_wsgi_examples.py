"""The Flask example and the Django example project, served by a real gunicorn with our worker.

One server per app per worker class: the Flask app (WSGI), and the same Django project served
once through its `wsgi.py` and once through its `asgi.py`. Every route is checked with httpx
on every server: hello, query arguments, a JSON echo, a form POST, a 3 MiB multipart upload
(sha256 compared), a streamed response, and a static file (bytes compared; HEAD and
conditional GET too). No server may log an error while doing so.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from conftest import WORKER_CLASSES
from gunicorn_process import REPO, GunicornProcess

EXAMPLES = REPO / "examples"
STREAM_CHUNKS = 10
UPLOAD_SIZE = 3 * 1024 * 1024
TIMEOUT = httpx.Timeout(15.0)
# What an app or the worker writes when a request goes wrong; none may appear in a log.
# ("must consume": Django's warning that a StreamingHttpResponse got the wrong iterator kind.)
LOG_ERRORS = ("Error handling request", " [ERROR] ", "Traceback (most recent call last)",
              "Internal Server Error", "Exception on ", "must consume")


@dataclass(frozen=True)
class Example:
    """One way of serving one example app."""

    name: str
    app: str
    needs: str  # the framework the example imports
    static: Path  # the file the app serves at /static/hello.txt
    request_class: str | None = None  # Django's request class names the interface used


EXAMPLE_APPS = [
    Example("flask", "examples.flask_app:app", "flask", EXAMPLES / "flask_static" / "hello.txt"),
    Example("django-wsgi", "examples.django_project.wsgi:application", "django",
            EXAMPLES / "django_project" / "static" / "hello.txt", "WSGIRequest"),
    Example("django-asgi", "examples.django_project.asgi:application", "django",
            EXAMPLES / "django_project" / "static" / "hello.txt", "ASGIRequest"),
]


@dataclass
class Served:
    example: Example
    proc: GunicornProcess
    log_mark: int = 0  # where the current test's part of the log begins

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.proc.url, timeout=TIMEOUT)


@pytest.fixture(
    scope="module",
    params=[(e, w) for e in EXAMPLE_APPS for w in WORKER_CLASSES],
    ids=[f"{e.name}-{w}" for e in EXAMPLE_APPS for w in WORKER_CLASSES],
)
def server(request: pytest.FixtureRequest) -> Iterator[Served]:
    example, worker_class = request.param
    pytest.importorskip(example.needs)
    proc = GunicornProcess(example.app, worker_class, settings={"threads": 4})
    try:
        proc.start()
        yield Served(example, proc)
    finally:
        proc.stop()


@pytest.fixture
def served(server: Served) -> Served:
    """The module's server, its log marked where this test begins."""
    server.log_mark = len(server.proc.logs())
    return server


def assert_log_clean(served: Served, whole: bool = False) -> None:
    """No error in what the server logged during this test (or ever, with `whole`)."""
    logs = served.proc.logs()
    if not whole:
        logs = logs[served.log_mark:]
    found = [marker for marker in LOG_ERRORS if marker in logs]
    assert not found, f"{served.example.name} logged {found}:\n{logs}"


def upload_content(size: int = UPLOAD_SIZE, seed: int = 3) -> bytes:
    """Random (incompressible, boundary-free in practice) bytes, the same on every run."""
    return random.Random(seed).randbytes(size)


# -- routes ---------------------------------------------------------------------------------
def test_hello(served: Served) -> None:
    with served.client() as client:
        r = client.get("/")
    assert r.status_code == 200
    assert r.text == "Hello, world!"
    assert r.headers["content-type"].startswith("text/plain")
    assert r.headers["content-length"] == "13"
    if served.example.request_class:  # the Django project really ran as WSGI / as ASGI
        assert r.headers["x-request-class"] == served.example.request_class
    assert_log_clean(served)


def test_query_arguments(served: Served) -> None:
    with served.client() as client:
        r = client.get("/items", params={"limit": 5})
        assert r.status_code == 200
        assert r.json() == {"limit": 5, "items": [f"item-{i}" for i in range(5)]}
        assert client.get("/items").json()["limit"] == 3
        assert client.get("/items", params={"limit": "0"}).json() == {"limit": 0, "items": []}
        assert client.get("/items", params={"limit": "many"}).status_code == 400
        assert client.get("/items", params={"limit": "101"}).status_code == 400
    assert_log_clean(served)


def test_json_echo(served: Served) -> None:
    payload = {"text": "héllo ✓", "numbers": [1, 2.5, -3], "nested": {"ok": True, "no": None}}
    with served.client() as client:
        r = client.post("/echo", json=payload)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {"received": payload}
    assert_log_clean(served)


def test_form_post(served: Served) -> None:
    fields = {"name": "Zoë & Co", "tags": ["a", "b=c"], "empty": ""}
    with served.client() as client:
        r = client.post("/form", data=fields)
    assert r.status_code == 200
    assert r.json() == {"fields": {"name": ["Zoë & Co"], "tags": ["a", "b=c"], "empty": [""]}}
    assert_log_clean(served)


def test_file_upload(served: Served) -> None:
    content = upload_content()
    with served.client() as client:
        r = client.post("/upload", data={"note": "three mebibytes"},
                        files={"file": ("random.bin", content, "application/octet-stream")})
        assert r.status_code == 200, r.text
        assert r.json() == {"filename": "random.bin", "size": UPLOAD_SIZE,
                            "sha256": hashlib.sha256(content).hexdigest(),
                            "fields": {"note": "three mebibytes"}}
        # The connection that carried the big body serves the next request correctly.
        small = b"tiny\r\n--not-a-boundary\r\n"
        r = client.post("/upload", files={"file": ("t.txt", small, "text/plain")})
        assert r.json()["sha256"] == hashlib.sha256(small).hexdigest()
        assert client.get("/").text == "Hello, world!"
    assert_log_clean(served)


def test_file_upload_without_file_is_a_client_error(served: Served) -> None:
    with served.client() as client:
        r = client.post("/upload", data={"note": "no file"})
    assert r.status_code == 400
    assert_log_clean(served)


def test_stream(served: Served) -> None:
    expected = "".join(f"chunk {i} for Ada from /stream\n" for i in range(STREAM_CHUNKS))
    with served.client() as client, client.stream("GET", "/stream",
                                                   params={"who": "Ada"}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/plain")
        # A generator has no length: HTTP/1.1 frames it with chunked transfer coding.
        assert "content-length" not in r.headers
        assert r.headers["transfer-encoding"] == "chunked"
        body = b"".join(r.iter_raw()).decode()
    assert body == expected
    assert_log_clean(served)


def test_static_file(served: Served) -> None:
    """Flask's send_file and Django's FileResponse hand the server a wsgi.file_wrapper."""
    expected = served.example.static.read_bytes()
    with served.client() as client:
        r = client.get("/static/hello.txt")
        assert r.status_code == 200
        assert r.content == expected
        assert r.headers["content-type"].startswith("text/plain")
        assert r.headers["content-length"] == str(len(expected))
        assert client.get("/").text == "Hello, world!"  # the connection is still in step
    assert_log_clean(served)


def test_static_file_head(served: Served) -> None:
    """The same length as GET, no body: the keep-alive connection is reused afterwards, so
    a body sent after the HEAD response would corrupt the next response."""
    expected = served.example.static.read_bytes()
    with served.client() as client:
        head = client.head("/static/hello.txt")
        assert head.status_code == 200
        assert head.headers["content-length"] == str(len(expected))
        assert head.content == b""
        assert client.get("/").text == "Hello, world!"
    assert_log_clean(served)


def test_static_file_conditional_get(served: Served) -> None:
    """The validator the app handed out gets a 304 without a body."""
    with served.client() as client:
        head = client.head("/static/hello.txt")
        validator = ({"if-none-match": head.headers["etag"]} if "etag" in head.headers
                     else {"if-modified-since": head.headers["last-modified"]})
        r304 = client.get("/static/hello.txt", headers=validator)
        assert r304.status_code == 304
        assert r304.content == b""
        assert client.get("/").text == "Hello, world!"
        assert client.get("/static/missing.txt").status_code == 404
    assert_log_clean(served)


def test_static_file_range(served: Served) -> None:
    """Flask answers a Range request with the range; django.views.static.serve ignores
    Range and sends the whole file. Either way the bytes are exact and the connection stays
    in step."""
    expected = served.example.static.read_bytes()
    with served.client() as client:
        r = client.get("/static/hello.txt", headers={"range": "bytes=6-15"})
        if served.example.name == "flask":
            assert r.status_code == 206
            assert r.content == expected[6:16]
            assert r.headers["content-range"] == f"bytes 6-15/{len(expected)}"
        else:
            assert r.status_code == 200 and "content-range" not in r.headers
            assert r.content == expected
        assert client.get("/").text == "Hello, world!"
    assert_log_clean(served)


def test_chunked_upload(served: Served) -> None:
    """A multipart body without Content-Length (chunked): Werkzeug reads it to the end because
    the worker sets wsgi.input_terminated. Django's multipart parser reads no body without a
    Content-Length: it finds no file (400), and the worker drops the unread body so that the
    connection serves the next request."""
    content = upload_content(UPLOAD_SIZE // 3, seed=4)
    boundary = "gaw-boundary-7d1f"
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="c.bin"\r\nContent-Type: application/octet-stream\r\n\r\n').encode()
    body += content + f"\r\n--{boundary}--\r\n".encode()

    def pieces() -> Iterator[bytes]:
        for start in range(0, len(body), 100_000):
            yield body[start:start + 100_000]

    with served.client() as client:
        r = client.post("/upload", content=pieces(),
                        headers={"content-type": f"multipart/form-data; boundary={boundary}"})
        assert r.request.headers["transfer-encoding"] == "chunked"
        if served.example.name == "flask":
            assert r.status_code == 200, r.text
            assert r.json()["size"] == len(content)
            assert r.json()["sha256"] == hashlib.sha256(content).hexdigest()
        else:
            assert r.status_code == 400, r.text
        assert client.get("/").text == "Hello, world!"
    assert_log_clean(served)


def test_chunked_json_echo(served: Served) -> None:
    """A JSON body without Content-Length (chunked) reaches request.get_json / request.body.
    Django's WSGIRequest reads no body without a Content-Length: it sees no JSON (400), and
    the worker drops the unread body so that the connection serves the next request."""
    payload = {"words": ["chunk"] * 5000}
    body = json.dumps(payload).encode()

    def pieces() -> Iterator[bytes]:
        for start in range(0, len(body), 4096):
            yield body[start:start + 4096]

    with served.client() as client:
        r = client.post("/echo", content=pieces(), headers={"content-type": "application/json"})
        assert r.request.headers["transfer-encoding"] == "chunked"
        if served.example.name == "django-wsgi":
            assert r.status_code == 400, r.text
        else:
            assert r.status_code == 200, r.text
            assert r.json() == {"received": payload}
        assert client.get("/").text == "Hello, world!"
    assert_log_clean(served)


def test_log_has_no_errors(served: Served) -> None:
    """Last in the module: nothing went wrong on this server, also after the responses."""
    with served.client() as client:
        assert client.get("/").status_code == 200  # a request after all the others
    assert_log_clean(served, whole=True)
    assert served.proc.proc is not None and served.proc.proc.poll() is None
    assert len(served.proc.all_worker_pids()) == 1, "a worker died and was replaced"
