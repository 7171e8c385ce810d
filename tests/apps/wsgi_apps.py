"""WSGI (PEP 3333) applications that make the worker's WSGI bridge observable to the tests.

`app` is a plain function app. A path under ``/v/`` runs the same route wrapped in
`wsgiref.validate.validator` (with its `WSGIWarning`s made errors in this process), so a
violation of PEP 3333 by the server there is a 500, a cut response, or a line on stderr.
Routes (the first path segment chooses; marker files are paths given in the query):

- ``/environ/...``      JSON of the environ: str values as they are, other values as JSON
                        when they can be, ``_types`` the type name of every value;
                        ``?errors=TEXT`` writes TEXT to wsgi.errors first
- ``/plain``            a list body with content-length
- ``/stream?parts=N``   a generator body of N parts, no content-length
- ``/write``            the legacy `write()` callable, then ``[]``
- ``/input?how=H``      reads wsgi.input by H (read, readn, readline, readline_n, readlines,
                        iter), JSON of the pieces (latin-1), length and sha256
- ``/count?piece=N``    reads wsgi.input N bytes at a time: JSON of length, sha256, reads
- ``/head``             a fixed body with content-length whatever the method
- ``/big?size=N&progress=P``  N bytes of BLOCK repeated, from a generator in 64 KiB
                        pieces, no content-length; writes the bytes yielded so far to P
- ``/closing?mode=M&mark=P``  an iterable whose close() appends "closed" to P; M is
                        normal, raise (raises after the first piece) or forever (yields
                        forever with small sleeps)
- ``/twice``            start_response twice without exc_info
- ``/exc_before``       start_response, then again with exc_info before anything is sent
- ``/exc_after``        yields a piece, then start_response with exc_info
- ``/bad_header``       a header value with CR LF in it
- ``/hop``              hop-by-hop headers (connection, keep-alive, transfer-encoding)
- ``/close_header``     ``Connection: close`` from the app
- ``/file?path=P&length=N&memory=1``  `wsgi.file_wrapper` over the file P (or over a BytesIO
                        of it with memory=1), with content-length N when given
- ``/sleep?s=S&entered=P&until=R``  notes P, sleeps S seconds (with R: until the file R
                        exists, at most S seconds), answers
- ``/raise``            raises before start_response

Also: `class_app` (a WSGI class instance), `validated_app` (`validator(app)`, whose
``(*args, **kw)`` signature needs ``interface='wsgi'``), `asgi_app` (an ASGI app, for the
interface checks), `slow_factory` (an app factory that takes a second) and `flask_app`
(when Flask is installed).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import parse_qs
from wsgiref.validate import WSGIWarning, validator

warnings.simplefilter("error", WSGIWarning)

Environ = dict[str, Any]
StartResponse = Callable[..., Callable[[bytes], None]]

BLOCK = bytes(range(256)) * 256  # 64 KiB
TEXT = [("Content-Type", "text/plain; charset=utf-8")]


def query(environ: Environ) -> dict[str, str]:
    parsed = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    return {k: v[-1] for k, v in parsed.items()}


def note(path: str, line: str) -> None:
    with open(path, "a") as f:
        f.write(line + "\n")


def respond(start_response: StartResponse, body: bytes, status: str = "200 OK",
            headers: list[tuple[str, str]] | None = None) -> list[bytes]:
    start_response(status, [*(headers or TEXT), ("Content-Length", str(len(body)))])
    return [body]


def respond_json(start_response: StartResponse, doc: object) -> list[bytes]:
    return respond(start_response, json.dumps(doc).encode(),
                   headers=[("Content-Type", "application/json")])


# -- routes -----------------------------------------------------------------------------------
def environ_route(environ: Environ, start_response: StartResponse) -> list[bytes]:
    q = query(environ)
    if "errors" in q:
        environ["wsgi.errors"].write(q["errors"] + "\n")
        environ["wsgi.errors"].flush()
    doc: dict[str, Any] = {}
    for key, value in environ.items():
        if isinstance(value, tuple):
            value = list(value)
        if value is None or isinstance(value, (str, bool, int, float, list)):
            doc[key] = value
    doc["_types"] = {k: type(v).__name__ for k, v in environ.items()}
    doc["_file_wrapper_callable"] = callable(environ.get("wsgi.file_wrapper"))
    if "scribble" in q:  # an app that writes over the environ: the next request's is whole
        for key in ("REMOTE_ADDR", "SERVER_NAME", "SCRIPT_NAME", "wsgi.url_scheme"):
            environ[key] = "scribbled"
        environ["HTTP_X_LEFT_BEHIND"] = "yes"
    return respond_json(start_response, doc)


def plain(environ: Environ, start_response: StartResponse) -> list[bytes]:
    return respond(start_response, b"plain body\n")


def stream(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
    parts = int(query(environ).get("parts", "3"))
    start_response("200 OK", TEXT)
    for i in range(parts):
        yield b"part%d;" % i


def write_route(environ: Environ, start_response: StartResponse) -> list[bytes]:
    write = start_response("200 OK", TEXT)
    write(b"written ")
    write(b"by ")
    write(b"write()")
    return []


def input_route(environ: Environ, start_response: StartResponse) -> list[bytes]:
    how = query(environ).get("how", "readn")
    stream = environ["wsgi.input"]
    pieces: list[bytes] = []
    if how == "read":
        pieces = [stream.read()]
    elif how == "readn":
        while True:
            data = stream.read(5)
            if not data:
                break
            pieces.append(data)
    elif how == "readline":
        while True:
            line = stream.readline()
            if not line:
                break
            pieces.append(line)
    elif how == "readline_n":
        while True:
            line = stream.readline(4)
            if not line:
                break
            pieces.append(line)
    elif how == "readlines":
        pieces = stream.readlines()
    elif how == "iter":
        pieces = list(stream)
    body = b"".join(pieces)
    # After the end, every way of reading says so.
    at_end = [stream.read(1), stream.readline()]
    return respond_json(start_response, {
        "pieces": [p.decode("latin-1") for p in pieces],
        "types": sorted({type(p).__name__ for p in pieces}),
        "length": len(body), "sha256": hashlib.sha256(body).hexdigest(),
        "at_end": [p.decode("latin-1") for p in at_end]})


def count(environ: Environ, start_response: StartResponse) -> list[bytes]:
    piece = int(query(environ).get("piece", "65536"))
    stream = environ["wsgi.input"]
    digest = hashlib.sha256()
    total = reads = biggest = 0
    while True:
        data = stream.read(piece)
        if not data:
            break
        reads += 1
        total += len(data)
        biggest = max(biggest, len(data))
        digest.update(data)
    return respond_json(start_response, {"length": total, "reads": reads, "biggest": biggest,
                                         "sha256": digest.hexdigest()})


def head(environ: Environ, start_response: StartResponse) -> list[bytes]:
    return respond(start_response, b"hello from /head\n",
                   headers=[*TEXT, ("X-Route", "head")])


def big(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
    q = query(environ)
    size = int(q["size"])
    progress = q.get("progress")
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    sent = 0
    while sent < size:
        data = BLOCK if size - sent >= len(BLOCK) else BLOCK[:size - sent]
        yield data
        sent += len(data)
        if progress:
            with open(progress, "w") as f:
                f.write(str(sent))


class Closing:
    """A response iterable that records its close()."""

    def __init__(self, mode: str, mark: str) -> None:
        self.mode = mode
        self.mark = mark

    def __iter__(self) -> Iterator[bytes]:
        yield b"first piece;"
        if self.mode == "raise":
            raise RuntimeError("raised mid-iteration on purpose")
        if self.mode == "forever":
            note(self.mark, "streaming")
            while True:
                time.sleep(0.005)
                yield b"x" * 1024
        yield b"second piece"

    def close(self) -> None:
        note(self.mark, "closed")


def closing(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    q = query(environ)
    start_response("200 OK", TEXT)
    return Closing(q.get("mode", "normal"), q["mark"])


def twice(environ: Environ, start_response: StartResponse) -> list[bytes]:
    start_response("200 OK", TEXT)
    start_response("201 Created", TEXT)
    return [b"should not be sent"]


def exc_before(environ: Environ, start_response: StartResponse) -> list[bytes]:
    start_response("200 OK", [*TEXT, ("X-First", "yes")])
    try:
        raise ValueError("a failure before anything was sent")
    except ValueError:
        start_response("503 Service Unavailable", [*TEXT, ("X-Second", "yes")],
                       sys.exc_info())
    return [b"recovered with exc_info"]


def exc_after(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
    start_response("200 OK", TEXT)
    yield b"body started;"
    try:
        raise ValueError("a failure after the body started")
    except ValueError:
        start_response("500 Internal Server Error", TEXT, sys.exc_info())
    yield b"must never be sent"


def bad_header(environ: Environ, start_response: StartResponse) -> list[bytes]:
    start_response("200 OK", [*TEXT, ("X-Evil", "a\r\nInjected: yes")])
    return [b"bad header body"]


def hop(environ: Environ, start_response: StartResponse) -> list[bytes]:
    body = b"hop-by-hop body"
    start_response("200 OK", [*TEXT, ("Content-Length", str(len(body))),
                              ("Connection", "keep-alive"), ("Keep-Alive", "timeout=99"),
                              ("Transfer-Encoding", "chunked"), ("X-After", "kept")])
    return [body]


def close_header(environ: Environ, start_response: StartResponse) -> list[bytes]:
    return respond(start_response, b"closing", headers=[*TEXT, ("Connection", "close")])


def file_route(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    q = query(environ)
    headers = [("Content-Type", "application/octet-stream")]
    if "length" in q:
        headers.append(("Content-Length", q["length"]))
    start_response("200 OK", headers)
    filelike = open(q["path"], "rb")  # noqa: SIM115 - closed by the wrapper's close()
    if q.get("memory"):
        with filelike:
            filelike = io.BytesIO(filelike.read())
    return environ["wsgi.file_wrapper"](filelike)


def sleep_route(environ: Environ, start_response: StartResponse) -> list[bytes]:
    q = query(environ)
    if "entered" in q:
        note(q["entered"], "entered")
    seconds = float(q.get("s", "1"))
    if "until" in q:
        deadline = time.monotonic() + seconds
        while not os.path.exists(q["until"]) and time.monotonic() < deadline:
            time.sleep(0.01)
    else:
        time.sleep(seconds)
    return respond(start_response, b"slept")


def raise_route(environ: Environ, start_response: StartResponse) -> list[bytes]:
    raise RuntimeError("raised before start_response on purpose")


def status_route(environ: Environ, start_response: StartResponse) -> list[bytes]:
    """/status/<code>: answer with that status line, whatever it is."""
    code = environ["PATH_INFO"].rsplit("/", 1)[1]
    return respond(start_response, b"status " + code.encode(), status=f"{code} Whatever")


def not_found(environ: Environ, start_response: StartResponse) -> list[bytes]:
    return respond(start_response, b"not found", status="404 Not Found")


ROUTES: dict[str, Callable[[Environ, StartResponse], Iterable[bytes]]] = {
    "environ": environ_route, "plain": plain, "stream": stream, "write": write_route,
    "input": input_route, "count": count, "head": head, "big": big, "closing": closing,
    "twice": twice, "exc_before": exc_before, "exc_after": exc_after,
    "bad_header": bad_header, "hop": hop, "close_header": close_header, "file": file_route,
    "sleep": sleep_route, "raise": raise_route, "status": status_route,
}


def route(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "")
    if path.startswith("/v/"):
        path = path[2:]
    handler = ROUTES.get(path.split("/")[1] if path.count("/") else "", not_found)
    return handler(environ, start_response)


_validated_route = validator(route)


def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """Every route; under /v/ through wsgiref's validator."""
    if environ.get("PATH_INFO", "").startswith("/v/"):
        return _validated_route(environ, start_response)
    return route(environ, start_response)


validated_app = validator(route)


class ClassApp:
    """A WSGI app that is an instance of a class with __call__(environ, start_response)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, environ: Environ, start_response: StartResponse) -> list[bytes]:
        self.calls += 1
        return respond(start_response, b"class app %d" % os.getpid())


class_app = ClassApp()


async def asgi_app(scope: dict, receive: Callable, send: Callable) -> None:
    """An ASGI app, for `interface='wsgi'` to refuse."""
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"asgi"})


def slow_factory() -> Callable[[Environ, StartResponse], Iterable[bytes]]:
    """An app factory (``apps.wsgi_apps:slow_factory()``) that takes a second to load;
    it notes "loading" in the file named by GAW_TEST_LOADING first."""
    note(os.environ["GAW_TEST_LOADING"], f"loading {os.getpid()}")
    time.sleep(1.0)
    return app


def _make_flask_app() -> Any:
    try:
        from flask import Flask, Response, jsonify, request, stream_with_context
    except ImportError:
        return None
    flask = Flask("wsgi_apps")

    @flask.get("/hello")
    def hello() -> Any:
        return {"greeting": f"hello {request.args.get('name', 'nobody')}",
                "tags": request.args.getlist("tag")}

    @flask.post("/items")
    def items() -> Any:
        data = request.get_json()
        return jsonify({"received": data, "content_type": request.content_type}), 201

    @flask.get("/stream")
    def streamed() -> Any:
        def generate() -> Iterator[str]:
            for i in range(int(request.args.get("n", "3"))):  # request context kept alive
                yield f"line {i} of {request.path}\n"
        return Response(stream_with_context(generate()), mimetype="text/plain")

    @flask.get("/boom")
    def boom() -> Any:
        raise RuntimeError("flask view failed on purpose")

    return flask


flask_app = _make_flask_app()
